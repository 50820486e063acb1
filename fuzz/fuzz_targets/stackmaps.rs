//! `cargo fuzz run stackmaps`: random CLIF programs with tagged references,
//! compiled by Cranelift (cranelift-jit) on every opt-level / register
//! allocator configuration and checked at every safepoint against a model of
//! which references are live (see `gcfuzz::stackmaps`).
//!
//! Without `--cfg fuzzing` this is a replay binary over files and directories.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gcfuzz::campaign::fuzz::stackmaps(data));

#[cfg(not(fuzzing))]
fn main() {
    gcfuzz_fuzz::replay_main(gcfuzz::campaign::fuzz::stackmaps);
}
