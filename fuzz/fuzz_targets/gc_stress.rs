//! `cargo fuzz run gc_stress`: programs built for rooting (references in
//! locals, globals, tables, arrays, struct fields, across calls, tail calls,
//! exceptions and the host, a collection between every two steps), checked
//! against the generator's model and across configurations.
//!
//! Without `--cfg fuzzing` this is a replay binary over files and directories.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gcfuzz::campaign::fuzz::gc_stress(data));

#[cfg(not(fuzzing))]
fn main() {
    gcfuzz_fuzz::replay_main(gcfuzz::campaign::fuzz::gc_stress);
}
