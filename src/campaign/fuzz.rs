//! libFuzzer entry points. The targets under `fuzz/fuzz_targets/` are thin
//! shims over these functions, so the same code runs under cargo-fuzz, in the
//! stable replay binaries and in `cargo test`. [`seed_corpus`] writes their
//! seed corpora.

use crate::case::{AvoidRule, ConfigId, Plan, Profile, TestCase, allocates, seeded_input};
use crate::engine::real_engine;
use crate::engine::worker::InProcess;
use crate::generate::{self, Generator};
use crate::oracle::check_case;
use crate::report::record::{known_avoid_rules as known_avoid_rules_in, known_signatures};
use anyhow::{Context, Result};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// Engines live across inputs: creating them per input would dominate.
    static ENGINES: RefCell<InProcess> = RefCell::new(InProcess::new(real_engine));
}

/// The `differential` target: generate a case from `data` (the default
/// `rooted` generator; a binary module runs as it is, see [`input_case`]),
/// run it on its configurations in this process, and
/// panic on any finding that is not a known bug (that is how libFuzzer
/// learns of it). Engine panics propagate as they are.
pub fn differential(data: &[u8]) {
    crate::engine::no_error_backtraces();
    with_crash_report(data, || run(Generator::Rooted, data))
}

/// The `gc_stress` target: the rooting generator, judged by its model as
/// well as by the other configurations.
pub fn gc_stress(data: &[u8]) {
    crate::engine::no_error_backtraces();
    with_crash_report(data, || run(Generator::GcStress, data))
}

fn run(generator: Generator, data: &[u8]) {
    let Ok((case, reproducer)) = input_case(generator, data) else {
        return;
    };
    if let Some(rule) = known_avoid_rules().iter().find(|r| case.hits(r)) {
        // A known bug's trigger: not run, so it cannot crowd out new ones.
        let avoided = AVOIDED.fetch_add(1, Ordering::Relaxed) + 1;
        if avoided.is_power_of_two() {
            eprintln!("gcfuzz: skipped a case with the trigger of {} ({avoided} so far)", rule.signature);
        }
        return;
    }
    let all = reproducer || std::env::var_os("GCFUZZ_ALL_CONFIGS").is_some();
    let configs: Vec<String> = fuzz_configs(&case.plan, data, all).iter().map(|c| c.name().to_string()).collect();
    let report = ENGINES.with(|e| check_case(&case, &configs, &mut *e.borrow_mut())).expect("real engines exist");
    for f in &report.findings {
        if known().contains(&f.signature) {
            // Counted, not a crash: a known bug must not stop the run.
            let hits = KNOWN_HITS.fetch_add(1, Ordering::Relaxed) + 1;
            if hits.is_power_of_two() {
                eprintln!("gcfuzz: known bug {} ({hits} hits so far)", f.signature);
            }
        } else {
            let detail = f.crash.as_ref().map_or(String::new(), |c| {
                format!(
                    "\n{}\nat {}\nframes:\n  {}",
                    c.message,
                    c.location.as_deref().unwrap_or("?"),
                    c.frames.join("\n  ")
                )
            });
            panic!("gcfuzz finding {}: {}{detail}", f.signature, f.summary);
        }
    }
}

/// The case for one input, and whether it is a reproducer. A binary module
/// (a stored `module.wasm`, plan embedded) runs as it is: a fuzz input
/// (`input.bin`) makes the case the generators of its day made from it, and
/// a change to them makes it another, while the module stays the
/// reproducer. Anything else is generated from.
pub(crate) fn input_case(generator: Generator, data: &[u8]) -> Result<(TestCase, bool)> {
    if data.starts_with(b"\0asm")
        && let Ok(case) = TestCase::from_module_bytes(data)
    {
        return Ok((case, true));
    }
    Ok((generate::case_avoiding(generator, data, known_avoid_rules())?, false))
}

/// The configurations one generated input runs on in process: the oracles
/// that compile nothing (the reference interpreter, which judges here, and
/// wasmi where the plan has it) and one of the plan's Wasmtime
/// configurations, Null included, drawn from the input's hash. A plan whose
/// every call has its result from a model (`gc-stress`) is judged by the
/// model the same way. Compiling is
/// most of an input's time, so each compiled configuration costs about as
/// much as all the rest (README, "The libFuzzer targets"); over many inputs
/// each one runs. What this gives up per input: Null's comparison with a
/// collector when both are not drawn together (the interpreter, which never
/// collects either, judges instead) and so the leak oracle, which needs both
/// (campaigns keep it). `all` (a reproducer, or `GCFUZZ_ALL_CONFIGS` set), or
/// a plan with neither judge, keeps every one.
fn fuzz_configs(plan: &Plan, data: &[u8], all: bool) -> Vec<ConfigId> {
    let configs = &plan.configs;
    let compiles = |c: &ConfigId| c.is_wasmtime();
    let modelled = !plan.calls.is_empty() && plan.calls.iter().all(|c| c.expect.is_some());
    if all || !(configs.contains(&ConfigId::Interp) || modelled) {
        return configs.to_vec();
    }
    // FNV-1a: stable across builds and machines, so a crash input replays
    // on the configurations it ran on.
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    let drawable: Vec<ConfigId> = configs.iter().copied().filter(compiles).collect();
    let drawn = drawable.get(hash as usize % drawable.len().max(1));
    configs.iter().copied().filter(|c| !compiles(c) || drawn == Some(c)).collect()
}

/// Findings of known bugs the targets went past in this process.
pub static KNOWN_HITS: AtomicU64 = AtomicU64::new(0);
/// Cases skipped by the known bugs' avoid rules in this process.
pub static AVOIDED: AtomicU64 = AtomicU64::new(0);

/// The crash directory the targets read known bugs from.
fn known_dir() -> std::path::PathBuf {
    std::env::var_os("GCFUZZ_KNOWN").map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes"), Into::into)
}

/// The avoid rules of this build's known bugs (`Record::avoid`).
pub fn known_avoid_rules() -> &'static [AvoidRule] {
    static RULES: OnceLock<Vec<AvoidRule>> = OnceLock::new();
    RULES.get_or_init(|| known_avoid_rules_in(&known_dir()))
}

/// The known bugs of this build: `crashes/` entries whose `expected_on`
/// names it, from the directory `GCFUZZ_KNOWN` names (this checkout's
/// `crashes/` by default; none where neither exists, as on OSS-Fuzz).
pub fn known() -> &'static BTreeSet<String> {
    static KNOWN: OnceLock<BTreeSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| known_signatures(&known_dir()))
}

/// The `stackmaps` target: a random CLIF program checked at every safepoint
/// on every Cranelift configuration; any problem is the crash.
pub fn stackmaps(data: &[u8]) {
    crate::engine::no_error_backtraces();
    with_crash_report(data, || check_stackmaps(data))
}

fn check_stackmaps(data: &[u8]) {
    let Ok(prog) = crate::stackmaps::generate(&mut arbitrary::Unstructured::new(data)) else {
        return;
    };
    for config in crate::stackmaps::CONFIGS {
        let problems = crate::stackmaps::check(&prog, *config, Default::default()).expect("programs compile");
        if let Some(p) = problems.first() {
            panic!("gcfuzz stack-map finding on {config}: {}: {}", p.kind, p.detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each input keeps the oracles that compile nothing and draws one
    /// compiled configuration, Null included; over inputs every one runs,
    /// in about equal shares. Without the interpreter, nothing is drawn.
    #[test]
    fn inputs_draw_their_compiled_configuration_and_cover_them_all() {
        use ConfigId::*;
        let configs = [Null, Drc, Copying, PulleyDrc, Wasmi, Interp];
        let wasm = wat::parse_str(r#"(module (func (export "f") (result i64) i64.const 1))"#).unwrap();
        let info = crate::case::ModuleInfo::parse(&wasm).unwrap();
        let plan = Plan { configs: configs.to_vec(), ..Plan::default_for(&wasm, &info) };
        let mut runs = std::collections::BTreeMap::new();
        for i in 0..400 {
            let data = seeded_input(4, i);
            let kept = fuzz_configs(&plan, &data, false);
            assert_eq!(kept, fuzz_configs(&plan, &data, false));
            assert!(kept.ends_with(&[Wasmi, Interp]), "{kept:?}");
            assert_eq!(kept.len(), 3, "{kept:?}");
            *runs.entry(kept[0]).or_insert(0) += 1;
        }
        for c in [Null, Drc, Copying, PulleyDrc] {
            assert!((70..=130).contains(&runs[&c]), "{runs:?}");
        }
        assert_eq!(fuzz_configs(&plan, b"any", true), configs);
        // Without a judge that compiles nothing, every configuration runs...
        let unjudged = Plan { configs: configs[..4].to_vec(), ..plan.clone() };
        assert_eq!(fuzz_configs(&unjudged, b"any", false), &configs[..4]);
        // ...unless a model gives every call's result.
        let mut modelled = unjudged.clone();
        modelled.calls[0].expect = Some(vec![crate::outcome::Value::I64(1)]);
        assert_eq!(fuzz_configs(&modelled, b"any", false).len(), 1);
    }

    #[test]
    fn an_escaping_panic_leaves_a_report_named_by_the_input() {
        let dir = tempfile::tempdir().unwrap();
        set_crash_reports(dir.path());
        let input = b"some fuzz input";
        let caught = std::panic::catch_unwind(|| with_crash_report(input, || panic!("planted target crash")));
        assert!(caught.is_err());
        let report = std::fs::read_to_string(dir.path().join(report_name(input))).unwrap();
        assert!(report.contains("planted target crash") && report.contains("backtrace:"), "{report}");
        // An input that does not crash leaves nothing.
        with_crash_report(b"fine", || ());
        assert!(!dir.path().join(report_name(b"fine")).exists());
    }

    /// Set in the child process of the test below: where it faults into.
    const FAULT_INTO: &str = "GCFUZZ_TEST_FAULT_INTO";

    /// A function of its own, so the faulting frame has a name whatever
    /// the optimizer inlines around it.
    #[inline(never)]
    fn fault_reading_null() {
        // SAFETY: deliberately fatal: only the child process calls it.
        unsafe { std::ptr::read_volatile(std::hint::black_box(std::ptr::null::<u64>())) };
    }

    #[test]
    fn a_fatal_signal_leaves_a_report_named_by_the_input() {
        let input = b"faulting input";
        if let Some(dir) = std::env::var_os(FAULT_INTO) {
            set_crash_reports(Path::new(&dir));
            with_crash_report(input, fault_reading_null);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let name = "campaign::fuzz::tests::a_fatal_signal_leaves_a_report_named_by_the_input";
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1"])
            .env(FAULT_INTO, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status}");
        let text = std::fs::read_to_string(dir.path().join(report_name(input))).unwrap();
        let symbols = crate::engine::fatal::Symbols::read(&std::env::current_exe().unwrap());
        let readable = crate::campaign::nightly::readable(&text, &symbols, &[]);
        let first = readable.lines().next().unwrap();
        assert!(first.starts_with("fatal signal SIGSEGV at "), "{readable}");
        assert!(first.contains("fault_reading_null"), "{readable}");
        // A panic's report is kept as it is.
        assert_eq!(crate::campaign::nightly::readable("panicked at x", &symbols, &[]), "panicked at x");
    }
}

/// The environment variable naming the directory for crash reports: the
/// nightly job sets it, so that each crash keeps its message and stack even
/// where libFuzzer's fork mode throws the job's log away.
pub const CRASH_REPORTS_ENV: &str = "GCFUZZ_CRASH_REPORTS";

/// The report file name for `input`: its hash, as libFuzzer names the
/// artifact by the input's SHA-1 (the nightly job pairs them by content).
pub fn report_name(input: &[u8]) -> String {
    format!("{:016x}.report.txt", xxhash_rust::xxh3::xxh3_64(input))
}

static REPORTS: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

thread_local! {
    /// The report file of the input this thread runs.
    static CURRENT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sends crash reports to `dir` (instead of `GCFUZZ_CRASH_REPORTS`'s): for
/// tests. Only the first call of the process counts.
pub fn set_crash_reports(dir: &Path) {
    let _ = REPORTS.set(Some(dir.to_path_buf()));
}

/// Runs `f` on `data`; a panic that escapes (a new finding, a crash in the
/// target) first writes its message, location and backtrace to the report
/// directory, when there is one, and a fatal signal its raw report
/// (`engine::fatal`: pc and frames, which the nightly job names). The
/// fatal handler is installed here, before the first input creates an
/// engine, so Wasmtime's handlers still see their traps first.
pub fn with_crash_report<T>(data: &[u8], f: impl FnOnce() -> T) -> T {
    static HOOK: std::sync::Once = std::sync::Once::new();
    let Some(dir) = REPORTS.get_or_init(|| std::env::var_os(CRASH_REPORTS_ENV).map(Into::into)) else {
        return f();
    };
    HOOK.call_once(|| {
        crate::engine::fatal::install();
        let _ = std::fs::create_dir_all(dir);
        let previous = std::panic::take_hook();
        let dir = dir.clone();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = CURRENT.with(|c| c.borrow().clone()) {
                let location = info.location().map_or("?".into(), |l| format!("{}:{}", l.file(), l.line()));
                let text =
                    format!("{info}\nlocation: {location}\nbacktrace:\n{}", std::backtrace::Backtrace::force_capture());
                let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(name), text));
            }
            previous(info)
        }));
    });
    let name = report_name(data);
    crate::engine::fatal::report_file(Some(&dir.join(&name)));
    CURRENT.with(|c| *c.borrow_mut() = Some(name));
    let result = f();
    CURRENT.with(|c| *c.borrow_mut() = None);
    crate::engine::fatal::report_file(None);
    result
}

/// Writes `count` seeded inputs of `generator` to `dir` as a seed corpus: a
/// quarter inside wasmi's subset, the rest allocating GC modules (every
/// input, for `gc-stress`). Returns how many were written.
pub fn seed_corpus(dir: &Path, generator: Generator, count: u64, seed: u64) -> Result<u64> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (mut written, mut reftypes) = (0, 0);
    let mut index = 0;
    while written < count {
        let input = seeded_input(seed, index);
        index += 1;
        let Ok(case) = generate::case(generator, &input) else { continue };
        let wanted = if generator == Generator::GcStress {
            true
        } else if reftypes * 4 < count {
            case.plan.profile == Profile::RefTypes
        } else {
            allocates(&case.wasm)
        };
        if !wanted {
            continue;
        }
        reftypes += (case.plan.profile == Profile::RefTypes) as u64;
        let name = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&input));
        std::fs::write(dir.join(name), &input)?;
        written += 1;
    }
    Ok(written)
}
