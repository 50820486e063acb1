//! `gcfuzz nightly`: the scheduled job. Builds the libFuzzer targets with
//! cargo-fuzz, runs each for its share of the time budget on all cores
//! (libFuzzer's fork mode) against a persistent working corpus, merges the
//! corpus, triages every new crash artifact into a findings directory
//! (`crashes/` is only read, as the known bugs), and
//! writes `report.json`, `report.md` and a self-contained `report.html`.
//!
//! Everything it keeps lives in the work directory: `corpus/<target>/`
//! (libFuzzer adds to it as it goes), `artifacts/<target>/` (libFuzzer writes
//! crashes there at once; triaged ones move to `artifacts/<target>/done/`
//! only after their finding is stored, each beside the crash report the
//! target wrote as it crashed: `reports/<target>/` until then) and the
//! reports. A job killed midway therefore loses nothing: the next start
//! triages what is left.

use crate::engine::fatal;
use crate::engine::worker::{Worker, WorkerCommand};
use crate::generate::Generator;
use crate::report::nightly::{Point, Report, SignatureRow, TargetReport};
use crate::triage;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a target's crash artifacts are triaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A Wasm case made by this generator.
    Wasm(Generator),
    /// A stack-map verifier program.
    Stackmaps,
}

/// The libFuzzer targets.
pub const TARGETS: &[(&str, Kind)] = &[
    ("differential", Kind::Wasm(Generator::Rooted)),
    ("gc_stress", Kind::Wasm(Generator::GcStress)),
    ("stackmaps", Kind::Stackmaps),
];

pub struct Options {
    /// Total fuzzing time, shared among the targets.
    pub time: Duration,
    pub work: PathBuf,
    pub targets: Vec<String>,
    pub jobs: usize,
    /// The directory findings are triaged into.
    pub out: PathBuf,
    /// The crash directory of known bugs (read only).
    pub known: PathBuf,
    /// Where the checked-in seed corpora are (`corpus/<target>/`).
    pub seeds: PathBuf,
    /// Skip the cargo-fuzz build (binaries already built).
    pub no_build: bool,
    /// cargo-fuzz's `--sanitizer` (`none` or `address`).
    pub sanitizer: String,
    /// Per-input limits passed to libFuzzer.
    pub input_timeout_secs: u64,
    pub rss_limit_mb: u64,
}

/// Parses a libFuzzer status line (plain or fork mode), e.g.
/// `#145: cov: 85253 ft: 209091 corp: 85 exec/s: 1 oom/timeout/crash: 0/0/0 time: 20s job: 1`.
pub fn parse_status(line: &str, started: Instant) -> Option<Point> {
    let line = line.trim();
    let rest = line.strip_prefix('#')?;
    let mut words = rest.split_whitespace();
    let execs = words.next()?.trim_end_matches(':').parse().ok()?;
    let mut point = Point { execs, secs: started.elapsed().as_secs_f64(), ..Point::default() };
    let words: Vec<&str> = words.collect();
    for pair in words.windows(2) {
        let value = || pair[1].trim_end_matches(|c: char| !c.is_ascii_digit()).parse::<u64>().ok();
        match pair[0] {
            "cov:" => point.cov = value()?,
            "ft:" => point.ft = value()?,
            "corp:" => point.corpus = pair[1].split('/').next()?.parse().ok()?,
            "time:" => point.secs = value()? as f64,
            _ => {}
        }
    }
    (point.cov > 0 || point.ft > 0).then_some(point)
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().is_file()).count()).unwrap_or(0)
}

/// Builds the fuzz targets: optimized, debug assertions on, `sanitizer`
/// (`none` by default: ASan cost 2.6x the `differential` executions and
/// sees neither the JIT code nor into the GC heap, README), and `--cfg fuzzing` (which turns
/// Wasmtime's `gc_zeal` on), against the Wasmtime line this gcfuzz was
/// built for, so that triage judges the artifacts on the same engine.
/// Compare tracing is off: it makes `gc_zeal`'s byte-wise heap poison
/// checks dominate (README).
pub fn build(root: &Path, sanitizer: &str) -> Result<()> {
    let status = Command::new("cargo")
        .current_dir(root)
        .args(["+nightly", "fuzz", "build", "-O", "--debug-assertions", "--no-trace-compares"])
        .args(["--sanitizer", sanitizer])
        .args(["--no-default-features", "--features", crate::line::current().feature])
        .status()
        .context("running cargo +nightly fuzz build (is cargo-fuzz installed?)")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    Ok(())
}

/// Where cargo-fuzz puts a target's binary.
pub fn binary(root: &Path, target: &str) -> PathBuf {
    root.join("target/x86_64-unknown-linux-gnu/release").join(target)
}

/// Runs one target for `budget`, streaming its status lines into the
/// series and printing one progress line every ten seconds.
fn fuzz_target(root: &Path, opts: &Options, target: &str, budget: Duration) -> Result<TargetReport> {
    let corpus = opts.work.join("corpus").join(target);
    let artifacts = opts.work.join("artifacts").join(target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    let mut report = TargetReport { name: target.into(), corpus_before: count_files(&corpus), ..Default::default() };
    let seeds = opts.seeds.join(target);
    let mut cmd = Command::new(binary(root, target));
    cmd.arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.arg(format!("-fork={}", opts.jobs.max(1)))
        .arg(format!("-max_total_time={}", budget.as_secs().max(1)))
        .arg(format!("-timeout={}", opts.input_timeout_secs))
        .arg(format!("-rss_limit_mb={}", opts.rss_limit_mb))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .env(crate::campaign::fuzz::CRASH_REPORTS_ENV, reports_dir(&opts.work, target))
        .args(["-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1", "-print_final_stats=1"])
        // Entropic's per-feature bookkeeping was most of an input's time
        // here (an input touches ~270,000 features); README.
        .arg("-entropic=0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {}", binary(root, target).display()))?;
    let stderr = child.stderr.take().expect("piped");
    let mut last_print = Instant::now();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(point) = parse_status(&line, started) {
            if last_print.elapsed() >= Duration::from_secs(10) {
                last_print = Instant::now();
                eprintln!(
                    "  {target}: {:>5.0}s execs {} cov {} ft {} corpus {}",
                    started.elapsed().as_secs_f64(),
                    point.execs,
                    point.cov,
                    point.ft,
                    point.corpus
                );
            }
            report.series.push(point);
        }
    }
    let status = child.wait()?;
    report.seconds = started.elapsed().as_secs_f64();
    if let Some(last) = report.series.last() {
        report.execs = last.execs;
        report.final_cov = last.cov;
        report.final_ft = last.ft;
    }
    report.execs_per_sec = report.execs as f64 / report.seconds.max(1e-9);
    if !status.success() && report.series.is_empty() {
        report.error = Some(format!("libFuzzer exited with {status} before any progress"));
    }
    report.artifacts = count_files(&artifacts);
    Ok(report)
}

/// Minimizes the working corpus with `-merge=1` into a fresh directory, then
/// swaps it in: an interrupted merge leaves the old corpus in place.
fn merge_corpus(root: &Path, work: &Path, target: &str) -> Result<usize> {
    let corpus = work.join("corpus").join(target);
    let merged = work.join("corpus").join(format!("{target}.merging"));
    let _ = std::fs::remove_dir_all(&merged);
    std::fs::create_dir_all(&merged)?;
    let status = Command::new(binary(root, target))
        .arg("-merge=1")
        .arg(&merged)
        .arg(&corpus)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&merged);
        bail!("merging the {target} corpus failed ({status})");
    }
    let old = work.join("corpus").join(format!("{target}.old"));
    let _ = std::fs::remove_dir_all(&old);
    std::fs::rename(&corpus, &old)?;
    std::fs::rename(&merged, &corpus)?;
    std::fs::remove_dir_all(&old)?;
    Ok(count_files(&corpus))
}

/// Runs the whole job. `root` is the repository (for cargo-fuzz and its
/// binaries). Reports are written even when a step fails.
pub fn run(root: &Path, opts: &Options) -> Result<Report> {
    let started_at = Instant::now();
    let mut report = Report {
        started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        engine: crate::line::wasmtime().to_string(),
        ..Report::default()
    };
    std::fs::create_dir_all(&opts.work).with_context(|| format!("creating {}", opts.work.display()))?;
    let targets: Vec<(&str, Kind)> = TARGETS
        .iter()
        .copied()
        .filter(|(name, _)| opts.targets.is_empty() || opts.targets.iter().any(|t| t == name))
        .collect();
    if targets.is_empty() {
        bail!("no such target; known: {}", TARGETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "));
    }
    let mut infrastructure_failed = false;
    if !opts.no_build {
        eprintln!(
            "building fuzz targets (cargo +nightly fuzz build -O --debug-assertions --sanitizer {})",
            opts.sanitizer
        );
        if let Err(e) = build(root, &opts.sanitizer) {
            eprintln!("gcfuzz: error: {e:#}");
            report.exit_code = 2;
            write_reports(&opts.work, &report)?;
            return Ok(report);
        }
    }
    let budget = opts.time / targets.len() as u32;
    for (target, _) in &targets {
        eprintln!("fuzzing {target} for {}s on {} cores", budget.as_secs(), opts.jobs);
        match fuzz_target(root, opts, target, budget) {
            Ok(mut t) => {
                match merge_corpus(root, &opts.work, target) {
                    Ok(n) => t.corpus_after = n,
                    Err(e) => t.error = Some(format!("{e:#}")),
                }
                infrastructure_failed |= t.error.is_some();
                report.targets.push(t);
            }
            Err(e) => {
                infrastructure_failed = true;
                report.targets.push(TargetReport {
                    name: target.to_string(),
                    error: Some(format!("{e:#}")),
                    ..Default::default()
                });
            }
        }
    }
    // Triage everything libFuzzer saved, this run's or a killed run's.
    let mut worker = Worker::new(WorkerCommand::current_exe()?, Duration::from_secs(opts.input_timeout_secs));
    let known = crate::report::record::known_signatures(&opts.known);
    for (target, kind) in &targets {
        let artifacts = opts.work.join("artifacts").join(target);
        if count_files(&artifacts) == 0 {
            continue;
        }
        eprintln!("triaging {} {target} artifacts", count_files(&artifacts));
        let rows = match kind {
            Kind::Wasm(generator) => {
                let triage_opts = triage::bulk::Options {
                    generator: *generator,
                    shrink_attempts: Some(300),
                    avoid: crate::report::record::known_avoid_rules(&opts.known),
                    ..triage::bulk::Options::new(&opts.out, known.clone())
                };
                let t = triage::bulk::triage(&artifacts, &triage_opts, &mut worker, |l| eprintln!("  {l}"))?;
                report.triage_failures.extend(t.failures.iter().map(|(p, why)| format!("{}: {why}", p.display())));
                report.unreproducible += t.unreproducible;
                t.buckets
                    .into_iter()
                    .map(|(signature, b)| {
                        let kind = serde_json::to_value(b.kind).ok().and_then(|v| v.as_str().map(str::to_owned));
                        SignatureRow {
                            signature,
                            kind: kind.unwrap_or_default(),
                            files: b.count,
                            new: b.new,
                            path: b.path,
                        }
                    })
                    .collect()
            }
            Kind::Stackmaps => triage_stackmaps(&artifacts, &opts.out, &known, &mut report.triage_failures)?,
        };
        for row in rows {
            match report.signatures.iter_mut().find(|r| r.signature == row.signature) {
                Some(known) => known.files += row.files,
                None => report.signatures.push(row),
            }
        }
        // Stored: now out of the way of the next run, each with the crash
        // report the target wrote when it crashed (libFuzzer's fork mode
        // keeps no log of it).
        let done = artifacts.join("done");
        std::fs::create_dir_all(&done)?;
        let symbols = std::cell::OnceCell::new();
        for entry in std::fs::read_dir(&artifacts)?.filter_map(|e| e.ok()).filter(|e| e.path().is_file()) {
            let input = std::fs::read(entry.path()).unwrap_or_default();
            let report_file = reports_dir(&opts.work, target).join(crate::campaign::fuzz::report_name(&input));
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(text) = std::fs::read_to_string(&report_file) {
                let modules = match kind {
                    Kind::Wasm(generator) => crate::campaign::fuzz::input_case(*generator, &input)
                        .and_then(|(case, _)| case.modules())
                        .unwrap_or_default(),
                    Kind::Stackmaps => vec![],
                };
                let symbols = symbols.get_or_init(|| fatal::Symbols::read(&binary(root, target)));
                let text = readable(&text, symbols, &modules);
                let first = text.lines().next().unwrap_or_default();
                for failure in report.triage_failures.iter_mut().filter(|f| f.contains(&name)) {
                    failure.push_str(&format!("; when it crashed: {first} (report in done/)"));
                }
                crate::report::record::write_whole(&done, &format!("{name}.report.txt"), text.as_bytes())?;
                std::fs::remove_file(&report_file)?;
            }
            std::fs::rename(entry.path(), done.join(&name))?;
        }
    }
    report.seconds = started_at.elapsed().as_secs_f64();
    report.exit_code = if infrastructure_failed {
        2
    } else if report.signatures.iter().any(|s| s.new) {
        1
    } else {
        0
    };
    write_reports(&opts.work, &report)?;
    Ok(report)
}

/// A crash report as kept beside its artifact: a target's fatal-signal
/// report (raw addresses) gains a first line naming the signal and its
/// frames, from the target binary's symbols and, for Wasm code, the
/// artifact's modules; a panic's report is kept as it is.
pub fn readable(text: &str, symbols: &fatal::Symbols, modules: &[Vec<u8>]) -> String {
    match fatal::parse(text).0 {
        Some(r) => {
            let frames = fatal::frame_names(&r.from_fault(), symbols, modules);
            format!("fatal signal {} at {}\n{text}", fatal::signal_name(r.signal), frames.join(" < "))
        }
        None => text.to_string(),
    }
}

/// Where a target's crash reports go while it fuzzes (paired with the
/// artifacts by content when they are triaged).
fn reports_dir(work: &Path, target: &str) -> PathBuf {
    work.join("reports").join(target)
}

/// Triages stack-map verifier artifacts: each is regenerated into its
/// program, checked on every configuration, shrunk and stored in `out`; new
/// unless `known` has its signature.
fn triage_stackmaps(
    dir: &Path,
    out: &Path,
    known: &std::collections::BTreeSet<String>,
    failures: &mut Vec<String>,
) -> Result<Vec<SignatureRow>> {
    use crate::stackmaps;
    let mut rows: Vec<SignatureRow> = Vec::new();
    for entry in std::fs::read_dir(dir)?.filter_map(|e| e.ok()).filter(|e| e.path().is_file()) {
        let path = entry.path();
        let bytes = std::fs::read(&path)?;
        let Ok(prog) = stackmaps::generate(&mut arbitrary::Unstructured::new(&bytes)) else {
            failures.push(format!("{}: not a stackmaps input", path.display()));
            continue;
        };
        let mut reproduced = false;
        for config in stackmaps::CONFIGS {
            let problems = stackmaps::check(&prog, *config, Default::default())?;
            let Some(first) = problems.first() else { continue };
            reproduced = true;
            let small = stackmaps::shrink(&prog, *config, Default::default(), &first.kind);
            let problems = stackmaps::check(&small, *config, Default::default())?;
            let (stored, _) = stackmaps::store(out, &small, *config, &problems, None, None)?;
            let signature = stored.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let new = !known.contains(&signature);
            match rows.iter_mut().find(|r| r.signature == signature) {
                Some(r) => r.files += 1,
                None => rows.push(SignatureRow { signature, kind: first.kind.clone(), files: 1, new, path: stored }),
            }
        }
        if !reproduced {
            failures.push(format!("{}: does not reproduce", path.display()));
        }
    }
    Ok(rows)
}

/// Writes the three reports next to each other, each through a temporary
/// file so a reader never sees half of one.
pub fn write_reports(work: &Path, report: &Report) -> Result<()> {
    for (name, text) in [
        ("report.json", serde_json::to_string_pretty(report)?),
        ("report.md", crate::report::nightly::markdown(report)),
        ("report.html", crate::report::nightly::html(report)),
    ] {
        crate::report::record::write_whole(work, name, text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_parsed() {
        let t = Instant::now();
        let p = parse_status(
            "#145: cov: 85253 ft: 209091 corp: 85 exec/s: 1 oom/timeout/crash: 0/0/0 time: 20s job: 1 dft_time: 0",
            t,
        )
        .unwrap();
        assert_eq!((p.execs, p.cov, p.ft, p.corpus, p.secs), (145, 85253, 209091, 85, 20.0));
        let p = parse_status("#139\tNEW    cov: 85253 ft: 209091 corp: 85/682Kb lim: 15572 exec/s: 1 rss: 585Mb", t)
            .unwrap();
        assert_eq!((p.execs, p.cov, p.ft, p.corpus), (139, 85253, 209091, 85));
        assert!(parse_status("INFO: -fork=2: fuzzing in separate process(s)", t).is_none());
        assert!(parse_status("#0 READ units: 16", t).is_none());
    }
}
