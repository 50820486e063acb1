//! gcfuzz's reference interpreter: an independent oracle for every module
//! the generators emit, GC, typed function references and exceptions
//! included. It follows the specification, not Wasmtime: a plain
//! interpreter over wasmparser's decoded operators, types canonicalized by
//! its own iso-recursive rules (`types`), and GC objects as ordinary Rust
//! values in vectors that are never collected during a run, so the oracle
//! cannot have rooting bugs of its own. Clarity over speed.
//!
//! `store` holds instances and runtime objects and instantiates modules;
//! `exec` runs code (and notes the operand `edges` it meets, when asked);
//! `wast` runs spec test scripts against it; `value` is
//! what they pass around.

pub mod edges;
mod exec;
pub mod module;
mod numeric;
pub mod origin;
mod simd;
pub mod store;
pub mod types;
mod value;
pub mod wast;

pub use store::{Extern, Host, Limits, Store};
pub(crate) use value::trap;
pub use value::{AnyRef, Ref, Stop, Val};

use wasmparser::WasmFeatures;

/// What the interpreter runs: every proposal gcfuzz fuzzes (Wasm 3.0
/// without relaxed SIMD, memory64 and threads).
pub fn features() -> WasmFeatures {
    crate::case::fuzzed_features()
}
