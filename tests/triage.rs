//! Triage on planted findings: shrinking keeps the signature and loses the
//! rest.

use gcfuzz::case::TestCase;
use gcfuzz::engine::worker::{Worker, WorkerCommand};
use gcfuzz::oracle::check_case;
use gcfuzz::triage::bulk::{Options, triage};
use std::time::Duration;

fn planted_worker() -> Worker {
    let command = WorkerCommand { program: env!("CARGO_BIN_EXE_planted-worker").into(), args: vec![] };
    Worker::new(command, Duration::from_secs(60))
}

/// A module with plenty the planted bug does not need around the one
/// function that returns a struct.
const NOISY: &str = r#"(module
  (type $s (struct (field i32) (field i64)))
  (type $a (array (mut i32)))
  (global $g (mut i32) (i32.const 0))
  (memory 1)
  (func (export "noise") (param i32) (result i32)
    (local $x (ref null $a))
    (local.set $x (array.new $a (local.get 0) (i32.const 8)))
    (array.set $a (local.get $x) (i32.const 3) (i32.const 99))
    (i32.store (i32.const 16) (array.get $a (local.get $x) (i32.const 3)))
    (global.set $g (i32.add (global.get $g) (i32.load (i32.const 16))))
    (global.get $g))
  (func (export "make") (param i32) (result (ref null $s))
    (drop (i32.mul (local.get 0) (i32.const 3)))
    (global.set $g (i32.const 5))
    (struct.new $s (i32.add (local.get 0) (i32.const 1)) (i64.const 7)))
  (func (export "more") (result i64)
    (i64.add (i64.const 1) (i64.extend_i32_u (global.get $g)))))"#;

#[test]
fn shrinking_a_planted_crash_keeps_its_signature() {
    let case = TestCase::from_module_bytes(NOISY.as_bytes()).unwrap();
    let configs = vec!["planted-panic-on-struct".to_string()];
    let mut worker = planted_worker();
    let report = check_case(&case, &configs, &mut worker).unwrap();
    let signature = report.findings[0].signature.clone();
    let shrunk = gcfuzz::triage::shrink::shrink(&case, &signature, &configs, &mut worker, 200, |_| {}).unwrap();
    assert!(shrunk.output_size < shrunk.input_size / 2, "{} -> {}", shrunk.input_size, shrunk.output_size);
    // Only the call that makes the struct is left in the plan.
    assert_eq!(shrunk.case.plan.calls.iter().map(|c| c.export.as_str()).collect::<Vec<_>>(), ["make"]);
    // The shrunk module still reproduces, with the same signature, from its
    // own bytes (plan embedded).
    let again = TestCase::from_module_bytes(&shrunk.case.to_module_bytes()).unwrap();
    let report = check_case(&again, &configs, &mut worker).unwrap();
    assert_eq!(report.findings.iter().map(|f| f.signature.as_str()).collect::<Vec<_>>(), [signature.as_str()]);
    let text = shrunk.case.to_wat();
    assert!(text.contains("struct.new") && !text.contains("array.new") && !text.contains("i32.store"), "{text}");
}

/// Shrinking a linked case shrinks every module: here the one the main
/// module imports its struct maker from.
#[test]
fn shrinking_a_linked_case_shrinks_every_module() {
    let main = wat::parse_str(
        r#"(module
          (type $s (struct (field i32) (field i64)))
          (import "m0" "make" (func $make (param i32) (result (ref null $s))))
          (func (export "via") (result (ref null $s)) (call $make (i32.const 2)))
          (func (export "other") (result i32) (i32.const 3)))"#,
    )
    .unwrap();
    let noisy = wat::parse_str(NOISY).unwrap();
    let mut plan = gcfuzz::case::Plan::default_for(&main, &gcfuzz::case::ModuleInfo::parse(&main).unwrap());
    let mut noise = plan.calls[1].clone();
    noise.export = "noise".into();
    noise.args = vec![gcfuzz::case::Arg::I32(4)];
    noise.module = Some(0);
    plan.calls.insert(0, noise);
    let case = TestCase { wasm: main, plan }.with_linked(std::slice::from_ref(&noisy));
    let configs = vec!["planted-panic-on-struct".to_string()];
    let mut worker = planted_worker();
    let report = check_case(&case, &configs, &mut worker).unwrap();
    let signature = report.findings[0].signature.clone();
    let shrunk = gcfuzz::triage::shrink::shrink(&case, &signature, &configs, &mut worker, 200, |_| {}).unwrap();
    assert_eq!(shrunk.case.plan.calls.len(), 1, "{:?}", shrunk.case.plan.calls);
    let again = TestCase::from_module_bytes(&shrunk.case.to_module_bytes()).unwrap();
    let report = check_case(&again, &configs, &mut worker).unwrap();
    assert_eq!(report.findings.iter().map(|f| f.signature.as_str()).collect::<Vec<_>>(), [signature.as_str()]);
    // The linked module lost what the bug does not need, and the sizes
    // count both modules.
    let linked = shrunk.case.linked().unwrap();
    let kept = linked.first().map_or(0, Vec::len);
    assert!(kept < noisy.len() / 2, "{} -> {kept}", noisy.len());
    assert_eq!(shrunk.output_size, kept + shrunk.case.wasm.len());
    assert_eq!(shrunk.input_size, noisy.len() + case.wasm.len());
}

/// A module exporting `f` and an empty function named `role`.
fn exporting(role: &str) -> TestCase {
    let wat = format!(r#"(module (func (export "f") (result i32) (i32.const 1)) (func (export "{role}")))"#);
    TestCase::from_module_bytes(wat.as_bytes()).unwrap()
}

/// A later, smaller case of a stored signature that crashed only because of
/// what the batch left in the engine (a fresh worker does not repeat it)
/// counts as a hit and does not replace the reproducer: what is stored
/// replays from its own bytes.
#[test]
fn bulk_triage_keeps_only_reproducers_a_fresh_worker_repeats() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (poison, victim) = (exporting("poison"), exporting("victim"));
    let whole = victim.with_history(std::slice::from_ref(&poison));
    let write = |name: &str, case: &TestCase| std::fs::write(inputs.path().join(name), case.to_module_bytes()).unwrap();
    write("a-whole.wasm", &whole);
    write("b-poison.wasm", &poison);
    write("c-victim.wasm", &victim);
    let configs = vec!["null".to_string(), "planted-panic-after-poison".to_string()];
    let opts = Options { configs: Some(&configs), ..Options::new(out.path(), Default::default()) };
    let mut worker = planted_worker();
    let report = triage(inputs.path(), &opts, &mut worker, |_| {}).unwrap();
    let failed: Vec<_> =
        report.failures.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(failed, ["b-poison.wasm"], "{:?}", report.failures);
    assert_eq!(report.buckets.len(), 1, "{:?}", report.buckets);
    let (signature, bucket) = report.buckets.iter().next().unwrap();
    assert_eq!(bucket.count, 2, "the victim alone crashed after the poison, and counts");
    assert_eq!(std::fs::read(bucket.path.join("module.wasm")).unwrap(), whole.to_module_bytes());
    let stored = TestCase::from_module_bytes(&std::fs::read(bucket.path.join("module.wasm")).unwrap()).unwrap();
    let again = gcfuzz::triage::confirm::rerun(&stored, &configs, &mut worker).unwrap();
    assert_eq!(again, std::slice::from_ref(signature));
}

#[test]
fn bulk_triage_buckets_by_signature_and_reports_bad_files() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(inputs.path().join(name), bytes).unwrap();
    write("a.wat", NOISY.as_bytes());
    // The same bug in a differently shaped module.
    write("b.wat", br#"(module (type $t (struct)) (func (export "f") (result (ref $t)) struct.new $t))"#);
    write("clean.wat", br#"(module (func (export "f") (result i32) i32.const 1))"#);
    write("truncated.wasm", b"\0asm\x01\0\0\0\x01\x05");
    write("syntax.wat", b"(module (func");
    let configs = vec!["planted-panic-on-struct".to_string()];
    let mut worker = planted_worker();
    let mut lines = Vec::new();
    let opts =
        Options { configs: Some(&configs), shrink_attempts: Some(100), ..Options::new(out.path(), Default::default()) };
    let report = triage(inputs.path(), &opts, &mut worker, |l| lines.push(l.to_string())).unwrap();
    assert_eq!(report.files, 5);
    assert_eq!(report.buckets.len(), 1, "{:?}", report.buckets);
    let (signature, bucket) = report.buckets.iter().next().unwrap();
    assert_eq!((bucket.count, bucket.new), (2, true));
    let (from, to) = bucket.shrunk.unwrap();
    assert!(to < from, "{from} -> {to}");
    // The stored, shrunk reproducer replays to the same signature.
    let stored = TestCase::from_module_bytes(&std::fs::read(bucket.path.join("module.wasm")).unwrap()).unwrap();
    let again = check_case(&stored, &configs, &mut worker).unwrap();
    assert_eq!(&again.findings[0].signature, signature);
    assert_eq!(gcfuzz::report::record::read_record(&bucket.path).unwrap().hits, 2);
    // Each bad file gets one line, and the rest of the batch went on.
    let failed: Vec<_> =
        report.failures.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(failed, ["clean.wat", "syntax.wat", "truncated.wasm"]);
    assert!(report.failures[0].1.contains("does not reproduce"), "{:?}", report.failures);
    assert_eq!(lines.len(), 5);

    // Once promoted into a crash directory as a known bug of this build, the
    // next batch finds it known; the crash directory is not written.
    let crashes = tempfile::tempdir().unwrap();
    gcfuzz::report::record::promote(&bucket.path, crashes.path()).unwrap();
    let known = gcfuzz::report::record::known_signatures(crashes.path());
    assert!(known.contains(signature), "{known:?}");
    let before = std::fs::read(crashes.path().join(signature).join("finding.json")).unwrap();
    let opts = Options { configs: Some(&configs), ..Options::new(out.path(), known) };
    let again = triage(inputs.path(), &opts, &mut worker, |_| {}).unwrap();
    assert!(!again.buckets[signature].new);
    assert_eq!(std::fs::read(crashes.path().join(signature).join("finding.json")).unwrap(), before);
    assert_eq!(gcfuzz::report::record::read_record(&bucket.path).unwrap().hits, 4, "hits go to the working directory");

    // Promoting it again is refused; the same bug found on another engine
    // adds that engine to `expected_on` and keeps the known reproducer.
    assert!(gcfuzz::report::record::promote(&bucket.path, crashes.path()).is_err());
    let finding = bucket.path.join("finding.json");
    let text = std::fs::read_to_string(&finding).unwrap();
    let engine = gcfuzz::report::record::read_record(&bucket.path).unwrap().engine;
    std::fs::write(&finding, text.replace(&engine, "wasmtime 99.0.0")).unwrap();
    gcfuzz::report::record::promote(&bucket.path, crashes.path()).unwrap();
    let known = gcfuzz::report::record::read_record(&crashes.path().join(signature)).unwrap();
    assert_eq!(known.expected_on, [engine.clone(), "wasmtime 99.0.0".to_string()]);
    assert_eq!(known.engine, engine);
}

/// A crash the first worker had and a restarted one does not is not stored.
#[test]
fn bulk_triage_stores_only_what_a_fresh_worker_repeats() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(inputs.path().join("once.wat"), NOISY.as_bytes()).unwrap();
    let marker = inputs.path().join("crashed-once");
    let command = WorkerCommand {
        program: env!("CARGO_BIN_EXE_planted-worker").into(),
        args: vec!["--panic-once-marker".into(), marker.display().to_string()],
    };
    let mut worker = Worker::new(command, Duration::from_secs(60));
    let configs = vec!["null".to_string(), "planted-panic-once".to_string()];
    let opts = Options { configs: Some(&configs), ..Options::new(out.path(), Default::default()) };
    let report = triage(inputs.path(), &opts, &mut worker, |_| {}).unwrap();
    assert!(marker.exists(), "the planted crash happened");
    assert!(report.buckets.is_empty(), "{:?}", report.buckets);
    assert_eq!(report.unreproducible, 1);
    assert_eq!(report.failures.len(), 1);
    assert!(report.failures[0].1.contains("does not reproduce in a fresh worker"), "{:?}", report.failures);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing stored");
}

#[test]
fn narrowing_finds_the_engine_setting_a_planted_bug_needs() {
    use gcfuzz::case::{Knob, Setting};
    // `drc` in this worker gets host externref ids wrong, with eager tables only.
    let args = vec!["--plant-drc-eager-table".into()];
    let command = WorkerCommand { program: env!("CARGO_BIN_EXE_planted-worker").into(), args };
    let mut worker = Worker::new(command, Duration::from_secs(60));
    let mut case = TestCase::from_module_bytes(
        br#"(module
              (import "host" "extern_new" (func $new (param i32) (result externref)))
              (import "host" "extern_id" (func $id (param externref) (result i32)))
              (func (export "f") (result i32) (call $id (call $new (i32.const 5)))))"#,
    )
    .unwrap();
    case.plan.knobs.insert(Knob::TableLazyInit, Setting::Flag(false));
    case.plan.knobs.insert(Knob::MemoryGuardSize, Setting::Bytes(0));
    let report = check_case(&case, &["null".to_string(), "drc".to_string()], &mut worker).unwrap();
    let finding = &report.findings[0];
    let n = gcfuzz::triage::narrow::narrow(&case, finding, &mut worker).unwrap();
    assert_eq!(n.witness(), Some(gcfuzz::case::ConfigId::Drc));
    let needed: Vec<Knob> = n.knobs_needed().map(|(k, _)| k).collect();
    assert_eq!(needed, [Knob::TableLazyInit]);
    assert_eq!(n.knobs.len(), 2);
    let text = gcfuzz::triage::narrow::render(&n, "m.wasm");
    assert!(text.contains("needed: table-lazy-init=false; not needed: memory-guard-size=0"), "{text}");
    assert!(text.contains("-O table-lazy-init=n"), "{text}");
    assert!(text.contains("config.table_lazy_init(false);") && !text.contains("memory_guard_size"), "{text}");
}

#[test]
fn narrowing_finds_the_one_configuration_and_zeal_a_planted_bug_needs() {
    // `copying` in this worker adds one to i32 results, under zeal 1 only.
    let command =
        WorkerCommand { program: env!("CARGO_BIN_EXE_planted-worker").into(), args: vec!["--plant-copying".into()] };
    let mut worker = Worker::new(command, Duration::from_secs(60));
    let mut case = TestCase::from_module_bytes(
        br#"(module (type $s (struct (field i32)))
              (func (export "f") (result i32) (struct.get $s 0 (struct.new $s (i32.const 41)))))"#,
    )
    .unwrap();
    case.plan.zeal = Some(1);
    let report = check_case(&case, &["null".to_string(), "copying".to_string()], &mut worker).unwrap();
    let finding = &report.findings[0];
    let n = gcfuzz::triage::narrow::narrow(&case, finding, &mut worker).unwrap();
    let hits: Vec<String> = n.configs.iter().filter(|(_, h)| *h).map(|(c, _)| c.to_string()).collect();
    assert_eq!(hits, ["copying"]);
    assert_eq!(n.zeal_needed(), Some(Some(1)));
    // The module uses GC but neither exceptions nor tail calls.
    assert!(n.features.contains(&"gc") && !n.features.contains(&"exceptions") && !n.features.contains(&"tail_call"));
    let text = gcfuzz::triage::narrow::render(&n, "m.wasm");
    assert!(text.contains("-C collector=copying"), "{text}");
    assert!(text.contains("config.gc_zeal_alloc_counter(std::num::NonZeroU32::new(1))?;"), "{text}");
    assert!(text.contains("config.collector(wasmtime::Collector::Copying);"), "{text}");
}

/// A raw fuzz input is made into the case its fuzz target made of it: with
/// the known bugs' avoid rules, which the rooted pass honours (without them
/// triage ran another case than the one that crashed).
#[test]
fn raw_inputs_are_triaged_as_the_target_generated_them() {
    use gcfuzz::case::{AvoidRule, seeded_input};
    use gcfuzz::generate::{Generator, case_avoiding};
    use gcfuzz::triage::bulk::load;
    let rule = AvoidRule { signature: "s".into(), sequence: vec!["AnyConvertExtern".into(), "RefTestNonNull".into()] };
    let path = std::path::Path::new("crash-input");
    let mut differed = 0;
    for i in 0..40 {
        let data = seeded_input(21, i);
        let Ok(target) = case_avoiding(Generator::Rooted, &data, std::slice::from_ref(&rule)) else { continue };
        let (loaded, input) = load(path, &data, Generator::Rooted, std::slice::from_ref(&rule)).unwrap();
        assert_eq!(loaded, target, "input {i}");
        assert_eq!(input.as_deref(), Some(&data[..]));
        differed += (load(path, &data, Generator::Rooted, &[]).unwrap().0 != target) as u32;
    }
    assert!(differed > 0, "the rule changed none of the cases: the test shows nothing");
}
