//! wasmi 2.0: an independent interpreter, used as an oracle for modules inside
//! its feature set (MVP, reference types, bulk memory, multi-memory, tail
//! calls, extended constants; no GC, typed function references or
//! exceptions). Its `gc` import is a no-op: wasmi has no collector.

use super::{CALL_FUEL, Engine, Held, Instance, callee, compile_modules, held_name, state_name};
use crate::case::Profile;
use crate::case::host::{self, HostFunc, MEMORY_LIMIT, TABLE_LIMIT};
use crate::case::{Arg, Call, TestCase, linked_name};
use crate::outcome::vocab::{HeapName, TABLE_ELEMS, TypeName, signature};
use crate::outcome::{Exhausted, MemorySummary, Ref as Shape, State, Status, TableSummary, TrapClass, Value};
use wasmi::{
    Caller, Config, Extern, ExternRef, Func, Linker, Module, Nullable, Ref, Store, StoreLimits, StoreLimitsBuilder,
    TrapCode, Val, ValType,
};

struct Host {
    limits: StoreLimits,
}

pub struct WasmiEngine {
    engine: wasmi::Engine,
    linker: Linker<Host>,
}

impl Default for WasmiEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl WasmiEngine {
    pub fn new() -> WasmiEngine {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .wasm_multi_memory(true)
            .wasm_tail_call(true)
            .wasm_extended_const(true)
            .wasm_reference_types(true)
            .wasm_bulk_memory(true);
        let engine = wasmi::Engine::new(&config);
        let mut linker = Linker::new(&engine);
        // wasmi has no collector: the collecting functions only pass through.
        for &f in HostFunc::ALL.iter().filter(|f| f.in_profile(Profile::RefTypes)) {
            let name = f.name();
            match f {
                HostFunc::Gc => linker.func_wrap(host::MODULE, name, || {}),
                HostFunc::GcAny => unreachable!("not in the reference-types profile"),
                HostFunc::GcExtern => linker.func_wrap(host::MODULE, name, |r: Nullable<ExternRef>| r),
                HostFunc::ExternNew => linker.func_wrap(host::MODULE, name, |mut caller: Caller<'_, Host>, id: i32| {
                    Nullable::Val(ExternRef::new(&mut caller, id as u32))
                }),
                HostFunc::ExternId => {
                    linker.func_wrap(host::MODULE, name, |caller: Caller<'_, Host>, r: Nullable<ExternRef>| match r {
                        Nullable::Null => -1,
                        Nullable::Val(r) => r.data(&caller).downcast_ref::<u32>().map_or(-2, |id| *id as i32),
                    })
                }
            }
            .expect("fresh linker");
        }
        WasmiEngine { engine, linker }
    }
}

impl Engine for WasmiEngine {
    fn name(&self) -> String {
        "wasmi".into()
    }

    fn supports(&self, case: &TestCase) -> bool {
        let valid = |wasm: &[u8]| {
            wasmparser::Validator::new_with_features(Profile::RefTypes.features()).validate_all(wasm).is_ok()
        };
        case.modules().is_ok_and(|modules| modules.iter().all(|m| valid(m)))
    }

    fn instantiate<'a>(&'a mut self, case: &TestCase) -> (Status, Option<Box<dyn Instance + 'a>>) {
        let modules = match compile_modules(case, |wasm| Module::new(&self.engine, wasm)) {
            Ok(modules) => modules,
            Err(status) => return (status, None),
        };
        let linked = modules.len() - 1;
        let limits = StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).table_elements(TABLE_LIMIT).build();
        let mut store = Store::new(&self.engine, Host { limits });
        store.limiter(|host| &mut host.limits);
        if store.set_fuel(CALL_FUEL).is_err() {
            return (Status::Error("fuel not enabled".into()), None);
        }
        // Linked modules are registered in a copy of the engine's linker.
        let mut own_linker = (linked > 0).then(|| self.linker.clone());
        let mut instances = Vec::with_capacity(modules.len());
        for (i, module) in modules.iter().enumerate() {
            match own_linker.as_ref().unwrap_or(&self.linker).instantiate_and_start(&mut store, module) {
                Ok(instance) => instances.push(instance),
                Err(e) => return (classify(e), None),
            }
            if i < linked {
                let registered =
                    own_linker.as_mut().map(|l| l.instance(&mut store, &linked_name(i), instances[i]).err());
                if let Some(Some(e)) = registered {
                    return (Status::Error(format!("linking {}: {e}", linked_name(i))), None);
                }
            }
        }
        (Status::Returned(vec![]), Some(Box::new(WasmiInstance { store, instances, held: Held::default() })))
    }
}

struct WasmiInstance {
    store: Store<Host>,
    /// The linked modules' instances, then the main module's.
    instances: Vec<wasmi::Instance>,
    /// wasmi's references are store handles: held as they are.
    held: Held<Val>,
}

impl WasmiInstance {
    fn make_call(&mut self, call: &Call) -> (Status, Option<Vec<Val>>) {
        let instance = match callee(call, self.instances.len()) {
            Ok(i) => self.instances[i],
            Err(status) => return (status, None),
        };
        let Some(func) = instance.get_func(&self.store, &call.export) else {
            return (Status::Error(format!("no exported function {:?}", call.export)), None);
        };
        let ty = func.ty(&self.store);
        if ty.params().len() != call.args.len() {
            let message =
                format!("{} takes {} arguments, plan has {}", call.export, ty.params().len(), call.args.len());
            return (Status::Error(message), None);
        }
        let mut args = Vec::with_capacity(call.args.len());
        for (arg, ty) in call.args.iter().zip(ty.params()) {
            match arg {
                Arg::Earlier { call, result } => match self.held.get(*call, *result) {
                    Ok(v) => args.push(v.clone()),
                    Err(status) => return (status, None),
                },
                _ => args.push(arg_val(&mut self.store, arg, ty)),
            }
        }
        let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for_ty(*t)).collect();
        if self.store.set_fuel(CALL_FUEL).is_err() {
            return (Status::Error("fuel not enabled".into()), None);
        }
        match func.call(&mut self.store, &args, &mut results) {
            Ok(()) => (Status::Returned(results.iter().map(|v| value(&self.store, v)).collect()), Some(results)),
            Err(e) => (classify(e), None),
        }
    }
}

impl Instance for WasmiInstance {
    fn call(&mut self, call: &Call) -> Status {
        let (status, results) = self.make_call(call);
        self.held.push(results);
        status
    }

    fn collect(&mut self) {}

    fn state(&mut self) -> State {
        let count = self.instances.len();
        let mut exports: Vec<(String, Extern)> = Vec::new();
        for (i, instance) in self.instances.iter().enumerate() {
            exports.extend(instance.exports(&self.store).map(|e| (state_name(i, count, e.name()), e.into_extern())));
        }
        let mut state = State::default();
        for (name, ext) in exports {
            match ext {
                Extern::Global(g) => state.globals.push((name, value(&self.store, &g.get(&self.store)))),
                Extern::Memory(m) => {
                    let data = m.data(&self.store);
                    state.memories.push((
                        name,
                        MemorySummary { size: data.len() as u64, hash: xxhash_rust::xxh3::xxh3_64(data) },
                    ));
                }
                Extern::Table(t) => {
                    let size = t.size(&self.store);
                    let elems = (0..size.min(TABLE_ELEMS as u64))
                        .map(|i| match t.get(&self.store, i) {
                            Some(r) => ref_shape(&self.store, &r),
                            None => Shape::Func("<unreadable table element>".into()),
                        })
                        .collect();
                    state.tables.push((name, TableSummary { size, elems }));
                }
                Extern::Func(_) => {}
            }
        }
        for (call, result, v) in self.held.iter() {
            let shape = value(&self.store, v);
            if matches!(shape, Value::Ref(_)) {
                state.held.push((held_name(call, result), shape));
            }
        }
        state
    }
}

fn arg_val(store: &mut Store<Host>, arg: &Arg, ty: &ValType) -> Val {
    match arg {
        Arg::I32(v) => Val::I32(*v),
        Arg::I64(v) => Val::I64(*v),
        Arg::F32(v) => Val::F32(f32::from_bits(*v).into()),
        Arg::F64(v) => Val::F64(f64::from_bits(*v).into()),
        Arg::V128(v) => Val::V128((*v).into()),
        Arg::Extern(id) => Val::ExternRef(Nullable::Val(ExternRef::new(&mut *store, *id))),
        // No i31 in wasmi's feature set: any reference parameter here is
        // funcref or externref, so the plan only ever has nulls for them.
        // Held values are looked up by the caller.
        Arg::Null | Arg::I31(_) | Arg::Earlier { .. } => Val::default_for_ty(*ty),
    }
}

fn value(store: &Store<Host>, v: &Val) -> Value {
    match v {
        Val::I32(v) => Value::I32(*v),
        Val::I64(v) => Value::I64(*v),
        Val::F32(v) => Value::f32(v.to_bits()),
        Val::F64(v) => Value::f64(v.to_bits()),
        Val::V128(v) => Value::V128(v.as_u128()),
        Val::FuncRef(f) => Value::Ref(func_shape(store, f)),
        Val::ExternRef(e) => Value::Ref(extern_shape(store, e)),
    }
}

fn ref_shape(store: &Store<Host>, r: &Ref) -> Shape {
    match r {
        Ref::Func(f) => func_shape(store, f),
        Ref::Extern(e) => extern_shape(store, e),
    }
}

fn func_shape(store: &Store<Host>, f: &Nullable<Func>) -> Shape {
    match f {
        Nullable::Null => Shape::Null,
        Nullable::Val(f) => {
            let ty = f.ty(store);
            Shape::Func(signature(ty.params().iter().map(val_desc), ty.results().iter().map(val_desc)))
        }
    }
}

fn extern_shape(store: &Store<Host>, e: &Nullable<ExternRef>) -> Shape {
    match e {
        Nullable::Null => Shape::Null,
        Nullable::Val(e) => match e.data(store).downcast_ref::<u32>() {
            Some(id) => Shape::Extern(*id),
            None => Shape::Func("<foreign externref>".into()),
        },
    }
}

fn val_desc(t: &ValType) -> TypeName {
    match t {
        ValType::I32 => TypeName::I32,
        ValType::I64 => TypeName::I64,
        ValType::F32 => TypeName::F32,
        ValType::F64 => TypeName::F64,
        ValType::V128 => TypeName::V128,
        ValType::FuncRef => TypeName::Ref { nullable: true, heap: HeapName::Func },
        ValType::ExternRef => TypeName::Ref { nullable: true, heap: HeapName::Extern },
    }
}

fn classify(e: wasmi::Error) -> Status {
    match e.as_trap_code() {
        Some(code) => match code {
            TrapCode::StackOverflow => Status::Exhausted(Exhausted::StackOverflow),
            TrapCode::OutOfFuel => Status::Exhausted(Exhausted::OutOfFuel),
            TrapCode::OutOfSystemMemory | TrapCode::GrowthOperationLimited => {
                Status::Exhausted(Exhausted::ResourceLimit)
            }
            TrapCode::UnreachableCodeReached => Status::Trapped(TrapClass::Unreachable),
            TrapCode::MemoryOutOfBounds => Status::Trapped(TrapClass::MemoryOutOfBounds),
            TrapCode::TableOutOfBounds => Status::Trapped(TrapClass::TableOutOfBounds),
            TrapCode::IndirectCallToNull => Status::Trapped(TrapClass::IndirectCallToNull),
            TrapCode::IntegerDivisionByZero => Status::Trapped(TrapClass::IntegerDivisionByZero),
            TrapCode::IntegerOverflow => Status::Trapped(TrapClass::IntegerOverflow),
            TrapCode::BadConversionToInteger => Status::Trapped(TrapClass::BadConversionToInteger),
            TrapCode::BadSignature => Status::Trapped(TrapClass::BadSignature),
        },
        None => {
            use wasmi::errors::{ErrorKind, InstantiationError};
            // Segment initialization out of bounds is a trap by the spec;
            // wasmi reports element segments as an instantiation error.
            if let ErrorKind::Instantiation(InstantiationError::ElementSegmentDoesNotFit { .. }) = e.kind() {
                return Status::Trapped(TrapClass::TableOutOfBounds);
            }
            let msg = e.to_string();
            if msg.contains("limit") { Status::Exhausted(Exhausted::ResourceLimit) } else { Status::Error(msg) }
        }
    }
}
