//! gcfuzz: differential fuzzing of GC rooting and GC code generation in
//! Cranelift-backed WebAssembly engines, first of all Wasmtime.
//!
//! One folder per pipeline stage, in the order a case flows through them:
//! [`generate`] (fuzz bytes to a test case) → [`engine`] (every
//! configuration behind one trait, run in worker processes) → [`oracle`]
//! (outcomes compared by shape, findings with signatures) → [`triage`]
//! (shrink, narrow, bulk triage) → [`report`] (crash records, regression
//! `.wast`, nightly reports). [`campaign`] holds the loops that drive it
//! (`gcfuzz run`, the nightly job, the libFuzzer entry points). Between the
//! stages travel plain data: [`case`] (the test case and its plan) and
//! [`outcome`] (what an engine did); [`line`] says what the Wasmtime under
//! test offers. [`interp`] is the reference interpreter and [`stackmaps`]
//! the Cranelift stack-map verifier, a small pipeline of its own.

// The Wasmtime under test, chosen by Cargo feature (the build script checks
// that exactly one is on), is `wasmtime` (and its wast runner
// `wasmtime_wast`) everywhere in the crate.
#[cfg(feature = "wasmtime-48")]
pub extern crate wasmtime;
#[cfg(feature = "wasmtime-31")]
pub extern crate wasmtime_31 as wasmtime;
#[cfg(feature = "wasmtime-36")]
pub extern crate wasmtime_36 as wasmtime;
#[cfg(feature = "wasmtime-42")]
pub extern crate wasmtime_42 as wasmtime;
#[cfg(feature = "wasmtime-50")]
pub extern crate wasmtime_50 as wasmtime;
#[cfg(feature = "wasmtime-31")]
extern crate wasmtime_wast_31 as wasmtime_wast;
#[cfg(feature = "wasmtime-36")]
extern crate wasmtime_wast_36 as wasmtime_wast;
#[cfg(feature = "wasmtime-42")]
extern crate wasmtime_wast_42 as wasmtime_wast;
#[cfg(feature = "wasmtime-50")]
extern crate wasmtime_wast_50 as wasmtime_wast;

pub mod campaign;
pub mod case;
pub mod engine;
pub mod generate;
pub mod interp;
pub mod line;
pub mod oracle;
pub mod outcome;
pub mod report;
pub mod stackmaps;
pub mod triage;

/// `gcfuzz` version with the engine versions it was built against.
pub fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let [wasmtime, wasmi, _] = line::engine_versions();
        format!("{} ({wasmtime}, {wasmi})", env!("CARGO_PKG_VERSION"))
    })
}
