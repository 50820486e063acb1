//! Value, heap-shape and exported-state differences between two outcomes:
//! what [`super::compare`] turns into mismatches. A difference is described
//! by a location (`call[2] f.result[0].field[1]`) and a shape with values,
//! names and indices left out, which signatures are built from.

use crate::outcome::{Ref, State, Value};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where and how two configurations disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MismatchKind {
    /// Instantiation (compile, link, start function) ended differently.
    Instantiate,
    /// A call trapped on one side and not the other, or with another class.
    Trap,
    /// A call returned different scalar values.
    Result,
    /// A difference inside a GC object: type, field, length or aliasing.
    HeapShape,
    Global,
    /// A reference the host held from an earlier call reads differently
    /// after the last call.
    Held,
    Memory,
    Table,
}

impl fmt::Display for MismatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        f.write_str(&s)
    }
}

/// A value whose producer the reference interpreter traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    Result { call: usize, index: usize },
    Global(String),
}

/// One difference, before it is a [`super::compare::Mismatch`].
pub(super) struct Diff {
    pub(super) kind: MismatchKind,
    pub(super) at: String,
    pub(super) expected: String,
    pub(super) actual: String,
    pub(super) shape: String,
    pub(super) in_heap: bool,
}

pub(super) fn diff_value(a: &Value, b: &Value, at: String) -> Option<Diff> {
    match (a, b) {
        (Value::Ref(x), Value::Ref(y)) => diff_ref(x, y, at, false),
        _ if a == b => None,
        _ => Some(Diff {
            kind: MismatchKind::Result,
            shape: format!("{} value", value_type(a)),
            expected: a.to_string(),
            actual: b.to_string(),
            at,
            in_heap: false,
        }),
    }
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::I32(_) => "i32",
        Value::I64(_) => "i64",
        Value::F32(_) => "f32",
        Value::F64(_) => "f64",
        Value::V128(_) => "v128",
        Value::Ref(_) => "ref",
    }
}

fn ref_kind(r: &Ref) -> &'static str {
    match r {
        Ref::Null => "null",
        Ref::I31(_) => "i31",
        Ref::Struct { .. } => "struct",
        Ref::Array { .. } => "array",
        Ref::Exn { .. } => "exn",
        Ref::Seen(_) => "alias",
        Ref::Func(_) => "func",
        Ref::Extern(_) => "extern",
        Ref::Internalized(_) => "internalized",
        Ref::Truncated => "truncated",
    }
}

/// `nested` is true below the first object: differences there are heap shape.
pub(super) fn diff_ref(a: &Ref, b: &Ref, at: String, nested: bool) -> Option<Diff> {
    if a == b {
        return None;
    }
    let differ = |shape: String, at: String| {
        Some(Diff {
            kind: MismatchKind::HeapShape,
            expected: a.to_string(),
            actual: b.to_string(),
            shape,
            at,
            in_heap: nested || shape_is_heap(a, b),
        })
    };
    let fields = |xs: &[Value], ys: &[Value], name: &str, at: &str| -> Option<Diff> {
        xs.iter().zip(ys).enumerate().find_map(|(i, (x, y))| {
            let at = format!("{at}.{name}[{i}]");
            match (x, y) {
                (Value::Ref(x), Value::Ref(y)) => diff_ref(x, y, at, true),
                _ => diff_value(x, y, at).map(|mut d| {
                    d.in_heap = true;
                    d.shape = format!("{name} {}", d.shape);
                    d
                }),
            }
        })
    };
    match (a, b) {
        (Ref::Struct { id: i, ty: t, fields: f }, Ref::Struct { id: j, ty: u, fields: g }) => {
            if t != u {
                differ("struct type".into(), at)
            } else if i != j {
                differ("object numbering".into(), at)
            } else {
                fields(f, g, "field", &at).or_else(|| differ("struct".into(), at))
            }
        }
        (Ref::Array { id: i, ty: t, len: l, elems: e }, Ref::Array { id: j, ty: u, len: m, elems: f }) => {
            if t != u {
                differ("array type".into(), at)
            } else if l != m {
                differ("array length".into(), at)
            } else if i != j {
                differ("object numbering".into(), at)
            } else {
                fields(e, f, "elem", &at).or_else(|| differ("array".into(), at))
            }
        }
        (Ref::Exn { tag: t, fields: f, .. }, Ref::Exn { tag: u, fields: g, .. }) => {
            if t != u {
                differ("exception tag".into(), at)
            } else {
                fields(f, g, "field", &at).or_else(|| differ("exn".into(), at))
            }
        }
        (Ref::Internalized(x), Ref::Internalized(y)) => diff_ref(x, y, format!("{at}.internal"), nested),
        (Ref::I31(_), Ref::I31(_)) => differ("i31 value".into(), at),
        (Ref::Extern(_), Ref::Extern(_)) => differ("extern payload".into(), at),
        (Ref::Func(_), Ref::Func(_)) => differ("func signature".into(), at),
        (Ref::Seen(_), Ref::Seen(_)) => differ("aliasing".into(), at),
        (Ref::Seen(_), _) | (_, Ref::Seen(_)) => differ("aliasing".into(), at),
        _ => differ(format!("{} vs {}", ref_kind(a), ref_kind(b)), at),
    }
}

/// A top-level difference is heap shape when a GC object is involved.
fn shape_is_heap(a: &Ref, b: &Ref) -> bool {
    let heap = |r: &Ref| matches!(r, Ref::Struct { .. } | Ref::Array { .. } | Ref::Exn { .. } | Ref::Seen(_));
    heap(a) || heap(b)
}

/// The first difference in exported state, and for a global the site whose
/// producer names it.
pub(super) fn diff_state(r: &State, o: &State) -> Option<(Diff, Option<Site>)> {
    fn names<T>(v: &[(String, T)]) -> Vec<String> {
        v.iter().map(|(n, _)| n.clone()).collect()
    }
    /// Different sets of names: exports, or held results.
    fn name_set(kind: MismatchKind, at: &str, shape: &str, a: Vec<String>, b: Vec<String>) -> Option<Diff> {
        (a != b).then(|| Diff {
            kind,
            at: at.into(),
            expected: a.join(","),
            actual: b.join(","),
            shape: shape.into(),
            in_heap: false,
        })
    }
    let export_set = |kind, a, b| name_set(kind, "exports", "export set", a, b);
    if let Some(d) = export_set(MismatchKind::Global, names(&r.globals), names(&o.globals))
        .or_else(|| export_set(MismatchKind::Memory, names(&r.memories), names(&o.memories)))
        .or_else(|| export_set(MismatchKind::Table, names(&r.tables), names(&o.tables)))
    {
        return Some((d, None));
    }
    for ((name, a), (_, b)) in r.globals.iter().zip(&o.globals) {
        if let Some(mut d) = diff_value(a, b, format!("global {name}")) {
            d.kind = if d.in_heap { MismatchKind::HeapShape } else { MismatchKind::Global };
            d.shape = format!("global {}", d.shape);
            return Some((d, Some(Site::Global(name.clone()))));
        }
    }
    if let Some(d) = name_set(MismatchKind::Held, "held results", "held result set", names(&r.held), names(&o.held)) {
        return Some((d, None));
    }
    for ((name, a), (_, b)) in r.held.iter().zip(&o.held) {
        if let Some(mut d) = diff_value(a, b, format!("held {name}")) {
            d.kind = MismatchKind::Held;
            d.shape = format!("held {}", d.shape);
            return Some((d, None));
        }
    }
    for ((name, a), (_, b)) in r.memories.iter().zip(&o.memories) {
        if a != b {
            let shape = if a.size != b.size { "memory size" } else { "memory contents" };
            return Some((
                Diff {
                    kind: MismatchKind::Memory,
                    at: format!("memory {name}"),
                    expected: format!("{} bytes, hash {:016x}", a.size, a.hash),
                    actual: format!("{} bytes, hash {:016x}", b.size, b.hash),
                    shape: shape.into(),
                    in_heap: false,
                },
                None,
            ));
        }
    }
    for ((name, a), (_, b)) in r.tables.iter().zip(&o.tables) {
        if a.size != b.size {
            return Some((
                Diff {
                    kind: MismatchKind::Table,
                    at: format!("table {name}"),
                    expected: a.size.to_string(),
                    actual: b.size.to_string(),
                    shape: "table size".into(),
                    in_heap: false,
                },
                None,
            ));
        }
        for (i, (x, y)) in a.elems.iter().zip(&b.elems).enumerate() {
            if let Some(mut d) = diff_ref(x, y, format!("table {name}[{i}]"), false) {
                d.kind = if d.in_heap { MismatchKind::HeapShape } else { MismatchKind::Table };
                d.shape = format!("table {}", d.shape);
                return Some((d, None));
            }
        }
    }
    None
}
