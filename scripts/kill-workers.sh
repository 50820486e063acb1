#!/usr/bin/env bash
# Kill test: runs a campaign and, while it runs, kills its worker processes
# (the live one, a spare started ahead, the one confirming findings) from
# outside with each of SIGKILL, SIGSEGV, SIGILL, SIGABRT and SIGTERM (as an
# OOM killer or an operator would). A trustworthy campaign finishes and
# files none of those deaths as a new finding: they do not reproduce in a
# fresh worker, so they are counted as unreproducible.
#
#   scripts/kill-workers.sh [SECONDS] [SEED]      # default 40 s, seed 1
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-40}
seed=${2:-1}
out=$(mktemp -d)
cargo build -q --bin gcfuzz
target/debug/gcfuzz run --jobs 1 --time "$seconds" --seed "$seed" --out "$out" --json >"$out/summary.json" 2>"$out/log" &
campaign=$!
sleep 5
for sig in KILL SEGV ILL ABRT TERM; do
    workers=$(pgrep -P "$campaign" -f 'gcfuzz worker' | tr '\n' ' ' || true)
    if [ -n "$workers" ]; then
        # shellcheck disable=SC2086 # one argument per process id
        kill -s "$sig" $workers && echo "sent SIG$sig to workers $workers"
    fi
    sleep $((seconds / 8))
done
wait "$campaign" && status=0 || status=$?
python3 - "$out/summary.json" "$status" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
by = {}
for f in s["findings"]:
    by.setdefault(f["status"], set()).add(f["signature"])
print(f"exit {sys.argv[2]}; {s['execs']} execs; unreproducible findings: {s['unreproducible']}; "
      f"new signatures: {sorted(by.get('new', []))}; known: {sorted(by.get('known', []))}")
PY
echo "findings and log in $out"
