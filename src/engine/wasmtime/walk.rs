//! Walking Wasmtime values by shape (`outcome::Ref`): GC objects with their
//! types, fields and elements, numbered in first-seen order so that aliasing
//! compares across engines, as the other engines' walkers do.

use crate::outcome::vocab::{self, ARRAY_ELEMS, HeapName, Numbering, StorageName, TypeName, signature};
use crate::outcome::{Ref as Shape, Value};
#[cfg(wasmtime_exceptions)]
use wasmtime::ExnRef;
use wasmtime::{AnyRef, ExternRef, Func, HeapType, RefType, Rooted, StorageType, Val, ValType};

/// Walks GC references into shapes, numbering objects in first-seen order.
pub struct Walker {
    seen: Vec<Rooted<AnyRef>>,
    #[cfg(wasmtime_exceptions)]
    seen_exn: Vec<Rooted<ExnRef>>,
    ids: Vec<u32>,
    #[cfg(wasmtime_exceptions)]
    exn_ids: Vec<u32>,
    numbering: Numbering,
}

impl Walker {
    pub fn new() -> Walker {
        Walker {
            seen: Vec::new(),
            #[cfg(wasmtime_exceptions)]
            seen_exn: Vec::new(),
            ids: Vec::new(),
            #[cfg(wasmtime_exceptions)]
            exn_ids: Vec::new(),
            numbering: Numbering::default(),
        }
    }

    pub fn val(&mut self, store: &mut impl wasmtime::AsContextMut, v: Val, depth: usize) -> wasmtime::Result<Value> {
        Ok(match v {
            Val::I32(v) => Value::I32(v),
            Val::I64(v) => Value::I64(v),
            Val::F32(b) => Value::f32(b),
            Val::F64(b) => Value::f64(b),
            Val::V128(v) => Value::V128(v.as_u128()),
            Val::FuncRef(f) => Value::Ref(match f {
                None => Shape::Null,
                Some(f) => Shape::Func(func_sig(store, &f)),
            }),
            Val::ExternRef(None) | Val::AnyRef(None) => Value::Ref(Shape::Null),
            Val::ExternRef(Some(e)) => Value::Ref(self.external(store, e, depth)?),
            Val::AnyRef(Some(a)) => Value::Ref(self.any(store, a, depth)?),
            #[cfg(wasmtime_exceptions)]
            Val::ExnRef(None) => Value::Ref(Shape::Null),
            #[cfg(wasmtime_exceptions)]
            Val::ExnRef(Some(e)) => Value::Ref(self.exn(store, e, depth)?),
            // Reachable on lines with more value kinds than the walk knows.
            #[allow(unreachable_patterns)]
            other => Value::Ref(Shape::Func(format!("<unsupported value {other:?}>"))),
        })
    }

    fn external(
        &mut self,
        store: &mut impl wasmtime::AsContextMut,
        e: Rooted<ExternRef>,
        depth: usize,
    ) -> wasmtime::Result<Shape> {
        let host_id = e.data(&*store)?.and_then(|d| d.downcast_ref::<u32>()).copied();
        Ok(match host_id {
            Some(id) => Shape::Extern(id),
            None => {
                let any = AnyRef::convert_extern(&mut *store, e)?;
                Shape::Internalized(Box::new(self.any(store, any, depth)?))
            }
        })
    }

    fn any(
        &mut self,
        store: &mut impl wasmtime::AsContextMut,
        a: Rooted<AnyRef>,
        depth: usize,
    ) -> wasmtime::Result<Shape> {
        if let Some(i) = a.as_i31(&*store)? {
            return Ok(Shape::I31(i.get_i32()));
        }
        if !a.is_struct(&*store)? && !a.is_array(&*store)? {
            // A host reference seen through `any.convert_extern`: shown by
            // its payload like an externref, without a number.
            let e = ExternRef::convert_any(&mut *store, a)?;
            if let Some(host_id) = e.data(&*store)?.and_then(|d| d.downcast_ref::<u32>()).copied() {
                return Ok(Shape::Extern(host_id));
            }
        }
        for (seen, id) in self.seen.iter().zip(&self.ids) {
            if Rooted::ref_eq(&*store, seen, &a)? {
                return Ok(Shape::Seen(*id));
            }
        }
        let id = match self.numbering.admit(depth) {
            Ok(id) => id,
            Err(shape) => return Ok(shape),
        };
        self.seen.push(a);
        self.ids.push(id);
        if let Some(s) = a.as_struct(&*store)? {
            let ty = s.ty(&*store)?;
            let desc = vocab::struct_type(ty.fields().map(|f| field_desc(f.mutability(), f.element_type())));
            let mut fields = Vec::new();
            for i in 0..ty.fields().len() {
                let v = s.field(&mut *store, i)?;
                fields.push(self.val(store, v, depth + 1)?);
            }
            return Ok(Shape::Struct { id, ty: desc, fields });
        }
        if let Some(arr) = a.as_array(&*store)? {
            let ty = arr.ty(&*store)?;
            let f = ty.field_type();
            let desc = vocab::array_type(field_desc(f.mutability(), f.element_type()));
            let len = arr.len(&*store)?;
            let mut elems = Vec::new();
            for i in 0..len.min(ARRAY_ELEMS) {
                let v = arr.get(&mut *store, i)?;
                elems.push(self.val(store, v, depth + 1)?);
            }
            return Ok(Shape::Array { id, ty: desc, len, elems });
        }
        Ok(Shape::Func(format!("<anyref of type {:?}>", a.ty(&*store)?)))
    }

    #[cfg(wasmtime_exceptions)]
    pub fn exn(
        &mut self,
        store: &mut impl wasmtime::AsContextMut,
        e: Rooted<ExnRef>,
        depth: usize,
    ) -> wasmtime::Result<Shape> {
        for (seen, id) in self.seen_exn.iter().zip(&self.exn_ids) {
            if Rooted::ref_eq(&*store, seen, &e)? {
                return Ok(Shape::Seen(*id));
            }
        }
        let id = match self.numbering.admit(depth) {
            Ok(id) => id,
            Err(shape) => return Ok(shape),
        };
        self.seen_exn.push(e);
        self.exn_ids.push(id);
        let tag = e.tag(&mut *store)?;
        let tag_ty = tag.ty(&*store);
        let sig = signature(tag_ty.ty().params().map(|p| val_desc(&p)), []);
        let mut fields = Vec::new();
        for i in 0..tag_ty.ty().params().len() {
            let v = e.field(&mut *store, i)?;
            fields.push(self.val(store, v, depth + 1)?);
        }
        Ok(Shape::Exn { id, tag: sig, fields })
    }
}

fn func_sig(store: &impl wasmtime::AsContext, f: &Func) -> String {
    let ty = f.ty(store);
    signature(ty.params().map(|p| val_desc(&p)), ty.results().map(|r| val_desc(&r)))
}

fn field_desc(m: wasmtime::Mutability, s: &StorageType) -> String {
    let storage = match s {
        StorageType::I8 => StorageName::I8,
        StorageType::I16 => StorageName::I16,
        StorageType::ValType(v) => StorageName::Val(val_desc(v)),
    };
    vocab::field(m == wasmtime::Mutability::Var, storage)
}

fn val_desc(v: &ValType) -> TypeName {
    match v {
        ValType::I32 => TypeName::I32,
        ValType::I64 => TypeName::I64,
        ValType::F32 => TypeName::F32,
        ValType::F64 => TypeName::F64,
        ValType::V128 => TypeName::V128,
        ValType::Ref(r) => ref_desc(r),
    }
}

fn ref_desc(r: &RefType) -> TypeName {
    let heap = match r.heap_type() {
        HeapType::Extern => HeapName::Extern,
        HeapType::NoExtern => HeapName::NoExtern,
        HeapType::Func => HeapName::Func,
        HeapType::ConcreteFunc(_) => HeapName::ConcreteFunc,
        HeapType::NoFunc => HeapName::NoFunc,
        HeapType::Any => HeapName::Any,
        HeapType::Eq => HeapName::Eq,
        HeapType::I31 => HeapName::I31,
        HeapType::Array => HeapName::Array,
        HeapType::ConcreteArray(_) => HeapName::ConcreteArray,
        HeapType::Struct => HeapName::Struct,
        HeapType::ConcreteStruct(_) => HeapName::ConcreteStruct,
        HeapType::None => HeapName::None,
        #[cfg(wasmtime_exn_heap_types)]
        HeapType::Exn => HeapName::Exn,
        #[cfg(wasmtime_exn_heap_types)]
        HeapType::ConcreteExn(_) => HeapName::ConcreteExn,
        #[cfg(wasmtime_exn_heap_types)]
        HeapType::NoExn => HeapName::NoExn,
        #[allow(unreachable_patterns)]
        _ => HeapName::Cont,
    };
    TypeName::Ref { nullable: r.is_nullable(), heap }
}
