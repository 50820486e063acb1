//! One differential check: run a case on its configurations, turn crashes,
//! timeouts, disagreements and leaks into findings.

use super::compare::{check_expected, compare_all, name_producers};
use super::finding::{Finding, FindingKind, family, normalize_message};
use super::frames::significant_frames;
use crate::case::TestCase;
use crate::engine::worker::{Executor, RunResult};
use crate::outcome::{CrashInfo, Outcome};
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
    /// Configurations not run because another of their collector family
    /// hung on this case.
    pub skipped_after_hang: Vec<String>,
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
    // Collector families one of whose configurations hung on this case: a
    // hang costs the time limit twice, and the family's other
    // configurations (other compilers, Pulley) mostly hang the same way (on
    // 42.0.2 DRC's hangs took 95% of a campaign's time), so they are left
    // out of this case; the hang is its finding.
    let mut hung: Vec<String> = Vec::new();
    for config in configs {
        if hung.iter().any(|f| f == family(config)) {
            report.skipped_after_hang.push(config.clone());
            continue;
        }
        let mut result = exec.run(case, config)?;
        if matches!(result, RunResult::TimedOut { .. }) {
            // A noisy machine can stall a worker once; a hang stalls it again.
            result = exec.run(case, config)?;
        }
        match result {
            RunResult::Unsupported => continue,
            RunResult::Outcome(outcome) => report.outcomes.push(outcome),
            RunResult::Crashed(crash) => {
                // Rust's allocation-failure message: the memory limit was hit.
                let oom = crash.message.contains("memory allocation of");
                report
                    .findings
                    .push(Finding::crash(if oom { FindingKind::OutOfMemory } else { FindingKind::Crash }, crash))
            }
            RunResult::TimedOut { frames } => {
                hung.push(family(config).to_string());
                report.findings.push(Finding::crash(
                    FindingKind::Timeout,
                    CrashInfo {
                        config: config.clone(),
                        message: "exceeded the per-case time limit twice".into(),
                        location: None,
                        signal: None,
                        exit_code: None,
                        // Where it hung: the innermost Wasm frame is the
                        // instruction that called out into the code that hangs.
                        wasm: frames.iter().find_map(|f| f.strip_prefix("wasm ")).map(str::to_owned),
                        frames,
                    },
                ))
            }
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

/// Pulley's frames are not on the native stack, so its crashes name no Wasm
/// operator (`CrashInfo::wasm`), and every fault inside its interpreter loop
/// is at the same place. Where native code panicked the same way in this
/// case (message and frames), Pulley's panic is that bug at that place.
/// Where, instead, native code of the same collector failed at a Wasm
/// operator in some other way, Pulley's crash joins that finding: Pulley has
/// no inline GC checks, so where native code stops at a corrupted object,
/// Pulley runs on with it and crashes later, one bug seen twice (the
/// merged finding lists both configurations). A Pulley crash with neither
/// keeps no location.
fn located_like_native(findings: &mut [Finding]) {
    let place =
        |c: &CrashInfo| format!("{}|{}", normalize_message(&c.message), significant_frames(&c.frames).join("|"));
    // Located crashes: (place, collector family, finding).
    let located: Vec<(String, String, Finding)> = findings
        .iter()
        .filter_map(|f| {
            let c = f.crash.as_ref().filter(|c| c.wasm.is_some())?;
            Some((place(c), family(&c.config).to_string(), f.clone()))
        })
        .collect();
    for f in findings.iter_mut() {
        let Some(crash) = f.crash.as_ref().filter(|c| c.wasm.is_none() && c.config.starts_with("pulley")) else {
            continue;
        };
        let here = place(crash);
        if let Some((_, _, twin)) = located.iter().find(|(p, _, _)| *p == here) {
            let op = twin.crash.as_ref().and_then(|c| c.wasm.clone());
            *f = Finding::crash(f.kind, CrashInfo { wasm: op, ..crash.clone() });
        } else if let Some((_, _, twin)) = located.iter().find(|(_, fam, _)| fam == family(&crash.config))
            && f.kind == FindingKind::Crash
        {
            *f = Finding { configs: f.configs.clone(), ..twin.clone() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DRC's configurations hang; the others cannot run the case.
    struct DrcHangs(Vec<String>);

    impl Executor for DrcHangs {
        fn run(&mut self, _case: &TestCase, config: &str) -> Result<RunResult> {
            self.0.push(config.to_string());
            Ok(match family(config) {
                "drc" => RunResult::TimedOut { frames: vec![] },
                _ => RunResult::Unsupported,
            })
        }
        fn restart(&mut self) {}
    }

    #[test]
    fn a_hang_leaves_its_collector_familys_other_configurations_out_of_the_case() {
        let case = TestCase::from_module_bytes(&wat::parse_str("(module)").unwrap()).unwrap();
        let configs: Vec<String> = ["null", "drc", "copying", "drc-o0", "pulley-drc"].map(String::from).to_vec();
        let mut exec = DrcHangs(vec![]);
        let report = check_case(&case, &configs, &mut exec).unwrap();
        // DRC twice (a stall once is noise), then no other DRC configuration.
        assert_eq!(exec.0, ["null", "drc", "drc", "copying"]);
        assert_eq!(report.skipped_after_hang, ["drc-o0", "pulley-drc"]);
        assert_eq!(report.findings.len(), 1);
        assert_eq!((report.findings[0].kind, &report.findings[0].configs[..]), (FindingKind::Timeout, &configs[1..2]));
    }

    fn crash(config: &str, message: &str, frames: &[&str], wasm: Option<&str>, signal: Option<i32>) -> Finding {
        Finding::crash(
            FindingKind::Crash,
            CrashInfo {
                config: config.into(),
                message: message.into(),
                location: None,
                signal,
                exit_code: None,
                frames: frames.iter().map(|f| f.to_string()).collect(),
                wasm: wasm.map(Into::into),
            },
        )
    }

    /// A Pulley crash joins the located native crash of its collector in the
    /// same case; alone, or beside another collector's, it stays itself.
    #[test]
    fn pulley_crashes_join_their_collectors_located_native_crash() {
        let corruption =
            || crash("drc", "BUG: gc heap corruption detected", &["wasmtime::bug"], Some("StructGet"), None);
        let fault = || crash("pulley-drc", "fatal signal SIGSEGV", &["pulley_interpreter::run"], None, Some(11));
        let mut findings = vec![corruption(), fault()];
        located_like_native(&mut findings);
        assert_eq!(findings[1].signature, corruption().signature);
        assert_eq!(findings[1].configs, ["pulley-drc"]);
        let mut alone = vec![fault()];
        located_like_native(&mut alone);
        assert_eq!(alone[0].signature, fault().signature);
        let other_collector =
            || crash("copying", "BUG: gc heap corruption detected", &["wasmtime::bug"], Some("StructGet"), None);
        let mut beside = vec![other_collector(), fault()];
        located_like_native(&mut beside);
        assert_eq!(beside[1].signature, fault().signature);
        // The same panic on Pulley takes the native place but stays a panic.
        let panic =
            |config: &str, wasm| crash(config, "assertion failed: x", &["wasmtime::gc::is_subtype"], wasm, None);
        let mut same = vec![panic("drc", Some("RefTestNonNull")), panic("pulley-drc", None)];
        located_like_native(&mut same);
        assert_eq!(same[1].signature, same[0].signature);
        assert_ne!(same[1].signature, panic("pulley-drc", None).signature);
    }
}
