//! Values, references and the ways a run stops: what the store, the
//! interpreter loop and the script runner pass around.

use crate::outcome::{Exhausted, TrapClass};

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
    V128(u128),
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
    pub fn v128(self) -> u128 {
        match self {
            Val::V128(v) => v,
            other => unreachable!("validated code: expected v128, found {other:?}"),
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
