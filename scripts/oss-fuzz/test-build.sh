#!/usr/bin/env bash
# Runs build.sh as OSS-Fuzz would, with $SRC, $OUT and $WORK in a temporary
# directory, then checks that each produced binary runs its seed corpus.
# Needs the nightly toolchain and cargo-fuzz.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export SRC="$tmp/src" OUT="$tmp/out" WORK="$tmp/work"
mkdir -p "$SRC" "$OUT" "$WORK"
ln -s "$repo" "$SRC/gcfuzz"
RUSTUP_TOOLCHAIN=nightly "$repo/scripts/oss-fuzz/build.sh"
for target in differential gc_stress stackmaps; do
  for f in "$target" "$target.options" "${target}_seed_corpus.zip"; do
    [ -e "$OUT/$f" ] || { echo "test-build: $OUT/$f missing" >&2; exit 1; }
  done
  mkdir -p "$WORK/$target"
  unzip -q "$OUT/${target}_seed_corpus.zip" -d "$WORK/$target"
  count=$(ls "$WORK/$target" | wc -l)
  "$OUT/$target" -runs=0 "$WORK/$target" 2> "$WORK/$target.log" || { tail -20 "$WORK/$target.log" >&2; exit 1; }
  echo "test-build: $target ran its $count seed inputs"
done
