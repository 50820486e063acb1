//! Wasmtime configurations: Cranelift native with each collector, opt-level,
//! register-allocator and inlining variants, and Pulley.
//!
//! Every configuration turns on what makes GC bugs visible: the plan's
//! `gc_zeal_alloc_counter` (needs `cfg(gc_zeal)`, see `.cargo/config.toml`),
//! trap metadata for internal asserts (a failed inline check traps instead
//! of killing the process; with debug assertions Wasmtime then panics with
//! its `WasmtimeBug` message), and engine fuel as a backstop, as far as the
//! Wasmtime line under test has them (`crate::line`; the calls that changed
//! between lines are in `compat`).

mod compat;
mod knobs;
pub mod locate;
pub mod wast;

use super::{CALL_FUEL, Engine, Instance, MEMORY_LIMIT, TABLE_LIMIT};
use crate::case::host::{self, HostFunc};
use crate::case::{Arg, Call, ConfigId, Knobs, TestCase};
use crate::line::{self, Cap};
use crate::outcome::vocab::{self, ARRAY_ELEMS, HeapName, Numbering, StorageName, TABLE_ELEMS, TypeName, signature};
use crate::outcome::{Exhausted, MemorySummary, Ref as Shape, State, Status, TableSummary, TrapClass, Value};
use compat as api;
use std::collections::HashMap;
use wasmtime::{
    AnyRef, Collector, Config, ExternRef, Func, GcHeapOutOfMemory, HeapType, I31, Linker, Module, OptLevel, RefType,
    Rooted, StorageType, Store, StoreLimits, StoreLimitsBuilder, Trap, Val, ValType,
};
#[cfg(wasmtime_exceptions)]
use wasmtime::{ExnRef, ThrownException};

/// The store data of every Wasmtime configuration.
pub struct Host {
    limits: StoreLimits,
}

/// Changes the host functions after they are defined: what the tests'
/// planted configurations use to misbehave inside a real engine.
pub type LinkerHook = fn(&mut Linker<Host>) -> wasmtime::Result<()>;

/// Settings that need a separate `wasmtime::Engine`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct EngineKey {
    zeal: Option<u32>,
    gc_heap_initial: Option<u64>,
    knobs: Knobs,
}

/// Engines a worker keeps per configuration: those of the default knobs
/// are few and reused by most cases; one per drawn knob set would grow
/// without bound.
const KEPT_ENGINES: usize = 16;

pub struct WasmtimeEngine {
    id: ConfigId,
    engines: HashMap<EngineKey, (wasmtime::Engine, Linker<Host>)>,
    hook: Option<LinkerHook>,
}

impl WasmtimeEngine {
    pub fn new(id: ConfigId) -> WasmtimeEngine {
        assert!(id.is_wasmtime(), "{id} is not a Wasmtime configuration");
        WasmtimeEngine { id, engines: HashMap::new(), hook: None }
    }

    /// This configuration with its host functions changed by `hook`.
    pub fn with_linker_hook(id: ConfigId, hook: LinkerHook) -> WasmtimeEngine {
        WasmtimeEngine { hook: Some(hook), ..WasmtimeEngine::new(id) }
    }

    fn collects(&self) -> bool {
        self.id != ConfigId::Null
    }

    /// The `wasmtime::Config` for this configuration and per-case settings
    /// (`knobs`: those `case::knobs::for_config` gives this configuration).
    pub fn config(
        id: ConfigId,
        zeal: Option<u32>,
        gc_heap_initial: Option<u64>,
        knobs: &Knobs,
    ) -> wasmtime::Result<Config> {
        let mut c = Config::new();
        c.wasm_gc(true)
            .wasm_function_references(true)
            .wasm_reference_types(true)
            .wasm_tail_call(true)
            .wasm_multi_memory(true)
            .wasm_extended_const(true)
            .consume_fuel(true);
        knobs::apply(&mut c, knobs);
        c.collector(if id == ConfigId::Null { Collector::Null } else { Collector::DeferredReferenceCounting });
        if id == ConfigId::DrcO0 {
            c.cranelift_opt_level(OptLevel::None);
        }
        if id == ConfigId::PulleyDrc {
            c.target("pulley64")?;
        }
        // Collector, inlining, allocator, zeal, heap size, exceptions.
        api::configure(&mut c, id, zeal, gc_heap_initial)?;
        Ok(c)
    }

    fn engine(&mut self, case: &TestCase) -> wasmtime::Result<&(wasmtime::Engine, Linker<Host>)> {
        let knobs = crate::case::knobs::for_config(&case.plan.knobs, self.id);
        let key = match line::has(Cap::Zeal) {
            true => EngineKey {
                zeal: if self.collects() { case.plan.zeal } else { None },
                gc_heap_initial: case.plan.gc_heap_initial,
                knobs,
            },
            false => EngineKey { zeal: None, gc_heap_initial: None, knobs },
        };
        if !self.engines.contains_key(&key) {
            if self.engines.len() >= KEPT_ENGINES {
                self.engines.retain(|k, _| k.knobs.is_empty());
            }
            let engine = wasmtime::Engine::new(&Self::config(self.id, key.zeal, key.gc_heap_initial, &key.knobs)?)?;
            knobs::verify(&engine, &key.knobs).map_err(wasmtime::Error::msg)?;
            let mut linker = host_functions(&engine)?;
            if let Some(hook) = self.hook {
                linker.allow_shadowing(true);
                hook(&mut linker)?;
            }
            self.engines.insert(key.clone(), (engine, linker));
        }
        Ok(&self.engines[&key])
    }
}

/// The host functions generated modules may import (`case::host`).
fn host_functions(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<Host>> {
    type Caller<'a> = wasmtime::Caller<'a, Host>;
    let mut linker = Linker::new(engine);
    for &f in HostFunc::ALL {
        let name = f.name();
        match f {
            HostFunc::Gc => linker.func_wrap(host::MODULE, name, |mut caller: Caller<'_>| api::host_gc(&mut caller))?,
            HostFunc::GcAny => linker.func_wrap(
                host::MODULE,
                name,
                |mut caller: Caller<'_>, r: Option<Rooted<AnyRef>>| -> wasmtime::Result<Option<Rooted<AnyRef>>> {
                    api::host_gc(&mut caller)?;
                    Ok(r)
                },
            )?,
            HostFunc::GcExtern => linker.func_wrap(
                host::MODULE,
                name,
                |mut caller: Caller<'_>, r: Option<Rooted<ExternRef>>| -> wasmtime::Result<Option<Rooted<ExternRef>>> {
                    api::host_gc(&mut caller)?;
                    Ok(r)
                },
            )?,
            HostFunc::ExternNew => linker.func_wrap(
                host::MODULE,
                name,
                |mut caller: Caller<'_>, id: i32| -> wasmtime::Result<Option<Rooted<ExternRef>>> {
                    Ok(Some(ExternRef::new(&mut caller, id as u32)?))
                },
            )?,
            HostFunc::ExternId => linker.func_wrap(
                host::MODULE,
                name,
                |caller: Caller<'_>, r: Option<Rooted<ExternRef>>| -> wasmtime::Result<i32> {
                    Ok(match r {
                        None => -1,
                        Some(r) => match r.data(&caller)?.and_then(|d| d.downcast_ref::<u32>()) {
                            Some(id) => *id as i32,
                            None => -2,
                        },
                    })
                },
            )?,
        };
    }
    Ok(linker)
}

impl Engine for WasmtimeEngine {
    fn name(&self) -> String {
        self.id.name().to_string()
    }

    fn supports(&self, _case: &TestCase) -> bool {
        // Every module gcfuzz loads validates under `Profile::Gc`'s features,
        // all of which Wasmtime 48 runs natively and on Pulley.
        true
    }

    fn instantiate<'a>(&'a mut self, case: &TestCase) -> (Status, Option<Box<dyn Instance + 'a>>) {
        let (engine, linker) = match self.engine(case) {
            Ok(pair) => pair,
            Err(e) => return (Status::Error(format!("engine: {e:#}")), None),
        };
        let module = match Module::new(engine, &case.wasm) {
            Ok(m) => m,
            Err(e) => return (Status::Error(format!("compile: {e:#}")), None),
        };
        let limits = StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).table_elements(TABLE_LIMIT).build();
        let mut store = Store::new(engine, Host { limits });
        store.limiter(|host| &mut host.limits);
        locate::watch(&mut store);
        locate::running(&module, &case.wasm);
        if store.set_fuel(CALL_FUEL).is_err() {
            return (Status::Error("fuel not enabled".into()), None);
        }
        match linker.instantiate(&mut store, &module) {
            Ok(instance) => (Status::Returned(vec![]), Some(Box::new(WasmtimeInstance { store, instance }))),
            Err(e) => (classify(&mut store, e), None),
        }
    }
}

struct WasmtimeInstance {
    store: Store<Host>,
    instance: wasmtime::Instance,
}

impl Instance for WasmtimeInstance {
    fn call(&mut self, call: &Call) -> Status {
        let Some(func) = self.instance.get_func(&mut self.store, &call.export) else {
            return Status::Error(format!("no exported function {:?}", call.export));
        };
        if self.store.set_fuel(CALL_FUEL).is_err() {
            return Status::Error("fuel not enabled".into());
        }
        locate::call_begins();
        let mut scope = wasmtime::RootScope::new(&mut self.store);
        let ty = func.ty(&scope);
        if ty.params().len() != call.args.len() {
            return Status::Error(format!(
                "{} takes {} arguments, plan has {}",
                call.export,
                ty.params().len(),
                call.args.len()
            ));
        }
        let mut args = Vec::with_capacity(call.args.len());
        for (arg, param) in call.args.iter().zip(ty.params()) {
            match arg_val(&mut scope, arg, &param) {
                Ok(v) => args.push(v),
                // Making a host externref can find the GC heap full.
                Err(e) if is_gc_oom(&e) => return Status::Exhausted(Exhausted::GcHeapOutOfMemory),
                Err(e) => return Status::Error(format!("argument: {e:#}")),
            }
        }
        let mut results = vec![Val::I32(0); ty.results().len()];
        match func.call(&mut scope, &args, &mut results) {
            Ok(()) => {
                let mut walker = Walker::new();
                let values: wasmtime::Result<Vec<_>> =
                    results.into_iter().map(|v| walker.val(&mut scope, v, 0)).collect();
                match values {
                    Ok(values) => Status::Returned(values),
                    Err(e) => Status::Error(format!("walking results: {e:#}")),
                }
            }
            Err(e) => classify(&mut scope, e),
        }
    }

    fn collect(&mut self) {
        api::store_gc(&mut self.store);
    }

    fn gc_heap_bytes(&self) -> Option<u64> {
        api::gc_heap_bytes(&self.store)
    }

    fn fuel_used(&self) -> Option<u64> {
        Some(CALL_FUEL - self.store.get_fuel().ok()?)
    }

    fn state(&mut self) -> State {
        let mut scope = wasmtime::RootScope::new(&mut self.store);
        let exports: Vec<(String, wasmtime::Extern)> =
            self.instance.exports(&mut scope).map(|e| (e.name().to_string(), e.into_extern())).collect();
        let mut state = State::default();
        // One walker for the whole snapshot: aliasing between globals and
        // tables is part of the shape.
        let mut walker = Walker::new();
        for (name, ext) in exports {
            match ext {
                wasmtime::Extern::Global(g) => {
                    let v = g.get(&mut scope);
                    let shape = walker.val(&mut scope, v, 0).unwrap_or_else(walk_error);
                    state.globals.push((name, shape));
                }
                wasmtime::Extern::Memory(m) => {
                    let data = m.data(&scope);
                    let summary = MemorySummary { size: data.len() as u64, hash: xxhash_rust::xxh3::xxh3_64(data) };
                    state.memories.push((name, summary));
                }
                wasmtime::Extern::Table(t) => {
                    let size = t.size(&scope);
                    let mut elems = Vec::new();
                    for i in 0..size.min(TABLE_ELEMS as u64) {
                        let shape = match t.get(&mut scope, i) {
                            Some(r) => walker.val(&mut scope, r.into(), 0).unwrap_or_else(walk_error),
                            None => walk_error(wasmtime::Error::msg(format!("table element {i} unreadable"))),
                        };
                        elems.push(match shape {
                            Value::Ref(r) => r,
                            other => Shape::Func(format!("<non-reference table element {other}>")),
                        });
                    }
                    state.tables.push((name, TableSummary { size, elems }));
                }
                _ => {}
            }
        }
        state
    }
}

/// A walk that failed shows up as a value no other engine produces, so it is
/// reported as a mismatch rather than hidden.
fn walk_error(e: wasmtime::Error) -> Value {
    Value::Ref(Shape::Func(format!("<walk failed: {e}>")))
}

fn arg_val(store: &mut impl wasmtime::AsContextMut, arg: &Arg, ty: &ValType) -> wasmtime::Result<Val> {
    Ok(match (arg, ty) {
        (Arg::I32(v), _) => Val::I32(*v),
        (Arg::I64(v), _) => Val::I64(*v),
        (Arg::F32(v), _) => Val::F32(*v),
        (Arg::F64(v), _) => Val::F64(*v),
        (Arg::V128(v), _) => Val::V128((*v).into()),
        (Arg::Null, ValType::Ref(r)) => Val::null_ref(r.heap_type()),
        (Arg::Extern(id), _) => Val::ExternRef(Some(ExternRef::new(store, *id)?)),
        (Arg::I31(v), _) => Val::AnyRef(Some(AnyRef::from_i31(store, I31::wrapping_i32(*v)))),
        (Arg::Null, _) => return Err(wasmtime::Error::msg("null for non-reference parameter")),
    })
}

/// Maps a Wasmtime error to a status.
fn classify(store: &mut impl wasmtime::AsContextMut, e: wasmtime::Error) -> Status {
    // Only exceptions need the store (to take the pending one).
    #[cfg(not(wasmtime_exceptions))]
    let _ = store;
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::StackOverflow => Status::Exhausted(Exhausted::StackOverflow),
            Trap::OutOfFuel => Status::Exhausted(Exhausted::OutOfFuel),
            Trap::AllocationTooLarge => Status::Exhausted(Exhausted::AllocationTooLarge),
            Trap::UnreachableCodeReached => Status::Trapped(TrapClass::Unreachable),
            Trap::MemoryOutOfBounds => Status::Trapped(TrapClass::MemoryOutOfBounds),
            Trap::TableOutOfBounds => Status::Trapped(TrapClass::TableOutOfBounds),
            Trap::IndirectCallToNull => Status::Trapped(TrapClass::IndirectCallToNull),
            Trap::BadSignature => Status::Trapped(TrapClass::BadSignature),
            Trap::IntegerOverflow => Status::Trapped(TrapClass::IntegerOverflow),
            Trap::IntegerDivisionByZero => Status::Trapped(TrapClass::IntegerDivisionByZero),
            Trap::BadConversionToInteger => Status::Trapped(TrapClass::BadConversionToInteger),
            Trap::NullReference => Status::Trapped(TrapClass::NullReference),
            Trap::ArrayOutOfBounds => Status::Trapped(TrapClass::ArrayOutOfBounds),
            Trap::CastFailure => Status::Trapped(TrapClass::CastFailure),
            other => Status::Trapped(TrapClass::Other(format!("{other:?}"))),
        };
    }
    #[cfg(wasmtime_exceptions)]
    if e.is::<ThrownException>() {
        let mut store = store.as_context_mut();
        return match store.take_pending_exception() {
            Some(exn) => match Walker::new().exn(&mut store, exn, 0) {
                Ok(shape) => Status::Uncaught(shape),
                Err(e) => Status::Error(format!("walking exception: {e:#}")),
            },
            None => Status::Error("thrown exception without pending exception".into()),
        };
    }
    if is_gc_oom(&e) {
        return Status::Exhausted(Exhausted::GcHeapOutOfMemory);
    }
    if api::is_engine_bug(&e) {
        return Status::EngineBug(format!("{e:#}"));
    }
    let msg = format!("{e:#}");
    if msg.contains("resource limit exceeded")
        || msg.contains("memory minimum size")
        || msg.contains("table minimum size")
    {
        return Status::Exhausted(Exhausted::ResourceLimit);
    }
    Status::Error(msg)
}

/// Whether `e` says the GC heap is full. `GcHeapOutOfMemory<T>` carries the
/// value that did not fit, so its type varies: the message is what is common.
fn is_gc_oom(e: &wasmtime::Error) -> bool {
    e.is::<GcHeapOutOfMemory<()>>() || api::is_out_of_memory(e) || format!("{e:#}").contains("GC heap out of memory")
}

/// Walks GC references into shapes, numbering objects in first-seen order.
struct Walker {
    seen: Vec<Rooted<AnyRef>>,
    #[cfg(wasmtime_exceptions)]
    seen_exn: Vec<Rooted<ExnRef>>,
    ids: Vec<u32>,
    #[cfg(wasmtime_exceptions)]
    exn_ids: Vec<u32>,
    numbering: Numbering,
}

impl Walker {
    fn new() -> Walker {
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

    fn val(&mut self, store: &mut impl wasmtime::AsContextMut, v: Val, depth: usize) -> wasmtime::Result<Value> {
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
    fn exn(
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
