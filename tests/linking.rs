//! Cases of several modules: later modules import the earlier ones' exports,
//! every engine links them, and the oracle compares every instance.

#[path = "support/planted.rs"]
mod planted;

use gcfuzz::case::{ModuleInfo, Plan, TestCase};
use gcfuzz::engine::worker::InProcess;
use gcfuzz::oracle::check_case;

/// Exports a constructor, a global, a table and a reader of the global.
const FIRST: &str = r#"(module
  (type $s (struct (field (mut i32))))
  (import "host" "gc" (func $gc))
  (global (export "g") (mut anyref) (ref.null any))
  (table (export "t") 4 anyref)
  (func (export "make") (param i32) (result (ref $s)) (struct.new $s (local.get 0)))
  (func (export "read") (result i32)
    (call $gc)
    (struct.get $s 0 (ref.cast (ref $s) (global.get 0)))))"#;

/// Declares the same struct type again (canonicalized with the first
/// module's), and stores objects the first module allocated into the first
/// module's global and table, across a collection.
const SECOND: &str = r#"(module
  (type $s (struct (field (mut i32))))
  (import "host" "gc" (func $gc))
  (import "m0" "make" (func $make (param i32) (result (ref $s))))
  (import "m0" "g" (global $g (mut anyref)))
  (import "m0" "t" (table $t 4 anyref))
  (func (export "run") (result i32)
    (local $x (ref null $s))
    (local.set $x (call $make (i32.const 41)))
    (global.set $g (local.get $x))
    (table.set $t (i32.const 1) (call $make (i32.const 7)))
    (call $gc)
    (struct.set $s 0 (local.get $x) (i32.add (struct.get $s 0 (local.get $x)) (i32.const 1)))
    (i32.add (struct.get $s 0 (ref.cast (ref $s) (global.get $g)))
             (struct.get $s 0 (ref.cast (ref $s) (table.get $t (i32.const 1)))))))"#;

/// `second` linked after `FIRST`, calling `run` of the main module and then
/// `read` of the first.
fn linked(second: &str) -> TestCase {
    let wasm = wat::parse_str(second).unwrap();
    let mut plan = Plan::default_for(&wasm, &ModuleInfo::parse(&wasm).unwrap());
    let mut read = plan.calls[0].clone();
    read.export = "read".into();
    read.module = Some(0);
    plan.calls.push(read);
    TestCase { wasm, plan }.with_linked(&[wat::parse_str(FIRST).unwrap()])
}

fn names(configs: &[&str]) -> Vec<String> {
    configs.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_engine_links_and_compares_every_instance() {
    let case = linked(SECOND);
    // The reproducer file carries both modules.
    let replayed = TestCase::from_module_bytes(&case.to_module_bytes()).unwrap();
    assert_eq!(replayed, case);
    let mut exec = InProcess::new(planted::factory);
    let configs = names(&["null", "drc", "copying", "pulley-drc", "interp"]);
    let report = check_case(&case, &configs, &mut exec).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.outcomes.len(), configs.len());
    for outcome in &report.outcomes {
        let statuses: Vec<String> = outcome.calls.iter().map(|c| c.status.to_string()).collect();
        assert_eq!(statuses, ["ok(i32:49)", "ok(i32:42)"], "{}", outcome.config);
        // The first module's global and table are part of the state.
        let state = outcome.state.as_ref().expect("state");
        let global: Vec<&str> = state.globals.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(global, ["m0.g"], "{}", outcome.config);
        assert_eq!(state.tables[0].0, "m0.t");
        assert_eq!(state.tables[0].1.size, 4);
    }
    // The regression .wast defines and registers the first module, invokes
    // exports of both, and passes in Wasmtime's own wast runner.
    let wast = gcfuzz::report::regression::wast(&case, "sig", report.outcomes.first(), "linked").unwrap();
    assert!(wast.contains("(register \"m0\" $m0)") && wast.contains("(invoke $m0 \"read\")"), "{wast}");
    assert!(wast.contains("(assert_return (invoke $test \"run\") (i32.const 49))"), "{wast}");
    gcfuzz::engine::wasmtime::wast::run(&wast, gcfuzz::case::ConfigId::Drc, None).unwrap();
    // Read back, the script is the same case: both modules, the same calls
    // and settings, and the same results.
    let back = TestCase::from_wast(&wast).unwrap();
    assert_eq!(back.plan, Plan { linked: back.plan.linked.clone(), ..case.plan.clone() });
    assert_eq!(back.linked().unwrap().len(), 1);
    let again = check_case(&back, &configs, &mut exec).unwrap();
    assert!(again.findings.is_empty(), "{:#?}", again.findings);
    for (a, b) in report.outcomes.iter().zip(&again.outcomes) {
        assert_eq!(a.calls, b.calls, "{}", a.config);
    }
}

#[test]
fn an_import_matcher_that_accepts_a_non_subtype_is_found() {
    // `make` returns `(ref $s)`, imported as returning a struct of another
    // shape: every real engine refuses to link it.
    let wrong = r#"(module
      (type $other (struct (field i64)))
      (import "m0" "make" (func $make (param i32) (result (ref $other))))
      (func (export "run") (result i32)
        (i32.wrap_i64 (struct.get $other 0 (call $make (i32.const 41))))))"#;
    let case = linked(wrong);
    let mut exec = InProcess::new(planted::factory);
    let report = check_case(&case, &names(&["null", "drc", "interp"]), &mut exec).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert!(
        report.outcomes.iter().all(|o| matches!(o.instantiate, gcfuzz::outcome::Status::Error(_))),
        "{:#?}",
        report.outcomes
    );
    let report = check_case(&case, &names(&["null", "drc", "planted-accepts-any-import"]), &mut exec).unwrap();
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].configs, ["planted-accepts-any-import"]);
}

/// A rec group declared again with one more member is another type, however
/// alike its first member is written: the first module's object passes a
/// test against its own type declared again, and fails one against the twin.
/// A planted canonicalization that keys a group by its members but the last
/// makes the twin the same type, and the oracle finds it.
#[test]
fn a_type_declared_again_in_another_rec_group_is_another_type() {
    let twin = r#"(module
      (rec (type $twin (struct (field (mut i32)))) (type (struct)))
      (type $s (struct (field (mut i32))))
      (import "m0" "make" (func $make (param i32) (result (ref $s))))
      (func (export "run") (result i32)
        (local $x anyref)
        (local.set $x (call $make (i32.const 1)))
        (i32.add (i32.mul (i32.const 10) (ref.test (ref $s) (local.get $x)))
                 (ref.test (ref $twin) (local.get $x)))))"#;
    let case = linked(twin);
    let mut exec = InProcess::new(planted::factory);
    let configs = names(&["null", "drc", "pulley-drc", "interp", "planted-prefix-canonicalization"]);
    let report = check_case(&case, &configs, &mut exec).unwrap();
    for outcome in &report.outcomes {
        let run = outcome.calls[0].status.to_string();
        let expected = if outcome.config.starts_with("planted") { "ok(i32:11)" } else { "ok(i32:10)" };
        assert_eq!(run, expected, "{}", outcome.config);
    }
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].configs, ["planted-prefix-canonicalization"]);
}

/// Generated cases of linked modules meet the twin rec groups: the rooted
/// pass tests each object it observes of an earlier module's type against
/// that type's twin (`generate::linked::twins`), so a seeded sweep finds the
/// planted prefix canonicalization.
#[test]
fn a_planted_canonicalization_bug_is_found_by_a_seeded_sweep_of_linked_cases() {
    let mut exec = InProcess::new(planted::factory);
    let configs = names(&["interp", "planted-prefix-canonicalization"]);
    let (mut linked, mut found) = (0, 0);
    for i in 0..400 {
        let input = gcfuzz::case::seeded_input(31, i);
        let Ok(case) = gcfuzz::generate::case(gcfuzz::generate::Generator::Rooted, &input) else { continue };
        if case.plan.linked.is_empty() {
            continue;
        }
        linked += 1;
        let report = check_case(&case, &configs, &mut exec).unwrap();
        found += report.findings.iter().any(|f| f.configs == ["planted-prefix-canonicalization"]) as usize;
    }
    eprintln!("{linked} linked cases, {found} find the planted canonicalization");
    assert!(linked >= 20, "only {linked} linked cases");
    assert!(found > 0, "no linked case of {linked} finds the planted canonicalization");
}

#[test]
fn a_reproducer_importing_from_a_module_it_does_not_carry_is_refused() {
    let wasm = wat::parse_str(SECOND).unwrap();
    let plan = Plan::default_for(&wasm, &ModuleInfo::parse(&wasm).unwrap());
    let alone = TestCase { wasm, plan };
    let err = TestCase::from_module_bytes(&alone.to_module_bytes()).unwrap_err();
    assert!(format!("{err:#}").contains("imports m0.make"), "{err:#}");
    // A linked module may import only from the ones before it.
    let first = wat::parse_str(FIRST.replace("(import \"host\" \"gc\"", "(import \"m0\" \"gc\"")).unwrap();
    let case = alone.with_linked(&[first]);
    let err = TestCase::from_module_bytes(&case.to_module_bytes()).unwrap_err();
    assert!(format!("{err:#}").contains("linked module m0"), "{err:#}");
}

/// A failure compiled code detects in a linked module's code is located
/// like one in the main module's: the known heap-corruption bug of
/// `crashes/` (a `ref.test (ref struct)` loop on host externrefs), moved
/// into a linked module that the main one calls, keeps its signature on the
/// lines that have it.
#[test]
fn a_fault_in_a_linked_module_is_located_at_its_operator() {
    use gcfuzz::engine::worker::{Worker, WorkerCommand};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crashes/crash-bug-gc-heap-corruption-detected-in-642f7b7c");
    let record = gcfuzz::report::record::read_record(&dir).unwrap();
    if !record.expected_on.iter().any(|e| gcfuzz::line::engine_versions().contains(&e.as_str())) {
        return;
    }
    let bug = TestCase::from_module_bytes(&std::fs::read(dir.join("module.wasm")).unwrap()).unwrap();
    let main =
        wat::parse_str(r#"(module (import "m0" "f" (func $f (result i32))) (func (export "g") (result i32) call $f))"#)
            .unwrap();
    let plan = Plan { zeal: bug.plan.zeal, ..Plan::default_for(&main, &ModuleInfo::parse(&main).unwrap()) };
    let case = TestCase { wasm: main, plan }.with_linked(std::slice::from_ref(&bug.wasm));
    let worker = WorkerCommand { program: env!("CARGO_BIN_EXE_gcfuzz").into(), args: vec!["worker".into()] };
    let mut worker = Worker::new(worker, std::time::Duration::from_secs(60));
    let report = check_case(&case, &names(&["null", "drc"]), &mut worker).unwrap();
    let signatures: Vec<&str> = report.findings.iter().map(|f| f.signature.as_str()).collect();
    assert_eq!(signatures, ["crash-bug-gc-heap-corruption-detected-in-642f7b7c"], "{:#?}", report.findings);
}
