//! Minimizing reproducers, keeping "same signature" as the predicate.
//! Candidates run through an [`Executor`] (worker processes in the CLI), so a
//! candidate that crashes the engine cannot kill the shrinker.
//!
//! Three passes: the instruction-level [`reduce`](crate::reduce) (works on GC
//! modules), wasm-shrink (types, globals, sections; its mutators skip GC
//! modules), then the plan: calls the finding does not need are dropped.

use crate::case::{Plan, TestCase};
use crate::differential::check_case;
use crate::worker::Executor;
use anyhow::{Result, bail};

pub struct Shrunk {
    pub case: TestCase,
    pub input_size: usize,
    pub output_size: usize,
    /// Candidates run.
    pub runs: u64,
}

/// Shrinks `case` while running it on `configs` still gives a finding with
/// `signature`. Calls of exports that vanished fail alike on every
/// configuration and so do not count as a difference. `on_smaller` hears of
/// each new smallest module size.
pub fn shrink(
    case: &TestCase,
    signature: &str,
    configs: &[String],
    exec: &mut dyn Executor,
    attempts: u32,
    mut on_smaller: impl FnMut(usize),
) -> Result<Shrunk> {
    let mut runs = 0;
    let mut reproduces = |wasm: &[u8], plan: &Plan, exec: &mut dyn Executor| -> Result<bool> {
        runs += 1;
        let candidate = TestCase { wasm: wasm.to_vec(), plan: plan.clone() };
        let report = check_case(&candidate, configs, exec)?;
        Ok(report.findings.iter().any(|f| f.signature == signature))
    };
    let mut plan = case.plan.clone();
    if !reproduces(&case.wasm, &plan, exec)? {
        bail!("does not reproduce {signature}");
    }
    let mut wasm = crate::reduce::reduce(&case.wasm, |w| reproduces(w, &plan, exec), &mut on_smaller)?;
    let info = wasm_shrink::WasmShrink::default().attempts(attempts).run(wasm.clone(), |w| {
        // Candidates with features gcfuzz does not load are not interesting.
        if wasmparser::Validator::new_with_features(crate::generate::Profile::Gc.features()).validate_all(w).is_err() {
            return Ok(false);
        }
        reproduces(w, &plan, exec)
    })?;
    if info.output.len() < wasm.len() {
        on_smaller(info.output.len());
        wasm = crate::reduce::reduce(&info.output, |w| reproduces(w, &plan, exec), &mut on_smaller)?;
    }
    // Drop calls, last first, while the finding stays.
    for i in (0..plan.calls.len()).rev() {
        let mut fewer = plan.clone();
        fewer.calls.remove(i);
        if reproduces(&wasm, &fewer, exec)? {
            plan = fewer;
        }
    }
    let output_size = wasm.len();
    Ok(Shrunk { case: TestCase { wasm, plan }, input_size: case.wasm.len(), output_size, runs })
}
