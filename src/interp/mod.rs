//! gcfuzz's reference interpreter: an independent oracle for every module
//! the generators emit, GC, typed function references and exceptions
//! included. It follows the specification, not Wasmtime: a plain
//! interpreter over wasmparser's decoded operators, types canonicalized by
//! its own iso-recursive rules (`types`), and GC objects as ordinary Rust
//! values in vectors that are never collected during a run, so the oracle
//! cannot have rooting bugs of its own. Clarity over speed.
//!
//! `store` holds instances and runtime objects and instantiates modules;
//! `exec` runs code; `wast` runs spec test scripts against it.

mod exec;
pub mod module;
mod numeric;
pub mod store;
pub mod types;
pub mod wast;

pub use store::{Extern, Host, Limits, Store};

use crate::outcome::{Exhausted, TrapClass};
use wasmparser::WasmFeatures;

/// What the interpreter runs: Wasm 3.0 without SIMD, memory64 and threads
/// (whatever the Wasmtime under test supports).
pub fn features() -> WasmFeatures {
    (WasmFeatures::WASM2
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::GC
        | WasmFeatures::FUNCTION_REFERENCES
        | WasmFeatures::EXCEPTIONS)
        .difference(WasmFeatures::SIMD)
}

/// A non-null reference into the `any` hierarchy (also what an `externref`
/// wraps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnyRef {
    /// The 31-bit payload, unsigned.
    I31(u32),
    Struct(u32),
    Array(u32),
    /// A host reference (what the host hands in as an `externref`), seen
    /// from the `any` side after `any.convert_extern`.
    Host(u32),
}

/// A reference value. Objects, functions and exceptions are store indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ref {
    Null,
    Func(u32),
    Exn(u32),
    Any(AnyRef),
    Extern(AnyRef),
}

/// A value. Floats are kept as bits so NaN payloads survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    Ref(Ref),
}

impl Val {
    pub fn i32(self) -> i32 {
        match self {
            Val::I32(v) => v,
            other => unreachable!("validated code: expected i32, found {other:?}"),
        }
    }
    pub fn i64(self) -> i64 {
        match self {
            Val::I64(v) => v,
            other => unreachable!("validated code: expected i64, found {other:?}"),
        }
    }
    pub fn f32(self) -> f32 {
        match self {
            Val::F32(v) => f32::from_bits(v),
            other => unreachable!("validated code: expected f32, found {other:?}"),
        }
    }
    pub fn f64(self) -> f64 {
        match self {
            Val::F64(v) => f64::from_bits(v),
            other => unreachable!("validated code: expected f64, found {other:?}"),
        }
    }
    pub fn reference(self) -> Ref {
        match self {
            Val::Ref(r) => r,
            other => unreachable!("validated code: expected a reference, found {other:?}"),
        }
    }
}

/// Why execution stopped without results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    Trap(TrapClass),
    /// A deterministic limit (fuel, call depth, heap size) ran out.
    Exhausted(Exhausted),
    /// An exception escaped: its store index.
    Uncaught(u32),
    /// Linking failed, or the module is outside the interpreter's scope.
    Error(String),
}

pub(crate) fn trap<T>(class: TrapClass) -> Result<T, Stop> {
    Err(Stop::Trap(class))
}
