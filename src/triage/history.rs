//! Bugs that need history. Workers keep their engines across cases, so a
//! bug can depend on what earlier cases left in an engine (a type registry,
//! a free list): the case alone does not reproduce in a fresh worker. Given
//! the cases the worker ran before, [`shortest`] finds the shortest sequence
//! of them after which the case reproduces in a fresh worker, and returns the
//! case with that sequence as its plan's history, so the reproducer is still
//! one self-contained file.

use super::confirm;
use crate::case::TestCase;
use crate::engine::worker::Executor;
use anyhow::Result;

/// How many earlier cases a campaign keeps per worker for this search.
pub const KEPT: usize = 16;
/// Fresh-worker runs one search may take.
const ATTEMPTS: usize = 24;

/// `case` with the shortest sublist of `earlier` (order kept) after which it
/// gives `signature` in a fresh worker; `None` when even all of `earlier`
/// does not. Each attempt restarts `exec`.
pub fn shortest(
    case: &TestCase,
    earlier: &[TestCase],
    configs: &[String],
    signature: &str,
    exec: &mut dyn Executor,
) -> Result<Option<TestCase>> {
    let attempts = std::cell::Cell::new(0);
    let reproduces = |history: &[TestCase], exec: &mut dyn Executor| -> Result<bool> {
        attempts.set(attempts.get() + 1);
        let signatures = confirm::rerun(&case.with_history(history), configs, exec)?;
        Ok(signatures.iter().any(|s| s == signature))
    };
    if earlier.is_empty() || !reproduces(earlier, exec)? {
        return Ok(None);
    }
    // Remove chunks, halving their size, while the bug still shows.
    let mut kept: Vec<TestCase> = earlier.to_vec();
    let mut chunk = kept.len().div_ceil(2);
    while !kept.is_empty() {
        let mut start = 0;
        while start < kept.len() {
            if attempts.get() >= ATTEMPTS {
                return Ok(Some(case.with_history(&kept)));
            }
            let end = (start + chunk).min(kept.len());
            let without: Vec<TestCase> = kept[..start].iter().chain(&kept[end..]).cloned().collect();
            if reproduces(&without, exec)? {
                kept = without;
            } else {
                start = end;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    Ok(Some(case.with_history(&kept)))
}
