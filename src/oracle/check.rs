//! One differential check: run a case on its configurations, turn crashes,
//! engine-reported bugs, timeouts, disagreements and leaks into findings.

use super::compare::{check_expected, compare_all, name_producers};
use super::finding::{Finding, FindingKind, normalize_message, significant_frames};
use crate::case::TestCase;
use crate::engine::worker::{Executor, RunResult};
use crate::outcome::{CrashInfo, Outcome, Status};
use anyhow::Result;
use std::time::Instant;

/// What one case came to.
#[derive(Debug, Default)]
pub struct CaseReport {
    /// Outcomes in plan order, the reference first.
    pub outcomes: Vec<Outcome>,
    pub findings: Vec<Finding>,
    /// Why some comparison stopped early (resource exhaustion, fuel), by
    /// class (`compare::Verdict::Inconclusive`).
    pub inconclusive: Option<String>,
    /// Configurations that ran (crashed ones included).
    pub ran: Vec<String>,
    /// Time spent comparing, in microseconds.
    pub compare_micros: u64,
}

/// Runs `case` on `configs` (the first is the reference) and judges it,
/// after the earlier cases of its history (`Plan::history`).
pub fn check_case(case: &TestCase, configs: &[String], exec: &mut dyn Executor) -> Result<CaseReport> {
    // The history a bug needs runs first, in the same engines; what it does
    // is not judged.
    for earlier in case.history()? {
        for config in configs {
            exec.run(&earlier, config)?;
        }
    }
    let mut report = CaseReport::default();
    for config in configs {
        let mut result = exec.run(case, config)?;
        if matches!(result, RunResult::TimedOut) {
            // A noisy machine can stall a worker once; a hang stalls it again.
            result = exec.run(case, config)?;
        }
        match result {
            RunResult::Unsupported => continue,
            RunResult::Outcome(outcome) => {
                if let Some(msg) = engine_bug(&outcome) {
                    report.findings.push(Finding::crash(
                        FindingKind::EngineBug,
                        CrashInfo {
                            config: config.clone(),
                            message: msg.to_string(),
                            location: None,
                            signal: None,
                            exit_code: None,
                            frames: vec![],
                            wasm: None,
                        },
                    ));
                }
                report.outcomes.push(outcome);
            }
            RunResult::Crashed(crash) => {
                // Rust's allocation-failure message: the memory limit was hit.
                let oom = crash.message.contains("memory allocation of");
                report
                    .findings
                    .push(Finding::crash(if oom { FindingKind::OutOfMemory } else { FindingKind::Crash }, crash))
            }
            RunResult::TimedOut => report.findings.push(Finding::crash(
                FindingKind::Timeout,
                CrashInfo {
                    config: config.clone(),
                    message: "exceeded the per-case time limit twice".into(),
                    location: None,
                    signal: None,
                    exit_code: None,
                    frames: vec![],
                    wasm: None,
                },
            )),
        }
        report.ran.push(config.clone());
    }
    located_like_native(&mut report.findings);
    // One finding per signature: the same panic on several configurations
    // is one bug seen by each of them.
    let mut merged: Vec<Finding> = Vec::new();
    for f in report.findings.drain(..) {
        match merged.iter_mut().find(|m| m.signature == f.signature) {
            Some(m) => {
                m.summary = match m.summary.split_once(" (also on ") {
                    Some((head, tail)) => {
                        format!("{head} (also on {}, {})", tail.trim_end_matches(')'), f.configs.join(", "))
                    }
                    None => format!("{} (also on {})", m.summary, f.configs.join(", ")),
                };
                m.configs.extend(f.configs);
            }
            None => merged.push(f),
        }
    }
    report.findings = merged;
    let start = Instant::now();
    let (mut mismatches, inconclusive) = compare_all(&report.outcomes);
    report.inconclusive = inconclusive;
    // The interpreter names the instruction behind a differing value; it
    // runs for that when the plan did not draw it, so the signature does not
    // depend on the draw.
    if mismatches.iter().any(|m| m.site.is_some()) {
        let drawn = report.outcomes.iter().find(|o| o.config == "interp");
        let extra = match drawn {
            Some(_) => None,
            None => match exec.run(case, "interp")? {
                RunResult::Outcome(o) => Some(o),
                _ => None,
            },
        };
        if let Some(tracer) = drawn.or(extra.as_ref()) {
            name_producers(&mut mismatches, tracer);
        }
    }
    if !mismatches.is_empty() {
        report.findings.push(Finding::mismatch(mismatches));
    }
    report.findings.extend(super::leak::findings(&report.outcomes));
    // Against the model, where the plan has one.
    let against_model: Vec<_> = report.outcomes.iter().filter_map(|o| check_expected(o, &case.plan)).collect();
    if !against_model.is_empty() {
        report.findings.push(Finding::mismatch(against_model));
    }
    report.compare_micros = start.elapsed().as_micros() as u64;
    Ok(report)
}

/// Pulley's frames are not on the native stack, so its panics name no Wasm
/// operator (`CrashInfo::wasm`). Where native code panicked the same way in
/// this case (message and frames), Pulley's panic is that bug at that place.
fn located_like_native(findings: &mut [Finding]) {
    let place =
        |c: &CrashInfo| format!("{}|{}", normalize_message(&c.message), significant_frames(&c.frames).join("|"));
    let located: Vec<(String, String)> =
        findings.iter().filter_map(|f| f.crash.as_ref()).filter_map(|c| Some((place(c), c.wasm.clone()?))).collect();
    for f in findings.iter_mut() {
        let Some(crash) = f.crash.as_ref().filter(|c| c.wasm.is_none() && c.config.starts_with("pulley")) else {
            continue;
        };
        let here = place(crash);
        if let Some((_, op)) = located.iter().find(|(p, _)| *p == here) {
            let crash = CrashInfo { wasm: Some(op.clone()), ..crash.clone() };
            *f = Finding::crash(f.kind, crash);
        }
    }
}

fn engine_bug(outcome: &Outcome) -> Option<&str> {
    std::iter::once(&outcome.instantiate).chain(outcome.calls.iter().map(|c| &c.status)).find_map(|s| match s {
        Status::EngineBug(msg) => Some(msg.as_str()),
        _ => None,
    })
}
