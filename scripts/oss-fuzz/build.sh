#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script for gcfuzz's libFuzzer targets.
#
# OSS-Fuzz runs this in its Rust base image with $SRC, $OUT and $WORK set and
# RUSTFLAGS carrying the sanitizer and coverage flags; `cargo fuzz build`
# adds --cfg fuzzing, which turns Wasmtime's gc_zeal on. -O with
# --debug-assertions keeps Wasmtime's GC asserts live in the optimized build.
# Compare tracing is off: gc_zeal's byte-wise heap poison checks would
# dominate every execution (see README).
# GCFUZZ_LINE picks the Wasmtime line (50, 48, 42, 36, 31; default 48).
cd "$SRC/gcfuzz"
cargo fuzz build -O --debug-assertions --no-trace-compares \
  --no-default-features --features "wasmtime-${GCFUZZ_LINE:-48}"
built=target/x86_64-unknown-linux-gnu/release
for target in differential gc_stress stackmaps; do
  cp "$built/$target" "$OUT/"
  cp "scripts/oss-fuzz/$target.options" "$OUT/"
  (cd "corpus/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
done
