//! The reach matrix's vocabulary: its rows (what made a GC reference, how
//! it was carried, what used it) and columns (the kind of safepoint where a
//! collection really ran while it was live). The pressure pass
//! ([`super::pressure`]) fills it; `gcfuzz stats --matrix` prints it.

use serde::Serialize;
use wasmparser::Operator;

/// Where a collection ran while a reference was live: the columns of the
/// reach matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Column {
    /// A call of a collecting host import.
    HostGc,
    /// An allocation under a zeal counter that collects.
    Allocation,
    /// A direct call of a function that may collect.
    Call,
    CallIndirect,
    CallRef,
    /// Any of these inside a `try_table`.
    InTryTable,
    /// A `throw` (it allocates the exception) under such a zeal counter.
    Throw,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::HostGc,
        Column::Allocation,
        Column::Call,
        Column::CallIndirect,
        Column::CallRef,
        Column::InTryTable,
        Column::Throw,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Column::HostGc => "host-gc",
            Column::Allocation => "alloc",
            Column::Call => "call",
            Column::CallIndirect => "call_indirect",
            Column::CallRef => "call_ref",
            Column::InTryTable => "in-try",
            Column::Throw => "throw",
        }
    }
}

/// One cell: (row, column, observed).
pub type Cell = (&'static str, Column, bool);

/// The matrix row of a value `op` pushes: the operators that make GC
/// references or hand them on as new values, by wasmparser's names.
pub fn row_of(op: &Operator) -> &'static str {
    use Operator as O;
    match op {
        O::StructNew { .. } => "StructNew",
        O::StructNewDefault { .. } => "StructNewDefault",
        O::ArrayNew { .. } => "ArrayNew",
        O::ArrayNewDefault { .. } => "ArrayNewDefault",
        O::ArrayNewFixed { .. } => "ArrayNewFixed",
        O::ArrayNewData { .. } => "ArrayNewData",
        O::ArrayNewElem { .. } => "ArrayNewElem",
        O::StructGet { .. } | O::StructGetS { .. } | O::StructGetU { .. } => "StructGet",
        O::ArrayGet { .. } | O::ArrayGetS { .. } | O::ArrayGetU { .. } => "ArrayGet",
        O::RefCastNonNull { .. } | O::RefCastNullable { .. } => "RefCast",
        O::RefAsNonNull => "RefAsNonNull",
        O::BrOnCast { .. } | O::BrOnCastFail { .. } => "BrOnCast",
        O::BrOnNull { .. } | O::BrOnNonNull { .. } => "BrOnNull",
        O::AnyConvertExtern => "AnyConvertExtern",
        O::ExternConvertAny => "ExternConvertAny",
        O::TableGet { .. } => "TableGet",
        O::GlobalGet { .. } => "GlobalGet",
        O::Call { .. } | O::CallIndirect { .. } | O::CallRef { .. } => "call result",
        _ => "other",
    }
}

/// The matrix rows of instructions that take GC objects and make none
/// (`use:` rows: a reference live across a collection, then used by it).
pub fn use_row(op: &Operator) -> Option<&'static str> {
    use Operator as O;
    Some(match op {
        O::ArrayFill { .. } => "use: ArrayFill",
        O::ArrayCopy { .. } => "use: ArrayCopy",
        O::ArrayInitData { .. } => "use: ArrayInitData",
        O::ArrayInitElem { .. } => "use: ArrayInitElem",
        O::StructSet { .. } => "use: StructSet",
        O::ArraySet { .. } => "use: ArraySet",
        O::ArrayLen => "use: ArrayLen",
        O::RefTestNonNull { .. } | O::RefTestNullable { .. } => "use: RefTest",
        O::RefEq => "use: RefEq",
        O::TableSet { .. } => "use: TableSet",
        O::GlobalSet { .. } => "use: GlobalSet",
        O::Throw { .. } | O::ThrowRef => "use: Throw",
        _ => return None,
    })
}

/// Whether `op` reads the object a popped reference points to, so that a
/// stale or moved one would show.
pub fn observes(op: &Operator) -> bool {
    use Operator as O;
    matches!(
        op,
        O::StructGet { .. }
            | O::StructGetS { .. }
            | O::StructGetU { .. }
            | O::StructSet { .. }
            | O::ArrayGet { .. }
            | O::ArrayGetS { .. }
            | O::ArrayGetU { .. }
            | O::ArraySet { .. }
            | O::ArrayLen
            | O::ArrayFill { .. }
            | O::ArrayCopy { .. }
            | O::ArrayInitData { .. }
            | O::ArrayInitElem { .. }
            | O::RefTestNonNull { .. }
            | O::RefTestNullable { .. }
            | O::RefCastNonNull { .. }
            | O::RefCastNullable { .. }
            | O::BrOnCast { .. }
            | O::BrOnCastFail { .. }
            | O::AnyConvertExtern
    )
}
