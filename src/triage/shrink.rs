//! Minimizing reproducers, keeping "same signature" as the predicate.
//! Candidates run through an [`Executor`] (worker processes in the CLI), so a
//! candidate that crashes the engine cannot kill the shrinker.
//!
//! Three passes: the instruction-level [`reduce`](super::reduce) (works on GC
//! modules), wasm-shrink (types, globals, sections; its mutators skip GC
//! modules), then the plan: calls the finding does not need are dropped.

use super::open::{check_all, config_names, open, pick};
use crate::case::TestCase;
use crate::engine::worker::Executor;
use crate::oracle::check_case;
use anyhow::{Result, bail};
use std::path::Path;

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
    let mut reproduces = |candidate: &TestCase, exec: &mut dyn Executor| -> Result<bool> {
        runs += 1;
        let report = check_case(candidate, configs, exec)?;
        Ok(report.findings.iter().any(|f| f.signature == signature))
    };
    if !reproduces(case, exec)? {
        bail!("does not reproduce {signature}");
    }
    // Every module, the main one first, then the linked ones from the last:
    // each candidate replaces one module and keeps the others.
    let input_size = size(case)?;
    let mut case = case.clone();
    for slot in std::iter::once(None).chain((0..case.plan.linked.len()).rev().map(Some)) {
        let module = match slot {
            None => case.wasm.clone(),
            Some(k) => case.linked()?.swap_remove(k),
        };
        let others = size(&case)? - module.len();
        let current = case.clone();
        let with = |wasm: &[u8]| current.with_module(slot, wasm);
        let mut report = |size: usize| on_smaller(others + size);
        let mut wasm = super::reduce::reduce(&module, |w| reproduces(&with(w), exec), &mut report)?;
        let info = wasm_shrink::WasmShrink::default().attempts(attempts).run(wasm.clone(), |w| {
            // Candidates with features gcfuzz does not load are not interesting.
            if wasmparser::Validator::new_with_features(crate::case::Profile::Gc.features()).validate_all(w).is_err() {
                return Ok(false);
            }
            reproduces(&with(w), exec)
        })?;
        if info.output.len() < wasm.len() {
            report(info.output.len());
            wasm = super::reduce::reduce(&info.output, |w| reproduces(&with(w), exec), &mut report)?;
        }
        case = with(&wasm);
    }
    // Drop calls, last first, while the finding stays.
    for i in (0..case.plan.calls.len()).rev() {
        let fewer = TestCase { wasm: case.wasm.clone(), plan: case.plan.without_call(i) };
        if reproduces(&fewer, exec)? {
            case = fewer;
        }
    }
    Ok(Shrunk { output_size: size(&case)?, case, input_size, runs })
}

/// The bytes of a case's modules, linked ones included.
fn size(case: &TestCase) -> Result<usize> {
    Ok(case.modules()?.iter().map(Vec::len).sum())
}

/// `gcfuzz shrink FILE`: shrinks the finding with `signature` (the first
/// one the file gives when `None`) on the configurations it involves and
/// writes `<name>.shrunk.wasm` and `.wat` beside the file (shrinking
/// `x.shrunk.wasm` again overwrites it). Returns the line to print.
pub fn shrink_file(
    file: &Path,
    signature: Option<&str>,
    attempts: u32,
    exec: &mut dyn Executor,
    on_smaller: impl Fn(&str, usize),
) -> Result<String> {
    let case = open(file)?.case;
    let report = check_all(&case, exec)?;
    let finding = pick(&report, signature, file)?;
    // Only the configurations the finding involves (and the reference).
    let all = config_names(&case, &[]);
    let mut configs: Vec<String> = all.iter().filter(|c| finding.configs.contains(c)).cloned().collect();
    if finding.kind.needs_reference() {
        configs.insert(0, all[0].clone());
    }
    on_smaller(&finding.signature, size(&case)?);
    let shrunk =
        shrink(&case, &finding.signature, &configs, exec, attempts, |size| on_smaller(&finding.signature, size))?;
    let stem = file.with_extension("");
    let stem = if stem.extension().is_some_and(|e| e == "shrunk") { stem.with_extension("") } else { stem };
    let wasm_out = stem.with_extension("shrunk.wasm");
    let wat_out = stem.with_extension("shrunk.wat");
    std::fs::write(&wasm_out, shrunk.case.to_module_bytes())?;
    std::fs::write(&wat_out, shrunk.case.to_wat())?;
    Ok(format!(
        "{}: {} -> {} bytes of Wasm ({:.0}% smaller), {} -> {} calls, {} runs; wrote {} and {}",
        finding.signature,
        shrunk.input_size,
        shrunk.output_size,
        100.0 * (1.0 - shrunk.output_size as f64 / shrunk.input_size.max(1) as f64),
        case.plan.calls.len(),
        shrunk.case.plan.calls.len(),
        shrunk.runs,
        wasm_out.display(),
        wat_out.display()
    ))
}
