//! Minimizing reproducers with wasm-shrink, keeping "same signature" as the
//! predicate. Candidates run through an [`Executor`] (worker processes in the
//! CLI), so a candidate that crashes the engine cannot kill the shrinker.

use crate::case::TestCase;
use crate::differential::check_case;
use crate::worker::Executor;
use anyhow::{Result, bail};

pub struct Shrunk {
    pub case: TestCase,
    pub input_size: usize,
    pub output_size: usize,
}

/// Shrinks `case` while running it on `configs` still gives a finding with
/// `signature`. The plan is kept as it is: calls of exports that vanished
/// fail alike on every configuration and so do not count as a difference.
/// `on_smaller` hears of each new smallest module size.
pub fn shrink(
    case: &TestCase,
    signature: &str,
    configs: &[String],
    exec: &mut dyn Executor,
    attempts: u32,
    mut on_smaller: impl FnMut(usize),
) -> Result<Shrunk> {
    let reproduces = |wasm: &[u8], exec: &mut dyn Executor| -> Result<bool> {
        let candidate = TestCase { wasm: wasm.to_vec(), plan: case.plan.clone() };
        let report = check_case(&candidate, configs, exec)?;
        Ok(report.findings.iter().any(|f| f.signature == signature))
    };
    if !reproduces(&case.wasm, exec)? {
        bail!("does not reproduce {signature}");
    }
    let mut best = case.wasm.len();
    let info = wasm_shrink::WasmShrink::default().attempts(attempts).run(case.wasm.clone(), |wasm| {
        // Candidates wasm-smith would never produce (other features) are
        // not interesting: they cannot be loaded as gcfuzz cases.
        if wasmparser::Validator::new_with_features(crate::generate::Profile::Gc.features()).validate_all(wasm).is_err()
        {
            return Ok(false);
        }
        let interesting = reproduces(wasm, exec)?;
        if interesting && wasm.len() < best {
            best = wasm.len();
            on_smaller(best);
        }
        Ok(interesting)
    })?;
    Ok(Shrunk {
        case: TestCase { wasm: info.output, plan: case.plan.clone() },
        input_size: info.input_size as usize,
        output_size: info.output_size as usize,
    })
}
