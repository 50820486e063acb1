//! The engine seam: every configuration under test or used as an oracle sits
//! behind [`Engine`] / [`Instance`], and [`execute`] drives any of them
//! through a [`TestCase`]'s plan to an [`Outcome`].
//!
//! Engine choice is data: a [`ConfigId`] names a configuration, and
//! [`real_engine`] builds it from its name (what worker processes receive).

pub mod fatal;
pub mod interp;
pub mod wasmi;
pub mod wasmtime;
pub mod worker;

use crate::case::{Arg, Call, ConfigId, TestCase};
use crate::outcome::{CallRecord, Outcome, Producers, State, Status};
use std::time::Instant;

/// Engine fuel per call: a backstop only. Generated modules carry their own
/// deterministic fuel (see `generate::MODULE_FUEL`); engine fuel is counted
/// differently by each engine, so running out of it is inconclusive.
pub const CALL_FUEL: u64 = 50_000_000;

/// One engine configuration. Long-lived: a worker keeps its engines across
/// cases so that engine set-up is paid once.
pub trait Engine {
    fn name(&self) -> String;
    /// Whether this engine can run the case at all. Checked before anything
    /// runs: an engine never fails half-way on an unsupported feature.
    fn supports(&self, case: &TestCase) -> bool;
    /// Compiles and instantiates the module (running its start function).
    /// Returns the status and, when it succeeded, the instance.
    fn instantiate<'a>(&'a mut self, case: &TestCase) -> (Status, Option<Box<dyn Instance + 'a>>);
}

/// A live instance of a module in one engine.
pub trait Instance {
    fn call(&mut self, call: &Call) -> Status;
    /// Forces a full collection from the host.
    fn collect(&mut self);
    /// Exported globals, memories and tables, GC references walked by shape.
    fn state(&mut self) -> State;
    /// The GC heap this instance's store holds, in bytes, where the engine
    /// tells.
    fn gc_heap_bytes(&self) -> Option<u64> {
        None
    }
    /// Engine fuel the last call consumed, where configurations count it
    /// alike (`CallRecord::fuel`).
    fn fuel_used(&self) -> Option<u64> {
        None
    }
    /// The operator that produced each result of the last call, where the
    /// engine tracks it (`Outcome::producers`).
    fn result_producers(&self) -> Vec<Option<String>> {
        vec![]
    }
    /// The operator that stored each exported global's value, by export
    /// name, where the engine tracks it.
    fn global_producers(&self) -> Vec<(String, String)> {
        vec![]
    }
}

/// The results an instance holds for later calls' [`Arg::Earlier`]
/// arguments: one entry per call made, in order (`None`: it did not return).
/// Each engine keeps its own value type (rooted as that engine requires).
pub struct Held<V>(Vec<Option<Vec<V>>>);

/// A held result's name in [`State::held`].
pub fn held_name(call: usize, result: usize) -> String {
    format!("call[{call}].result[{result}]")
}

impl<V> Default for Held<V> {
    fn default() -> Self {
        Held(Vec::new())
    }
}

impl<V> Held<V> {
    /// The number of the call about to be made.
    pub fn next_call(&self) -> usize {
        self.0.len()
    }

    pub fn push(&mut self, results: Option<Vec<V>>) {
        self.0.push(results);
    }

    /// Every held result with its call and result numbers, in call order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize, &V)> {
        self.0
            .iter()
            .enumerate()
            .flat_map(|(c, results)| results.iter().flatten().enumerate().map(move |(r, v)| (c, r, v)))
    }

    /// The value an [`Arg::Earlier`] names, or the status of a call that
    /// cannot be made without it (the same in every engine).
    pub fn get(&self, call: u32, result: u32) -> Result<&V, Status> {
        match self.0.get(call as usize) {
            Some(Some(results)) => results
                .get(result as usize)
                .ok_or_else(|| Status::Error(format!("argument: call {call} has no result {result}"))),
            Some(None) => Err(Status::Error(Arg::NOT_RETURNED.into())),
            None => Err(Status::Error(format!("argument: call {call} is not an earlier call"))),
        }
    }
}

/// The name an export of module `i` of a case's `count` takes in its
/// [`State`]: the main module's (the last) as it is, a linked module's
/// behind the name it is registered under.
pub fn state_name(i: usize, count: usize, name: &str) -> String {
    if i + 1 == count { name.to_string() } else { format!("{}.{name}", crate::case::linked_name(i)) }
}

/// Which of a case's `count` instances (linked ones first, the main one
/// last) `call` calls an export of, or how a call of a module the case
/// lacks fails, alike in every engine.
pub fn callee(call: &Call, count: usize) -> Result<usize, Status> {
    match call.module {
        None => Ok(count - 1),
        Some(i) if (i as usize) + 1 < count => Ok(i as usize),
        Some(i) => Err(Status::Error(format!("no linked module {i}"))),
    }
}

/// Compiles every module of `case`, linked ones first, with `compile`; the
/// first failure as the instantiation status, naming the linked module.
pub fn compile_modules<M, E: std::fmt::Display>(
    case: &TestCase,
    mut compile: impl FnMut(&[u8]) -> Result<M, E>,
) -> Result<Vec<M>, Status> {
    let wasms = case.modules().map_err(|e| Status::Error(format!("linked modules: {e:#}")))?;
    let mut modules = Vec::with_capacity(wasms.len());
    for (i, wasm) in wasms.iter().enumerate() {
        match compile(wasm) {
            Ok(m) => modules.push(m),
            Err(e) if i + 1 < wasms.len() => {
                return Err(Status::Error(format!("compile {}: {e}", crate::case::linked_name(i))));
            }
            Err(e) => return Err(Status::Error(format!("compile: {e}"))),
        }
    }
    Ok(modules)
}

/// The environment setting that keeps errors from capturing a Rust
/// backtrace, which the worker processes get as well
/// (`worker::parent`).
pub const NO_ERROR_BACKTRACES: (&str, &str) = ("RUST_LIB_BACKTRACE", "0");

/// Errors capture no Rust backtrace in this process. With `RUST_BACKTRACE`
/// set, as it often is where fuzzers run, Wasmtime's errors (anyhow's on
/// older lines) capture one each, and every Wasm trap is an error: 7% of an
/// input's time in the fuzz targets (README, "The libFuzzer targets"). Panics keep theirs
/// (`RUST_BACKTRACE`, and the crash report's hook forces one).
pub fn no_error_backtraces() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: called before the first input of a fuzz target, when no
        // thread of ours runs yet; libFuzzer's own threads do not read the
        // environment.
        unsafe { std::env::set_var(NO_ERROR_BACKTRACES.0, NO_ERROR_BACKTRACES.1) }
    });
}

/// Builds the named real engine configuration.
pub fn real_engine(name: &str) -> Option<Box<dyn Engine>> {
    let id = ConfigId::from_name(name)?;
    Some(match id {
        ConfigId::Wasmi => Box::new(wasmi::WasmiEngine::new()),
        ConfigId::Interp => Box::new(interp::InterpEngine::new()),
        _ => Box::new(wasmtime::WasmtimeEngine::new(id)),
    })
}

/// Runs `case`'s plan on `engine`. `None` when the engine does not support
/// the case. Calls stop after the first inconclusive one (later calls depend
/// on state the engines may legitimately disagree on).
pub fn execute(engine: &mut dyn Engine, case: &TestCase) -> Option<Outcome> {
    if !engine.supports(case) {
        return None;
    }
    let start = Instant::now();
    let config = engine.name();
    let (instantiate, instance) = engine.instantiate(case);
    let mut calls = Vec::new();
    let mut state = None;
    let mut gc_heap_bytes = None;
    let mut producers = Producers::default();
    if let Some(mut instance) = instance {
        let mut complete = true;
        for call in &case.plan.calls {
            if call.collect_before {
                instance.collect();
            }
            let status = instance.call(call);
            producers.results.push(instance.result_producers());
            let stop = status.is_exhausted();
            calls.push(CallRecord { export: call.export.clone(), status, fuel: instance.fuel_used() });
            if stop {
                complete = false;
                break;
            }
        }
        if complete {
            let mut s = instance.state();
            // Engines list exports in different orders (wasmi sorts them).
            s.globals.sort_by(|a, b| a.0.cmp(&b.0));
            s.memories.sort_by(|a, b| a.0.cmp(&b.0));
            s.tables.sort_by(|a, b| a.0.cmp(&b.0));
            state = Some(s);
            producers.globals = instance.global_producers();
        }
        gc_heap_bytes = instance.gc_heap_bytes();
    }
    let micros = start.elapsed().as_micros() as u64;
    Some(Outcome { config, instantiate, calls, state, micros, gc_heap_bytes, producers })
}
