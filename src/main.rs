//! The `gcfuzz` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gcfuzz::case::TestCase;
use gcfuzz::differential::check_case;
use gcfuzz::engine::{ConfigId, real_engine};
use gcfuzz::outcome::Outcome;
use gcfuzz::worker::{Worker, WorkerCommand};
use gcfuzz::{campaign, version};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "gcfuzz", version = version(), about = "Differential fuzzing of GC rooting and GC codegen in Wasmtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a fuzzing campaign on seeded random inputs.
    Run {
        /// Which generator makes the cases.
        #[arg(long, value_enum, default_value = "rooted")]
        generator: gcfuzz::generate::Generator,
        /// Campaign length in seconds.
        #[arg(long, default_value_t = 60)]
        time: u64,
        /// Seed of the input sequence (random when omitted; printed so the
        /// campaign can be replayed).
        #[arg(long)]
        seed: Option<u64>,
        /// Parallel jobs, each with its own worker process (default: cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Print one JSON summary on stdout at the end.
        #[arg(long)]
        json: bool,
        /// Only these configurations take part (comma-separated).
        #[arg(long, value_delimiter = ',')]
        configs: Vec<ConfigId>,
        /// Directory findings are written to.
        #[arg(long, default_value = "crashes")]
        out: PathBuf,
        /// Wall-clock limit per configuration run, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
        /// Stop after this many cases.
        #[arg(long)]
        max_execs: Option<u64>,
        /// Memory limit per worker process, in MiB; going past it is a
        /// finding of its own (`oom-…`).
        #[arg(long, default_value_t = 4096)]
        memory_limit_mb: u64,
    },
    /// Run one module (.wasm or .wat) on every configuration and show the
    /// outcomes. Exit 1 when they disagree or one crashes.
    Repro {
        file: PathBuf,
        /// Only these configurations (comma-separated).
        #[arg(long, value_delimiter = ',')]
        configs: Vec<ConfigId>,
        /// Print the outcomes and findings as JSON.
        #[arg(long)]
        json: bool,
        /// Wall-clock limit per configuration run, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Minimize a reproducer (.wasm or .wat) while it keeps its finding's
    /// signature; writes `<name>.shrunk.wasm` and `.wat` next to it.
    Shrink {
        file: PathBuf,
        /// The signature to keep (default: the first finding the file gives).
        #[arg(long)]
        signature: Option<String>,
        /// Shrink attempts without progress before stopping.
        #[arg(long, default_value_t = 1000)]
        attempts: u32,
        /// Wall-clock limit per configuration run, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Bucket a directory of crash inputs (libFuzzer `crash-*` artifacts,
    /// .wasm or .wat files) into the crash directory by signature, shrinking
    /// new signatures. Exit 1 when some file could not be bucketed.
    Triage {
        dir: PathBuf,
        /// The generator raw inputs are for (the fuzz target's).
        #[arg(long, value_enum, default_value = "rooted")]
        generator: gcfuzz::generate::Generator,
        /// Crash directory to bucket into.
        #[arg(long, default_value = "crashes")]
        out: PathBuf,
        /// Keep new reproducers as they are.
        #[arg(long)]
        no_shrink: bool,
        /// Shrink attempts without progress (wasm-shrink) per new signature.
        #[arg(long, default_value_t = 500)]
        attempts: u32,
        /// Wall-clock limit per configuration run, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Find which Wasm proposals and engine settings a reproducer's finding
    /// needs; print them as a `wasmtime` command line and a Config snippet.
    Narrow {
        file: PathBuf,
        /// The signature to narrow (default: the first finding the file gives).
        #[arg(long)]
        signature: Option<String>,
        /// Wall-clock limit per configuration run, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Print a regression test for a reproducer (.wasm or .wat) in the form of
    /// Wasmtime's misc_testsuite (expected results from the reference).
    Regression {
        file: PathBuf,
        /// Wall-clock limit per configuration run, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Run a .wast file with Wasmtime's own wast runner on configurations.
    /// Exit 1 when it fails on any of them.
    Wast {
        file: PathBuf,
        /// Configurations to run it on (comma-separated; Wasmtime ones).
        #[arg(long, value_delimiter = ',', default_value = "null,drc,copying,pulley-drc")]
        configs: Vec<ConfigId>,
        /// `gc_zeal_alloc_counter` for collecting configurations.
        #[arg(long)]
        zeal: Option<u32>,
        /// Run in this process instead of one process per configuration.
        #[arg(long, hide = true)]
        here: bool,
    },
    /// Rooting pressure of generated modules: references live across
    /// safepoints where a collection is forced, per generator.
    Stats {
        /// Cases per generator.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Generators to measure (comma-separated; default: all).
        #[arg(long, value_delimiter = ',')]
        generators: Vec<gcfuzz::generate::Generator>,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The scheduled job: build the libFuzzer targets, fuzz each for its
    /// share of the time on all cores, merge the corpora, triage new
    /// artifacts, write report.json / report.md / report.html. Exit 0 no new
    /// signature, 1 new signatures, 2 infrastructure failure.
    Nightly {
        /// Total fuzzing time in seconds, shared among the targets.
        #[arg(long, default_value_t = 3600)]
        time: u64,
        /// Work directory: corpora, artifacts, reports (kept between runs).
        #[arg(long, default_value = "nightly")]
        work: PathBuf,
        /// Targets to run (comma-separated; default: all).
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
        /// Fuzzing processes (default: cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Crash directory new signatures go to.
        #[arg(long, default_value = "crashes")]
        out: PathBuf,
        /// Use the fuzz binaries already built.
        #[arg(long)]
        no_build: bool,
        /// libFuzzer's per-input timeout, in seconds.
        #[arg(long, default_value_t = 60)]
        input_timeout: u64,
        /// libFuzzer's RSS limit, in MiB.
        #[arg(long, default_value_t = 4096)]
        rss_limit_mb: u64,
    },
    /// Verify Cranelift's user stack maps: random CLIF programs with tagged
    /// references, checked at every safepoint on every opt-level/regalloc
    /// configuration (see README). Exit 1 on findings.
    Stackmaps {
        #[arg(long, default_value_t = 60)]
        time: u64,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        jobs: Option<usize>,
        /// Stop after this many programs.
        #[arg(long)]
        max_programs: Option<u64>,
        #[arg(long, default_value = "crashes")]
        out: PathBuf,
        /// One JSON summary on stdout at the end.
        #[arg(long)]
        json: bool,
    },
    /// Write seed inputs for a libFuzzer target: seeded random inputs whose
    /// modules allocate GC objects (and, for a share, stay in wasmi's subset).
    SeedCorpus {
        /// Directory to write into (created if missing).
        dir: PathBuf,
        /// The generator whose inputs these are (the fuzz target's).
        #[arg(long, value_enum, default_value = "rooted")]
        generator: gcfuzz::generate::Generator,
        #[arg(long, default_value_t = 16)]
        count: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Serve engine runs for a parent process (internal).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        memory_limit_mb: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gcfuzz: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run { generator, time, seed, jobs, json, configs, out, timeout, max_execs, memory_limit_mb } => {
            let seed = seed.unwrap_or_else(random_seed);
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            // First Ctrl-C: finish the cases under way and report; second: quit.
            let _ = ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::Relaxed) {
                    std::process::exit(130);
                }
            });
            eprintln!(
                "gcfuzz {}: {} generator, seed {seed}, {jobs} jobs, {time}s; findings go to {}",
                version(),
                generator.name(),
                out.display()
            );
            let opts = campaign::Options {
                generator,
                time: Duration::from_secs(time),
                seed,
                jobs,
                configs,
                out,
                timeout: Duration::from_secs(timeout),
                worker: WorkerCommand::current_exe()?.memory_limit_mb(memory_limit_mb),
                max_execs,
                stop,
            };
            let summary = campaign::run(&opts);
            for e in &summary.errors {
                eprintln!("gcfuzz: error: {e}");
            }
            eprintln!(
                "{} execs in {:.1}s ({:.1}/s), {:.0}% with GC allocations, {} inconclusive, {} findings ({} new); replay with --seed {seed}",
                summary.execs,
                summary.elapsed_secs,
                summary.execs_per_sec,
                100.0 * summary.modules_with_gc_share,
                summary.inconclusive,
                summary.findings.len(),
                summary.findings.iter().filter(|f| f.new).count(),
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
            Ok(if !summary.errors.is_empty() && summary.execs == 0 {
                ExitCode::from(2)
            } else if summary.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Repro { file, configs, json, timeout } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if let Some(note) = file.parent().and_then(gcfuzz::finding::replay_note) {
                eprintln!("{note}");
            }
            let case = TestCase::from_module_bytes(&bytes).with_context(|| format!("{}", file.display()))?;
            let names: Vec<String> = case
                .plan
                .configs
                .iter()
                .filter(|c| configs.is_empty() || configs.contains(c))
                .map(|c| c.name().to_string())
                .collect();
            let mut worker = Worker::new(WorkerCommand::current_exe()?, Duration::from_secs(timeout));
            let report = check_case(&case, &names, &mut worker)?;
            if json {
                let out = serde_json::json!({ "outcomes": report.outcomes, "findings": report.findings, "inconclusive": report.inconclusive });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for outcome in &report.outcomes {
                    print_outcome(outcome);
                }
                for f in &report.findings {
                    println!("FINDING {}: {}", f.signature, f.summary);
                }
                if report.findings.is_empty() {
                    let verdict = if report.inconclusive { "agree up to an inconclusive point" } else { "agree" };
                    println!("{} configurations {verdict}", report.outcomes.len());
                }
            }
            Ok(if report.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Shrink { file, signature, attempts, timeout } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let case = TestCase::from_module_bytes(&bytes).with_context(|| format!("{}", file.display()))?;
            let mut worker = Worker::new(WorkerCommand::current_exe()?, Duration::from_secs(timeout));
            let all: Vec<String> = case.plan.configs.iter().map(|c| c.name().to_string()).collect();
            let report = check_case(&case, &all, &mut worker)?;
            let finding = match &signature {
                Some(sig) => report.findings.iter().find(|f| &f.signature == sig),
                None => report.findings.first(),
            };
            let Some(finding) = finding else {
                anyhow::bail!(
                    "{}: does not reproduce{}",
                    file.display(),
                    signature.map(|s| format!(" {s}")).unwrap_or_default()
                );
            };
            // Only the configurations the finding involves (and the reference).
            let mut configs: Vec<String> = all.iter().filter(|c| finding.configs.contains(c)).cloned().collect();
            if finding.kind == gcfuzz::finding::FindingKind::Mismatch {
                configs.insert(0, all[0].clone());
            }
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message(format!("shrinking {} ({} bytes)", finding.signature, case.wasm.len()));
            bar.enable_steady_tick(Duration::from_millis(200));
            let shrunk = gcfuzz::shrink::shrink(&case, &finding.signature, &configs, &mut worker, attempts, |size| {
                bar.set_message(format!("shrinking {}: {size} bytes", finding.signature))
            })?;
            bar.finish_and_clear();
            // `x.wasm` → `x.shrunk.wasm`; shrinking `x.shrunk.wasm` again overwrites it.
            let stem = file.with_extension("");
            let stem = if stem.extension().is_some_and(|e| e == "shrunk") { stem.with_extension("") } else { stem };
            let wasm_out = stem.with_extension("shrunk.wasm");
            let wat_out = stem.with_extension("shrunk.wat");
            std::fs::write(&wasm_out, shrunk.case.to_module_bytes())?;
            std::fs::write(&wat_out, shrunk.case.to_wat())?;
            println!(
                "{}: {} -> {} bytes of module ({:.0}% smaller), {} -> {} calls, {} runs; wrote {} and {}",
                finding.signature,
                shrunk.input_size,
                shrunk.output_size,
                100.0 * (1.0 - shrunk.output_size as f64 / shrunk.input_size.max(1) as f64),
                case.plan.calls.len(),
                shrunk.case.plan.calls.len(),
                shrunk.runs,
                wasm_out.display(),
                wat_out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Triage { dir, generator, out, no_shrink, attempts, timeout } => {
            let mut worker = Worker::new(WorkerCommand::current_exe()?, Duration::from_secs(timeout));
            let attempts = (!no_shrink).then_some(attempts);
            let report = gcfuzz::triage::triage_with(&dir, &out, &mut worker, generator, None, attempts, |line| {
                eprintln!("{line}")
            })?;
            println!("{:<56} {:<11} {:>5}  {:<5}  shrunk", "signature", "kind", "files", "");
            for (signature, b) in &report.buckets {
                let kind = serde_json::to_value(b.kind)?.as_str().unwrap_or_default().to_string();
                let shrunk = b.shrunk.map_or(String::new(), |(from, to)| format!("{from} -> {to} bytes"));
                let status = if b.new { "new" } else { "known" };
                println!("{signature:<56} {kind:<11} {:>5}  {status:<5}  {shrunk}", b.count);
            }
            println!(
                "{} files: {} bucketed into {} signatures, {} failed",
                report.files,
                report.files - report.failures.len(),
                report.buckets.len(),
                report.failures.len()
            );
            Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Narrow { file, signature, timeout } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let case = TestCase::from_module_bytes(&bytes).with_context(|| format!("{}", file.display()))?;
            let mut worker = Worker::new(WorkerCommand::current_exe()?, Duration::from_secs(timeout));
            let all: Vec<String> = case.plan.configs.iter().map(|c| c.name().to_string()).collect();
            let report = check_case(&case, &all, &mut worker)?;
            let finding = match &signature {
                Some(sig) => report.findings.iter().find(|f| &f.signature == sig),
                None => report.findings.first(),
            };
            let Some(finding) = finding else {
                anyhow::bail!(
                    "{}: does not reproduce{}",
                    file.display(),
                    signature.map(|s| format!(" {s}")).unwrap_or_default()
                );
            };
            let narrowed = gcfuzz::narrow::narrow(&case, finding, &mut worker)?;
            print!("{}", gcfuzz::narrow::render(&narrowed, &file.display().to_string()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Regression { file, timeout } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if let Some(note) = file.parent().and_then(gcfuzz::finding::replay_note) {
                eprintln!("{note}");
            }
            let case = TestCase::from_module_bytes(&bytes).with_context(|| format!("{}", file.display()))?;
            let names: Vec<String> = case.plan.configs.iter().map(|c| c.name().to_string()).collect();
            let mut worker = Worker::new(WorkerCommand::current_exe()?, Duration::from_secs(timeout));
            let report = check_case(&case, &names, &mut worker)?;
            let (signature, summary) = report
                .findings
                .first()
                .map_or(("no finding".to_string(), "all configurations agree".to_string()), |f| {
                    (f.signature.clone(), f.summary.clone())
                });
            print!("{}", gcfuzz::regression::wast(&case, &signature, report.outcomes.first(), &summary)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Wast { file, configs, zeal, here } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut failed = false;
            for config in configs.iter().filter(|c| c.is_wasmtime()) {
                let verdict = if here {
                    gcfuzz::regression::run(&text, *config, zeal).map_err(|e| format!("{e:#}"))
                } else {
                    // One process per configuration: an engine panic can
                    // abort the process (panics in libcalls do not unwind).
                    wast_in_child(&file, *config, zeal)?
                };
                match verdict {
                    Ok(()) => println!("{config}: pass"),
                    Err(e) => {
                        failed = true;
                        println!("{config}: FAIL: {}", e.lines().next().unwrap_or_default());
                    }
                }
            }
            Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Nightly { time, work, targets, jobs, out, no_build, input_timeout, rss_limit_mb } => {
            let root = std::env::current_dir()?;
            let opts = gcfuzz::nightly::Options {
                time: Duration::from_secs(time),
                work,
                targets,
                jobs: jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                out,
                seeds: root.join("corpus"),
                no_build,
                input_timeout_secs: input_timeout,
                rss_limit_mb,
            };
            let report = gcfuzz::nightly::run(&root, &opts)?;
            eprint!("{}", gcfuzz::report::markdown(&report));
            eprintln!("reports: {}/report.{{json,md,html}}", opts.work.display());
            Ok(ExitCode::from(report.exit_code))
        }
        Command::Stackmaps { time, seed, jobs, max_programs, out, json } => {
            let seed = seed.unwrap_or_else(random_seed);
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            eprintln!("gcfuzz stackmaps ({}): seed {seed}, {jobs} jobs, {time}s", gcfuzz::stackmaps::CRANELIFT);
            let summary = gcfuzz::stackmaps::campaign(seed, Duration::from_secs(time), max_programs, jobs, &out)?;
            eprintln!(
                "{} programs x {} configurations in {:.1}s ({:.0} programs/s), {} safepoints checked, {} findings",
                summary.programs,
                gcfuzz::stackmaps::CONFIGS.len(),
                summary.seconds,
                summary.programs_per_sec,
                summary.safepoints,
                summary.findings.len()
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
            Ok(if summary.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Stats { count, seed, generators, json } => {
            use clap::ValueEnum;
            let generators =
                if generators.is_empty() { gcfuzz::generate::Generator::value_variants().to_vec() } else { generators };
            let bar = indicatif::ProgressBar::new_spinner();
            let mut all = Vec::new();
            for g in generators {
                bar.set_message(format!("analyzing {count} {} modules", g.name()));
                bar.enable_steady_tick(Duration::from_millis(200));
                all.push(gcfuzz::stats::measure(g, seed, count));
            }
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<10} {:>7} {:>10} {:>14} {:>12} {:>10} {:>9} {:>9}",
                    "generator",
                    "modules",
                    "allocating",
                    "forced-live %",
                    "forced/mod",
                    "live/mod",
                    "allocs",
                    "gc calls"
                );
                for s in &all {
                    println!(
                        "{:<10} {:>7} {:>9.1}% {:>13.1}% {:>12.2} {:>10.2} {:>9.2} {:>9.2}",
                        s.generator,
                        s.modules,
                        100.0 * s.with_allocation as f64 / s.modules.max(1) as f64,
                        100.0 * s.share_forced_live,
                        s.mean_forced_live_sites,
                        s.mean_live_sites,
                        s.mean_allocation_sites,
                        s.mean_gc_calls
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::SeedCorpus { dir, generator, count, seed } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let (mut written, mut reftypes) = (0, 0);
            let mut index = 0;
            while written < count {
                let input = gcfuzz::case::seeded_input(seed, index);
                index += 1;
                let Ok(case) = TestCase::generate(generator, &input) else { continue };
                // A quarter inside wasmi's subset, the rest allocating GC modules.
                let wanted = if generator == gcfuzz::generate::Generator::GcStress {
                    true
                } else if reftypes * 4 < count {
                    case.plan.profile == gcfuzz::generate::Profile::RefTypes
                } else {
                    gcfuzz::case::allocates(&case.wasm)
                };
                if !wanted {
                    continue;
                }
                reftypes += (case.plan.profile == gcfuzz::generate::Profile::RefTypes) as u64;
                let name = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&input));
                std::fs::write(dir.join(name), &input)?;
                written += 1;
            }
            eprintln!("wrote {written} inputs to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { memory_limit_mb } => {
            gcfuzz::worker::serve(real_engine, memory_limit_mb)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_outcome(o: &Outcome) {
    println!("== {} ({:.1} ms)", o.config, o.micros as f64 / 1000.0);
    println!("  instantiate: {}", o.instantiate);
    for (i, call) in o.calls.iter().enumerate() {
        println!("  call[{i}] {}: {}", call.export, call.status);
    }
    match &o.state {
        Some(state) => {
            for (name, v) in &state.globals {
                println!("  global {name} = {v}");
            }
            for (name, m) in &state.memories {
                println!("  memory {name}: {} bytes, hash {:016x}", m.size, m.hash);
            }
            for (name, t) in &state.tables {
                let elems: Vec<String> = t.elems.iter().map(|r| r.to_string()).collect();
                println!("  table {name}[{}] = [{}]", t.size, elems.join(", "));
            }
        }
        None => println!("  state: not compared (run cut short)"),
    }
}

/// Runs `gcfuzz wast --here` for one configuration; the verdict with the
/// child's own words, or how it died.
fn wast_in_child(file: &std::path::Path, config: ConfigId, zeal: Option<u32>) -> Result<Result<(), String>> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("wast").arg(file).arg("--here").arg("--configs").arg(config.name());
    if let Some(z) = zeal {
        cmd.arg("--zeal").arg(z.to_string());
    }
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(Ok(()));
    }
    if let Some(line) = stdout.lines().find_map(|l| l.split_once(": FAIL: ").map(|(_, m)| m.to_string())) {
        return Ok(Err(line));
    }
    // Died: the panic message, when there was one.
    let panic = stderr.lines().skip_while(|l| !l.contains("panicked at")).nth(1).unwrap_or("").trim().to_string();
    Ok(Err(format!(
        "engine died ({}){}",
        out.status,
        if panic.is_empty() { String::new() } else { format!(": {panic}") }
    )))
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ ((std::process::id() as u64) << 32)
}
