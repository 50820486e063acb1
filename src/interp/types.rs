//! Types as the specification defines them: iso-recursive rec groups,
//! canonicalized structurally across every module of a store, and declared
//! subtyping. Deliberately independent of wasmparser's own type interning,
//! so a canonicalization bug there cannot hide one in an engine.

use std::collections::HashMap;
use wasmparser::{AbstractHeapType, CompositeInnerType, RecGroup, StorageType, SubType, UnpackedIndex};

/// A canonical defined type: equal ids mean equal types, in any module.
pub type TypeId = u32;

/// A type index as written in a type definition: inside the rec group being
/// defined it is relative to the group, outside it names a canonical type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Idx {
    Local(u32),
    Canon(TypeId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Heap<I> {
    Abstract(AbstractHeapType),
    Concrete(I),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValTy<I> {
    I32,
    I64,
    F32,
    F64,
    V128,
    Ref { nullable: bool, heap: Heap<I> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Storage<I> {
    I8,
    I16,
    Val(ValTy<I>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Field<I> {
    pub storage: Storage<I>,
    pub mutable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Composite<I> {
    Func { params: Vec<ValTy<I>>, results: Vec<ValTy<I>> },
    Struct(Vec<Field<I>>),
    Array(Field<I>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DefType<I> {
    pub is_final: bool,
    pub supertype: Option<I>,
    pub composite: Composite<I>,
}

/// Resolved forms used at run time.
pub type VT = ValTy<TypeId>;
pub type Def = DefType<TypeId>;

impl<I: Copy> ValTy<I> {
    fn map<J>(self, f: &mut impl FnMut(I) -> J) -> ValTy<J> {
        match self {
            ValTy::I32 => ValTy::I32,
            ValTy::I64 => ValTy::I64,
            ValTy::F32 => ValTy::F32,
            ValTy::F64 => ValTy::F64,
            ValTy::V128 => ValTy::V128,
            ValTy::Ref { nullable, heap } => ValTy::Ref {
                nullable,
                heap: match heap {
                    Heap::Abstract(a) => Heap::Abstract(a),
                    Heap::Concrete(i) => Heap::Concrete(f(i)),
                },
            },
        }
    }
}

impl<I: Copy> DefType<I> {
    fn map<J>(&self, f: &mut impl FnMut(I) -> J) -> DefType<J> {
        let field = |fl: &Field<I>, f: &mut dyn FnMut(I) -> J| Field {
            mutable: fl.mutable,
            storage: match fl.storage {
                Storage::I8 => Storage::I8,
                Storage::I16 => Storage::I16,
                Storage::Val(v) => Storage::Val(v.map(&mut |i| f(i))),
            },
        };
        DefType {
            is_final: self.is_final,
            supertype: self.supertype.map(&mut *f),
            composite: match &self.composite {
                Composite::Func { params, results } => Composite::Func {
                    params: params.iter().map(|v| v.map(f)).collect(),
                    results: results.iter().map(|v| v.map(f)).collect(),
                },
                Composite::Struct(fields) => Composite::Struct(fields.iter().map(|fl| field(fl, f)).collect()),
                Composite::Array(fl) => Composite::Array(field(fl, f)),
            },
        }
    }
}

/// Converts a wasmparser value type whose indices are module type indices.
pub fn val_type(v: wasmparser::ValType, module_types: &[TypeId]) -> Result<VT, String> {
    let idx = |u: UnpackedIndex| match u {
        UnpackedIndex::Module(i) => module_types.get(i as usize).copied().ok_or_else(|| format!("type {i} unknown")),
        other => Err(format!("unexpected type index {other:?}")),
    };
    conv_val(v, &mut |u| idx(u))
}

fn conv_val<I>(
    v: wasmparser::ValType,
    idx: &mut impl FnMut(UnpackedIndex) -> Result<I, String>,
) -> Result<ValTy<I>, String> {
    Ok(match v {
        wasmparser::ValType::I32 => ValTy::I32,
        wasmparser::ValType::I64 => ValTy::I64,
        wasmparser::ValType::F32 => ValTy::F32,
        wasmparser::ValType::F64 => ValTy::F64,
        wasmparser::ValType::V128 => ValTy::V128,
        wasmparser::ValType::Ref(r) => ValTy::Ref { nullable: r.is_nullable(), heap: conv_heap(r.heap_type(), idx)? },
    })
}

pub fn conv_heap<I>(
    h: wasmparser::HeapType,
    idx: &mut impl FnMut(UnpackedIndex) -> Result<I, String>,
) -> Result<Heap<I>, String> {
    match h {
        wasmparser::HeapType::Abstract { shared: false, ty } => Ok(Heap::Abstract(ty)),
        wasmparser::HeapType::Concrete(i) => Ok(Heap::Concrete(idx(i)?)),
        other => Err(format!("unsupported heap type {other:?}")),
    }
}

/// Converts a heap type of an instruction immediate.
pub fn heap_type(h: wasmparser::HeapType, module_types: &[TypeId]) -> Result<Heap<TypeId>, String> {
    conv_heap(h, &mut |u| match u {
        UnpackedIndex::Module(i) => module_types.get(i as usize).copied().ok_or_else(|| format!("type {i} unknown")),
        other => Err(format!("unexpected type index {other:?}")),
    })
}

/// Every defined type of a store, canonicalized.
#[derive(Default)]
pub struct Registry {
    groups: HashMap<Vec<DefType<Idx>>, TypeId>,
    types: Vec<Def>,
    /// A planted bug for the tests (`engine::interp`): a rec group whose
    /// members but a trailing empty struct form a group already defined
    /// takes that group's types for them, as an engine that keyed a group by
    /// too little would.
    pub planted_prefix_canonicalization: bool,
}

impl Registry {
    pub fn get(&self, id: TypeId) -> &Def {
        &self.types[id as usize]
    }

    /// Canonicalizes a rec group whose members get module type indices
    /// `first..`, given the canonical ids of the module's earlier types.
    /// Returns the canonical ids of its members.
    pub fn define(&mut self, group: &RecGroup, first: u32, earlier: &[TypeId]) -> Result<Vec<TypeId>, String> {
        let len = group.types().len() as u32;
        let mut idx = |u: UnpackedIndex| -> Result<Idx, String> {
            match u {
                UnpackedIndex::Module(i) if i >= first && i < first + len => Ok(Idx::Local(i - first)),
                UnpackedIndex::Module(i) => {
                    earlier.get(i as usize).map(|&t| Idx::Canon(t)).ok_or_else(|| format!("type {i} unknown"))
                }
                UnpackedIndex::RecGroup(i) => Ok(Idx::Local(i)),
                other => Err(format!("unexpected type index {other:?}")),
            }
        };
        let key: Vec<DefType<Idx>> = group.types().map(|s| convert_sub(s, &mut idx)).collect::<Result<_, _>>()?;
        Ok(self.define_key(key))
    }

    /// Canonicalizes a rec group given with group-relative indices.
    pub fn define_key(&mut self, key: Vec<DefType<Idx>>) -> Vec<TypeId> {
        let len = key.len() as u32;
        if let Some(&base) = self.groups.get(&key) {
            return (base..base + len).collect();
        }
        if self.planted_prefix_canonicalization
            && let Some((last, prefix)) = key.split_last()
            && !prefix.is_empty()
            && matches!(&last.composite, Composite::Struct(fields) if fields.is_empty())
            && last.supertype.is_none()
            && let Some(&base) = self.groups.get(prefix)
        {
            let mut ids: Vec<TypeId> = (base..base + len - 1).collect();
            ids.extend(self.define_key(vec![last.clone()]));
            return ids;
        }
        let base = self.types.len() as TypeId;
        for def in &key {
            let resolved = def.map(&mut |i| match i {
                Idx::Local(k) => base + k,
                Idx::Canon(t) => t,
            });
            self.types.push(resolved);
        }
        self.groups.insert(key, base);
        (base..base + len).collect()
    }

    /// Declared subtyping: `a` is `b` or one of `b`'s declared subtypes.
    pub fn is_sub(&self, a: TypeId, b: TypeId) -> bool {
        let mut t = Some(a);
        while let Some(id) = t {
            if id == b {
                return true;
            }
            t = self.types[id as usize].supertype;
        }
        false
    }

    fn top_of_concrete(&self, t: TypeId) -> AbstractHeapType {
        match self.get(t).composite {
            Composite::Func { .. } => AbstractHeapType::Func,
            Composite::Struct(_) => AbstractHeapType::Struct,
            Composite::Array(_) => AbstractHeapType::Array,
        }
    }

    /// Heap subtyping over abstract and concrete heap types.
    pub fn heap_sub(&self, a: Heap<TypeId>, b: Heap<TypeId>) -> bool {
        use AbstractHeapType as H;
        match (a, b) {
            (Heap::Concrete(x), Heap::Concrete(y)) => self.is_sub(x, y),
            (Heap::Concrete(x), Heap::Abstract(h)) => abstract_sub(self.top_of_concrete(x), h),
            (Heap::Abstract(h), Heap::Concrete(y)) => {
                // Only the bottom types are below a concrete type.
                matches!((h, self.top_of_concrete(y)), (H::None, H::Struct | H::Array) | (H::NoFunc, H::Func))
            }
            (Heap::Abstract(x), Heap::Abstract(y)) => abstract_sub(x, y),
        }
    }

    pub fn val_sub(&self, a: VT, b: VT) -> bool {
        match (a, b) {
            (ValTy::Ref { nullable: n1, heap: h1 }, ValTy::Ref { nullable: n2, heap: h2 }) => {
                (!n1 || n2) && self.heap_sub(h1, h2)
            }
            _ => a == b,
        }
    }

    pub fn func_type(&self, t: TypeId) -> (&[VT], &[VT]) {
        match &self.get(t).composite {
            Composite::Func { params, results } => (params, results),
            _ => (&[], &[]),
        }
    }

    pub fn struct_fields(&self, t: TypeId) -> &[Field<TypeId>] {
        match &self.get(t).composite {
            Composite::Struct(fields) => fields,
            _ => &[],
        }
    }

    pub fn array_field(&self, t: TypeId) -> Field<TypeId> {
        match &self.get(t).composite {
            Composite::Array(f) => *f,
            _ => Field { storage: Storage::I8, mutable: false },
        }
    }
}

/// Subtyping between abstract heap types: any ⊇ eq ⊇ {i31, struct, array} ⊇
/// none; func ⊇ nofunc; extern ⊇ noextern; exn ⊇ noexn.
pub fn abstract_sub(a: AbstractHeapType, b: AbstractHeapType) -> bool {
    use AbstractHeapType as H;
    a == b
        || match a {
            H::Eq => b == H::Any,
            H::I31 | H::Struct | H::Array => matches!(b, H::Eq | H::Any),
            H::None => matches!(b, H::Any | H::Eq | H::I31 | H::Struct | H::Array),
            H::NoFunc => b == H::Func,
            H::NoExtern => b == H::Extern,
            H::NoExn => b == H::Exn,
            _ => false,
        }
}

fn convert_sub(
    s: &SubType,
    idx: &mut impl FnMut(UnpackedIndex) -> Result<Idx, String>,
) -> Result<DefType<Idx>, String> {
    if s.composite_type.shared || s.composite_type.descriptor_idx.is_some() || s.composite_type.describes_idx.is_some()
    {
        return Err("shared types and descriptors are out of scope".into());
    }
    let supertype = match s.supertype_idxs.first() {
        Some(p) => Some(idx(p.unpack())?),
        None => None,
    };
    fn field(
        f: &wasmparser::FieldType,
        idx: &mut impl FnMut(UnpackedIndex) -> Result<Idx, String>,
    ) -> Result<Field<Idx>, String> {
        Ok(Field {
            mutable: f.mutable,
            storage: match f.element_type {
                StorageType::I8 => Storage::I8,
                StorageType::I16 => Storage::I16,
                StorageType::Val(v) => Storage::Val(conv_val(v, idx)?),
            },
        })
    }
    let composite = match &s.composite_type.inner {
        CompositeInnerType::Func(f) => Composite::Func {
            params: f.params().iter().map(|&v| conv_val(v, idx)).collect::<Result<_, _>>()?,
            results: f.results().iter().map(|&v| conv_val(v, idx)).collect::<Result<_, _>>()?,
        },
        CompositeInnerType::Struct(st) => {
            Composite::Struct(st.fields.iter().map(|f| field(f, idx)).collect::<Result<_, _>>()?)
        }
        CompositeInnerType::Array(a) => Composite::Array(field(&a.0, idx)?),
        CompositeInnerType::Cont(_) => return Err("continuation types are out of scope".into()),
    };
    Ok(DefType { is_final: s.is_final, supertype, composite })
}

/// Bytes per element when an array of this storage is read from data.
pub fn storage_size(s: Storage<TypeId>) -> usize {
    match s {
        Storage::I8 => 1,
        Storage::I16 => 2,
        Storage::Val(ValTy::I32 | ValTy::F32) => 4,
        Storage::Val(ValTy::I64 | ValTy::F64) => 8,
        Storage::Val(_) => 16,
    }
}
