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
mod compiled;
mod knobs;
pub mod locate;
mod typed;
mod walk;
pub mod wast;

use super::{CALL_FUEL, Engine, Held, Instance, callee, compile_modules, held_name, state_name};
use crate::case::host::{self, HostFunc, MEMORY_LIMIT, TABLE_LIMIT};
use crate::case::{Arg, Call, ConfigId, Knobs, TestCase, linked_name};
use crate::line::{self, Cap};
use crate::outcome::vocab::TABLE_ELEMS;
use crate::outcome::{Exhausted, MemorySummary, Ref as Shape, State, Status, TableSummary, TrapClass, Value};
use compat as api;
use compiled::EngineKey;
pub use compiled::{Compiled, Compiles};
use std::collections::HashMap;
use walk::Walker;
use wasmtime::{
    AnyRef, Collector, Config, ExternRef, GcHeapOutOfMemory, I31, Linker, OptLevel, Rooted, Store, StoreLimits,
    StoreLimitsBuilder, Trap, Val, ValType,
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

/// Engines a worker keeps per configuration: those of the default knobs
/// are few and reused by most cases; one per drawn knob set would grow
/// without bound.
const KEPT_ENGINES: usize = 16;

pub struct WasmtimeEngine {
    id: ConfigId,
    engines: HashMap<EngineKey, (wasmtime::Engine, Linker<Host>)>,
    /// The code compiled for earlier cases.
    pub compiled: Compiled,
    hook: Option<LinkerHook>,
    /// Hold results in roots that end with their call (tests only).
    drops_held_roots: bool,
}

impl WasmtimeEngine {
    pub fn new(id: ConfigId) -> WasmtimeEngine {
        assert!(id.is_wasmtime(), "{id} is not a Wasmtime configuration");
        WasmtimeEngine {
            id,
            engines: HashMap::new(),
            compiled: Compiled::default(),
            hook: None,
            drops_held_roots: false,
        }
    }

    /// This configuration with a host that drops its roots of the results it
    /// holds when each call ends, and hands them back to later calls anyway:
    /// what the tests' planted host round-trip bug uses.
    pub fn dropping_held_roots(id: ConfigId) -> WasmtimeEngine {
        WasmtimeEngine { drops_held_roots: true, ..WasmtimeEngine::new(id) }
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

    fn engine(&mut self, case: &TestCase) -> wasmtime::Result<EngineKey> {
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
                self.compiled.retain_engines(|k| k.knobs.is_empty());
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
        Ok(key)
    }
}

/// The host functions generated modules may import (`case::host`).
fn host_functions(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<Host>> {
    type Caller<'a> = wasmtime::Caller<'a, Host>;
    let mut linker = Linker::new(engine);
    for &f in HostFunc::ALL {
        let name = f.name();
        match f {
            HostFunc::Gc => linker.func_wrap(host::MODULE, name, |mut caller: Caller<'_>| api::collect(&mut caller))?,
            HostFunc::GcAny => linker.func_wrap(
                host::MODULE,
                name,
                |mut caller: Caller<'_>, r: Option<Rooted<AnyRef>>| -> wasmtime::Result<Option<Rooted<AnyRef>>> {
                    api::collect(&mut caller)?;
                    Ok(r)
                },
            )?,
            HostFunc::GcExtern => linker.func_wrap(
                host::MODULE,
                name,
                |mut caller: Caller<'_>, r: Option<Rooted<ExternRef>>| -> wasmtime::Result<Option<Rooted<ExternRef>>> {
                    api::collect(&mut caller)?;
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
        let drops_held_roots = self.drops_held_roots;
        let key = match self.engine(case) {
            Ok(key) => key,
            Err(e) => return (Status::Error(format!("engine: {e:#}")), None),
        };
        let modules = match compile_modules(case, |wasm| self.compiled.module(&key, &self.engines[&key].0, wasm)) {
            Ok(modules) => modules,
            Err(status) => return (status, None),
        };
        let (engine, linker) = &self.engines[&key];
        let linked = modules.len() - 1;
        let limits = StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).table_elements(TABLE_LIMIT).build();
        let mut store = Store::new(engine, Host { limits });
        store.limiter(|host| &mut host.limits);
        locate::watch(&mut store);
        locate::capture_host_calls(self.id == ConfigId::PulleyDrc);
        match case.modules() {
            Ok(wasm) => locate::running(&modules.iter().zip(&wasm).map(|(m, w)| (m, w.as_slice())).collect::<Vec<_>>()),
            Err(e) => return (Status::Error(format!("linked modules: {e:#}")), None),
        }
        if store.set_fuel(CALL_FUEL).is_err() {
            return (Status::Error("fuel not enabled".into()), None);
        }
        knobs::prepare_store(&mut store, &key.knobs);
        // Linked modules are registered in a copy of the cached linker, which
        // must not keep one case's instances for the next.
        let mut own_linker = (linked > 0).then(|| linker.clone());
        let mut instances = Vec::with_capacity(modules.len());
        for (i, module) in modules.iter().enumerate() {
            match own_linker.as_ref().unwrap_or(linker).instantiate(&mut store, module) {
                Ok(instance) => instances.push(instance),
                Err(e) => return (classify(&mut store, e), None),
            }
            if i < linked {
                let registered = own_linker.as_mut().map(|l| l.instance(&mut store, &linked_name(i), instances[i]));
                if let Some(Err(e)) = registered {
                    return (Status::Error(format!("linking {}: {e:#}", linked_name(i))), None);
                }
            }
        }
        (
            Status::Returned(vec![]),
            Some(Box::new(WasmtimeInstance { store, instances, held: Held::default(), drops_held_roots })),
        )
    }
}

struct WasmtimeInstance {
    store: Store<Host>,
    /// The linked modules' instances, then the main module's.
    instances: Vec<wasmtime::Instance>,
    held: Held<Keep>,
    drops_held_roots: bool,
}

/// A result the host holds for later calls, in one of Wasmtime's two
/// rooting forms: results of even-numbered calls are manually rooted
/// (owned roots, taken inside the call's `RootScope`, which ends with the
/// call), those of odd-numbered calls are scoped roots in the store's own
/// scope, which lasts as long as the instance. Lines without owned roots
/// hold every result the second way.
enum Keep {
    Val(Val),
    #[cfg(wasmtime_owned_roots)]
    Any(wasmtime::OwnedRooted<AnyRef>),
    #[cfg(wasmtime_owned_roots)]
    Extern(wasmtime::OwnedRooted<ExternRef>),
    #[cfg(all(wasmtime_owned_roots, wasmtime_exceptions))]
    Exn(wasmtime::OwnedRooted<ExnRef>),
}

impl Keep {
    fn new(store: &mut impl wasmtime::AsContextMut, v: Val, manual: bool) -> wasmtime::Result<Keep> {
        if !manual {
            return Ok(Keep::Val(v));
        }
        let _ = &store;
        Ok(match v {
            #[cfg(wasmtime_owned_roots)]
            Val::AnyRef(Some(r)) => Keep::Any(r.to_owned_rooted(store)?),
            #[cfg(wasmtime_owned_roots)]
            Val::ExternRef(Some(r)) => Keep::Extern(r.to_owned_rooted(store)?),
            #[cfg(all(wasmtime_owned_roots, wasmtime_exceptions))]
            Val::ExnRef(Some(r)) => Keep::Exn(r.to_owned_rooted(store)?),
            v => Keep::Val(v),
        })
    }

    fn val(&self, store: &mut impl wasmtime::AsContextMut) -> Val {
        let _ = &store;
        match self {
            Keep::Val(v) => *v,
            #[cfg(wasmtime_owned_roots)]
            Keep::Any(r) => Val::AnyRef(Some(r.to_rooted(store))),
            #[cfg(wasmtime_owned_roots)]
            Keep::Extern(r) => Val::ExternRef(Some(r.to_rooted(store))),
            #[cfg(all(wasmtime_owned_roots, wasmtime_exceptions))]
            Keep::Exn(r) => Val::ExnRef(Some(r.to_rooted(store))),
        }
    }
}

/// One call on `store` (a `RootScope` for manually rooted results), and its
/// results in the form the host holds them in.
fn make_call(
    store: &mut impl wasmtime::AsContextMut<Data = Host>,
    instance: wasmtime::Instance,
    call: &Call,
    held: &Held<Keep>,
    manual: bool,
    typed: bool,
) -> (Status, Option<Vec<Keep>>) {
    let Some(func) = instance.get_func(&mut *store, &call.export) else {
        return (Status::Error(format!("no exported function {:?}", call.export)), None);
    };
    if store.as_context_mut().set_fuel(CALL_FUEL).is_err() {
        return (Status::Error("fuel not enabled".into()), None);
    }
    locate::call_begins();
    let ty = func.ty(&*store);
    if ty.params().len() != call.args.len() {
        let message = format!("{} takes {} arguments, plan has {}", call.export, ty.params().len(), call.args.len());
        return (Status::Error(message), None);
    }
    let mut args = Vec::with_capacity(call.args.len());
    for (arg, param) in call.args.iter().zip(ty.params()) {
        if let Arg::Earlier { call, result } = arg {
            match held.get(*call, *result) {
                Ok(keep) => args.push(keep.val(store)),
                Err(status) => return (status, None),
            }
            continue;
        }
        match arg_val(store, arg, &param) {
            Ok(v) => args.push(v),
            // Making a host externref can find the GC heap full.
            Err(e) if is_gc_oom(&e) => return (Status::Exhausted(Exhausted::GcHeapOutOfMemory), None),
            Err(e) => return (Status::Error(format!("argument: {e:#}")), None),
        }
    }
    let typed = if typed { typed::call(store, &func, &args) } else { None };
    let returned = typed.unwrap_or_else(|| {
        let mut results = vec![Val::I32(0); ty.results().len()];
        func.call(&mut *store, &args, &mut results).map(|()| results)
    });
    match returned {
        Ok(results) => {
            let kept: wasmtime::Result<Vec<Keep>> = results.iter().map(|v| Keep::new(store, *v, manual)).collect();
            let mut walker = Walker::new();
            let values: wasmtime::Result<Vec<_>> = results.into_iter().map(|v| walker.val(store, v, 0)).collect();
            match (values, kept) {
                (Ok(values), Ok(kept)) => (Status::Returned(values), Some(kept)),
                (Err(e), _) | (_, Err(e)) => (Status::Error(format!("walking results: {e:#}")), None),
            }
        }
        Err(e) => (classify(store, e), None),
    }
}

impl Instance for WasmtimeInstance {
    fn call(&mut self, call: &Call) -> Status {
        let instance = match callee(call, self.instances.len()) {
            Ok(i) => self.instances[i],
            Err(status) => {
                self.held.push(None);
                return status;
            }
        };
        let manual = line::has(Cap::OwnedRoots) && self.held.next_call().is_multiple_of(2);
        // Every third call goes through the typed API where its signature
        // allows (`typed`), by call index, so a replay takes the same path.
        let typed = self.held.next_call() % 3 == 1;
        let (status, kept) = if self.drops_held_roots {
            let mut scope = wasmtime::RootScope::new(&mut self.store);
            make_call(&mut scope, instance, call, &self.held, false, typed)
        } else if manual {
            let mut scope = wasmtime::RootScope::new(&mut self.store);
            make_call(&mut scope, instance, call, &self.held, true, typed)
        } else {
            make_call(&mut self.store, instance, call, &self.held, false, typed)
        };
        self.held.push(kept);
        status
    }

    fn collect(&mut self) {
        // A failure here resurfaces as a trap or mismatch in the next call.
        let _ = api::collect(&mut self.store);
    }

    fn gc_heap_bytes(&self) -> Option<u64> {
        api::gc_heap_bytes(&self.store)
    }

    fn fuel_used(&self) -> Option<u64> {
        Some(CALL_FUEL - self.store.get_fuel().ok()?)
    }

    fn state(&mut self) -> State {
        let mut scope = wasmtime::RootScope::new(&mut self.store);
        let count = self.instances.len();
        let mut exports: Vec<(String, wasmtime::Extern)> = Vec::new();
        for (i, instance) in self.instances.iter().enumerate() {
            exports.extend(instance.exports(&mut scope).map(|e| (state_name(i, count, e.name()), e.into_extern())));
        }
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
        for (call, result, keep) in self.held.iter() {
            let v = keep.val(&mut scope);
            let shape = walker.val(&mut scope, v, 0).unwrap_or_else(walk_error);
            if matches!(shape, Value::Ref(_)) {
                state.held.push((held_name(call, result), shape));
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
        (Arg::Earlier { .. }, _) => return Err(wasmtime::Error::msg("held results are looked up by the caller")),
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
    // Older lines' DRC refuses an object past its header's size field with
    // an error rather than the `AllocationTooLarge` trap (31.0.0: "requested
    // allocation's size of 560024 is greater than the max supported size of
    // 524280", where Null trapped `AllocationTooLarge` on the same
    // allocation): the same implementation limit.
    if format!("{e:#}").contains("is greater than the max supported size") {
        return Status::Exhausted(Exhausted::AllocationTooLarge);
    }
    if api::is_engine_bug(&e) {
        // A build without debug assertions gets Wasmtime's own bug report
        // (a failed inline GC check) as an error; with them, Wasmtime panics
        // right away. Panicking here makes both builds report it alike: a
        // crash, located by the panic hook at the faulting Wasm operator.
        panic!("{e:#}");
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
