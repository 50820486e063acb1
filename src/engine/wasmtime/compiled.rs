//! The code a Wasmtime configuration compiled, kept across cases: compiling
//! is most of what a case costs, and the plans of one module, confirmation
//! re-runs, shrinking candidates that change only the plan, and narrowing
//! all run the same bytes again.
//!
//! Compiled code belongs to one `wasmtime::Engine`, and a plan's zeal
//! counter needs an engine of its own (it is a `Config` setting). Wasmtime
//! treats the counter as a runtime setting, though: code serialized by an
//! engine loads into one that differs only in it (the compatibility check
//! of `Module::deserialize` skips it; it checks the collector, memory and
//! GC-heap reservations, guard sizes, whether they may move, the initial
//! GC-heap size, fuel, inlining, Cranelift's flags and the target), so such
//! code is moved rather than compiled again.

use crate::case::Knobs;
use std::collections::HashMap;
use wasmtime::Module;

/// Settings that need a separate `wasmtime::Engine`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct EngineKey {
    pub zeal: Option<u32>,
    pub gc_heap_initial: Option<u64>,
    pub knobs: Knobs,
}

/// Modules kept per configuration: the plans of one case's modules and the
/// re-runs that follow them; cleared when full.
const KEPT: usize = 32;

#[derive(Default)]
pub struct Compiled {
    /// By engine settings and exact bytes.
    modules: HashMap<(EngineKey, Vec<u8>), Module>,
    pub counts: Compiles,
}

/// How the modules a configuration ran were obtained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compiles {
    pub compiled: u64,
    /// Loaded from the code of an engine differing only in zeal.
    pub moved: u64,
    pub kept: u64,
}

impl Compiled {
    /// `wasm` compiled for `engine` (whose settings are `key`): kept,
    /// moved from a sibling engine's code, or compiled.
    pub(super) fn module(&mut self, key: &EngineKey, engine: &wasmtime::Engine, wasm: &[u8]) -> Result<Module, String> {
        let entry = (key.clone(), wasm.to_vec());
        if let Some(module) = self.modules.get(&entry) {
            self.counts.kept += 1;
            return Ok(module.clone());
        }
        let code_key = key.zeal_aside();
        let sibling = self.modules.iter().find(|((k, bytes), _)| bytes == wasm && k.zeal_aside() == code_key);
        let module = match sibling.map(|(_, m)| m.serialize()) {
            Some(Ok(code)) => {
                self.counts.moved += 1;
                // SAFETY: `code` is what this process's Wasmtime serialized a
                // moment ago, and `deserialize` refuses it if the engine's
                // compilation settings differ.
                unsafe { Module::deserialize(engine, &code) }
            }
            _ => {
                self.counts.compiled += 1;
                Module::new(engine, wasm)
            }
        }
        .map_err(|e| format!("{e:#}"))?;
        if self.modules.len() >= KEPT {
            self.modules.clear();
        }
        self.modules.insert(entry, module.clone());
        Ok(module)
    }

    /// Forgets the code of engines that are dropped (those `keep` refuses).
    pub(super) fn retain_engines(&mut self, keep: impl Fn(&EngineKey) -> bool) {
        self.modules.retain(|(k, _), _| keep(k));
    }
}

impl EngineKey {
    /// The settings compiled code depends on: all but the zeal counter.
    fn zeal_aside(&self) -> EngineKey {
        EngineKey { zeal: None, ..self.clone() }
    }
}
