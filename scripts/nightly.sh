#!/usr/bin/env bash
# The nightly fuzzing job (see README, "Nightly job"): builds gcfuzz and the
# libFuzzer targets, fuzzes, triages, and writes nightly/report.{json,md,html}.
# Arguments go to `gcfuzz nightly` (e.g. --time 600). Exit 0: nothing new;
# 1: new signatures; 2: infrastructure failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "nightly.sh: needs a nightly Rust toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz || exit 2
cargo build --bin gcfuzz || exit 2
exec target/debug/gcfuzz nightly "$@"
