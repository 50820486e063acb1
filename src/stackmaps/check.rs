//! One program on one configuration: compile, run, compare with the model.

use super::compile::{Plant, compile};
use super::model::expected;
use super::program::{CompileConfig, Program, TAG};
use super::runtime::{RUNTIME, Runtime};
use crate::oracle::Problem;
use anyhow::Result;

/// Compiles and runs `prog` under `config` in moving mode, returning what
/// the verifier found (empty: the stack maps are right).
pub fn check(prog: &Program, config: CompileConfig, plant: Plant) -> Result<Vec<Problem>> {
    let compiled = compile(prog, config, plant)?;
    let expected = expected(prog, true);
    RUNTIME.with(|rt| {
        *rt.borrow_mut() = Runtime {
            code: compiled.code.clone(),
            expected: expected.safepoints.clone(),
            moving: true,
            ..Runtime::default()
        }
    });
    let entry = compiled.module.get_finalized_function(compiled.entry);
    // SAFETY: `entry` was compiled above with this signature.
    let run: extern "C" fn(u64, u64) -> u64 = unsafe { std::mem::transmute(entry) };
    let result = run(TAG | 1, TAG | 2);
    let mut problems = RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        let mut problems = std::mem::take(&mut rt.problems);
        if rt.next != expected.safepoints.len() {
            problems.push(Problem {
                kind: "safepoint-count".into(),
                detail: format!("{} safepoints ran, the model has {}", rt.next, expected.safepoints.len()),
            });
        }
        if rt.observed != expected.observed {
            let i = rt.observed.iter().zip(&expected.observed).position(|(a, b)| a != b).unwrap_or(0);
            problems.push(Problem {
                kind: "missed-relocation".into(),
                detail: format!(
                    "observation #{i}: program saw {:#x?}, model {:#x?}",
                    rt.observed.get(i),
                    expected.observed.get(i)
                ),
            });
        }
        problems
    });
    if result != expected.result {
        problems.push(Problem {
            kind: "missed-relocation".into(),
            detail: format!("result {result:#x}, model {:#x}", expected.result),
        });
    }
    // The module (and its code) lives until here.
    drop(compiled);
    Ok(problems)
}
