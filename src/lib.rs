//! gcfuzz: differential fuzzing of GC rooting and GC code generation in
//! Cranelift-backed WebAssembly engines, first of all Wasmtime.
//!
//! The pipeline, one module per stage:
//! [`generate`] (wasm-smith, GC-heavy) → [`case`] (module + execution plan) →
//! [`engine`] (every configuration behind one trait, run in [`worker`]
//! processes) → [`compare`] (outcomes by shape) → [`differential`] (findings)
//! → [`finding`] (signatures, reproducers under `crashes/`). [`campaign`] is
//! the `gcfuzz run` loop; [`fuzz`] holds the libFuzzer entry points.

pub mod campaign;
pub mod case;
pub mod compare;
pub mod differential;
pub mod engine;
pub mod finding;
pub mod fuzz;
pub mod generate;
pub mod interp;
pub mod narrow;
pub mod nightly;
pub mod outcome;
pub mod pressure;
pub mod reduce;
pub mod regression;
pub mod report;
pub mod rewrite;
pub mod shrink;
pub mod stackmaps;
pub mod stats;
pub mod stress;
pub mod triage;
pub mod worker;

/// `gcfuzz` version with the engine versions it was built against.
pub fn version() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (wasmtime 48.0.8, wasmi 2.0.0)")
}

/// The engines this build runs, as `crashes/*/finding.json` names them in
/// `expected_on`.
pub fn engine_versions() -> [&'static str; 2] {
    ["wasmtime 48.0.8", "wasmi 2.0.0"]
}
