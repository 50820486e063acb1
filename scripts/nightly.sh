#!/usr/bin/env bash
# The nightly fuzzing job (see README, "Nightly job"): builds gcfuzz and the
# libFuzzer targets, fuzzes, triages, and writes nightly/report.{json,md,html}.
# Arguments go to `gcfuzz nightly` (e.g. --time 600). Exit 0: nothing new;
# 1: new signatures; 2: infrastructure failure.
#
# GCFUZZ_LINE=50 scripts/nightly.sh ... fuzzes another Wasmtime line (50, 48,
# 42, 36 or 31; default 48): gcfuzz and the libFuzzer targets are both built
# for it (50 with the nightly toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "nightly.sh: needs a nightly Rust toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz || exit 2
line=${GCFUZZ_LINE:-48}
# Another line builds in its own target directory, so the default build's
# cache survives (the nightly toolchain would rebuild everything in target/).
toolchain=()
[ "$line" != 50 ] || toolchain=(+nightly)
dir=target
[ "$line" = 48 ] || dir=target/lines/$line
cargo "${toolchain[@]}" build --bin gcfuzz --no-default-features --features "wasmtime-$line" --target-dir "$dir" || exit 2
exec "$dir/debug/gcfuzz" nightly "$@"
