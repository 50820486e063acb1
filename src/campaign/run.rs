//! `gcfuzz run`: a fuzzing campaign over seeded random inputs, with jobs in
//! parallel (each with its own worker process), a live progress line, and
//! findings written to a working directory as they come: a new signature
//! only once a fresh worker has reproduced it (`triage::confirm`), one that
//! does not reproduce under `unreproducible/`. `crashes/` is read as the list
//! of known bugs and never written: `gcfuzz promote` moves a finding there.

use super::progress::Progress;
use super::summary::Totals;
pub use super::summary::{FindingReport, Status, Summary, TimeSplit};
use crate::case::{AvoidRule, ConfigId, TestCase, plan_input, seeded_input};
use crate::engine::worker::{Worker, WorkerCommand};
use crate::generate;
use crate::oracle::{FindingKind, check_case};
use crate::report::record::{self, Origin};
use crate::triage::open::config_names;
use crate::triage::{confirm, history};
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Options {
    pub generator: crate::generate::Generator,
    pub time: Duration,
    pub seed: u64,
    pub jobs: usize,
    /// Only these configurations take part (all of a plan's when empty).
    pub configs: Vec<ConfigId>,
    /// Where findings go (a working directory, `work/findings` by default);
    /// unreproducible ones under its `unreproducible/`.
    pub out: PathBuf,
    /// Signatures of the known bugs of this build (`crashes/` entries whose
    /// `expected_on` names it): counted, stored with their hits, not new.
    pub known: BTreeSet<String>,
    /// The known bugs' avoid rules (`Record::avoid`): generated cases that
    /// contain one are skipped and counted, not run.
    pub avoid: Vec<AvoidRule>,
    /// Wall-clock limit per configuration run.
    pub timeout: Duration,
    pub worker: WorkerCommand,
    /// Stop after this many cases (for tests and benchmarks).
    pub max_execs: Option<u64>,
    /// Plans run per generated module (`generate::replan`), each a case.
    pub plans: usize,
    pub stop: Arc<AtomicBool>,
}

/// Checks that a worker as the campaign starts it (memory limit included)
/// runs a small allocating module on every configuration without a finding:
/// a limit too small to start a worker is refused before the campaign
/// files its failures as bugs.
pub fn preflight(opts: &Options) -> anyhow::Result<()> {
    const PROBE: &str = r#"(module (type $s (struct (field i32)))
      (func (export "f") (result i32) (struct.get $s 0 (struct.new $s (i32.const 1)))))"#;
    let case = crate::case::TestCase::from_module_bytes(PROBE.as_bytes())?;
    let configs = config_names(&case, &opts.configs);
    let report = check_case(&case, &configs, &mut Worker::new(opts.worker.clone(), opts.timeout))?;
    if let Some(f) = report.findings.first() {
        anyhow::bail!(
            "a worker cannot run a trivial module under these settings (--memory-limit-mb too small?): {}",
            f.summary
        );
    }
    Ok(())
}

/// A campaign seed when none is given: time and process id.
pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ ((std::process::id() as u64) << 32)
}

/// Runs the campaign. Each stored finding is announced on stderr as it comes.
pub fn run(opts: &Options) -> Summary {
    let start = Instant::now();
    let deadline = start + opts.time;
    let next = AtomicU64::new(0);
    let totals = Mutex::new(Totals::default());
    let progress = Progress::new();
    let mut announced = 0;
    let confirmed = Mutex::new(BTreeSet::new());
    std::thread::scope(|s| {
        let jobs: Vec<_> =
            (0..opts.jobs.max(1)).map(|_| s.spawn(|| job(opts, deadline, &next, &totals, &confirmed))).collect();
        while !jobs.iter().all(|j| j.is_finished()) {
            std::thread::sleep(Duration::from_millis(200));
            let t = totals.lock().unwrap();
            for f in &t.summary.findings[announced..] {
                let status = match f.status {
                    Status::New => "new",
                    Status::Known => "known",
                    Status::Unreproducible => "unreproducible",
                };
                progress.println(&format!("{status} finding {}: {}", f.path.display(), f.summary));
            }
            announced = t.summary.findings.len();
            progress.update(start, || t.summary.progress_line(start));
        }
    });
    progress.finish();
    let mut t = totals.into_inner().unwrap();
    let s = &mut t.summary;
    s.seed = opts.seed;
    s.generator = opts.generator.name().to_string();
    s.elapsed_secs = start.elapsed().as_secs_f64();
    s.execs_per_sec = s.execs as f64 / s.elapsed_secs.max(1e-9);
    s.modules_with_gc_share = s.modules_with_gc as f64 / (s.execs.max(1)) as f64;
    let secs = |micros: u64| micros as f64 / 1e6;
    let outside = t.wall_micros.saturating_sub(t.engine_micros + t.triage_micros);
    s.time = TimeSplit {
        generate_secs: secs(t.generate_micros),
        engine_secs: secs(t.engine_micros),
        compare_secs: secs(t.compare_micros),
        triage_secs: secs(t.triage_micros),
        other_secs: secs(outside.saturating_sub(t.generate_micros + t.compare_micros)),
        harness_overhead: outside as f64 / (t.engine_micros.max(1)) as f64,
    };
    t.summary
}

/// The share of the jobs' wall time triage may take (with at least
/// [`TRIAGE_FLOOR`] for the first searches). Past it, a finding that would
/// need a history search is kept as unreproducible without one, and a
/// smaller case of a new signature is not re-run to replace the stored one:
/// on a line with many bugs (42.0.2, once the pass reached its `try_table`
/// stack-map bugs) searches of up to 24 fresh-worker runs each took nearly
/// all of a campaign's time (700 cases in 280 s against about 150 a second).
const TRIAGE_SHARE: f64 = 0.25;
const TRIAGE_FLOOR: Duration = Duration::from_secs(30);

/// Runs `f`, a confirmation or a history search, counting its wall time as
/// triage (apart from the harness overhead).
fn timed_triage<T>(totals: &Mutex<Totals>, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = f();
    totals.lock().unwrap().triage_micros += start.elapsed().as_micros() as u64;
    result
}

/// Whether an unreproducible finding may need history: a crash that says
/// where it happened (a panic, a fatal signal with frames), not a death with
/// nothing to tell (a worker killed from outside), a timeout or memory
/// exhaustion.
fn needs_history_search(f: &crate::oracle::Finding) -> bool {
    f.kind == FindingKind::Crash
        && f.crash.as_ref().is_some_and(|c| {
            (c.location.is_some() || !c.frames.is_empty()) && !c.message.starts_with("killed by signal")
        })
}

/// `confirmed`: the new signatures a fresh worker has reproduced in this
/// campaign, shared by the jobs (a signature is confirmed once). Each
/// generated module runs `opts.plans` plans, the first from its input, the
/// others drawn by `generate::replan`, one after the other in the same
/// worker, which keeps the code it compiled for the first.
fn job(
    opts: &Options,
    deadline: Instant,
    next: &AtomicU64,
    totals: &Mutex<Totals>,
    confirmed: &Mutex<BTreeSet<String>>,
) {
    let mut job = Job {
        opts,
        start: deadline - opts.time,
        totals,
        confirmed,
        worker: Worker::new(opts.worker.clone(), opts.timeout),
        fresh: Worker::new(opts.worker.clone(), opts.timeout),
        errors: 0,
        recent: VecDeque::new(),
        searched: BTreeSet::new(),
    };
    let plans = opts.plans.max(1) as u64;
    let over = |index: u64, plan: u64| {
        opts.stop.load(Ordering::Relaxed)
            || Instant::now() >= deadline
            || opts.max_execs.is_some_and(|max| index * plans + plan >= max)
    };
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if over(index, 0) {
            break;
        }
        let case_start = Instant::now();
        let input = seeded_input(opts.seed, index);
        let case = match generate::case_avoiding(opts.generator, &input, &opts.avoid) {
            Ok(case) => case,
            Err(_) => {
                totals.lock().unwrap().summary.generation_failures += 1;
                continue;
            }
        };
        if let Some(rule) = opts.avoid.iter().find(|r| case.hits(r)) {
            *totals.lock().unwrap().summary.avoided.entry(rule.signature.clone()).or_default() += plans;
            continue;
        }
        totals.lock().unwrap().summary.modules += 1;
        job.case(
            &case,
            Some(&input),
            Origin { seed: Some(opts.seed), index: Some(index), plan: None, file: None },
            case_start,
        );
        for plan in 1..plans {
            if over(index, plan) {
                break;
            }
            let start = Instant::now();
            let again = match generate::replan(opts.generator, &case, &plan_input(opts.seed, index, plan)) {
                Ok(Some(again)) => again,
                Ok(None) => break,
                Err(_) => {
                    totals.lock().unwrap().summary.generation_failures += 1;
                    continue;
                }
            };
            let origin = Origin { seed: Some(opts.seed), index: Some(index), plan: Some(plan as u32), file: None };
            job.case(&again, None, origin, start);
        }
    }
}

/// The case a campaign of `generator` with `seed` and the known bugs'
/// `avoid` rules ran as module `index`, plan `plan` (0: the module's own):
/// what a finding's `seed`, `index` and `plan` in the JSON summary name,
/// known hits included. `None` when the campaign ran no such case (the
/// module hit an avoid rule, or has fewer plans).
pub fn case_at(
    generator: generate::Generator,
    seed: u64,
    index: u64,
    plan: u64,
    avoid: &[AvoidRule],
) -> anyhow::Result<Option<TestCase>> {
    let case = generate::case_avoiding(generator, &seeded_input(seed, index), avoid)?;
    if avoid.iter().any(|r| case.hits(r)) {
        return Ok(None);
    }
    match plan {
        0 => Ok(Some(case)),
        plan => generate::replan(generator, &case, &plan_input(seed, index, plan)),
    }
}

/// A job's worker and what it remembers between cases.
struct Job<'a> {
    opts: &'a Options,
    /// When the campaign began (for the triage budget).
    start: Instant,
    totals: &'a Mutex<Totals>,
    confirmed: &'a Mutex<BTreeSet<String>>,
    worker: Worker,
    /// Runs confirmations and history searches, restarted for each (kept
    /// between cases so that its spare process is ready).
    fresh: Worker,
    /// Harness errors so far (ten stop the campaign).
    errors: usize,
    /// The cases the live worker process ran, oldest first (the history a
    /// crash may need), and the signatures whose history was searched.
    recent: VecDeque<TestCase>,
    searched: BTreeSet<String>,
}

/// Whether triage has spent its share ([`TRIAGE_SHARE`]) of the `jobs`'
/// time since `start`.
fn triage_over_budget(totals: &Mutex<Totals>, start: Instant, jobs: usize) -> bool {
    let budget = start.elapsed().mul_f64(TRIAGE_SHARE * jobs.max(1) as f64).max(TRIAGE_FLOOR);
    totals.lock().unwrap().triage_micros > budget.as_micros() as u64
}

impl Job<'_> {
    /// Runs, judges, stores and counts one case; `input` is the fuzz input
    /// it was generated from (a first plan's), `case_start` when its
    /// generation began.
    fn case(&mut self, case: &TestCase, input: Option<&[u8]>, origin: Origin, case_start: Instant) {
        let Job { opts, totals, confirmed, .. } = *self;
        let start = self.start;
        let over_budget = || triage_over_budget(totals, start, opts.jobs);
        let (worker, fresh, recent, searched) =
            (&mut self.worker, &mut self.fresh, &mut self.recent, &mut self.searched);
        let index = origin.index.unwrap_or_default();
        let generate_micros = case_start.elapsed().as_micros() as u64;
        let configs = config_names(case, &opts.configs);
        let (pid_before, spawned_before, restarts_before, warm_before) =
            (worker.pid(), worker.spawned, worker.restarts(), worker.warm_starts);
        let report = match check_case(case, &configs, worker) {
            Ok(report) => report,
            Err(e) => {
                self.errors += 1;
                let mut t = totals.lock().unwrap();
                t.summary.errors.push(format!("case {index}: {e:#}"));
                if self.errors >= 10 {
                    opts.stop.store(true, Ordering::Relaxed);
                }
                return;
            }
        };
        // A finding's signature and files are written before the case counts.
        let mut stored = Vec::new();
        let size = case.to_module_bytes().len();
        // The case's signatures in a fresh worker, run once for all its
        // findings that need it.
        let mut again: Option<anyhow::Result<Vec<String>>> = None;
        for f in &report.findings {
            // Only a case a fresh worker gives the signature again may become
            // the stored reproducer, so a fresh run is spent on a signature's
            // first case and on cases smaller than the stored one; any other
            // case is a hit of a reproducer that was confirmed when stored.
            // A known bug has its reproducer in `crashes/`: once one of its
            // cases is stored here, later hits are counted without a re-run
            // on every configuration (on a line with many known crashes
            // those re-runs were most of the harness's time).
            let known = opts.known.contains(&f.signature);
            let wanted = match record::stored_size(&opts.out, &f.signature) {
                None => true,
                Some(stored) => !known && size < stored && !over_budget(),
            };
            let (reproduces, gives_known) = if wanted {
                let rerun = || timed_triage(totals, || confirm::rerun(case, &configs, fresh));
                match again.get_or_insert_with(rerun) {
                    Ok(signatures) => {
                        (signatures.contains(&f.signature), signatures.iter().any(|s| opts.known.contains(s)))
                    }
                    Err(e) => {
                        totals.lock().unwrap().summary.errors.push(format!("confirming {}: {e:#}", f.signature));
                        (false, false)
                    }
                }
            } else {
                (false, false)
            };
            if reproduces {
                confirmed.lock().unwrap().insert(f.signature.clone());
            }
            let mut status = if opts.known.contains(&f.signature) {
                Status::Known
            } else if reproduces || !wanted || confirmed.lock().unwrap().contains(&f.signature) {
                Status::New
            } else if gives_known {
                // The same case gives a known bug in a fresh worker: the
                // first report was a degraded form of it.
                Status::Known
            } else {
                Status::Unreproducible
            };
            // A crash that needs what earlier cases left in the worker's
            // engines: the shortest such history makes it reproducible.
            let mut reproducer = None;
            let search =
                status == Status::Unreproducible && needs_history_search(f) && !searched.contains(&f.signature);
            if search && over_budget() {
                totals.lock().unwrap().summary.history_searches_skipped += 1;
            } else if search && searched.insert(f.signature.clone()) {
                let earlier: Vec<TestCase> = recent.iter().cloned().collect();
                match timed_triage(totals, || history::shortest(case, &earlier, &configs, &f.signature, fresh)) {
                    Ok(Some(with_history)) => {
                        confirmed.lock().unwrap().insert(f.signature.clone());
                        status = Status::New;
                        reproducer = Some(with_history);
                    }
                    Ok(None) => {}
                    Err(e) => totals.lock().unwrap().summary.errors.push(format!("history of {}: {e:#}", f.signature)),
                }
            }
            let dir = match status {
                Status::Unreproducible => opts.out.join("unreproducible"),
                _ => opts.out.clone(),
            };
            let as_reproducer = reproduces || reproducer.is_some() || status == Status::Unreproducible;
            let report_of = |path| FindingReport {
                kind: f.kind,
                signature: f.signature.clone(),
                summary: f.summary.clone(),
                path,
                status,
                seed: opts.seed,
                index,
                plan: origin.plan,
            };
            if !as_reproducer && record::stored_size(&dir, &f.signature).is_none() {
                // Nothing confirmed is stored under this signature (a known
                // bug this case does not repeat, or another job is storing
                // it): counted, not stored. The case's other findings and
                // its own count still follow.
                stored.push(report_of(dir.join(&f.signature)));
                continue;
            }
            let stored_case = reproducer.as_ref().unwrap_or(case);
            match record::store_wasm(&dir, f, stored_case, input, origin.clone(), &report.outcomes, as_reproducer) {
                Ok((path, _)) => stored.push(report_of(path)),
                Err(e) => totals.lock().unwrap().summary.errors.push(format!("storing {}: {e:#}", f.signature)),
            }
        }
        // What the live worker process has run: its history for the next
        // case. A process started for this case ran all of it; one started
        // after a crash in it ran only part of it, and begins with no history.
        let pid_after = worker.pid();
        let whole_case = pid_after.is_some()
            && (pid_after == pid_before || (pid_before.is_none() && worker.spawned == spawned_before + 1));
        if pid_after != pid_before {
            recent.clear();
        }
        if whole_case {
            recent.push_back(case.clone());
            if recent.len() > history::KEPT {
                recent.pop_front();
            }
        }
        // This case's restarts of the job's worker.
        let restarts = (worker.restarts() - restarts_before, worker.warm_starts - warm_before);
        let wall_micros = case_start.elapsed().as_micros() as u64;
        totals.lock().unwrap().count(case, &report, stored, restarts, generate_micros, wall_micros);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triage_takes_its_share_of_the_jobs_time_and_no_more() {
        let spent = |secs: u64| Mutex::new(Totals { triage_micros: secs * 1_000_000, ..Totals::default() });
        let ago = |secs: u64| Instant::now() - Duration::from_secs(secs);
        // 200 s of two jobs: a quarter is 100 s.
        assert!(!triage_over_budget(&spent(80), ago(200), 2));
        assert!(triage_over_budget(&spent(120), ago(200), 2));
        // One job has half that share.
        assert!(triage_over_budget(&spent(80), ago(200), 1));
        // At the start the floor lets the first searches run.
        assert!(!triage_over_budget(&spent(20), ago(1), 2));
        assert!(triage_over_budget(&spent(40), ago(1), 2));
    }
}
