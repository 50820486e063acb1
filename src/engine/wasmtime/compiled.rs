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

use super::EngineKey;
use std::collections::HashMap;
use wasmtime::Module;

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

#[cfg(test)]
mod tests {
    use super::Compiles;
    use crate::case::{Arg, ConfigId, TestCase};
    use crate::engine::execute;
    use crate::engine::wasmtime::WasmtimeEngine;
    use crate::line::{self, Cap};
    use crate::outcome::{Status, Value};

    const MODULE: &str = r#"(module
      (type $s (struct (field (mut i32)) (field (mut (ref null $s)))))
      (global (export "g") (mut (ref null $s)) (ref.null $s))
      (func (export "f") (param i32) (result i32)
        (local $x (ref $s))
        (local.set $x (struct.new $s (local.get 0) (ref.null $s)))
        (struct.set $s 1 (local.get $x) (struct.new $s (i32.const 5) (local.get $x)))
        (struct.get $s 0 (struct.get $s 1 (local.get $x)))))"#;

    fn plan(arg: i32, zeal: Option<u32>, heap: Option<u64>) -> TestCase {
        let mut case = TestCase::from_module_bytes(MODULE.as_bytes()).unwrap();
        case.plan.calls.truncate(1);
        case.plan.calls[0].args = vec![Arg::I32(arg)];
        case.plan.zeal = zeal;
        case.plan.gc_heap_initial = heap;
        case
    }

    /// Plans of one module compile it once per set of compilation settings,
    /// and each runs as it does on a configuration that never saw the others.
    #[test]
    fn plans_of_one_module_reuse_its_code_and_run_as_on_a_fresh_engine() {
        let mut kept = WasmtimeEngine::new(ConfigId::Drc);
        let plans = [
            plan(1, Some(1), None),
            plan(2, Some(3), None),
            plan(3, None, None),
            plan(4, Some(1), None),
            plan(5, Some(1), Some(64 << 10)),
        ];
        for case in &plans {
            let mut again = kept.run_outcome(case);
            let mut fresh = WasmtimeEngine::new(ConfigId::Drc).run_outcome(case);
            (again.micros, fresh.micros) = (0, 0);
            assert_eq!(again, fresh);
            assert_eq!(again.calls[0].status, Status::Returned(vec![Value::I32(5)]));
        }
        let expected = match line::has(Cap::Zeal) {
            // The zeal counter is a runtime setting; the heap size is not.
            true => Compiles { compiled: 2, moved: 2, kept: 1 },
            // Lines without zeal take neither setting: one engine.
            false => Compiles { compiled: 1, moved: 0, kept: 4 },
        };
        assert_eq!(kept.compiled.counts, expected);
    }

    impl WasmtimeEngine {
        fn run_outcome(&mut self, case: &TestCase) -> crate::outcome::Outcome {
            execute(self, case).expect("supported")
        }
    }
}
