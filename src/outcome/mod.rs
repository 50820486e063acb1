//! What one engine configuration did with one test case, in a form that can be
//! compared across engines: no addresses, no engine-specific handles.
//!
//! GC references are recorded by *shape* (see [`Ref`]): objects get canonical
//! numbers in walk order, so a reference seen twice is recorded as
//! [`Ref::Seen`] and aliasing (`ref.eq` identity) is part of the shape.

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod vocab;

/// A Wasm value as observed by the host. Floats are stored as bits with every
/// NaN replaced by the canonical one, so NaN payloads never cause a mismatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    /// As a hex string in JSON: records are read through serde's buffered
    /// enum path, which has no 128-bit integers.
    V128(#[serde(with = "hex128")] u128),
    Ref(Ref),
}

mod hex128 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#034x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        u128::from_str_radix(text.trim_start_matches("0x"), 16).map_err(D::Error::custom)
    }
}

impl Value {
    pub fn f32(bits: u32) -> Value {
        if f32::from_bits(bits).is_nan() { Value::F32(0x7fc0_0000) } else { Value::F32(bits) }
    }

    pub fn f64(bits: u64) -> Value {
        if f64::from_bits(bits).is_nan() { Value::F64(0x7ff8_0000_0000_0000) } else { Value::F64(bits) }
    }
}

/// The shape of a reference value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ref {
    Null,
    I31(i32),
    /// A struct: its canonical number, its type's structure and its fields.
    Struct {
        id: u32,
        ty: String,
        fields: Vec<Value>,
    },
    /// An array: canonical number, type, length and the first elements.
    Array {
        id: u32,
        ty: String,
        len: u32,
        elems: Vec<Value>,
    },
    /// An exception object: its tag's signature and payload.
    Exn {
        id: u32,
        tag: String,
        fields: Vec<Value>,
    },
    /// An object already recorded earlier in this walk, by canonical number.
    Seen(u32),
    /// A function reference, identified by its signature only.
    Func(String),
    /// A host `externref` with the payload the host gave it.
    Extern(u32),
    /// An `externref` that wraps an internal (`anyref`) value.
    Internalized(Box<Ref>),
    /// The walk's depth or object budget ran out here.
    Truncated,
}

/// Why a run ended early without a verdict. Engines legitimately differ on
/// these (stack depth, fuel accounting, heap limits), so a call that ends this
/// way on any configuration makes the rest of the comparison inconclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Exhausted {
    StackOverflow,
    OutOfFuel,
    GcHeapOutOfMemory,
    AllocationTooLarge,
    /// A memory or table could not be allocated by the host.
    ResourceLimit,
}

/// Trap classes; traps are compared by class, never by message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrapClass {
    Unreachable,
    MemoryOutOfBounds,
    TableOutOfBounds,
    IndirectCallToNull,
    BadSignature,
    IntegerOverflow,
    IntegerDivisionByZero,
    BadConversionToInteger,
    NullReference,
    ArrayOutOfBounds,
    CastFailure,
    /// Any other trap, by the engine's own description.
    Other(String),
}

/// The result of instantiating a module or calling one export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Returned(Vec<Value>),
    Trapped(TrapClass),
    /// An exception escaped to the host: its payload shape.
    Uncaught(Ref),
    Exhausted(Exhausted),
    /// The engine rejected or failed on the module for another reason (compile
    /// error, link error). A mismatch when another configuration accepts it.
    Error(String),
}

impl Status {
    pub fn is_exhausted(&self) -> bool {
        matches!(self, Status::Exhausted(_))
    }
}

/// One call of the plan and what came of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub export: String,
    pub status: Status,
    /// Engine fuel the call consumed, where configurations count it alike
    /// (Wasmtime charges it per operator at translation, whatever the
    /// collector, compiler or Pulley): which of two trapping runs got
    /// further. Not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

/// Exported state after the last call, by export name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub globals: Vec<(String, Value)>,
    /// The references the host still holds from earlier calls
    /// (`call[i].result[j]`), walked once more after the last call: a
    /// collection since may have freed or moved what only the host's root
    /// kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<(String, Value)>,
    /// Memory size in bytes and a hash of its contents.
    pub memories: Vec<(String, MemorySummary)>,
    pub tables: Vec<(String, TableSummary)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySummary {
    pub size: u64,
    pub hash: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummary {
    pub size: u64,
    /// The first elements (see `vocab::TABLE_ELEMS`), walked like values.
    pub elems: Vec<Ref>,
}

/// Everything one configuration did with one test case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub config: String,
    pub instantiate: Status,
    pub calls: Vec<CallRecord>,
    /// Absent when instantiation failed or the run was cut short.
    pub state: Option<State>,
    /// Time spent in the engine (compile, instantiate, run, walk).
    pub micros: u64,
    /// The GC heap the store held at the end, in bytes, where the engine
    /// tells (Wasmtime lines with `Store::gc_heap_capacity`). Not compared:
    /// for Null, which never frees, it bounds everything the run allocated
    /// (the leak oracle's yardstick, `oracle::leak`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc_heap_bytes: Option<u64>,
    /// Which instructions produced the results and exported globals, where
    /// the engine tracks it (the reference interpreter). Not compared: it
    /// names the instruction behind a differing value in a signature.
    #[serde(default, skip_serializing_if = "Producers::is_empty")]
    pub producers: Producers,
}

/// The operators (`StructGet`, `Select`, …) that computed values, for
/// mismatch signatures (`oracle::compare`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producers {
    /// Per call, per result; `None` for a value no instruction made (an
    /// argument passed through).
    pub results: Vec<Vec<Option<String>>>,
    /// Per exported global that an instruction stored, by export name.
    pub globals: Vec<(String, String)>,
}

impl Producers {
    pub fn is_empty(&self) -> bool {
        self.results.iter().all(Vec::is_empty) && self.globals.is_empty()
    }
}

/// Whether a panic message is Wasmtime's report of a failure its compiled
/// code detected (a failed inline GC check, an internal assert): such a
/// crash is located at the faulting operator ([`CrashInfo::wasm`]), any
/// other panic under Wasm frames at the operator that called out.
pub fn detected_in_compiled_code(message: &str) -> bool {
    message.contains("in compiled code")
}

/// How a worker process died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashInfo {
    pub config: String,
    /// Panic message, or the last lines the process wrote to stderr.
    pub message: String,
    /// Panic location (`file:line`), when it panicked.
    pub location: Option<String>,
    pub signal: Option<i32>,
    pub exit_code: Option<i32>,
    /// Backtrace frames (function names), innermost first.
    pub frames: Vec<String>,
    /// Where in Wasm it happened (`engine::wasmtime::locate`): the operator
    /// at the fault for a failure detected in compiled code, else, for a
    /// panic under Wasm frames, the operator that called out (for a
    /// collector assert, the safepoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<String>,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I32(v) => write!(f, "i32:{v}"),
            Value::I64(v) => write!(f, "i64:{v}"),
            Value::F32(b) => write!(f, "f32:{}", f32::from_bits(*b)),
            Value::F64(b) => write!(f, "f64:{}", f64::from_bits(*b)),
            Value::V128(v) => write!(f, "v128:{v:#034x}"),
            Value::Ref(r) => write!(f, "{r}"),
        }
    }
}

fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Null => f.write_str("null"),
            Ref::I31(v) => write!(f, "i31:{v}"),
            Ref::Struct { id, ty, fields } => {
                write!(f, "#{id}={ty}{{")?;
                list(f, fields)?;
                f.write_str("}")
            }
            Ref::Array { id, ty, len, elems } => {
                write!(f, "#{id}={ty}[{len}]{{")?;
                list(f, elems)?;
                f.write_str("}")
            }
            Ref::Exn { id, tag, fields } => {
                write!(f, "#{id}=exn{tag}{{")?;
                list(f, fields)?;
                f.write_str("}")
            }
            Ref::Seen(id) => write!(f, "#{id}"),
            Ref::Func(sig) => write!(f, "func{sig}"),
            Ref::Extern(id) => write!(f, "extern:{id}"),
            Ref::Internalized(r) => write!(f, "extern({r})"),
            Ref::Truncated => f.write_str("…"),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Returned(values) => {
                f.write_str("ok(")?;
                list(f, values)?;
                f.write_str(")")
            }
            Status::Trapped(class) => write!(f, "trap {class:?}"),
            Status::Uncaught(exn) => write!(f, "uncaught {exn}"),
            Status::Exhausted(what) => write!(f, "inconclusive ({what:?})"),
            Status::Error(msg) => write!(f, "error: {msg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nans_are_canonicalized() {
        assert_eq!(Value::f32(0x7fc0_0001), Value::f32(0xffc0_0000));
        assert_eq!(Value::f64(0xfff8_0000_0000_0001), Value::F64(0x7ff8_0000_0000_0000));
        assert_ne!(Value::f32(1.0f32.to_bits()), Value::f32(2.0f32.to_bits()));
        // Signed zeros are distinct values, not NaNs.
        assert_ne!(Value::f32(0), Value::f32(0x8000_0000));
    }

    #[test]
    fn display_shows_aliasing() {
        let v = Value::Ref(Ref::Struct { id: 0, ty: "struct(i32)".into(), fields: vec![Value::I32(1)] });
        assert_eq!(v.to_string(), "#0=struct(i32){i32:1}");
        assert_eq!(Value::Ref(Ref::Seen(0)).to_string(), "#0");
    }
}
