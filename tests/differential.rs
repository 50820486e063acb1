//! End-to-end checks of the differential core: planted bugs are found, real
//! engines on seeded inputs are not accused.

#[path = "support/planted.rs"]
mod planted;

use gcfuzz::campaign::{self, run::Status, run::Summary};
use gcfuzz::case::{ConfigId, TestCase, seeded_input};
use gcfuzz::engine::worker::{InProcess, Worker, WorkerCommand};
use gcfuzz::generate;
use gcfuzz::oracle::{FindingKind, check_case};
use gcfuzz::triage::confirm;
use std::time::Duration;

const MODULE: &str = r#"(module
  (type $s (struct (field i32)))
  (import "host" "gc" (func $gc))
  (func (export "f") (result i32)
    (local $x (ref null $s))
    (local.set $x (struct.new $s (i32.const 41)))
    (call $gc)
    (struct.get $s 0 (local.get $x))))"#;

fn case() -> TestCase {
    TestCase::from_module_bytes(MODULE.as_bytes()).unwrap()
}

fn names(configs: &[&str]) -> Vec<String> {
    configs.iter().map(|s| s.to_string()).collect()
}

/// The worker with planted configurations (tests/support/planted_worker.rs).
fn planted_worker() -> WorkerCommand {
    WorkerCommand { program: env!("CARGO_BIN_EXE_planted-worker").into(), args: vec![] }
}

#[test]
fn real_configurations_agree_on_a_rooted_struct() {
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case(), &names(&["null", "drc", "copying", "pulley-drc"]), &mut exec).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.outcomes.len(), 4);
    assert_eq!(report.outcomes[0].calls[0].status.to_string(), "ok(i32:41)");
}

#[test]
fn planted_wrong_result_is_a_mismatch() {
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case(), &names(&["null", "drc", "planted-wrong-result"]), &mut exec).unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(f.kind, FindingKind::Mismatch);
    assert_eq!(f.configs, vec!["planted-wrong-result"]);
    assert!(f.signature.starts_with("mismatch-result-planted-wrong-result-"), "{}", f.signature);
    assert!(f.summary.contains("null says ok(i32:41)") && f.summary.contains("says ok(i32:42)"), "{}", f.summary);
}

/// A panic in code that compiled Wasm called out to is told apart by the
/// Wasm operator that called out (for a collector assert, the safepoint),
/// and Pulley's same panic, which has no native Wasm frames, is told apart
/// alike. The bug: Wasmtime 48.0.8's `is_subtype` libcall assert on a host
/// `externref` seen as `anyref` (crashes/crash-assertion-failed-x-un-max-*),
/// reached from `ref.test` (both its forms: one signature) and from
/// `br_on_cast`.
#[test]
fn panics_under_wasm_frames_are_told_apart_by_the_operator_that_called_out() {
    if gcfuzz::line::wasmtime() != "wasmtime 48.0.8" {
        eprintln!("skipped: the bug this test reaches is Wasmtime 48.0.8's");
        return;
    }
    let mut worker = Worker::new(planted_worker(), Duration::from_secs(60));
    let configs = names(&["drc", "pulley-drc"]);
    let mut run = |body: &str| {
        let wat = format!(
            r#"(module (type $a (sub (array (mut i8))))
                 (func (export "f") (param externref) (result i32) {body})
                 (@custom "gcfuzz:plan" (after code) "{{\22profile\22:\22Gc\22,\22calls\22:[{{\22export\22:\22f\22,\22args\22:[{{\22Extern\22:2}}],\22collect_before\22:false}}],\22zeal\22:null,\22gc_heap_initial\22:null,\22configs\22:[\22drc\22,\22pulley-drc\22]}}"))"#
        );
        let report = check_case(&TestCase::from_module_bytes(wat.as_bytes()).unwrap(), &configs, &mut worker).unwrap();
        assert_eq!(report.findings.len(), 1, "{body}: {:#?}", report.findings);
        report.findings[0].clone()
    };
    let test = run("(ref.test (ref $a) (any.convert_extern (local.get 0)))");
    let test_again = run("(i32.add (i32.const 0) (ref.test (ref $a) (any.convert_extern (local.get 0))))");
    let test_nullable = run("(ref.test (ref null $a) (any.convert_extern (local.get 0)))");
    let cast = run(
        "(block $hit (result (ref $a)) (br_on_cast $hit anyref (ref $a) (any.convert_extern (local.get 0))) (drop) (return (i32.const 0))) (drop) (i32.const 1)",
    );
    assert_eq!(test.configs, ["drc", "pulley-drc"], "one finding for native and Pulley: {test:#?}");
    assert_eq!(test.crash.as_ref().unwrap().wasm.as_deref(), Some("RefTestNonNull"), "{test:#?}");
    assert_eq!(test.signature, test_again.signature);
    assert_eq!(test.signature, test_nullable.signature, "the nullable form is the same bug");
    assert!(test_nullable.summary.contains("(at Wasm RefTestNullable)"), "{}", test_nullable.summary);
    assert_ne!(test.signature, cast.signature, "{}", cast.summary);
    assert!(cast.summary.contains("(at Wasm BrOnCast)"), "{}", cast.summary);
}

/// One planted wrong value, reached through different instructions: the
/// interpreter's trace names the one that made it, so a value read by
/// `struct.get` and one read by `array.get` are two signatures, and the same
/// instruction in two differently shaped modules is one.
#[test]
fn mismatches_are_told_apart_by_the_instruction_that_made_the_value() {
    let mut exec = InProcess::new(planted::factory);
    let configs = names(&["null", "interp", "planted-wrong-result"]);
    let mut signature = |body: &str| {
        let wat = format!(
            r#"(module (type $s (struct (field i32))) (type $a (array (mut i32)))
                 (global $g (mut i32) (i32.const 0))
                 (func (export "f") (param i32) (result i32) (local i32) {body}))"#
        );
        let report = check_case(&TestCase::from_module_bytes(wat.as_bytes()).unwrap(), &configs, &mut exec).unwrap();
        assert_eq!(report.findings.len(), 1, "{body}: {:?}", report.findings);
        report.findings[0].clone()
    };
    let from_struct = signature("(struct.get $s 0 (struct.new $s (i32.const 41)))");
    let from_struct_again =
        signature("(local.set 1 (struct.get $s 0 (struct.new $s (i32.const 7)))) (block (result i32) (local.get 1))");
    let from_array = signature("(array.get $a (array.new $a (i32.const 41) (i32.const 2)) (i32.const 1))");
    let through_global = signature(
        "(global.set $g (array.get $a (array.new $a (i32.const 3) (i32.const 2)) (i32.const 0))) (global.get $g)",
    );
    assert!(from_struct.summary.ends_with("(value from StructGet)"), "{}", from_struct.summary);
    assert_eq!(from_struct.signature, from_struct_again.signature);
    assert_ne!(from_struct.signature, from_array.signature);
    assert_eq!(from_array.signature, through_global.signature, "{}", through_global.summary);
}

#[test]
fn planted_rooting_panic_is_a_crash_with_its_message() {
    let mut worker = Worker::new(planted_worker(), Duration::from_secs(60));
    let report = check_case(&case(), &names(&["null", "planted-panic", "drc"]), &mut worker).unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(f.kind, FindingKind::Crash);
    let crash = f.crash.as_ref().unwrap();
    assert_eq!(crash.config, "planted-panic");
    assert!(crash.message.contains("VMGcRefActivationsTable"), "{}", crash.message);
    assert_eq!(crash.signal, Some(libc::SIGABRT));
    assert!(f.signature.starts_with("crash-every-on-stack-gc-ref-inside-a-wasm-"), "{}", f.signature);
    assert!(f.summary.starts_with("panic on planted-panic: every on-stack gc_ref"), "{}", f.summary);
    // The configurations after the crash still ran, in a fresh worker.
    assert_eq!(report.outcomes.iter().map(|o| o.config.as_str()).collect::<Vec<_>>(), ["null", "drc"]);
    // ...by the spare started when the first one died.
    assert_eq!((worker.spawned, worker.warm_starts), (2, 1));

    // The same bug found again has the same signature.
    let again = check_case(&case(), &names(&["null", "planted-panic"]), &mut worker).unwrap();
    assert_eq!(again.findings[0].signature, f.signature);
    // Each death from now on is taken over by a spare, and what a spare runs
    // is what a cold worker runs.
    let third = check_case(&case(), &names(&["planted-panic", "null"]), &mut worker).unwrap();
    assert_eq!(third.findings[0].signature, f.signature);
    assert_eq!((worker.spawned, worker.warm_starts), (4, 3));
    assert_eq!(third.outcomes[0].calls, report.outcomes[0].calls);
}

/// A panic in a host call on Pulley, whose frames are not on the native
/// stack, is located at the Wasm call that made it, as on native code: a
/// collector assert on Pulley only is told apart by its safepoint.
#[test]
fn a_panic_in_a_host_call_on_pulley_is_located_at_its_call_site() {
    let mut worker = Worker::new(planted_worker(), Duration::from_secs(60));
    let report = check_case(&case(), &names(&["null", "planted-pulley-gc-panic"]), &mut worker).unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let crash = report.findings[0].crash.as_ref().unwrap();
    assert_eq!(crash.wasm.as_deref(), Some("Call"), "{crash:?}");
    assert!(report.findings[0].summary.ends_with("(at Wasm Call)"), "{}", report.findings[0].summary);
}

/// A panic in process is the same crash as in a worker (message, location,
/// frames): what lets the libFuzzer targets recognize a known bug. (The
/// planted engine's frames are named after the binary it is linked into, so
/// they are compared without it; a real Wasmtime panic gets the very same
/// signature, see `differential_passes_over_a_known_bug` in the fuzz crate.)
#[test]
fn a_panic_in_process_is_the_crash_a_worker_reports() {
    let configs = names(&["null", "planted-panic"]);
    let in_worker = check_case(&case(), &configs, &mut Worker::new(planted_worker(), Duration::from_secs(60))).unwrap();
    let mut exec = InProcess::new(planted::factory);
    let in_process = check_case(&case(), &configs, &mut exec).unwrap();
    assert_eq!(in_process.findings.len(), 1, "{:?}", in_process.findings);
    assert_eq!(in_process.findings[0].kind, FindingKind::Crash);
    let (a, b) = (in_process.findings[0].crash.as_ref().unwrap(), in_worker.findings[0].crash.as_ref().unwrap());
    assert_eq!((&a.message, &a.location), (&b.message, &b.location));
    let unrooted = |frames: &[String]| -> Vec<String> {
        gcfuzz::oracle::frames::significant_frames(frames)
            .iter()
            .map(|f| f.split_once("::").map_or(f.clone(), |(_, rest)| rest.to_string()))
            .collect()
    };
    // The innermost frame; below it lie the two harnesses (test runner, worker).
    assert_eq!(unrooted(&a.frames).first(), unrooted(&b.frames).first());
    assert!(unrooted(&a.frames)[0].contains("PlantedInstance"), "{:?}", a.frames);
    // The engine that panicked is rebuilt: the next case runs cleanly.
    let again = check_case(&case(), &names(&["null", "drc"]), &mut exec).unwrap();
    assert!(again.findings.is_empty(), "{:?}", again.findings);
}

/// A crash that a fresh worker does not repeat (as when a worker is killed
/// from outside) is unreproducible; a deterministic one is confirmed.
#[test]
fn findings_are_confirmed_in_a_fresh_worker() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("crashed-once");
    let once = WorkerCommand {
        program: env!("CARGO_BIN_EXE_planted-worker").into(),
        args: vec!["--panic-once-marker".into(), marker.display().to_string()],
    };
    let configs = names(&["null", "planted-panic-once"]);
    let report = check_case(&case(), &configs, &mut Worker::new(once.clone(), Duration::from_secs(60))).unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let signature = &report.findings[0].signature;
    assert!(marker.exists());
    let timeout = Duration::from_secs(60);
    assert!(!confirm::reproduces(&case(), &configs, signature, &once, timeout).unwrap());
    let configs = names(&["null", "planted-panic"]);
    let report = check_case(&case(), &configs, &mut Worker::new(planted_worker(), timeout)).unwrap();
    let signature = &report.findings[0].signature;
    assert!(confirm::reproduces(&case(), &configs, signature, &planted_worker(), timeout).unwrap());
    // Another signature is not a confirmation.
    assert!(
        !confirm::reproduces(&case(), &configs, "crash-something-else-00000000", &planted_worker(), timeout).unwrap()
    );
}

/// A campaign over `drc` that panics once (the first call of the first
/// case), then never again: known or not, such a finding is counted and the
/// case with it still counts as run.
fn campaign_with_a_crash_once(marker: &std::path::Path, out: &std::path::Path, known: &[String]) -> Summary {
    let worker = WorkerCommand {
        program: env!("CARGO_BIN_EXE_planted-worker").into(),
        args: vec!["--plant-drc-panic-once".into(), "--panic-once-marker".into(), marker.display().to_string()],
    };
    campaign::run::run(&campaign::run::Options {
        generator: generate::Generator::GcStress,
        time: Duration::from_secs(600),
        seed: 5,
        jobs: 1,
        configs: vec![ConfigId::Null, ConfigId::Drc],
        out: out.to_path_buf(),
        known: known.iter().cloned().collect(),
        avoid: vec![],
        timeout: Duration::from_secs(60),
        worker,
        max_execs: Some(6),
        plans: 1,
        stop: Default::default(),
    })
}

/// A crash a fresh worker does not repeat is unreproducible in a campaign;
/// once its signature is known, a hit that does not repeat is counted as
/// known, and neither the case nor its other findings are lost (a known,
/// unrepeated finding once ended the case's bookkeeping early).
#[test]
fn a_campaign_counts_every_case_whatever_its_findings_turn_out_to_be() {
    let dir = tempfile::tempdir().unwrap();
    let first = campaign_with_a_crash_once(&dir.path().join("marker-1"), &dir.path().join("out-1"), &[]);
    assert_eq!(first.execs + first.generation_failures, 6, "{first:?}");
    let crash = first.findings.iter().find(|f| f.kind == FindingKind::Crash).expect("the planted crash");
    assert_eq!(crash.status, Status::Unreproducible, "{first:?}");
    assert_eq!(first.unreproducible, 1);
    // The case a finding names by seed, index and plan is the one it came
    // from (`gcfuzz case`).
    let plan = crash.plan.unwrap_or(0) as u64;
    let named = campaign::run::case_at(generate::Generator::GcStress, 5, crash.index, plan, &[]).unwrap().unwrap();
    let stored = std::fs::read(crash.path.join("module.wasm")).unwrap();
    assert_eq!(named.to_module_bytes(), stored, "{}", crash.path.display());
    let signature = crash.signature.clone();
    let second = campaign_with_a_crash_once(
        &dir.path().join("marker-2"),
        &dir.path().join("out-2"),
        std::slice::from_ref(&signature),
    );
    assert_eq!(second.execs, first.execs, "{second:?}");
    assert_eq!(second.known_hits, 1, "{second:?}");
    let known = second.findings.iter().find(|f| f.signature == signature).expect("the known crash counted");
    assert_eq!(known.status, Status::Known);
    assert_eq!(second.exit_code(), 0);
}

/// A module exporting `f` returning `value`, and an empty function named
/// `role` when there is one.
fn numbered(value: i32, role: &str) -> TestCase {
    let extra = if role.is_empty() { String::new() } else { format!(r#"(func (export "{role}"))"#) };
    let wat = format!(r#"(module (func (export "f") (result i32) (i32.const {value})) {extra})"#);
    TestCase::from_module_bytes(wat.as_bytes()).unwrap()
}

#[test]
fn a_bug_that_needs_history_gets_the_shortest_history_as_its_reproducer() {
    use gcfuzz::triage::history;
    let timeout = Duration::from_secs(60);
    let configs = names(&["null", "planted-panic-after-poison"]);
    let earlier = [numbered(1, ""), numbered(2, "poison"), numbered(3, ""), numbered(4, "")];
    let victim = numbered(5, "victim");
    // In one long-lived worker, the victim crashes after the others.
    let mut worker = Worker::new(planted_worker(), timeout);
    for case in &earlier {
        assert!(check_case(case, &configs, &mut worker).unwrap().findings.is_empty());
    }
    let report = check_case(&victim, &configs, &mut worker).unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let signature = report.findings[0].signature.clone();
    // Alone, in a fresh worker, it does not.
    assert!(!confirm::reproduces(&victim, &configs, &signature, &planted_worker(), timeout).unwrap());
    // The search keeps just the poisoning case, and the result replays
    // from its own bytes in a fresh worker.
    let found = history::shortest(&victim, &earlier, &configs, &signature, &mut worker).unwrap().unwrap();
    assert_eq!(found.history().unwrap(), [earlier[1].clone()]);
    let replayed = TestCase::from_module_bytes(&found.to_module_bytes()).unwrap();
    assert!(confirm::reproduces(&replayed, &configs, &signature, &planted_worker(), timeout).unwrap());
    // Without the poisoning case there is nothing to find.
    let harmless = [earlier[0].clone(), earlier[2].clone()];
    assert!(history::shortest(&victim, &harmless, &configs, &signature, &mut worker).unwrap().is_none());
}

#[test]
fn aborts_signals_and_hangs_are_isolated() {
    let mut worker = Worker::new(planted_worker(), Duration::from_secs(3));
    let report =
        check_case(&case(), &names(&["null", "planted-abort", "planted-segfault", "planted-hang", "drc"]), &mut worker)
            .unwrap();
    let by_config =
        |c: &str| report.findings.iter().find(|f| f.configs == [c]).unwrap_or_else(|| panic!("no finding for {c}"));
    let abort = by_config("planted-abort");
    assert_eq!((abort.kind, abort.crash.as_ref().unwrap().signal), (FindingKind::Crash, Some(libc::SIGABRT)));
    let segv = by_config("planted-segfault");
    assert_eq!((segv.kind, segv.crash.as_ref().unwrap().signal), (FindingKind::Crash, Some(libc::SIGSEGV)));
    assert_eq!(by_config("planted-hang").kind, FindingKind::Timeout);
    assert_ne!(abort.signature, segv.signature);
    // Outcomes of the healthy configurations survive all of it, and agree.
    assert_eq!(report.outcomes.len(), 2);
    assert!(!report.findings.iter().any(|f| f.kind == FindingKind::Mismatch));
}

#[test]
fn faults_are_told_apart_by_where_they_happened() {
    let mut worker = Worker::new(planted_worker(), Duration::from_secs(30));
    let report =
        check_case(&case(), &names(&["null", "planted-null-read", "planted-null-write"]), &mut worker).unwrap();
    let by_config =
        |c: &str| report.findings.iter().find(|f| f.configs == [c]).unwrap_or_else(|| panic!("no finding for {c}"));
    let (read, write) = (by_config("planted-null-read"), by_config("planted-null-write"));
    for (f, function) in [(read, "fault_reading"), (write, "fault_writing")] {
        let crash = f.crash.as_ref().unwrap();
        assert_eq!(crash.signal, Some(libc::SIGSEGV), "{crash:?}");
        // The fatal-signal report names the faulting function first.
        assert!(crash.frames.first().is_some_and(|fr| fr.ends_with(function)), "{:?}", crash.frames);
        assert!(
            f.summary.ends_with(&format!("fatal signal SIGSEGV (in planted_worker::planted::{function})")),
            "{}",
            f.summary
        );
    }
    // One signal, two places: two bugs.
    assert_ne!(read.signature, write.signature);
    // The same fault again: the same signature.
    let again = check_case(&case(), &names(&["null", "planted-null-read"]), &mut worker).unwrap();
    assert!(again.findings.iter().any(|f| f.signature == read.signature), "{:?}", again.findings);
}

#[test]
fn hangs_are_told_apart_by_where_they_hang() {
    let mut worker = Worker::new(planted_worker(), Duration::from_secs(1));
    let hang = |worker: &mut Worker, config: &str| {
        let report = check_case(&case(), &names(&["null", config]), worker).unwrap();
        let f = report.findings.iter().find(|f| f.configs == [config]).unwrap_or_else(|| panic!("{report:?}"));
        assert_eq!(f.kind, FindingKind::Timeout);
        f.clone()
    };
    let (sleep, spin) = (hang(&mut worker, "planted-hang"), hang(&mut worker, "planted-spin"));
    // The samples of the worker's stack name where each hung.
    let frames = &spin.crash.as_ref().unwrap().frames;
    assert!(frames.first().is_some_and(|f| f.ends_with("spin_in_place")), "{frames:?}");
    assert!(spin.summary.ends_with("(in planted_worker::planted::spin_in_place)"), "{}", spin.summary);
    // Two places, two bugs; the same place again, the same bug.
    assert_ne!(sleep.signature, spin.signature);
    assert_eq!(hang(&mut worker, "planted-spin").signature, spin.signature);
    assert_eq!(hang(&mut worker, "planted-hang").signature, sleep.signature);
}

#[test]
fn a_worker_past_its_memory_limit_is_an_oom_finding() {
    let mut worker = Worker::new(planted_worker().memory_limit_mb(256), Duration::from_secs(60));
    let report = check_case(&case(), &names(&["null", "planted-leak", "drc"]), &mut worker).unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!((f.kind, f.configs.as_slice()), (FindingKind::OutOfMemory, &["planted-leak".to_string()][..]));
    assert!(f.signature.starts_with("oom-memory-allocation-of-n-bytes-failed-"), "{}", f.signature);
    assert_eq!(report.outcomes.len(), 2, "the other configurations still ran");
}

/// Collects 300 times, with a small struct alive across each collection:
/// Null never needs more than a few KiB of GC heap.
const COLLECTS_OFTEN: &str = r#"(module
  (type $s (struct (field i32)))
  (import "host" "gc" (func $gc))
  (func (export "f") (result i32)
    (local $i i32) (local $x (ref null $s))
    (loop $l
      (local.set $x (struct.new $s (local.get $i)))
      (call $gc)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 300))))
    (struct.get $s 0 (local.get $x))))"#;

#[test]
fn a_collector_out_of_gc_heap_where_null_was_not_is_a_leak() {
    let case = TestCase::from_module_bytes(COLLECTS_OFTEN.as_bytes()).unwrap();
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case, &names(&["null", "drc", "copying", "planted-gc-leak"]), &mut exec).unwrap();
    let null = &report.outcomes[0];
    assert_eq!(null.calls[0].status.to_string(), "ok(i32:299)");
    assert!(null.gc_heap_bytes.is_some_and(|b| b <= gcfuzz::oracle::leak::YARDSTICK), "{:?}", null.gc_heap_bytes);
    // The real collectors free what the module drops; the planted one runs
    // out of heap: a leak, not an inconclusive run.
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!((f.kind, f.configs.as_slice()), (FindingKind::Leak, &["planted-gc-leak".to_string()][..]));
    assert!(f.signature.starts_with("leak-planted-gc-leak-gc-heap-out-of-memory-"), "{}", f.signature);
    assert!(f.summary.contains("at call[0] f"), "{}", f.summary);
}

/// One function per planted translation bug; each returns what the
/// specification says only if the instruction is translated right.
const SEMANTICS: &str = r#"(module
  (type $a (sub (struct (field i32))))
  (type $b (sub $a (struct (field i32) (field i32))))
  (func (export "i31") (result i32)
    (i31.get_s (ref.i31 (i32.const -5))))
  (func (export "first") (result i32)
    (struct.get $b 0 (struct.new $b (i32.const 1) (i32.const 2))))
  (func (export "is_b") (result i32)
    (ref.test (ref $b) (struct.new $a (i32.const 1)))))"#;

#[test]
fn planted_translation_bugs_disagree_with_the_interpreter() {
    let case = TestCase::from_module_bytes(SEMANTICS.as_bytes()).unwrap();
    let mut exec = InProcess::new(planted::factory);
    // The real engine and the interpreter agree on the right answers.
    let report = check_case(&case, &names(&["null", "interp"]), &mut exec).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let results: Vec<String> = report.outcomes[1].calls.iter().map(|c| c.status.to_string()).collect();
    assert_eq!(results, ["ok(i32:-5)", "ok(i32:1)", "ok(i32:0)"]);

    for (index, (planted, call, wrong)) in [
        ("planted-i31-zero-extends", "i31", "ok(i32:2147483643)"),
        ("planted-neighbour-field", "first", "ok(i32:2)"),
        ("planted-cast-always-succeeds", "is_b", "ok(i32:1)"),
    ]
    .into_iter()
    .enumerate()
    {
        // The interpreter judges the planted configuration (listed first, as
        // a crashed Null would leave it): the wrong one is named.
        let report = check_case(&case, &names(&[planted, "interp"]), &mut exec).unwrap();
        assert_eq!(report.findings.len(), 1, "{planted}: {:?}", report.findings);
        let f = &report.findings[0];
        assert_eq!((f.kind, f.configs.as_slice()), (FindingKind::Mismatch, &[planted.to_string()][..]));
        let m = &f.mismatches[0];
        assert!(m.at.starts_with(&format!("call[{index}] {call}")), "{planted}: {}", m.at);
        assert_eq!((m.actual.as_str(), m.reference.as_str()), (wrong, "interp"), "{planted}");
    }
}

/// Heap shapes the interpreter's walk must render exactly as Wasmtime's:
/// aliasing, nesting, packed fields, i31, funcrefs, internalized host
/// references, exception payloads.
const SHAPES: &str = r#"(module
  (type $s (struct (field (mut i32)) (field i8) (field (mut (ref null $s)))))
  (type $arr (array (mut anyref)))
  (type $f (func (param i32) (result i32)))
  (tag $t (param i32 anyref))
  (import "host" "extern_new" (func $ext (param i32) (result externref)))
  (table (export "tab") 2 funcref)
  (elem (table 0) (i32.const 1) func $id)
  (global $g (export "g") (mut anyref) (ref.null any))
  (func $id (type $f) (local.get 0))
  (func (export "alias") (result anyref anyref)
    (local $x (ref null $s))
    (local.set $x (struct.new $s (i32.const 7) (i32.const -1) (ref.null $s)))
    (struct.set $s 2 (local.get $x) (local.get $x))
    (global.set $g (array.new_fixed $arr 4
      (local.get $x)
      (ref.i31 (i32.const -3))
      (any.convert_extern (call $ext (i32.const 9)))
      (array.new_default $arr (i32.const 40))))
    (local.get $x)
    (global.get $g))
  (func (export "ext") (result externref)
    (extern.convert_any (struct.new $s (i32.const 1) (i32.const 2) (ref.null $s))))
  (func (export "throws")
    (throw $t (i32.const 5) (ref.i31 (i32.const 6)))))"#;

#[test]
fn the_interpreter_walks_heaps_like_wasmtime() {
    let case = TestCase::from_module_bytes(SHAPES.as_bytes()).unwrap();
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case, &names(&["null", "interp"]), &mut exec).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let interp = &report.outcomes[1];
    let calls: Vec<String> = interp.calls.iter().map(|c| c.status.to_string()).collect();
    assert_eq!(
        calls,
        [
            "ok(#0=struct(mut i32 i8 mut ref null $struct){i32:7 i32:255 #0} \
             #1=array(mut ref null any)[4]{#0 i31:-3 extern:9 #2=array(mut ref null any)[40]{null null null \
             null null null null null null null null null null null null null null null null null null null \
             null null null null null null null null null null}})",
            "ok(extern(#0=struct(mut i32 i8 mut ref null $struct){i32:1 i32:2 null}))",
            "uncaught #0=exn(i32 ref null any)->(){i32:5 i31:6}",
        ]
    );
    let state = interp.state.as_ref().unwrap();
    assert_eq!(state.tables[0].1.elems[1].to_string(), "func(i32)->(i32)");
}

/// Seeded generated cases on the real configurations: any finding of theirs
/// is a false positive of ours, or a real Wasmtime bug, kept and explained
/// in `crashes/` (known on this line: allowed here). Most cases must really be compared (not cut short as
/// inconclusive), and a planted wrong configuration taking part in the same
/// sweep must be caught: a sweep that judges nothing cannot pass.
fn no_false_positives(seeds: std::ops::Range<u64>) {
    let mut exec = InProcess::new(planted::factory);
    let known =
        gcfuzz::report::record::known_signatures(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes"));
    let (mut compared, mut wasmi, mut interp, mut inconclusive, mut planted_caught) = (0, 0, 0, 0, 0);
    let (mut with_knobs, mut linked, mut linked_ran) = (0, 0, 0);
    for i in seeds.clone() {
        let case = generate::fuzz_case(&seeded_input(0xfa15e, i)).unwrap();
        let mut configs: Vec<String> = case.plan.configs.iter().map(|c| c.name().to_string()).collect();
        configs.push("planted-wrong-result".into());
        with_knobs += !case.plan.knobs.is_empty() as u32;
        linked += !case.plan.linked.is_empty() as u32;
        let report = check_case(&case, &configs, &mut exec).unwrap();
        // Generated modules import only what the earlier ones export, at its
        // own type: every engine links them.
        for outcome in &report.outcomes {
            if let gcfuzz::outcome::Status::Error(e) = &outcome.instantiate {
                assert!(!e.contains("import") && !e.contains("compile"), "case {i}, {}: {e}", outcome.config);
            }
        }
        linked_ran += (!case.plan.linked.is_empty()
            && report.outcomes[0].calls.iter().any(|c| matches!(c.status, gcfuzz::outcome::Status::Returned(_))))
            as u32;
        let (planted, real): (Vec<_>, Vec<_>) =
            report.findings.iter().partition(|f| f.configs == ["planted-wrong-result"]);
        let new: Vec<_> = real.iter().filter(|f| !known.contains(&f.signature)).collect();
        assert!(new.is_empty(), "case {i}: {new:#?}");
        planted_caught += !planted.is_empty() as u32;
        compared += (report.outcomes.len() >= 6) as u32;
        inconclusive += report.inconclusive.is_some() as u32;
        wasmi += report.outcomes.iter().any(|o| o.config == "wasmi") as u32;
        interp += report.outcomes.iter().any(|o| o.config == "interp") as u32;
    }
    // Every case really ran on all its configurations, the interpreter on
    // every one, and wasmi took part.
    let n = seeds.clone().count() as u32;
    assert_eq!((compared, interp), (n, n));
    assert!(wasmi >= 10, "wasmi ran on only {wasmi} cases");
    assert!(with_knobs * 3 >= n, "only {with_knobs} of {n} cases changed engine settings");
    // An eighth of the inputs link two modules, a sixteenth three; most of
    // them really run.
    assert!(linked * 8 >= n, "only {linked} of {n} cases link modules");
    assert!(linked_ran * 2 >= linked, "only {linked_ran} of {linked} linked cases returned from a call");
    assert!(inconclusive * 10 <= n, "{inconclusive} of {n} cases inconclusive");
    // The planted configuration adds one to every i32 result: the cases
    // whose calls return an i32 show it.
    assert!(planted_caught * 4 >= n, "the planted wrong result was caught in only {planted_caught} of {n} cases");
}

#[test]
fn seeded_cases_give_no_false_positives_1() {
    no_false_positives(0..150);
}

#[test]
fn seeded_cases_give_no_false_positives_2() {
    no_false_positives(150..300);
}

/// A plan calling `export` with `args`, a collection before each call.
/// The objects the host holds are walked once more after the last call:
/// a root the host lost shows even when no later call takes the object
/// back (the planted host drops its roots when each call ends).
#[test]
fn held_objects_are_read_again_after_the_last_call() {
    use gcfuzz::case::Arg::I32;
    let module = r#"(module
      (type $s (struct (field i32)))
      (import "host" "gc" (func $gc))
      (func (export "make") (param i32) (result (ref $s)) (struct.new $s (local.get 0)))
      (func (export "churn") (call $gc)))"#;
    let mut case = TestCase::from_module_bytes(module.as_bytes()).unwrap();
    case.plan.calls = calls(&[("make", vec![I32(41)]), ("churn", vec![])]);
    let case = TestCase::from_module_bytes(&case.to_module_bytes()).unwrap();
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case, &names(&["null", "drc", "copying", "interp"]), &mut exec).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let held = &report.outcomes[0].state.as_ref().unwrap().held;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, "call[0].result[0]");
    let found = check_case(&case, &names(&["null", "planted-drops-held-roots"]), &mut exec).unwrap().findings;
    assert_eq!(found.len(), 1, "a held object whose root was dropped: {found:#?}");
    assert_eq!(found[0].mismatches[0].kind, gcfuzz::oracle::compare::MismatchKind::Held, "{found:#?}");
}

fn calls(list: &[(&str, Vec<gcfuzz::case::Arg>)]) -> Vec<gcfuzz::case::Call> {
    list.iter()
        .map(|(export, args)| gcfuzz::case::Call {
            export: export.to_string(),
            args: args.clone(),
            collect_before: true,
            expect: None,
            module: None,
        })
        .collect()
}

/// Objects that earlier calls returned, held by the host in both rooting
/// forms (call 0's manually rooted, call 1's scoped) across collections and
/// passed back, once and twice in one call: every engine gives the same
/// answers, and a host that drops its roots is caught.
#[test]
fn objects_round_trip_through_the_host() {
    use gcfuzz::case::Arg::{Earlier, I32};
    let module = r#"(module
      (type $s (struct (field i32)))
      (import "host" "gc" (func $gc))
      (func (export "make") (param i32) (result (ref $s)) (struct.new $s (local.get 0)))
      (func (export "read") (param (ref null $s)) (result i32) (call $gc) (struct.get $s 0 (local.get 0)))
      (func (export "same") (param anyref anyref) (result i32)
        (call $gc)
        (ref.eq (ref.cast (ref null eq) (local.get 0)) (ref.cast (ref null eq) (local.get 1)))))"#;
    let mut case = TestCase::from_module_bytes(module.as_bytes()).unwrap();
    let first = Earlier { call: 0, result: 0 };
    let second = Earlier { call: 1, result: 0 };
    case.plan.calls = calls(&[
        ("make", vec![I32(41)]),
        ("make", vec![I32(42)]),
        ("read", vec![first.clone()]),
        ("read", vec![second.clone()]),
        ("same", vec![first.clone(), second.clone()]),
        ("same", vec![second.clone(), second]),
        ("read", vec![first]),
    ]);
    let case = TestCase::from_module_bytes(&case.to_module_bytes()).unwrap();
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case, &names(&["null", "drc", "copying", "pulley-drc", "interp"]), &mut exec).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let ints: Vec<String> = report.outcomes[0].calls[2..].iter().map(|c| format!("{:?}", c.status)).collect();
    let want = |v: i32| format!("{:?}", gcfuzz::outcome::Status::Returned(vec![gcfuzz::outcome::Value::I32(v)]));
    assert_eq!(ints, [want(41), want(42), want(0), want(1), want(41)]);
    let found = check_case(&case, &names(&["null", "planted-drops-held-roots"]), &mut exec).unwrap().findings;
    assert_eq!(found.len(), 1, "a dropped root must be noticed: {found:#?}");
    assert_eq!(found[0].kind, FindingKind::Mismatch);
}

/// wasmi takes part in host round-trips of `externref`s.
#[test]
fn host_references_round_trip_through_wasmi_too() {
    use gcfuzz::case::Arg::{Earlier, I32};
    let module = r#"(module
      (import "host" "extern_new" (func $new (param i32) (result externref)))
      (import "host" "extern_id" (func $id (param externref) (result i32)))
      (func (export "make") (param i32) (result externref) (call $new (local.get 0)))
      (func (export "id") (param externref) (result i32) (call $id (local.get 0))))"#;
    let mut case = TestCase::from_module_bytes(module.as_bytes()).unwrap();
    case.plan.calls =
        calls(&[("make", vec![I32(7)]), ("make", vec![I32(8)]), ("id", vec![Earlier { call: 1, result: 0 }])]);
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case, &names(&["null", "drc", "wasmi", "interp"]), &mut exec).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.outcomes.len(), 4);
    for outcome in &report.outcomes {
        assert_eq!(format!("{:?}", outcome.calls[2].status), "Returned([I32(8)])", "{}", outcome.config);
    }
}

/// A bug that needs one engine setting is found with it, gone without it,
/// and gone when the harness forgets to apply the plan's settings: the
/// settings travel from the plan into the engine, and a reproducer needs
/// them to replay.
#[test]
fn a_bug_that_needs_an_engine_setting_replays_only_with_it() {
    use gcfuzz::case::{Knob, Setting};
    let module = r#"(module
      (import "host" "extern_new" (func $new (param i32) (result externref)))
      (import "host" "extern_id" (func $id (param externref) (result i32)))
      (func (export "f") (result i32) (call $id (call $new (i32.const 5)))))"#;
    let mut case = TestCase::from_module_bytes(module.as_bytes()).unwrap();
    case.plan.knobs.insert(Knob::TableLazyInit, Setting::Flag(false));
    let case = TestCase::from_module_bytes(&case.to_module_bytes()).unwrap();
    assert_eq!(case.plan.knobs.len(), 1, "the setting travels in the plan section");
    let mut exec = InProcess::new(planted::factory);
    let run = |case: &TestCase, config: &str, exec: &mut InProcess| {
        check_case(case, &names(&["null", config]), exec).unwrap().findings
    };
    let found = run(&case, "planted-eager-table-bug", &mut exec);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, FindingKind::Mismatch);
    let mut defaults = case.clone();
    defaults.plan.knobs.clear();
    assert!(run(&defaults, "planted-eager-table-bug", &mut exec).is_empty());
    assert!(run(&case, "planted-forgets-knobs", &mut exec).is_empty(), "a forgotten setting must not replay");
    // The reference keeps Wasmtime's defaults: the same setting on a real
    // configuration changes nothing.
    assert!(run(&case, "drc", &mut exec).is_empty());
}

/// Instantiation traps are compared by class across engines that report them
/// differently (wasmi: an instantiation error for element segments).
#[test]
fn segment_initialization_traps_agree_across_engines() {
    let mut exec = InProcess::new(gcfuzz::engine::real_engine);
    for wat in [
        r#"(module (table 1 funcref) (func $f) (elem (i32.const 5) func $f))"#,
        r#"(module (memory 1) (data (i32.const 65535) "ab"))"#,
    ] {
        let case = TestCase::from_module_bytes(wat.as_bytes()).unwrap();
        assert!(case.plan.configs.contains(&gcfuzz::case::ConfigId::Wasmi));
        let report = check_case(&case, &names(&["null", "wasmi"]), &mut exec).unwrap();
        assert!(report.findings.is_empty(), "{wat}: {:?}", report.findings);
        assert_eq!(report.outcomes.len(), 2);
        assert!(report.outcomes[1].instantiate.to_string().contains("OutOfBounds"), "{:?}", report.outcomes[1]);
    }
}

/// The regression `.wast` written from the right outcome passes on Wasmtime;
/// written from a planted wrong one, it fails there: the file tells a buggy
/// engine from a correct one.
#[test]
fn regression_wast_tells_right_from_wrong() {
    let wat = r#"(module
      (type $s (struct (field i32)))
      (tag $e (param i32))
      (import "host" "gc" (func $gc))
      (func (export "f") (result i32) (call $gc) (struct.get $s 0 (struct.new $s (i32.const 5))))
      (func (export "g") (result i32) (drop (ref.cast (ref $s) (ref.i31 (i32.const 1)))) (i32.const 0))
      (func (export "h") (throw $e (i32.const 3)))
      (func (export "k") (param externref) (result externref) (local.get 0))
      (func (export "n") (result (ref null $s)) (struct.new $s (i32.const 1))))"#;
    let case = TestCase::from_module_bytes(wat.as_bytes()).unwrap();
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case, &names(&["null", "planted-wrong-result"]), &mut exec).unwrap();
    let sig = &report.findings[0].signature;
    let good = gcfuzz::report::regression::wast(&case, sig, Some(&report.outcomes[0]), "test").unwrap();
    assert!(good.starts_with(";;! gc = true\n"), "{good}");
    for directive in
        ["(assert_return (invoke $test \"f\") (i32.const 5))", "(assert_trap (invoke $test \"g\") \"cast failure\")"]
    {
        assert!(good.contains(directive), "{directive} missing in\n{good}");
    }
    assert!(good.contains("(assert_exception (invoke $test \"h\"))"), "{good}");
    assert!(good.contains("(ref.null extern)") && good.contains("(ref.struct)"), "{good}");
    for config in [ConfigId::Null, ConfigId::Drc, ConfigId::Copying, ConfigId::PulleyDrc] {
        gcfuzz::engine::wasmtime::wast::run(&good, config, Some(1))
            .unwrap_or_else(|e| panic!("{config}: {e:#}\n{good}"));
    }
    let bad = gcfuzz::report::regression::wast(&case, sig, Some(&report.outcomes[1]), "test").unwrap();
    assert!(gcfuzz::engine::wasmtime::wast::run(&bad, ConfigId::Drc, None).is_err(), "{bad}");
}
