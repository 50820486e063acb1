//! The output vocabulary every engine adapter renders heaps in: the walk's
//! bounds, the engine-neutral type names, and the canonical numbering of
//! objects. Adapters map their own types onto [`TypeName`] and walk their own
//! heaps; what the walk records and how it is spelled is decided here, once,
//! so outcomes of different engines compare (the shared adapter test in
//! `tests/adapters.rs` holds every engine to it).

use super::Ref;
use std::fmt;

/// Objects numbered per value or state snapshot.
pub const MAX_OBJECTS: u32 = 256;
/// Nesting depth of the walk below a root.
pub const MAX_DEPTH: usize = 8;
/// Elements recorded per array (its length is always recorded).
pub const ARRAY_ELEMS: u32 = 32;
/// Elements recorded per exported table.
pub const TABLE_ELEMS: usize = 64;

/// A heap type by name: abstract ones as the text format spells them,
/// concrete ones by kind only (type indices differ between engines and
/// registrations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapName {
    Extern,
    NoExtern,
    Func,
    ConcreteFunc,
    NoFunc,
    Any,
    Eq,
    I31,
    Array,
    ConcreteArray,
    Struct,
    ConcreteStruct,
    None,
    Exn,
    ConcreteExn,
    NoExn,
    Cont,
}

impl HeapName {
    fn text(self) -> &'static str {
        match self {
            HeapName::Extern => "extern",
            HeapName::NoExtern => "noextern",
            HeapName::Func => "func",
            HeapName::ConcreteFunc => "$func",
            HeapName::NoFunc => "nofunc",
            HeapName::Any => "any",
            HeapName::Eq => "eq",
            HeapName::I31 => "i31",
            HeapName::Array => "array",
            HeapName::ConcreteArray => "$array",
            HeapName::Struct => "struct",
            HeapName::ConcreteStruct => "$struct",
            HeapName::None => "none",
            HeapName::Exn => "exn",
            HeapName::ConcreteExn => "$exn",
            HeapName::NoExn => "noexn",
            HeapName::Cont => "cont",
        }
    }
}

/// A value type by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeName {
    I32,
    I64,
    F32,
    F64,
    V128,
    Ref { nullable: bool, heap: HeapName },
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeName::I32 => f.write_str("i32"),
            TypeName::I64 => f.write_str("i64"),
            TypeName::F32 => f.write_str("f32"),
            TypeName::F64 => f.write_str("f64"),
            TypeName::V128 => f.write_str("v128"),
            TypeName::Ref { nullable: true, heap } => write!(f, "ref null {}", heap.text()),
            TypeName::Ref { nullable: false, heap } => write!(f, "ref {}", heap.text()),
        }
    }
}

/// A struct field's or array element's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageName {
    I8,
    I16,
    Val(TypeName),
}

/// `mut i8`, `ref null any`, …
pub fn field(mutable: bool, storage: StorageName) -> String {
    let ty = match storage {
        StorageName::I8 => "i8".to_string(),
        StorageName::I16 => "i16".to_string(),
        StorageName::Val(v) => v.to_string(),
    };
    if mutable { format!("mut {ty}") } else { ty }
}

/// A struct type: `struct(<field> ...)`.
pub fn struct_type(fields: impl IntoIterator<Item = String>) -> String {
    format!("struct({})", fields.into_iter().collect::<Vec<_>>().join(" "))
}

/// An array type: `array(<field>)`.
pub fn array_type(field: String) -> String {
    format!("array({field})")
}

/// Renders a function type as `(params)->(results)`: the identity funcrefs
/// and exception tags are compared by.
pub fn signature(params: impl IntoIterator<Item = TypeName>, results: impl IntoIterator<Item = TypeName>) -> String {
    let join = |items: Vec<String>| items.join(" ");
    format!(
        "({})->({})",
        join(params.into_iter().map(|p| p.to_string()).collect()),
        join(results.into_iter().map(|r| r.to_string()).collect())
    )
}

/// Canonical numbering of the objects one walk meets: numbers in first-seen
/// order from one counter (structs, arrays and exceptions alike), within
/// [`MAX_DEPTH`] and [`MAX_OBJECTS`]. The adapter asks its own heap whether
/// an object was seen (identity is engine-specific) and then calls [`admit`].
///
/// [`admit`]: Numbering::admit
#[derive(Default)]
pub struct Numbering {
    next: u32,
}

impl Numbering {
    /// A new object met at `depth`: its number, or the shape to record
    /// instead when the walk is out of depth or budget.
    pub fn admit(&mut self, depth: usize) -> Result<u32, Ref> {
        if depth >= MAX_DEPTH || self.next >= MAX_OBJECTS {
            return Err(Ref::Truncated);
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bounds() {
        let any = TypeName::Ref { nullable: true, heap: HeapName::Any };
        assert_eq!(field(true, StorageName::Val(any)), "mut ref null any");
        assert_eq!(struct_type([field(false, StorageName::I8), "i32".into()]), "struct(i8 i32)");
        assert_eq!(
            signature([TypeName::I32], [TypeName::Ref { nullable: false, heap: HeapName::ConcreteStruct }]),
            "(i32)->(ref $struct)"
        );
        let mut n = Numbering::default();
        assert_eq!(n.admit(0), Ok(0));
        assert_eq!(n.admit(MAX_DEPTH), Err(Ref::Truncated));
        for _ in 1..MAX_OBJECTS {
            n.admit(1).unwrap();
        }
        assert_eq!(n.admit(1), Err(Ref::Truncated));
    }
}
