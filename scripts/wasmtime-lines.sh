#!/usr/bin/env bash
# Builds gcfuzz against each supported Wasmtime line and runs a short smoke
# campaign on each; prints a Markdown table (version, build time, execs/s,
# findings with their signatures) and keeps each line's findings.
#
#   scripts/wasmtime-lines.sh [--seconds N] [--seed N] [LINE ...]
#   scripts/wasmtime-lines.sh --local /path/to/wasmtime [--seconds N]
#
# LINE is 50, 48, 42, 36 or 31 (default: all five; 50 builds with the nightly
# toolchain, `cargo +nightly`, the others with the default one). Each line builds from scratch in
# its own target directory (target/lines/<line>), so build times are those of
# a fresh clone and the main build in target/ is left alone. Findings go to
# target/lines/<line>/crashes; copy real ones into crashes/ with
# `expected_on` naming the version they reproduce on.
#
# --local builds against a Wasmtime source checkout instead (its
# crates/wasmtime and crates/wast replace the 48 line's crates.io
# dependencies, in a copy of this project under target/lines/local), which is
# the README's recipe for fuzzing a Wasmtime branch.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=30
seed=1
local_tree=""
lines=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --local) local_tree="$(cd "$2" && pwd)"; shift 2 ;;
    50|48|42|36|31) lines+=("$1"); shift ;;
    *) echo "wasmtime-lines.sh: unknown argument $1 (lines are 50, 48, 42, 36, 31)" >&2; exit 2 ;;
  esac
done
[ ${#lines[@]} -gt 0 ] || lines=(50 48 42 36 31)
[ -z "$local_tree" ] || lines=(local)

out="$root/target/lines"
mkdir -p "$out"
table="$out/table.md"
printf '| Wasmtime | build time | execs/s | GC-allocating | findings |\n|---|---|---|---|---|\n' > "$table"

for line in "${lines[@]}"; do
  dir="$out/$line"
  src="$root"
  features="wasmtime-$line"
  if [ "$line" = local ]; then
    # A copy of the project whose 48-line dependencies point at the checkout.
    src="$dir/src-copy"
    rm -rf "$src" && mkdir -p "$src"
    cp -r "$root/Cargo.toml" "$root/Cargo.lock" "$root/src" "$root/fuzz" "$root/tests" "$root/.cargo" "$src/"
    sed -i \
      -e "s|^wasmtime = { version = \"=48.0.8\",|wasmtime = { path = \"$local_tree/crates/wasmtime\",|" \
      -e "s|^wasmtime-wast = { version = \"=48.0.8\",|wasmtime-wast = { path = \"$local_tree/crates/wast\",|" \
      "$src/Cargo.toml"
    grep -q "path = \"$local_tree/crates/wasmtime\"" "$src/Cargo.toml" || { echo "could not patch Cargo.toml" >&2; exit 2; }
    features="wasmtime-48"
    version="local $(sed -n 's/^version = "\(.*\)"/\1/p' "$local_tree/Cargo.toml" | head -1) ($local_tree)"
  fi
  # Wasmtime 50 needs a newer Rust than the stable toolchain.
  toolchain=()
  [ "$line" != 50 ] || toolchain=(+nightly)
  echo "== Wasmtime $line: building" >&2
  start=$(date +%s)
  if ! (cd "$src" && GCFUZZ_WASMTIME_VERSION="${version:-}" cargo "${toolchain[@]}" build -p gcfuzz --no-default-features \
        --features "$features" --bin gcfuzz --target-dir "$dir/target" 2> "$dir.build.log"); then
    echo "== Wasmtime $line: build failed, see $dir.build.log" >&2
    printf '| %s | build failed | | | |\n' "$line" >> "$table"
    continue
  fi
  build=$(( $(date +%s) - start ))
  bin="$dir/target/debug/gcfuzz"
  name=$("$bin" --version | sed 's/.*(wasmtime \(.*\), wasmi.*/\1/')
  echo "== Wasmtime $name: built in ${build}s; ${seconds}s campaign" >&2
  rm -rf "$dir/crashes"
  "$bin" run --time "$seconds" --seed "$seed" --json --out "$dir/crashes" > "$dir/summary.json" || true
  read -r rate gc <<< "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(round(d["execs_per_sec"], 1), "%.0f%%" % (100 * d["modules_with_gc_share"]))' "$dir/summary.json")"
  # Confirmed findings only (unreproducible ones are in their own folder).
  findings=$(ls "$dir/crashes" 2>/dev/null | grep -vx unreproducible | sed 's/^/`/; s/$/`/' | paste -sd ' ' - || true)
  printf '| %s | %dm%02ds | %s | %s | %s |\n' "$name" $((build / 60)) $((build % 60)) "$rate" "$gc" \
    "${findings:-none}" >> "$table"
done
cat "$table"
