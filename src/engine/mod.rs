//! The engine seam: every configuration under test or used as an oracle sits
//! behind [`Engine`] / [`Instance`], and [`execute`] drives any of them
//! through a [`TestCase`]'s plan to an [`Outcome`].
//!
//! Engine choice is data: a [`ConfigId`] names a configuration, and
//! [`real_engine`] builds it from its name (what worker processes receive).

pub mod interp;
pub mod wasmi;
pub mod wasmtime;
pub mod wasmtime_api;

use crate::case::{Call, TestCase};
use crate::outcome::{CallRecord, Outcome, State, Status};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Instant;

/// Engine fuel per call: a backstop only. Generated modules carry their own
/// deterministic fuel (see `generate::MODULE_FUEL`); engine fuel is counted
/// differently by each engine, so running out of it is inconclusive.
pub const CALL_FUEL: u64 = 50_000_000;

/// Linear memory and table limits, identical in every engine so that
/// `memory.grow` / `table.grow` fail at the same point.
pub const MEMORY_LIMIT: usize = 16 << 20;
pub const TABLE_LIMIT: usize = 10_000;

/// The configurations gcfuzz knows. The first three and the interpreter run
/// on every case; one of [`ConfigId::VARIANTS`] joins them per case; wasmi
/// joins cases inside its feature set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigId {
    /// Wasmtime, Cranelift native, Null collector: never collects, so it is
    /// the ground truth for rooting. The reference configuration.
    Null,
    /// Deferred reference counting collector, zeal-forced collections.
    Drc,
    /// Copying collector: moves objects, so a missed root becomes a stale
    /// pointer rather than a leak.
    Copying,
    /// DRC with Cranelift optimizations off.
    DrcO0,
    /// DRC with the single-pass register allocator.
    DrcSinglepass,
    /// Copying with Wasm-to-Wasm inlining on (stack maps of inlined frames).
    CopyingInline,
    /// Pulley, Wasmtime's interpreter, with DRC.
    PulleyDrc,
    /// wasmi 2.0 as an independent oracle for modules in its feature set.
    Wasmi,
    /// gcfuzz's own reference interpreter: the independent oracle for GC
    /// modules (it runs every case).
    Interp,
}

impl ConfigId {
    pub const ALL: &'static [ConfigId] = &[
        ConfigId::Null,
        ConfigId::Drc,
        ConfigId::Copying,
        ConfigId::DrcO0,
        ConfigId::DrcSinglepass,
        ConfigId::CopyingInline,
        ConfigId::PulleyDrc,
        ConfigId::Wasmi,
        ConfigId::Interp,
    ];
    /// One of these joins each generated case.
    pub const VARIANTS: &'static [ConfigId] =
        &[ConfigId::DrcO0, ConfigId::DrcSinglepass, ConfigId::CopyingInline, ConfigId::PulleyDrc];

    pub fn name(self) -> &'static str {
        match self {
            ConfigId::Null => "null",
            ConfigId::Drc => "drc",
            ConfigId::Copying => "copying",
            ConfigId::DrcO0 => "drc-o0",
            ConfigId::DrcSinglepass => "drc-singlepass",
            ConfigId::CopyingInline => "copying-inline",
            ConfigId::PulleyDrc => "pulley-drc",
            ConfigId::Wasmi => "wasmi",
            ConfigId::Interp => "interp",
        }
    }

    /// Whether this is a Wasmtime configuration (not an independent oracle).
    pub fn is_wasmtime(self) -> bool {
        !matches!(self, ConfigId::Wasmi | ConfigId::Interp)
    }

    pub fn from_name(name: &str) -> Option<ConfigId> {
        ConfigId::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for ConfigId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
    if let Some(mut instance) = instance {
        let mut complete = true;
        for call in &case.plan.calls {
            if call.collect_before {
                instance.collect();
            }
            let status = instance.call(call);
            let stop = status.is_exhausted() || matches!(status, Status::EngineBug(_));
            calls.push(CallRecord { export: call.export.clone(), status });
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
        }
    }
    Some(Outcome { config, instantiate, calls, state, micros: start.elapsed().as_micros() as u64 })
}

/// Renders a function type as `(params)->(results)`: the identity funcrefs
/// and exception tags are compared by.
pub fn signature<P: fmt::Display, R: fmt::Display>(
    params: impl IntoIterator<Item = P>,
    results: impl IntoIterator<Item = R>,
) -> String {
    let join = |items: Vec<String>| items.join(" ");
    format!(
        "({})->({})",
        join(params.into_iter().map(|p| p.to_string()).collect()),
        join(results.into_iter().map(|r| r.to_string()).collect())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_round_trip() {
        for &id in ConfigId::ALL {
            assert_eq!(ConfigId::from_name(id.name()), Some(id));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{}\"", id.name()));
        }
        assert_eq!(ConfigId::from_name("nope"), None);
    }
}
