//! The `gcfuzz` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gcfuzz::campaign::{self, run::random_seed};
use gcfuzz::case::ConfigId;
use gcfuzz::engine::real_engine;
use gcfuzz::engine::worker::{Worker, WorkerCommand};
use gcfuzz::generate::Generator;
use gcfuzz::triage::open::{check_all, config_names, open, pick};
use gcfuzz::{report, stackmaps, triage, version};
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
        generator: Generator,
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
        /// Working directory findings are written to (confirmed ones by
        /// signature, the rest under `unreproducible/`); `gcfuzz promote`
        /// moves one into `crashes/`.
        #[arg(long, default_value = "work/findings")]
        out: PathBuf,
        /// The known bugs: a crash directory read, never written.
        #[arg(long, default_value = "crashes")]
        known: PathBuf,
        /// Wall-clock limit per configuration run, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
        /// Stop after this many cases.
        #[arg(long)]
        max_execs: Option<u64>,
        /// Plans run per generated module, each a case: the later ones
        /// reuse the code each configuration compiled for the first.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        plans: u16,
        /// Memory limit per worker process, in MiB; going past it is a
        /// finding of its own (`oom-…`).
        #[arg(long, default_value_t = 4096)]
        memory_limit_mb: u64,
    },
    /// Run one reproducer (.wasm, .wat or regression .wast) on every configuration and show the
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
    /// Minimize a reproducer (.wasm, .wat or .wast) while it keeps its finding's
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
    /// .wasm, .wat or .wast files) into a working directory by signature, shrinking
    /// new signatures. Exit 1 when some file could not be bucketed.
    Triage {
        dir: PathBuf,
        /// The generator raw inputs are for (the fuzz target's).
        #[arg(long, value_enum, default_value = "rooted")]
        generator: Generator,
        /// Working directory findings are stored in (`gcfuzz promote` moves
        /// one into `crashes/`).
        #[arg(long, default_value = "work/findings")]
        out: PathBuf,
        /// The known bugs: a crash directory read, never written.
        #[arg(long, default_value = "crashes")]
        known: PathBuf,
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
    /// Print a regression test for a reproducer (.wasm, .wat or .wast) in the form of
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
    /// safepoints where a collection is forced, per generator; `--matrix`
    /// adds the reach matrix (maker of the reference x kind of safepoint).
    Stats {
        /// Cases per generator.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Generators to measure (comma-separated; default: all).
        #[arg(long, value_delimiter = ',')]
        generators: Vec<Generator>,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
        /// Print each generator's reach matrix after the table.
        #[arg(long)]
        matrix: bool,
        /// Also run each case in the reference interpreter and print the
        /// operand edges its GC and table instructions met.
        #[arg(long)]
        edges: bool,
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
        /// Directory findings are stored in (default: `<work>/findings`;
        /// `gcfuzz promote` moves one into `crashes/`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The known bugs: a crash directory read, never written.
        #[arg(long, default_value = "crashes")]
        known: PathBuf,
        /// Use the fuzz binaries already built.
        #[arg(long)]
        no_build: bool,
        /// cargo-fuzz's sanitizer for the build: `none`, or `address` (ASan:
        /// also catches memory errors in Wasmtime's and wasmi's Rust code
        /// that do not crash, at 2.6x fewer executions; README).
        #[arg(long, default_value = "none", value_parser = ["none", "address"])]
        sanitizer: String,
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
        /// Working directory findings are written to (`gcfuzz promote`
        /// moves one into `crashes/`).
        #[arg(long, default_value = "work/findings")]
        out: PathBuf,
        /// One JSON summary on stdout at the end.
        #[arg(long)]
        json: bool,
    },
    /// Write the case a campaign ran as a reproducer (.wasm, plan embedded):
    /// its seed, and the index and plan a finding has in the JSON summary
    /// (known hits included). The known bugs' avoid rules must be the
    /// campaign's (`--known`).
    Case {
        /// The file to write.
        out: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        index: u64,
        /// The plan (0, the module's own, when omitted).
        #[arg(long, default_value_t = 0)]
        plan: u64,
        #[arg(long, value_enum, default_value = "rooted")]
        generator: Generator,
        /// The crash directory the campaign read as its known bugs.
        #[arg(long, default_value = "crashes")]
        known: PathBuf,
    },
    /// Write seed inputs for a libFuzzer target: seeded random inputs whose
    /// modules allocate GC objects (and, for a share, stay in wasmi's subset).
    SeedCorpus {
        /// Directory to write into (created if missing).
        dir: PathBuf,
        /// The generator whose inputs these are (the fuzz target's).
        #[arg(long, value_enum, default_value = "rooted")]
        generator: Generator,
        #[arg(long, default_value_t = 16)]
        count: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Move findings a campaign wrote (`work/findings/<signature>`) into the
    /// crash directory as known bugs of the engine they were found on.
    Promote {
        /// Finding directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The crash directory.
        #[arg(long, default_value = "crashes")]
        to: PathBuf,
    },
    /// Serve engine runs for a parent process (internal).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        memory_limit_mb: Option<u64>,
    },
}

impl Command {
    /// The `--timeout` of commands that run engines in workers.
    fn timeout(&self) -> Option<u64> {
        match self {
            Command::Run { timeout, .. }
            | Command::Repro { timeout, .. }
            | Command::Shrink { timeout, .. }
            | Command::Triage { timeout, .. }
            | Command::Narrow { timeout, .. }
            | Command::Regression { timeout, .. } => Some(*timeout),
            _ => None,
        }
    }
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn worker(timeout: u64) -> Result<Worker> {
    Ok(Worker::new(WorkerCommand::current_exe()?, Duration::from_secs(timeout)))
}

/// Refuses a wall-clock limit of zero: every run would be a timeout.
fn check_timeout(timeout: u64) -> Result<()> {
    anyhow::ensure!(timeout > 0, "--timeout must be at least 1 second");
    Ok(())
}

fn dispatch(command: Command) -> Result<ExitCode> {
    if let Some(timeout) = command.timeout() {
        check_timeout(timeout)?;
    }
    match command {
        Command::Run {
            generator,
            time,
            seed,
            jobs,
            json,
            configs,
            out,
            known,
            timeout,
            max_execs,
            plans,
            memory_limit_mb,
        } => {
            let seed = seed.unwrap_or_else(random_seed);
            let jobs = jobs.unwrap_or_else(cores);
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            // First Ctrl-C: finish the cases under way and report; second: quit.
            let _ = ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::Relaxed) {
                    std::process::exit(130);
                }
            });
            let opts = campaign::run::Options {
                generator,
                time: Duration::from_secs(time),
                seed,
                jobs,
                configs,
                out,
                known: report::record::known_signatures(&known),
                avoid: report::record::known_avoid_rules(&known),
                timeout: Duration::from_secs(timeout),
                worker: WorkerCommand::current_exe()?.memory_limit_mb(memory_limit_mb),
                max_execs,
                plans: plans as usize,
                stop,
            };
            // Settings a worker cannot run under are refused before anything
            // is said of the campaign.
            campaign::run::preflight(&opts)?;
            eprintln!(
                "gcfuzz {}: {} generator, seed {seed}, {jobs} jobs, {time}s; findings go to {}",
                version(),
                opts.generator.name(),
                opts.out.display()
            );
            let summary = campaign::run::run(&opts);
            for e in &summary.errors {
                eprintln!("gcfuzz: error: {e}");
            }
            eprintln!("{}", summary.line());
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
            Ok(ExitCode::from(summary.exit_code()))
        }
        Command::Repro { file, configs, json, timeout } => {
            let opened = open(&file)?;
            if let Some(note) = &opened.note {
                eprintln!("{note}");
            }
            if let Some(c) = configs.iter().find(|c| !opened.case.plan.configs.contains(c)) {
                let plan: Vec<&str> = opened.case.plan.configs.iter().map(|c| c.name()).collect();
                anyhow::bail!("configuration {c} is not in the plan of {} ({})", file.display(), plan.join(", "));
            }
            let names = config_names(&opened.case, &configs);
            let report = gcfuzz::oracle::check_case(&opened.case, &names, &mut worker(timeout)?)?;
            if json {
                let out = serde_json::json!({ "outcomes": report.outcomes, "findings": report.findings, "inconclusive": report.inconclusive });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                if !opened.case.plan.knobs.is_empty() {
                    let knobs = gcfuzz::case::knobs::describe(&opened.case.plan.knobs);
                    println!("engine settings of the collecting Wasmtime configurations: {knobs}");
                }
                print!("{}", report::text::case_report(&report));
            }
            Ok(if report.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Shrink { file, signature, attempts, timeout } => {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(200));
            let line = triage::shrink::shrink_file(
                &file,
                signature.as_deref(),
                attempts,
                &mut worker(timeout)?,
                |sig, size| bar.set_message(format!("shrinking {sig}: {size} bytes")),
            );
            bar.finish_and_clear();
            println!("{}", line?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Triage { dir, generator, out, known, no_shrink, attempts, timeout } => {
            let opts = triage::bulk::Options {
                generator,
                avoid: report::record::known_avoid_rules(&known),
                shrink_attempts: (!no_shrink).then_some(attempts),
                ..triage::bulk::Options::new(&out, report::record::known_signatures(&known))
            };
            let report = triage::bulk::triage(&dir, &opts, &mut worker(timeout)?, |line| eprintln!("{line}"))?;
            print!("{}", report.table());
            Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Narrow { file, signature, timeout } => {
            let case = open(&file)?.case;
            let mut worker = worker(timeout)?;
            let report = check_all(&case, &mut worker)?;
            let finding = pick(&report, signature.as_deref(), &file)?;
            let narrowed = triage::narrow::narrow(&case, finding, &mut worker)?;
            print!("{}", triage::narrow::render(&narrowed, &file.display().to_string()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Regression { file, timeout } => {
            let opened = open(&file)?;
            if let Some(note) = &opened.note {
                eprintln!("{note}");
            }
            let report = check_all(&opened.case, &mut worker(timeout)?)?;
            let (signature, summary) = report
                .findings
                .first()
                .map_or(("no finding".to_string(), "all configurations agree".to_string()), |f| {
                    (f.signature.clone(), f.summary.clone())
                });
            print!("{}", report::regression::wast(&opened.case, &signature, report.outcomes.first(), &summary)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Wast { file, configs, zeal, here } => {
            use gcfuzz::engine::wasmtime::wast;
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut failed = false;
            for config in configs.iter().filter(|c| c.is_wasmtime()) {
                let verdict = if here {
                    wast::run(&text, *config, zeal).map_err(|e| format!("{e:#}"))
                } else {
                    wast::run_in_child(&std::env::current_exe()?, &file, *config, zeal)?
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
        Command::Nightly {
            time,
            work,
            targets,
            jobs,
            out,
            known,
            no_build,
            sanitizer,
            input_timeout,
            rss_limit_mb,
        } => {
            let root = std::env::current_dir()?;
            let opts = campaign::nightly::Options {
                time: Duration::from_secs(time),
                out: out.unwrap_or_else(|| work.join("findings")),
                work,
                targets,
                jobs: jobs.unwrap_or_else(cores),
                known,
                seeds: root.join("corpus"),
                no_build,
                sanitizer,
                input_timeout_secs: input_timeout,
                rss_limit_mb,
            };
            let report = campaign::nightly::run(&root, &opts)?;
            eprint!("{}", report::nightly::markdown(&report));
            eprintln!("reports: {}/report.{{json,md,html}}", opts.work.display());
            Ok(ExitCode::from(report.exit_code))
        }
        Command::Stackmaps { time, seed, jobs, max_programs, out, json } => {
            let seed = seed.unwrap_or_else(random_seed);
            let jobs = jobs.unwrap_or_else(cores);
            eprintln!("gcfuzz stackmaps ({}): seed {seed}, {jobs} jobs, {time}s", gcfuzz::line::CRANELIFT);
            let summary = stackmaps::campaign(seed, Duration::from_secs(time), max_programs, jobs, &out)?;
            eprintln!("{}", summary.line());
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
            Ok(if summary.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Stats { count, seed, generators, json, matrix, edges } => {
            use clap::ValueEnum;
            let generators = if generators.is_empty() { Generator::value_variants().to_vec() } else { generators };
            let bar = indicatif::ProgressBar::new_spinner();
            let (mut all, mut met) = (Vec::new(), Vec::new());
            for g in generators {
                bar.set_message(format!("analyzing {count} {} modules", g.name()));
                bar.enable_steady_tick(Duration::from_millis(200));
                all.push(campaign::stats::measure(g, seed, count));
                if edges {
                    bar.set_message(format!("running {count} {} cases in the reference interpreter", g.name()));
                    met.push(campaign::edges::measure(g, seed, count));
                }
            }
            bar.finish_and_clear();
            if json {
                let json = match edges {
                    true => serde_json::json!({ "stats": all, "edges": met }),
                    false => serde_json::to_value(&all)?,
                };
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                print!("{}", campaign::stats::table(&all));
                if matrix {
                    for s in &all {
                        print!("\n{}", campaign::stats::matrix_table(s));
                    }
                }
                for s in &met {
                    print!("\n{}", campaign::edges::table(s));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Case { out, seed, index, plan, generator, known } => {
            let avoid = report::record::known_avoid_rules(&known);
            let Some(case) = campaign::run::case_at(generator, seed, index, plan, &avoid)? else {
                anyhow::bail!("seed {seed} ran no case {index} plan {plan} (an avoid rule skipped it, or fewer plans)");
            };
            std::fs::write(&out, case.to_module_bytes()).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote case {index} plan {plan} of seed {seed} to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::SeedCorpus { dir, generator, count, seed } => {
            let written = campaign::fuzz::seed_corpus(&dir, generator, count, seed)?;
            eprintln!("wrote {written} inputs to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Promote { dirs, to } => {
            for dir in dirs {
                let target =
                    report::record::promote(&dir, &to).with_context(|| format!("promoting {}", dir.display()))?;
                println!("{}", target.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { memory_limit_mb } => {
            gcfuzz::engine::worker::serve(real_engine, memory_limit_mb)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
