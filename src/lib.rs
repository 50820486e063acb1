//! gcfuzz: differential fuzzing of GC rooting and GC code generation in
//! Cranelift-backed WebAssembly engines, first of all Wasmtime.
//!
//! The pipeline, one module per stage:
//! [`generate`] (wasm-smith, GC-heavy) → [`case`] (module + execution plan) →
//! [`engine`] (every configuration behind one trait, run in [`worker`]
//! processes) → [`compare`] (outcomes by shape) → [`differential`] (findings)
//! → [`finding`] (signatures, reproducers under `crashes/`). [`campaign`] is
//! the `gcfuzz run` loop; [`fuzz`] holds the libFuzzer entry points.

// The Wasmtime under test, chosen by Cargo feature, is `wasmtime` (and its
// wast runner `wasmtime_wast`) everywhere in the crate; what differs between
// lines is kept in `engine::wasmtime::api`.
#[cfg(not(any(feature = "wasmtime-48", feature = "wasmtime-42", feature = "wasmtime-36", feature = "wasmtime-31")))]
compile_error!("choose the Wasmtime under test: one of the features wasmtime-48 (default), -42, -36, -31");
#[cfg(any(
    all(feature = "wasmtime-48", feature = "wasmtime-42"),
    all(feature = "wasmtime-48", feature = "wasmtime-36"),
    all(feature = "wasmtime-48", feature = "wasmtime-31"),
    all(feature = "wasmtime-42", feature = "wasmtime-36"),
    all(feature = "wasmtime-42", feature = "wasmtime-31"),
    all(feature = "wasmtime-36", feature = "wasmtime-31")
))]
compile_error!("the wasmtime-* features are exclusive: add --no-default-features");
#[cfg(feature = "wasmtime-48")]
pub extern crate wasmtime;
#[cfg(feature = "wasmtime-31")]
pub extern crate wasmtime_31 as wasmtime;
#[cfg(feature = "wasmtime-36")]
pub extern crate wasmtime_36 as wasmtime;
#[cfg(feature = "wasmtime-42")]
pub extern crate wasmtime_42 as wasmtime;
#[cfg(feature = "wasmtime-31")]
extern crate wasmtime_wast_31 as wasmtime_wast;
#[cfg(feature = "wasmtime-36")]
extern crate wasmtime_wast_36 as wasmtime_wast;
#[cfg(feature = "wasmtime-42")]
extern crate wasmtime_wast_42 as wasmtime_wast;

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
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        format!("{} (wasmtime {}, wasmi 2.0.0)", env!("CARGO_PKG_VERSION"), engine::wasmtime_api::VERSION)
    })
}

/// The engines this build runs, as `crashes/*/finding.json` names them in
/// `expected_on`.
pub fn engine_versions() -> [&'static str; 2] {
    static WASMTIME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    [WASMTIME.get_or_init(|| format!("wasmtime {}", engine::wasmtime_api::VERSION)), "wasmi 2.0.0"]
}
