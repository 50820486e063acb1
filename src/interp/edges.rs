//! Operand edges: which edge of its operands' range each GC and table
//! instruction met at run time (a null reference, index 0, the last index,
//! one past the end, far out of bounds, a zero or huge length, overlapping
//! copy ranges, an i31 at either end of its range, a host reference where
//! `any` is expected…). Bugs live at these edges, and no static analysis
//! sees operand values: the reference interpreter notes each edge an
//! instruction meets while [`record`] runs, and `gcfuzz stats --edges`
//! counts the cases per 1000 that met it.

use super::store::Store;
use super::types::TypeId;
use super::{AnyRef, Ref, Val};
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use wasmparser::Operator;

/// (row, class): an instruction family and an edge its operands met.
pub type Edge = (&'static str, &'static str);

const NULL: &str = "null";
const IDX0: &str = "index 0";
const LAST: &str = "last";
const ONE_PAST: &str = "one past";
const FAR: &str = "far out";
const LEN0: &str = "length 0";
const TO_END: &str = "to the end";
const HUGE: &str = "huge";
const OVERLAP: &str = "overlap";
const SEGMENT: &str = "past segment";
const FAILS: &str = "fails";
const I31_MAX: &str = "i31 max";
const I31_MIN: &str = "i31 min";
const WRAPS: &str = "wraps";
const NEGATIVE: &str = "negative";
const I31: &str = "i31";
const OBJECT: &str = "object";
const HOST: &str = "host";
const SAME: &str = "same";

/// The rows, in the order printed, each with the edges it can meet.
pub const ROWS: &[(&str, &[&str])] = &[
    ("ArrayGet", &[NULL, IDX0, LAST, ONE_PAST, FAR]),
    ("ArraySet", &[NULL, IDX0, LAST, ONE_PAST, FAR]),
    ("ArrayLen", &[NULL]),
    ("ArrayFill", &[NULL, LEN0, TO_END, ONE_PAST, FAR]),
    ("ArrayCopy", &[NULL, LEN0, TO_END, ONE_PAST, FAR, OVERLAP]),
    ("ArrayInitData", &[NULL, LEN0, TO_END, ONE_PAST, FAR, SEGMENT]),
    ("ArrayInitElem", &[NULL, LEN0, TO_END, ONE_PAST, FAR, SEGMENT]),
    ("ArrayNew", &[LEN0, HUGE]),
    ("ArrayNewDefault", &[LEN0, HUGE]),
    ("ArrayNewData", &[LEN0, HUGE, SEGMENT]),
    ("ArrayNewElem", &[LEN0, HUGE, SEGMENT]),
    ("StructGet", &[NULL]),
    ("StructSet", &[NULL]),
    ("TableGet", &[IDX0, LAST, ONE_PAST, FAR]),
    ("TableSet", &[IDX0, LAST, ONE_PAST, FAR]),
    ("TableFill", &[LEN0, TO_END, ONE_PAST, FAR]),
    ("TableCopy", &[LEN0, TO_END, ONE_PAST, FAR, OVERLAP]),
    ("TableInit", &[LEN0, TO_END, ONE_PAST, FAR, SEGMENT]),
    ("TableGrow", &[LEN0, FAILS]),
    ("RefI31", &[I31_MAX, I31_MIN, WRAPS]),
    ("I31Get", &[NULL, NEGATIVE]),
    ("RefTest", &[NULL, I31, HOST]),
    ("RefCast", &[NULL, I31, HOST]),
    ("BrOnCast", &[NULL, I31, HOST]),
    ("BrOnNull", &[NULL]),
    ("RefAsNonNull", &[NULL]),
    ("AnyConvertExtern", &[NULL, I31, OBJECT, HOST]),
    ("ExternConvertAny", &[NULL, I31, OBJECT, HOST]),
    ("RefEq", &[NULL, I31, SAME]),
    ("CallRef", &[NULL]),
];

/// Arrays this long or longer are "huge": past what a small GC heap holds.
const HUGE_LENGTH: u64 = 1 << 16;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static SEEN: RefCell<BTreeSet<Edge>> = const { RefCell::new(BTreeSet::new()) };
}

/// Runs `f` and returns, beside its result, the edges the interpreter's
/// instructions met on this thread meanwhile.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, BTreeSet<Edge>) {
    SEEN.take();
    ON.set(true);
    let r = f();
    ON.set(false);
    (r, SEEN.take())
}

/// Whether [`record`] is running (checked before every instruction).
pub(super) fn on() -> bool {
    ON.get()
}

/// Notes the edge `op` meets with operands `top` (the operand stack's top,
/// the last value topmost), before it runs in instance `inst`.
pub(super) fn note(op: &Operator, top: &[Val], store: &Store, inst: u32, types: &[TypeId]) {
    let found = edges(op, top, store, inst, types);
    if !found.is_empty() {
        SEEN.with_borrow_mut(|seen| seen.extend(found));
    }
}

fn edges(op: &Operator, top: &[Val], store: &Store, inst: u32, types: &[TypeId]) -> Vec<Edge> {
    use Operator as O;
    // The k-th operand from the top (1 = topmost).
    let nth = |k: usize| top.len().checked_sub(k).map(|i| top[i]);
    let int = |k: usize| match nth(k) {
        Some(Val::I32(v)) => v as u32,
        _ => 0,
    };
    let reference = |k: usize| match nth(k) {
        Some(Val::Ref(r)) => r,
        _ => Ref::Null,
    };
    let array_len = |r: Ref| match r {
        Ref::Any(AnyRef::Array(o)) => Some(store.arrays[o as usize].vals.len()),
        _ => None,
    };
    let table_len = |t: u32| store.tables[store.insts[inst as usize].tables[t as usize] as usize].elems.len();
    let elem_len = |e: u32| store.insts[inst as usize].elems[e as usize].len() as u64;
    // A data segment's length in elements of array type `a`.
    let data_len = |d: u32, a: u32| {
        let size = super::types::storage_size(store.types.array_field(types[a as usize]).storage) as u64;
        store.insts[inst as usize].datas[d as usize].len() as u64 / size
    };
    // A class of "" is a range inside bounds: no edge.
    let one = |row: &'static str, class: Option<&'static str>| match class {
        Some(c) if !c.is_empty() => vec![(row, c)],
        _ => vec![],
    };
    let null_or = |row: &'static str, r: Ref, rest: &dyn Fn() -> Vec<Edge>| match r {
        Ref::Null => vec![(row, NULL)],
        _ => rest(),
    };
    match op {
        O::ArrayGet { .. } | O::ArrayGetS { .. } | O::ArrayGetU { .. } => {
            let a = reference(2);
            null_or("ArrayGet", a, &|| one("ArrayGet", array_len(a).and_then(|len| index(int(1), len))))
        }
        O::ArraySet { .. } => {
            let a = reference(3);
            null_or("ArraySet", a, &|| one("ArraySet", array_len(a).and_then(|len| index(int(2), len))))
        }
        O::ArrayLen => null_or("ArrayLen", reference(1), &Vec::new),
        O::ArrayFill { .. } => {
            let a = reference(4);
            null_or("ArrayFill", a, &|| one("ArrayFill", array_len(a).map(|len| range(int(3), int(1), len))))
        }
        O::ArrayCopy { .. } => {
            let (dst, src, n) = (reference(5), reference(3), int(1));
            match (array_len(dst), array_len(src)) {
                (Some(dl), Some(sl)) => {
                    let (d, s) = (int(4), int(2));
                    let mut found = one("ArrayCopy", Some(worst(range(d, n, dl), range(s, n, sl))));
                    if dst == src && n > 0 && d.abs_diff(s) < n {
                        found.push(("ArrayCopy", OVERLAP));
                    }
                    found
                }
                _ => vec![("ArrayCopy", NULL)],
            }
        }
        O::ArrayInitData { array_type_index, array_data_index } => {
            let a = reference(4);
            let segment = data_len(*array_data_index, *array_type_index);
            null_or("ArrayInitData", a, &|| {
                let mut found = one("ArrayInitData", array_len(a).map(|len| range(int(3), int(1), len)));
                found.extend(past_segment("ArrayInitData", int(2), int(1), segment));
                found
            })
        }
        O::ArrayInitElem { array_elem_index, .. } => {
            let a = reference(4);
            let segment = elem_len(*array_elem_index);
            null_or("ArrayInitElem", a, &|| {
                let mut found = one("ArrayInitElem", array_len(a).map(|len| range(int(3), int(1), len)));
                found.extend(past_segment("ArrayInitElem", int(2), int(1), segment));
                found
            })
        }
        O::ArrayNew { .. } => one("ArrayNew", length(int(1))),
        O::ArrayNewDefault { .. } => one("ArrayNewDefault", length(int(1))),
        O::ArrayNewData { array_type_index, array_data_index } => {
            let mut found = one("ArrayNewData", length(int(1)));
            found.extend(past_segment("ArrayNewData", int(2), int(1), data_len(*array_data_index, *array_type_index)));
            found
        }
        O::ArrayNewElem { array_elem_index, .. } => {
            let mut found = one("ArrayNewElem", length(int(1)));
            found.extend(past_segment("ArrayNewElem", int(2), int(1), elem_len(*array_elem_index)));
            found
        }
        O::StructGet { .. } | O::StructGetS { .. } | O::StructGetU { .. } => {
            null_or("StructGet", reference(1), &Vec::new)
        }
        O::StructSet { .. } => null_or("StructSet", reference(2), &Vec::new),
        O::TableGet { table } => one("TableGet", index(int(1), table_len(*table))),
        O::TableSet { table } => one("TableSet", index(int(2), table_len(*table))),
        O::TableFill { table } => one("TableFill", Some(range(int(3), int(1), table_len(*table)))),
        O::TableCopy { dst_table, src_table } => {
            let (d, s, n) = (int(3), int(2), int(1));
            let mut found =
                one("TableCopy", Some(worst(range(d, n, table_len(*dst_table)), range(s, n, table_len(*src_table)))));
            if dst_table == src_table && n > 0 && d.abs_diff(s) < n {
                found.push(("TableCopy", OVERLAP));
            }
            found
        }
        O::TableInit { elem_index, table } => {
            let mut found = one("TableInit", Some(range(int(3), int(1), table_len(*table))));
            found.extend(past_segment("TableInit", int(2), int(1), elem_len(*elem_index)));
            found
        }
        O::TableGrow { table } => {
            let t = &store.tables[store.insts[inst as usize].tables[*table as usize] as usize];
            let max = t.ty.max.unwrap_or(u32::MAX as u64).min(store.limits.table_elems);
            let n = int(1) as u64;
            match n {
                0 => vec![("TableGrow", LEN0)],
                _ if t.elems.len() as u64 + n > max => vec![("TableGrow", FAILS)],
                _ => vec![],
            }
        }
        O::RefI31 => {
            let v = int(1) as i32;
            let class = match v {
                0x3fff_ffff => Some(I31_MAX),
                -0x4000_0000 => Some(I31_MIN),
                _ if !(-0x4000_0000..0x4000_0000).contains(&v) => Some(WRAPS),
                _ => None,
            };
            one("RefI31", class)
        }
        O::I31GetS | O::I31GetU => match reference(1) {
            Ref::Null => vec![("I31Get", NULL)],
            Ref::Any(AnyRef::I31(v)) if v & 0x4000_0000 != 0 => vec![("I31Get", NEGATIVE)],
            _ => vec![],
        },
        O::RefTestNonNull { .. } | O::RefTestNullable { .. } => one("RefTest", kind(reference(1))),
        O::RefCastNonNull { .. } | O::RefCastNullable { .. } => one("RefCast", kind(reference(1))),
        O::BrOnCast { .. } | O::BrOnCastFail { .. } => one("BrOnCast", kind(reference(1))),
        O::BrOnNull { .. } | O::BrOnNonNull { .. } => null_or("BrOnNull", reference(1), &Vec::new),
        O::RefAsNonNull => null_or("RefAsNonNull", reference(1), &Vec::new),
        O::AnyConvertExtern => one("AnyConvertExtern", converted(reference(1))),
        O::ExternConvertAny => one("ExternConvertAny", converted(reference(1))),
        O::RefEq => {
            let (a, b) = (reference(2), reference(1));
            let mut found = Vec::new();
            if a == Ref::Null || b == Ref::Null {
                found.push(("RefEq", NULL));
            }
            if [a, b].iter().any(|r| matches!(r, Ref::Any(AnyRef::I31(_)))) {
                found.push(("RefEq", I31));
            }
            if a == b && a != Ref::Null {
                found.push(("RefEq", SAME));
            }
            found
        }
        O::CallRef { .. } | O::ReturnCallRef { .. } => null_or("CallRef", reference(1), &Vec::new),
        _ => vec![],
    }
}

/// An index into a sequence of `len`: the edges of its range only.
fn index(i: u32, len: usize) -> Option<&'static str> {
    let (i, len) = (i as u64, len as u64);
    match i {
        _ if i == len => Some(ONE_PAST),
        _ if i > len => Some(FAR),
        0 => Some(IDX0),
        _ if i + 1 == len => Some(LAST),
        _ => None,
    }
}

/// The range `[start, start + n)` of a sequence of `len`. A range inside it
/// that stops short of the end is no edge; a zero length counts as one
/// unless its start is itself out of bounds.
fn range(start: u32, n: u32, len: usize) -> &'static str {
    let (end, len) = (start as u64 + n as u64, len as u64);
    match () {
        _ if n == 0 && start as u64 <= len => LEN0,
        _ if end == len => TO_END,
        _ if end == len + 1 => ONE_PAST,
        _ if end > len + 1 => FAR,
        _ => "",
    }
}

/// Of two ranges' edges, the one further out (a copy meets the worse).
fn worst(a: &'static str, b: &'static str) -> &'static str {
    let rank = |c: &str| [LEN0, "", TO_END, ONE_PAST, FAR].iter().position(|x| *x == c).unwrap_or(0);
    if rank(a) >= rank(b) { a } else { b }
}

fn past_segment(row: &'static str, start: u32, n: u32, segment: u64) -> Option<Edge> {
    (start as u64 + n as u64 > segment).then_some((row, SEGMENT))
}

fn length(n: u32) -> Option<&'static str> {
    match n as u64 {
        0 => Some(LEN0),
        n if n >= HUGE_LENGTH => Some(HUGE),
        _ => None,
    }
}

/// What a cast or test met: null, an i31 or a host reference.
fn kind(r: Ref) -> Option<&'static str> {
    match r {
        Ref::Null => Some(NULL),
        Ref::Any(AnyRef::I31(_)) => Some(I31),
        Ref::Any(AnyRef::Host(_)) => Some(HOST),
        _ => None,
    }
}

/// What an `any`/`extern` conversion met.
fn converted(r: Ref) -> Option<&'static str> {
    match r {
        Ref::Null => Some(NULL),
        Ref::Any(a) | Ref::Extern(a) => Some(match a {
            AnyRef::I31(_) => I31,
            AnyRef::Host(_) => HOST,
            AnyRef::Struct(_) | AnyRef::Array(_) => OBJECT,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_and_ranges_meet_their_edges() {
        assert_eq!(index(0, 3), Some(IDX0));
        assert_eq!(index(2, 3), Some(LAST));
        assert_eq!(index(1, 3), None);
        assert_eq!(index(3, 3), Some(ONE_PAST));
        assert_eq!(index(9, 3), Some(FAR));
        assert_eq!(index(0, 0), Some(ONE_PAST));
        assert_eq!(range(3, 0, 3), LEN0);
        assert_eq!(range(4, 0, 3), ONE_PAST);
        assert_eq!(range(5, 0, 3), FAR);
        assert_eq!(range(1, 2, 3), TO_END);
        assert_eq!(range(2, 2, 3), ONE_PAST);
        assert_eq!(range(0, u32::MAX, 3), FAR);
        assert_eq!(range(0, 1, 3), "");
        assert_eq!(worst(TO_END, FAR), FAR);
        assert_eq!(worst(LEN0, ""), "");
    }
}
