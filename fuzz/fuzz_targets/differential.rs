//! `cargo fuzz run differential`: GC-heavy wasm-smith modules on Wasmtime's
//! configurations (and wasmi where it applies), compared by shape.
//!
//! Without `--cfg fuzzing` (stable builds, `cargo test`) this is a replay
//! binary: it runs each file or directory given on the command line through
//! the same entry point.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gcfuzz::campaign::fuzz::differential(data));

#[cfg(not(fuzzing))]
fn main() {
    gcfuzz_fuzz::replay_main(gcfuzz::campaign::fuzz::differential);
}
