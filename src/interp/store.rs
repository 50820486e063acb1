//! The store: every instance, function, table, memory, global, tag and heap
//! object, and instantiation as the specification orders it.

use super::module::{ElemMode, Expr, GlobalTy, ImportKind, MemTy, Module, TableTy, decode};
use super::origin::Origin;
use super::types::{Composite, DefType, Field, Heap, Idx, Registry, Storage, TypeId, VT, ValTy};
use super::{AnyRef, Ref, Stop, Val, trap};
use crate::outcome::{Exhausted, TrapClass};
use std::rc::Rc;
use wasmparser::{ExternalKind, Operator, WasmFeatures};

pub const PAGE: u64 = 65536;

/// Deterministic limits. Running into one is [`Stop::Exhausted`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Instructions per invocation.
    pub fuel: u64,
    /// Nested Wasm frames.
    pub max_frames: usize,
    /// Bytes per linear memory.
    pub memory_bytes: u64,
    /// Elements per table.
    pub table_elems: u64,
    /// Fields, elements and exception values of all GC objects together.
    pub heap_slots: u64,
}

/// Host functions the interpreter can stand in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Does nothing, returns nothing (`host.gc`, `spectest.print*`).
    Nop,
    /// Returns its argument (`host.gc_any`, `host.gc_extern`).
    Identity,
    /// `host.extern_new`: a host reference carrying the `i32`.
    ExternNew,
    /// `host.extern_id`: the payload of a host reference, -1 for null, -2
    /// for a wrapped internal reference.
    ExternId,
}

pub enum FuncInst {
    Wasm { inst: u32, code: u32, ty: TypeId },
    Host { ty: TypeId, host: Host },
}

impl FuncInst {
    pub fn ty(&self) -> TypeId {
        match self {
            FuncInst::Wasm { ty, .. } | FuncInst::Host { ty, .. } => *ty,
        }
    }
}

/// An external value: what imports and exports are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extern {
    Func(u32),
    Table(u32),
    Memory(u32),
    Global(u32),
    Tag(u32),
}

pub struct TableInst {
    pub ty: TableTy,
    pub elems: Vec<Ref>,
}

pub struct MemInst {
    pub ty: MemTy,
    pub data: Vec<u8>,
}

pub struct GlobalInst {
    pub ty: GlobalTy,
    pub val: Val,
    /// The instruction that stored `val` (`Origin::NONE` for the initializer).
    pub origin: Origin,
}

/// A struct or array: its type and its fields or elements (packed ones as
/// `i32`, already truncated).
pub struct Obj {
    pub ty: TypeId,
    pub vals: Vec<Val>,
}

pub struct ExnObj {
    /// The tag's store index.
    pub tag: u32,
    pub vals: Vec<Val>,
}

pub struct Inst<'a> {
    pub module: Rc<Module<'a>>,
    pub funcs: Vec<u32>,
    pub tables: Vec<u32>,
    pub mems: Vec<u32>,
    pub globals: Vec<u32>,
    pub tags: Vec<u32>,
    /// Element segments; a dropped one is empty.
    pub elems: Vec<Vec<Ref>>,
    /// Data segments; a dropped one is empty.
    pub datas: Vec<&'a [u8]>,
    pub exports: Vec<(&'a str, Extern)>,
}

pub struct Store<'a> {
    pub types: Registry,
    pub features: WasmFeatures,
    pub limits: Limits,
    pub insts: Vec<Inst<'a>>,
    pub funcs: Vec<FuncInst>,
    pub tables: Vec<TableInst>,
    pub mems: Vec<MemInst>,
    pub globals: Vec<GlobalInst>,
    /// Tags by their function type.
    pub tags: Vec<TypeId>,
    pub structs: Vec<Obj>,
    pub arrays: Vec<Obj>,
    pub exns: Vec<ExnObj>,
    /// Where each result of the last `invoke` came from.
    pub last_origins: Vec<Origin>,
    /// A planted bug for the tests (`engine::interp`): imports of the right
    /// kind link whatever their type.
    pub accepts_any_import: bool,
    heap_slots: u64,
}

impl<'a> Store<'a> {
    pub fn new(features: WasmFeatures, limits: Limits) -> Store<'a> {
        Store {
            types: Registry::default(),
            features,
            limits,
            insts: Vec::new(),
            funcs: Vec::new(),
            tables: Vec::new(),
            mems: Vec::new(),
            globals: Vec::new(),
            tags: Vec::new(),
            structs: Vec::new(),
            arrays: Vec::new(),
            exns: Vec::new(),
            last_origins: Vec::new(),
            accepts_any_import: false,
            heap_slots: 0,
        }
    }

    /// The name of the operator at `origin` (`StructGet`, `Select`, …), or
    /// `None` for a value no instruction made.
    pub fn operator_at(&self, origin: Origin) -> Option<String> {
        let inst = self.insts.get(origin.inst as usize)?;
        let op = inst.module.code.get(origin.code as usize)?.ops.get(origin.at as usize)?;
        Some(crate::case::operator_name(op))
    }

    /// Validates and decodes a module into this store's type space.
    pub fn load(&mut self, bytes: &'a [u8]) -> Result<Module<'a>, String> {
        decode(bytes, self.features, &mut self.types)
    }

    /// The canonical id of a final function type without supertypes.
    pub fn func_type(&mut self, params: &[VT], results: &[VT]) -> TypeId {
        let canon = |v: &VT| match *v {
            ValTy::Ref { nullable, heap: Heap::Concrete(t) } => {
                ValTy::Ref { nullable, heap: Heap::Concrete(Idx::Canon(t)) }
            }
            ValTy::Ref { nullable, heap: Heap::Abstract(a) } => ValTy::Ref { nullable, heap: Heap::Abstract(a) },
            ValTy::I32 => ValTy::I32,
            ValTy::I64 => ValTy::I64,
            ValTy::F32 => ValTy::F32,
            ValTy::F64 => ValTy::F64,
            ValTy::V128 => ValTy::V128,
        };
        let def = DefType {
            is_final: true,
            supertype: None,
            composite: Composite::Func {
                params: params.iter().map(canon).collect(),
                results: results.iter().map(canon).collect(),
            },
        };
        self.types.intern(def)
    }

    pub fn add_host_func(&mut self, ty: TypeId, host: Host) -> u32 {
        self.funcs.push(FuncInst::Host { ty, host });
        self.funcs.len() as u32 - 1
    }

    pub fn add_global(&mut self, ty: GlobalTy, val: Val) -> u32 {
        self.globals.push(GlobalInst { ty, val, origin: Origin::NONE });
        self.globals.len() as u32 - 1
    }

    pub fn add_table(&mut self, ty: TableTy, init: Ref) -> u32 {
        self.tables.push(TableInst { ty, elems: vec![init; ty.min as usize] });
        self.tables.len() as u32 - 1
    }

    pub fn add_memory(&mut self, ty: MemTy) -> u32 {
        self.mems.push(MemInst { ty, data: vec![0; (ty.min * PAGE) as usize] });
        self.mems.len() as u32 - 1
    }

    pub fn export(&self, inst: u32, name: &str) -> Option<Extern> {
        self.insts[inst as usize].exports.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }

    /// Links and instantiates `module` with `imports` (one per import, in
    /// order), runs its segments and start function. An instance whose
    /// initialization traps stays in the store (its effects on imported
    /// tables and memories remain) but is not returned.
    pub fn instantiate(&mut self, module: Module<'a>, imports: &[Extern]) -> Result<u32, Stop> {
        let module = Rc::new(module);
        if imports.len() != module.imports.len() {
            return Err(Stop::Error(format!("{} imports given, {} needed", imports.len(), module.imports.len())));
        }
        let ii = self.insts.len() as u32;
        let mut inst = Inst {
            module: module.clone(),
            funcs: Vec::new(),
            tables: Vec::new(),
            mems: Vec::new(),
            globals: Vec::new(),
            tags: Vec::new(),
            elems: Vec::new(),
            datas: Vec::new(),
            exports: Vec::new(),
        };
        for (import, ext) in module.imports.iter().zip(imports) {
            self.check_import(&import.kind, *ext).map_err(|why| {
                Stop::Error(format!("incompatible import type for {}.{}: {why}", import.module, import.name))
            })?;
            match *ext {
                Extern::Func(a) => inst.funcs.push(a),
                Extern::Table(a) => inst.tables.push(a),
                Extern::Memory(a) => inst.mems.push(a),
                Extern::Global(a) => inst.globals.push(a),
                Extern::Tag(a) => inst.tags.push(a),
            }
        }
        let imported = inst.funcs.len();
        for (i, &ty) in module.funcs[imported..].iter().enumerate() {
            self.funcs.push(FuncInst::Wasm { inst: ii, code: i as u32, ty });
            inst.funcs.push(self.funcs.len() as u32 - 1);
        }
        for &ty in &module.tags {
            self.tags.push(ty);
            inst.tags.push(self.tags.len() as u32 - 1);
        }
        inst.datas = module.datas.iter().map(|d| d.bytes).collect();
        self.insts.push(inst);

        for &ty in &module.memories {
            if ty.min * PAGE > self.limits.memory_bytes {
                return Err(Stop::Exhausted(Exhausted::ResourceLimit));
            }
            let a = self.add_memory(ty);
            self.insts[ii as usize].mems.push(a);
        }
        for (ty, init) in &module.globals {
            let val = self.eval(ii, init)?;
            let a = self.add_global(*ty, val);
            self.insts[ii as usize].globals.push(a);
        }
        for (ty, init) in &module.tables {
            if ty.min > self.limits.table_elems {
                return Err(Stop::Exhausted(Exhausted::ResourceLimit));
            }
            let val = match init {
                Some(e) => self.eval(ii, e)?.reference(),
                None => Ref::Null,
            };
            let a = self.add_table(*ty, val);
            self.insts[ii as usize].tables.push(a);
        }
        for elem in &module.elems {
            let mut refs = Vec::with_capacity(elem.items.len());
            for item in &elem.items {
                refs.push(self.eval(ii, item)?.reference());
            }
            self.insts[ii as usize].elems.push(refs);
        }
        let exports = module
            .exports
            .iter()
            .map(|&(name, kind, index)| {
                let i = &self.insts[ii as usize];
                let ext = match kind {
                    ExternalKind::Func | ExternalKind::FuncExact => Extern::Func(i.funcs[index as usize]),
                    ExternalKind::Table => Extern::Table(i.tables[index as usize]),
                    ExternalKind::Memory => Extern::Memory(i.mems[index as usize]),
                    ExternalKind::Global => Extern::Global(i.globals[index as usize]),
                    ExternalKind::Tag => Extern::Tag(i.tags[index as usize]),
                };
                (name, ext)
            })
            .collect();
        self.insts[ii as usize].exports = exports;

        for (e, elem) in module.elems.iter().enumerate() {
            match &elem.mode {
                ElemMode::Passive => {}
                ElemMode::Declared => self.insts[ii as usize].elems[e].clear(),
                ElemMode::Active { table, offset } => {
                    let offset = self.eval(ii, offset)?.i32() as u32;
                    let n = elem.items.len() as u32;
                    self.table_init(ii, *table, e as u32, offset, 0, n)?;
                    self.insts[ii as usize].elems[e].clear();
                }
            }
        }
        for (d, data) in module.datas.iter().enumerate() {
            if let Some((mem, offset)) = &data.active {
                let offset = self.eval(ii, offset)?.i32() as u32;
                self.memory_init(ii, *mem, d as u32, offset, 0, data.bytes.len() as u32)?;
                self.insts[ii as usize].datas[d] = &[];
            }
        }
        if let Some(start) = module.start {
            let f = self.insts[ii as usize].funcs[start as usize];
            self.invoke(f, Vec::new())?;
        }
        Ok(ii)
    }

    fn check_import(&self, kind: &ImportKind, ext: Extern) -> Result<(), String> {
        let limits_match = |cur: u64, max: Option<u64>, want_min: u64, want_max: Option<u64>| {
            cur >= want_min
                && match want_max {
                    None => true,
                    Some(w) => max.is_some_and(|m| m <= w),
                }
        };
        let ok = match (kind, ext) {
            (ImportKind::Func(want), Extern::Func(f)) => self.types.is_sub(self.funcs[f as usize].ty(), *want),
            (ImportKind::Table(want), Extern::Table(t)) => {
                let t = &self.tables[t as usize];
                self.types.val_sub(t.ty.elem, want.elem)
                    && self.types.val_sub(want.elem, t.ty.elem)
                    && limits_match(t.elems.len() as u64, t.ty.max, want.min, want.max)
            }
            (ImportKind::Memory(want), Extern::Memory(m)) => {
                let m = &self.mems[m as usize];
                limits_match(m.data.len() as u64 / PAGE, m.ty.max, want.min, want.max)
            }
            (ImportKind::Global(want), Extern::Global(g)) => {
                let g = &self.globals[g as usize].ty;
                g.mutable == want.mutable
                    && self.types.val_sub(g.ty, want.ty)
                    && (!g.mutable || self.types.val_sub(want.ty, g.ty))
            }
            (ImportKind::Tag(want), Extern::Tag(t)) => self.tags[t as usize] == *want,
            _ => return Err("wrong kind".into()),
        };
        if ok || self.accepts_any_import { Ok(()) } else { Err("type mismatch".into()) }
    }

    /// Evaluates a constant expression in instance `ii`.
    pub fn eval(&mut self, ii: u32, expr: &Expr<'a>) -> Result<Val, Stop> {
        let mut stack: Vec<Val> = Vec::new();
        let types = self.insts[ii as usize].module.types.clone();
        for op in expr {
            let v = match *op {
                Operator::I32Const { value } => Val::I32(value),
                Operator::I64Const { value } => Val::I64(value),
                Operator::F32Const { value } => Val::F32(value.bits()),
                Operator::F64Const { value } => Val::F64(value.bits()),
                Operator::V128Const { value } => Val::V128(u128::from_le_bytes(*value.bytes())),
                Operator::RefNull { .. } => Val::Ref(Ref::Null),
                Operator::RefFunc { function_index } => {
                    Val::Ref(Ref::Func(self.insts[ii as usize].funcs[function_index as usize]))
                }
                Operator::GlobalGet { global_index } => {
                    self.globals[self.insts[ii as usize].globals[global_index as usize] as usize].val
                }
                Operator::I32Add | Operator::I32Sub | Operator::I32Mul => {
                    let b = stack.pop().map(Val::i32).unwrap_or(0);
                    let a = stack.pop().map(Val::i32).unwrap_or(0);
                    Val::I32(match op {
                        Operator::I32Add => a.wrapping_add(b),
                        Operator::I32Sub => a.wrapping_sub(b),
                        _ => a.wrapping_mul(b),
                    })
                }
                Operator::I64Add | Operator::I64Sub | Operator::I64Mul => {
                    let b = stack.pop().map(Val::i64).unwrap_or(0);
                    let a = stack.pop().map(Val::i64).unwrap_or(0);
                    Val::I64(match op {
                        Operator::I64Add => a.wrapping_add(b),
                        Operator::I64Sub => a.wrapping_sub(b),
                        _ => a.wrapping_mul(b),
                    })
                }
                Operator::RefI31 => {
                    Val::Ref(Ref::Any(AnyRef::I31(stack.pop().map(Val::i32).unwrap_or(0) as u32 & 0x7fff_ffff)))
                }
                Operator::AnyConvertExtern => {
                    Val::Ref(any_convert_extern(stack.pop().map(Val::reference).unwrap_or(Ref::Null)))
                }
                Operator::ExternConvertAny => {
                    Val::Ref(extern_convert_any(stack.pop().map(Val::reference).unwrap_or(Ref::Null)))
                }
                Operator::StructNew { struct_type_index } => {
                    let t = types[struct_type_index as usize];
                    let n = self.types.struct_fields(t).len();
                    let vals = stack.split_off(stack.len() - n);
                    Val::Ref(self.struct_new(t, vals)?)
                }
                Operator::StructNewDefault { struct_type_index } => {
                    let t = types[struct_type_index as usize];
                    let vals = self.types.struct_fields(t).iter().map(|f| default_val(unpacked(f))).collect();
                    Val::Ref(self.struct_new(t, vals)?)
                }
                Operator::ArrayNew { array_type_index } => {
                    let t = types[array_type_index as usize];
                    let len = stack.pop().map(Val::i32).unwrap_or(0) as u32;
                    let v = stack.pop().unwrap_or(Val::I32(0));
                    Val::Ref(self.array_new(t, v, len)?)
                }
                Operator::ArrayNewDefault { array_type_index } => {
                    let t = types[array_type_index as usize];
                    let len = stack.pop().map(Val::i32).unwrap_or(0) as u32;
                    let v = default_val(unpacked(&self.types.array_field(t)));
                    Val::Ref(self.array_new(t, v, len)?)
                }
                Operator::ArrayNewFixed { array_type_index, array_size } => {
                    let t = types[array_type_index as usize];
                    let vals = stack.split_off(stack.len() - array_size as usize);
                    Val::Ref(self.array_from(t, vals)?)
                }
                Operator::End => break,
                ref other => return Err(Stop::Error(format!("unsupported constant instruction {other:?}"))),
            };
            stack.push(v);
        }
        stack.pop().ok_or_else(|| Stop::Error("empty constant expression".into()))
    }

    fn charge(&mut self, slots: u64) -> Result<(), Stop> {
        self.heap_slots = self.heap_slots.saturating_add(slots.max(1));
        if self.heap_slots > self.limits.heap_slots {
            return Err(Stop::Exhausted(Exhausted::GcHeapOutOfMemory));
        }
        Ok(())
    }

    pub fn struct_new(&mut self, ty: TypeId, vals: Vec<Val>) -> Result<Ref, Stop> {
        self.charge(vals.len() as u64)?;
        let vals = vals.into_iter().zip(self.types.struct_fields(ty)).map(|(v, f)| pack(f.storage, v)).collect();
        self.structs.push(Obj { ty, vals });
        Ok(Ref::Any(AnyRef::Struct(self.structs.len() as u32 - 1)))
    }

    pub fn array_new(&mut self, ty: TypeId, v: Val, len: u32) -> Result<Ref, Stop> {
        if len as u64 > self.limits.heap_slots {
            return Err(Stop::Exhausted(Exhausted::AllocationTooLarge));
        }
        self.charge(len as u64)?;
        let v = pack(self.types.array_field(ty).storage, v);
        self.arrays.push(Obj { ty, vals: vec![v; len as usize] });
        Ok(Ref::Any(AnyRef::Array(self.arrays.len() as u32 - 1)))
    }

    pub fn array_from(&mut self, ty: TypeId, vals: Vec<Val>) -> Result<Ref, Stop> {
        self.charge(vals.len() as u64)?;
        let storage = self.types.array_field(ty).storage;
        let vals = vals.into_iter().map(|v| pack(storage, v)).collect();
        self.arrays.push(Obj { ty, vals });
        Ok(Ref::Any(AnyRef::Array(self.arrays.len() as u32 - 1)))
    }

    pub fn exn_new(&mut self, tag: u32, vals: Vec<Val>) -> Result<u32, Stop> {
        self.charge(vals.len() as u64)?;
        self.exns.push(ExnObj { tag, vals });
        Ok(self.exns.len() as u32 - 1)
    }

    /// `table.init` of instance `ii`.
    pub fn table_init(&mut self, ii: u32, table: u32, elem: u32, dst: u32, src: u32, n: u32) -> Result<(), Stop> {
        let t = self.insts[ii as usize].tables[table as usize] as usize;
        let seg = &self.insts[ii as usize].elems[elem as usize];
        let (dst, src, n) = (dst as usize, src as usize, n as usize);
        if src + n > seg.len() || dst + n > self.tables[t].elems.len() {
            return trap(TrapClass::TableOutOfBounds);
        }
        let items = seg[src..src + n].to_vec();
        self.tables[t].elems[dst..dst + n].copy_from_slice(&items);
        Ok(())
    }

    /// `memory.init` of instance `ii`.
    pub fn memory_init(&mut self, ii: u32, mem: u32, data: u32, dst: u32, src: u32, n: u32) -> Result<(), Stop> {
        let m = self.insts[ii as usize].mems[mem as usize] as usize;
        let seg = self.insts[ii as usize].datas[data as usize];
        let (dst, src, n) = (dst as usize, src as usize, n as usize);
        if src + n > seg.len() || dst + n > self.mems[m].data.len() {
            return trap(TrapClass::MemoryOutOfBounds);
        }
        self.mems[m].data[dst..dst + n].copy_from_slice(&seg[src..src + n]);
        Ok(())
    }

    /// Whether a reference value has reference type `(ref null? heap)`.
    pub fn ref_matches(&self, r: Ref, nullable: bool, heap: Heap<TypeId>) -> bool {
        use wasmparser::AbstractHeapType as H;
        let abs = |h: H| heap == Heap::Abstract(h);
        match r {
            Ref::Null => nullable,
            Ref::Func(f) => match heap {
                Heap::Abstract(h) => h == H::Func,
                Heap::Concrete(t) => self.types.is_sub(self.funcs[f as usize].ty(), t),
            },
            Ref::Exn(_) => abs(H::Exn),
            Ref::Extern(_) => abs(H::Extern),
            Ref::Any(a) => {
                let (kind, ty) = match a {
                    AnyRef::I31(_) => return abs(H::Any) || abs(H::Eq) || abs(H::I31),
                    AnyRef::Host(_) => return abs(H::Any),
                    AnyRef::Struct(o) => (H::Struct, self.structs[o as usize].ty),
                    AnyRef::Array(o) => (H::Array, self.arrays[o as usize].ty),
                };
                match heap {
                    Heap::Abstract(h) => h == kind || h == H::Eq || h == H::Any,
                    Heap::Concrete(t) => self.types.is_sub(ty, t),
                }
            }
        }
    }
}

impl Registry {
    /// Canonicalizes a single-type rec group built by the host.
    pub fn intern(&mut self, def: DefType<Idx>) -> TypeId {
        self.define_key(vec![def])[0]
    }
}

pub fn any_convert_extern(r: Ref) -> Ref {
    match r {
        Ref::Extern(a) => Ref::Any(a),
        other => other,
    }
}

pub fn extern_convert_any(r: Ref) -> Ref {
    match r {
        Ref::Any(a) => Ref::Extern(a),
        other => other,
    }
}

/// The value type a field is read and written as.
pub fn unpacked(f: &Field<TypeId>) -> VT {
    match f.storage {
        Storage::I8 | Storage::I16 => ValTy::I32,
        Storage::Val(v) => v,
    }
}

/// Truncates a value to its packed storage type.
pub fn pack(s: Storage<TypeId>, v: Val) -> Val {
    match (s, v) {
        (Storage::I8, Val::I32(x)) => Val::I32(x & 0xff),
        (Storage::I16, Val::I32(x)) => Val::I32(x & 0xffff),
        _ => v,
    }
}

/// The default value of a defaultable type (null for references).
pub fn default_val(t: VT) -> Val {
    match t {
        ValTy::I32 => Val::I32(0),
        ValTy::I64 => Val::I64(0),
        ValTy::F32 => Val::F32(0),
        ValTy::F64 => Val::F64(0),
        ValTy::V128 => Val::V128(0),
        ValTy::Ref { .. } => Val::Ref(Ref::Null),
    }
}
