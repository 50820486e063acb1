//! gcfuzz's reference interpreter (`crate::interp`) as an engine: the
//! independent oracle for GC modules. It shares no code with Wasmtime's
//! translation, so a wrong lowering that every Wasmtime configuration agrees
//! on still disagrees with it.
//!
//! Its host functions do what Wasmtime's do, minus the collection: the
//! interpreter's objects are never collected during a run.

use super::{CALL_FUEL, Engine, Held, Instance, callee, held_name, state_name};
use crate::case::Profile;
use crate::case::host::{HostFunc, MEMORY_LIMIT, TABLE_LIMIT};
use crate::case::{Arg, Call, TestCase, linked_name};
use crate::interp::module::ImportKind;
use crate::interp::types::{Composite, Field, Heap, Storage, TypeId, ValTy};
use crate::interp::{AnyRef, Extern, Host, Limits, Ref, Stop, Store, Val};
use crate::outcome::vocab::{self, ARRAY_ELEMS, HeapName, Numbering, StorageName, TABLE_ELEMS, TypeName, signature};
use crate::outcome::{MemorySummary, Ref as Shape, State, Status, TableSummary, Value};
use std::collections::HashMap;
use wasmparser::AbstractHeapType as A;

/// Limits matching the Wasmtime configurations where they are observable
/// (memory and table growth); call depth and heap size are generous, and
/// running into them is inconclusive like every exhaustion.
const LIMITS: Limits = Limits {
    fuel: CALL_FUEL,
    max_frames: 20_000,
    memory_bytes: MEMORY_LIMIT as u64,
    table_elems: TABLE_LIMIT as u64,
    heap_slots: 1 << 24,
};

#[derive(Default)]
pub struct InterpEngine {
    /// The modules being run, linked ones first: the store borrows them for
    /// the instance's life.
    modules: Vec<Vec<u8>>,
    /// Planted bugs for the tests: imports are linked whatever their type;
    /// a rec group extending a defined one takes its types
    /// (`Registry::planted_prefix_canonicalization`).
    accepts_any_import: bool,
    prefix_canonicalization: bool,
}

impl InterpEngine {
    pub fn new() -> InterpEngine {
        InterpEngine::default()
    }

    /// The interpreter with a planted import matcher that links an export to
    /// an import of any type, for the tests of the linking oracle.
    pub fn accepting_any_import() -> InterpEngine {
        InterpEngine { accepts_any_import: true, ..InterpEngine::default() }
    }

    /// The interpreter with a planted type canonicalization that keys a rec
    /// group by its members but the last, for the tests of linked cases.
    pub fn canonicalizing_by_prefix() -> InterpEngine {
        InterpEngine { prefix_canonicalization: true, ..InterpEngine::default() }
    }
}

impl Engine for InterpEngine {
    fn name(&self) -> String {
        "interp".into()
    }

    fn supports(&self, case: &TestCase) -> bool {
        case.modules().is_ok_and(|modules| modules.iter().all(|m| Profile::Gc.validate(m).is_ok()))
    }

    fn instantiate<'a>(&'a mut self, case: &TestCase) -> (Status, Option<Box<dyn Instance + 'a>>) {
        self.modules = match case.modules() {
            Ok(modules) => modules,
            Err(e) => return (Status::Error(format!("linked modules: {e:#}")), None),
        };
        let modules: &'a [Vec<u8>] = &self.modules;
        let mut store = Store::new(crate::interp::features(), LIMITS);
        store.accepts_any_import = self.accepts_any_import;
        store.types.planted_prefix_canonicalization = self.prefix_canonicalization;
        let mut insts = Vec::with_capacity(modules.len());
        for (i, bytes) in modules.iter().enumerate() {
            let main = i + 1 == modules.len();
            let module = match store.load(bytes) {
                Ok(m) => m,
                Err(e) if main => return (Status::Error(format!("compile: {e}")), None),
                Err(e) => return (Status::Error(format!("compile {}: {e}", linked_name(i))), None),
            };
            let mut imports = Vec::new();
            for import in &module.imports {
                let earlier = (0..i).find(|k| linked_name(*k) == import.module);
                let ext = match earlier {
                    Some(k) => store.export(insts[k], import.name),
                    None => host_import(&mut store, import.module, import.name, &import.kind),
                };
                match ext {
                    Some(ext) => imports.push(ext),
                    None => {
                        return (Status::Error(format!("unknown import {}.{}", import.module, import.name)), None);
                    }
                }
            }
            match store.instantiate(module, &imports) {
                Ok(inst) => insts.push(inst),
                Err(stop) => return (status(&store, stop), None),
            }
        }
        (Status::Returned(vec![]), Some(Box::new(InterpInstance { store, insts, held: Held::default() })))
    }
}

/// The host function `module.name`, when the import names one gcfuzz
/// offers (its type is checked by instantiation, as Wasmtime's linker does).
fn host_import(store: &mut Store, module: &str, name: &str, kind: &ImportKind) -> Option<Extern> {
    if !matches!(kind, ImportKind::Func(_)) {
        return None;
    }
    let any = ValTy::Ref { nullable: true, heap: Heap::Abstract(A::Any) };
    let ext = ValTy::Ref { nullable: true, heap: Heap::Abstract(A::Extern) };
    let (params, results, host) = match HostFunc::import(module, name)? {
        HostFunc::Gc => (vec![], vec![], Host::Nop),
        HostFunc::GcAny => (vec![any], vec![any], Host::Identity),
        HostFunc::GcExtern => (vec![ext], vec![ext], Host::Identity),
        HostFunc::ExternNew => (vec![ValTy::I32], vec![ext], Host::ExternNew),
        HostFunc::ExternId => (vec![ext], vec![ValTy::I32], Host::ExternId),
    };
    let ty = store.func_type(&params, &results);
    Some(Extern::Func(store.add_host_func(ty, host)))
}

struct InterpInstance<'a> {
    store: Store<'a>,
    /// The linked modules' instances, then the main module's.
    insts: Vec<u32>,
    /// Objects live as long as the instance, so results are held as they are.
    held: Held<Val>,
}

impl InterpInstance<'_> {
    fn make_call(&mut self, call: &Call) -> (Status, Option<Vec<Val>>) {
        let inst = match callee(call, self.insts.len()) {
            Ok(i) => self.insts[i],
            Err(status) => return (status, None),
        };
        let Some(Extern::Func(func)) = self.store.export(inst, &call.export) else {
            return (Status::Error(format!("no exported function {:?}", call.export)), None);
        };
        let ty = self.store.funcs[func as usize].ty();
        let params = self.store.types.func_type(ty).0;
        if params.len() != call.args.len() {
            let message = format!("{} takes {} arguments, plan has {}", call.export, params.len(), call.args.len());
            return (Status::Error(message), None);
        }
        let mut args = Vec::with_capacity(params.len());
        for arg in &call.args {
            match arg {
                Arg::Earlier { call, result } => match self.held.get(*call, *result) {
                    Ok(v) => args.push(*v),
                    Err(status) => return (status, None),
                },
                _ => match arg_val(arg) {
                    Some(v) => args.push(v),
                    None => return (Status::Error(format!("argument {arg:?} out of the interpreter's scope")), None),
                },
            }
        }
        match self.store.invoke(func, args) {
            Ok(vals) => {
                let mut walker = Walker::new(&self.store);
                let status = Status::Returned(vals.iter().map(|v| walker.val(*v, 0)).collect());
                (status, Some(vals))
            }
            Err(stop) => (status(&self.store, stop), None),
        }
    }
}

impl Instance for InterpInstance<'_> {
    fn call(&mut self, call: &Call) -> Status {
        let (status, results) = self.make_call(call);
        self.held.push(results);
        status
    }

    /// Nothing to collect: objects live until the instance is dropped.
    fn collect(&mut self) {}

    fn result_producers(&self) -> Vec<Option<String>> {
        self.store.last_origins.iter().map(|o| self.store.operator_at(*o)).collect()
    }

    fn global_producers(&self) -> Vec<(String, String)> {
        let store = &self.store;
        let count = self.insts.len();
        let mut producers: Vec<(String, String)> = self
            .insts
            .iter()
            .enumerate()
            .flat_map(|(i, inst)| store.insts[*inst as usize].exports.iter().map(move |e| (i, e)))
            .filter_map(|(i, (name, ext))| match *ext {
                Extern::Global(g) => {
                    Some((state_name(i, count, name), store.operator_at(store.globals[g as usize].origin)?))
                }
                _ => None,
            })
            .collect();
        producers.sort();
        producers
    }

    fn state(&mut self) -> State {
        let store = &self.store;
        let mut state = State::default();
        // One walker for the whole snapshot, exports in module order, as the
        // Wasmtime adapter walks them: canonical numbers then match.
        let mut walker = Walker::new(store);
        let count = self.insts.len();
        let exports = self.insts.iter().enumerate().flat_map(|(i, inst)| {
            store.insts[*inst as usize].exports.iter().map(move |(name, ext)| (state_name(i, count, name), ext))
        });
        for (name, ext) in exports {
            match *ext {
                Extern::Global(g) => state.globals.push((name, walker.val(store.globals[g as usize].val, 0))),
                Extern::Memory(m) => {
                    let data = &store.mems[m as usize].data;
                    let summary = MemorySummary { size: data.len() as u64, hash: xxhash_rust::xxh3::xxh3_64(data) };
                    state.memories.push((name, summary));
                }
                Extern::Table(t) => {
                    let elems = &store.tables[t as usize].elems;
                    let shapes = elems.iter().take(TABLE_ELEMS).map(|r| walker.reference(*r, 0)).collect();
                    state.tables.push((name, TableSummary { size: elems.len() as u64, elems: shapes }));
                }
                Extern::Func(_) | Extern::Tag(_) => {}
            }
        }
        for (call, result, v) in self.held.iter() {
            if let Val::Ref(r) = v {
                state.held.push((held_name(call, result), Value::Ref(walker.reference(*r, 0))));
            }
        }
        state
    }
}

fn arg_val(arg: &Arg) -> Option<Val> {
    Some(match arg {
        Arg::I32(v) => Val::I32(*v),
        Arg::I64(v) => Val::I64(*v),
        Arg::F32(v) => Val::F32(*v),
        Arg::F64(v) => Val::F64(*v),
        Arg::Null => Val::Ref(Ref::Null),
        Arg::Extern(id) => Val::Ref(Ref::Extern(AnyRef::Host(*id))),
        // `I31::wrapping_i32`: the low 31 bits.
        Arg::I31(v) => Val::Ref(Ref::Any(AnyRef::I31(*v as u32 & 0x7fff_ffff))),
        Arg::V128(v) => Val::V128(*v),
        Arg::Earlier { .. } => return None,
    })
}

fn status(store: &Store, stop: Stop) -> Status {
    match stop {
        Stop::Trap(class) => Status::Trapped(class),
        Stop::Exhausted(x) => Status::Exhausted(x),
        Stop::Uncaught(exn) => Status::Uncaught(Walker::new(store).exn(exn, 0)),
        Stop::Error(msg) => Status::Error(msg),
    }
}

/// Walks references into shapes exactly as the Wasmtime adapter does: i31s
/// and host references carry no number; structs, arrays and exceptions are
/// numbered in first-seen order from one counter; the same depth and object
/// budget.
struct Walker<'s, 'a> {
    store: &'s Store<'a>,
    seen: HashMap<Ref, u32>,
    numbering: Numbering,
}

impl<'s, 'a> Walker<'s, 'a> {
    fn new(store: &'s Store<'a>) -> Self {
        Walker { store, seen: HashMap::new(), numbering: Numbering::default() }
    }

    fn val(&mut self, v: Val, depth: usize) -> Value {
        match v {
            Val::I32(v) => Value::I32(v),
            Val::I64(v) => Value::I64(v),
            Val::F32(b) => Value::f32(b),
            Val::F64(b) => Value::f64(b),
            Val::V128(v) => Value::V128(v),
            Val::Ref(r) => Value::Ref(self.reference(r, depth)),
        }
    }

    fn reference(&mut self, r: Ref, depth: usize) -> Shape {
        match r {
            Ref::Null => Shape::Null,
            Ref::Func(f) => {
                let (params, results) = self.store.types.func_type(self.store.funcs[f as usize].ty());
                Shape::Func(signature(
                    params.iter().map(|t| val_desc(self.store, *t)),
                    results.iter().map(|t| val_desc(self.store, *t)),
                ))
            }
            Ref::Exn(e) => self.exn(e, depth),
            Ref::Any(a) => self.any(a, depth),
            Ref::Extern(AnyRef::Host(id)) => Shape::Extern(id),
            Ref::Extern(a) => Shape::Internalized(Box::new(self.any(a, depth))),
        }
    }

    /// The object's number if it is new and within budget, else its shape.
    fn number(&mut self, r: Ref, depth: usize) -> Result<u32, Shape> {
        if let Some(id) = self.seen.get(&r) {
            return Err(Shape::Seen(*id));
        }
        let id = self.numbering.admit(depth)?;
        self.seen.insert(r, id);
        Ok(id)
    }

    fn any(&mut self, a: AnyRef, depth: usize) -> Shape {
        let store = self.store;
        match a {
            // Sign-extended, as `I31::get_i32` reads it.
            AnyRef::I31(bits) => Shape::I31(((bits << 1) as i32) >> 1),
            AnyRef::Host(id) => Shape::Extern(id),
            AnyRef::Struct(s) => {
                let id = match self.number(Ref::Any(a), depth) {
                    Ok(id) => id,
                    Err(shape) => return shape,
                };
                let obj = &store.structs[s as usize];
                let layout = store.types.struct_fields(obj.ty);
                let ty = vocab::struct_type(layout.iter().map(|f| field_desc(store, f)));
                let fields = obj.vals.iter().map(|v| self.val(*v, depth + 1)).collect();
                Shape::Struct { id, ty, fields }
            }
            AnyRef::Array(arr) => {
                let id = match self.number(Ref::Any(a), depth) {
                    Ok(id) => id,
                    Err(shape) => return shape,
                };
                let obj = &store.arrays[arr as usize];
                let ty = vocab::array_type(field_desc(store, &store.types.array_field(obj.ty)));
                let elems = obj.vals.iter().take(ARRAY_ELEMS as usize).map(|v| self.val(*v, depth + 1)).collect();
                Shape::Array { id, ty, len: obj.vals.len() as u32, elems }
            }
        }
    }

    fn exn(&mut self, e: u32, depth: usize) -> Shape {
        let id = match self.number(Ref::Exn(e), depth) {
            Ok(id) => id,
            Err(shape) => return shape,
        };
        let store = self.store;
        let exn = &store.exns[e as usize];
        let params = store.types.func_type(store.tags[exn.tag as usize]).0;
        let tag = signature(params.iter().map(|t| val_desc(store, *t)), []);
        let fields = exn.vals.iter().map(|v| self.val(*v, depth + 1)).collect();
        Shape::Exn { id, tag, fields }
    }
}

fn field_desc(store: &Store, f: &Field<TypeId>) -> String {
    let storage = match f.storage {
        Storage::I8 => StorageName::I8,
        Storage::I16 => StorageName::I16,
        Storage::Val(v) => StorageName::Val(val_desc(store, v)),
    };
    vocab::field(f.mutable, storage)
}

fn val_desc(store: &Store, v: ValTy<TypeId>) -> TypeName {
    let (nullable, heap) = match v {
        ValTy::I32 => return TypeName::I32,
        ValTy::I64 => return TypeName::I64,
        ValTy::F32 => return TypeName::F32,
        ValTy::F64 => return TypeName::F64,
        ValTy::V128 => return TypeName::V128,
        ValTy::Ref { nullable, heap } => (nullable, heap),
    };
    let heap = match heap {
        Heap::Concrete(t) => match store.types.get(t).composite {
            Composite::Func { .. } => HeapName::ConcreteFunc,
            Composite::Struct(_) => HeapName::ConcreteStruct,
            Composite::Array(_) => HeapName::ConcreteArray,
        },
        Heap::Abstract(a) => match a {
            A::Extern => HeapName::Extern,
            A::NoExtern => HeapName::NoExtern,
            A::Func => HeapName::Func,
            A::NoFunc => HeapName::NoFunc,
            A::Any => HeapName::Any,
            A::Eq => HeapName::Eq,
            A::I31 => HeapName::I31,
            A::Array => HeapName::Array,
            A::Struct => HeapName::Struct,
            A::None => HeapName::None,
            A::Exn => HeapName::Exn,
            A::NoExn => HeapName::NoExn,
            A::Cont | A::NoCont => HeapName::Cont,
        },
    };
    TypeName::Ref { nullable, heap }
}
