//! What a campaign reports: its findings with their status, the counts of
//! what it ran and skipped, and where the time went. `Totals` adds up the
//! cases of all jobs into one [`Summary`].

use crate::case::{Arg, TestCase, allocates};
use crate::oracle::{CaseReport, FindingKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// What a finding of a campaign turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Reproduced in a fresh worker, and not a known bug.
    New,
    /// A known bug of this build (`crashes/`, `expected_on`).
    Known,
    /// Did not reproduce in a fresh worker: not a bug of the engine.
    Unreproducible,
}

#[derive(Debug, Serialize)]
pub struct FindingReport {
    pub kind: FindingKind,
    pub signature: String,
    pub summary: String,
    pub path: PathBuf,
    pub status: Status,
    pub seed: u64,
    pub index: u64,
    /// Which of the module's plans (absent: the first, its input's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<u32>,
}

/// Where the time went, summed over all jobs.
#[derive(Debug, Default, Serialize)]
pub struct TimeSplit {
    pub generate_secs: f64,
    /// Inside engines: compile, instantiate, run, walk (measured in workers).
    pub engine_secs: f64,
    pub compare_secs: f64,
    /// Confirming findings: a fresh worker re-running a case with a new
    /// finding, and the history searches for crashes that need one (wall
    /// time, engines included).
    pub triage_secs: f64,
    /// Everything else: process hand-off, bookkeeping, worker restarts.
    pub other_secs: f64,
    /// (generate + compare + other) / engine: the time outside engines per
    /// second inside them, triage aside.
    pub harness_overhead: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub generator: String,
    pub seed: u64,
    pub elapsed_secs: f64,
    /// Cases run: (module, plan) executions.
    pub execs: u64,
    pub execs_per_sec: f64,
    /// Generated modules run (each with up to `Options::plans` plans).
    pub modules: u64,
    /// Modules with at least one struct or array allocation.
    pub modules_with_gc: u64,
    pub modules_with_gc_share: f64,
    /// Cases whose plan changed Wasmtime settings from their defaults
    /// (`case::knobs`), and how often each knob was changed.
    pub with_knobs: u64,
    /// Cases passing a reference an earlier call returned back to a later
    /// call (`Arg::Earlier`).
    pub with_round_trips: u64,
    /// Cases of two and of three modules (`Plan::linked`).
    pub with_two_modules: u64,
    pub with_three_modules: u64,
    pub knobs_drawn: BTreeMap<String, u64>,
    pub engine_runs: BTreeMap<String, u64>,
    /// Seconds inside each configuration (compile, run, walk).
    pub engine_secs: BTreeMap<String, f64>,
    /// Cases with at least one mismatch / crash / timeout / worker past its
    /// memory limit.
    pub mismatches: u64,
    pub crashes: u64,
    pub timeouts: u64,
    /// Configuration runs left out of a case because another configuration
    /// of their collector family hung on it (`oracle::check`).
    pub skipped_after_hang: u64,
    pub out_of_memory: u64,
    /// Cases where a collector ran out of GC heap and Null did not come near
    /// the limit (`oracle::leak`).
    pub leaks: u64,
    /// Cases whose comparison stopped early for a legitimate reason, and
    /// those cases by reason (`compare::Verdict::Inconclusive`).
    pub inconclusive: u64,
    pub inconclusive_by_reason: BTreeMap<String, u64>,
    /// Cases that hit a known bug (`FindingReport::status`).
    pub known_hits: u64,
    /// Findings that did not reproduce in a fresh worker.
    pub unreproducible: u64,
    /// Of those, crashes whose history was not searched because triage had
    /// spent its share of the time (`campaign::run::TRIAGE_SHARE`).
    pub history_searches_skipped: u64,
    /// Generated cases not run because they contain a known bug's trigger
    /// (`Options::avoid`), by that bug's signature.
    pub avoided: BTreeMap<String, u64>,
    /// Inputs that did not produce a case (should be 0).
    pub generation_failures: u64,
    pub worker_restarts: u64,
    /// Of those, restarts a spare started ahead took over (`engine::worker`).
    pub warm_restarts: u64,
    pub errors: Vec<String>,
    pub findings: Vec<FindingReport>,
    pub time: TimeSplit,
}

impl Summary {
    /// The closing line of `gcfuzz run`.
    pub fn line(&self) -> String {
        let reasons: Vec<String> = self.inconclusive_by_reason.iter().map(|(why, n)| format!("{why} {n}")).collect();
        let inconclusive = match reasons.is_empty() {
            true => self.inconclusive.to_string(),
            false => format!("{} ({})", self.inconclusive, reasons.join(", ")),
        };
        let avoided: u64 = self.avoided.values().sum();
        let avoided = match avoided {
            0 => String::new(),
            n => format!(", {n} cases skipped by known bugs' avoid rules"),
        };
        let skipped = match self.history_searches_skipped {
            0 => String::new(),
            n => format!(" ({n} without a history search: triage had spent its share of the time)"),
        };
        let hangs = match self.skipped_after_hang {
            0 => String::new(),
            n => format!(", {n} configuration runs left out after a hang in their collector family"),
        };
        let restarts = match self.worker_restarts {
            0 => String::new(),
            n => format!(", {n} worker restarts ({} by a warm spare)", self.warm_restarts),
        };
        format!(
            "{} execs ({} modules) in {:.1}s ({:.1}/s), {:.0}% with GC allocations, {:.0}% with changed engine settings, {:.0}% with host round-trips, {:.0}%/{:.0}% with 2/3 modules, {inconclusive} inconclusive, {} findings ({} new, {} known in {} cases ({:.3}%), {} unreproducible{skipped}){avoided}{hangs}{restarts}; replay with --seed {}",
            self.execs,
            self.modules,
            self.elapsed_secs,
            self.execs_per_sec,
            100.0 * self.modules_with_gc_share,
            100.0 * self.with_knobs as f64 / self.execs.max(1) as f64,
            100.0 * self.with_round_trips as f64 / self.execs.max(1) as f64,
            100.0 * self.with_two_modules as f64 / self.execs.max(1) as f64,
            100.0 * self.with_three_modules as f64 / self.execs.max(1) as f64,
            self.findings.len(),
            self.count(Status::New),
            self.count(Status::Known),
            self.known_hits,
            100.0 * self.known_hits as f64 / self.execs.max(1) as f64,
            self.unreproducible,
            self.seed,
        )
    }

    /// The live progress line's text.
    pub(super) fn progress_line(&self, start: Instant) -> String {
        let s = self;
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let findings = s.findings.len();
        format!(
            "execs {} ({:.1}/s)  gc modules {:.0}%  inconclusive {:.1}%  findings {}",
            s.execs,
            s.execs as f64 / secs,
            100.0 * s.modules_with_gc as f64 / s.execs.max(1) as f64,
            100.0 * s.inconclusive as f64 / s.execs.max(1) as f64,
            findings
        )
    }

    /// Findings with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// 0 nothing new (known and unreproducible findings included), 1 new
    /// findings, 2 nothing could run.
    pub fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() && self.execs == 0 {
            2
        } else if self.count(Status::New) == 0 {
            0
        } else {
            1
        }
    }
}

#[derive(Default)]
pub(super) struct Totals {
    pub(super) summary: Summary,
    pub(super) wall_micros: u64,
    pub(super) generate_micros: u64,
    pub(super) engine_micros: u64,
    pub(super) compare_micros: u64,
    pub(super) triage_micros: u64,
}

impl Totals {
    /// Counts one case: its report, the findings stored (or counted) for
    /// it, the restarts of its job's worker during it (all, and those a
    /// spare took over), and where its time went.
    pub(super) fn count(
        &mut self,
        case: &TestCase,
        report: &CaseReport,
        stored: Vec<FindingReport>,
        (restarts, warm): (u64, u64),
        generate_micros: u64,
        wall_micros: u64,
    ) {
        let t = self;
        let s = &mut t.summary;
        s.execs += 1;
        s.modules_with_gc += allocates(&case.wasm) as u64;
        s.with_knobs += !case.plan.knobs.is_empty() as u64;
        s.with_round_trips +=
            case.plan.calls.iter().any(|c| c.args.iter().any(|a| matches!(a, Arg::Earlier { .. }))) as u64;
        s.with_two_modules += (case.plan.linked.len() == 1) as u64;
        s.with_three_modules += (case.plan.linked.len() == 2) as u64;
        for knob in case.plan.knobs.keys() {
            *s.knobs_drawn.entry(knob.name().to_string()).or_default() += 1;
        }
        if let Some(why) = &report.inconclusive {
            s.inconclusive += 1;
            *s.inconclusive_by_reason.entry(why.clone()).or_default() += 1;
        }
        s.known_hits += stored.iter().any(|f| f.status == Status::Known) as u64;
        s.unreproducible += stored.iter().filter(|f| f.status == Status::Unreproducible).count() as u64;
        for config in &report.ran {
            *s.engine_runs.entry(config.clone()).or_default() += 1;
        }
        let has = |k: FindingKind| report.findings.iter().any(|f| f.kind == k) as u64;
        s.mismatches += has(FindingKind::Mismatch);
        s.crashes += has(FindingKind::Crash);
        s.timeouts += has(FindingKind::Timeout);
        s.skipped_after_hang += report.skipped_after_hang.len() as u64;
        s.out_of_memory += has(FindingKind::OutOfMemory);
        s.leaks += has(FindingKind::Leak);
        s.worker_restarts += restarts;
        s.warm_restarts += warm;
        t.generate_micros += generate_micros;
        for o in &report.outcomes {
            t.engine_micros += o.micros;
            *t.summary.engine_secs.entry(o.config.clone()).or_default() += o.micros as f64 / 1e6;
        }
        t.compare_micros += report.compare_micros;
        t.wall_micros += wall_micros;
        t.summary.findings.extend(stored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(status: Status) -> FindingReport {
        FindingReport {
            kind: FindingKind::Crash,
            signature: "crash-x-00000000".into(),
            summary: String::new(),
            path: PathBuf::new(),
            status,
            seed: 0,
            index: 0,
            plan: None,
        }
    }

    /// Every finding a case stored or counted reaches the summary, with the
    /// case's counts and time.
    #[test]
    fn a_counted_case_brings_its_findings_and_figures_to_the_summary() {
        let case = TestCase::from_module_bytes(b"(module (func (export \"f\")))").unwrap();
        let report = CaseReport {
            ran: vec!["null".into(), "drc".into()],
            inconclusive: Some("OutOfFuel".into()),
            ..Default::default()
        };
        let mut t = Totals::default();
        t.count(&case, &report, vec![finding(Status::Known), finding(Status::New)], (2, 1), 10, 100);
        t.count(&case, &report, vec![], (3, 2), 10, 100);
        let s = &t.summary;
        assert_eq!((s.execs, s.findings.len(), s.known_hits, s.worker_restarts, s.warm_restarts), (2, 2, 1, 5, 3));
        assert_eq!((s.inconclusive, s.engine_runs["drc"]), (2, 2));
        assert_eq!((t.generate_micros, t.wall_micros), (20, 200));
        assert_eq!(s.exit_code(), 1);
    }

    #[test]
    fn only_new_findings_fail_a_campaign() {
        let mut s = Summary { execs: 10, ..Default::default() };
        assert_eq!(s.exit_code(), 0);
        s.findings = vec![finding(Status::Known), finding(Status::Unreproducible)];
        assert_eq!(s.exit_code(), 0);
        s.findings.push(finding(Status::New));
        assert_eq!(s.exit_code(), 1);
        let s = Summary { errors: vec!["no worker".into()], ..Default::default() };
        assert_eq!(s.exit_code(), 2);
    }
}
