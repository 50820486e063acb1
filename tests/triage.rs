//! Triage on planted findings: shrinking keeps the signature and loses the
//! rest.

use gcfuzz::case::TestCase;
use gcfuzz::differential::check_case;
use gcfuzz::worker::{Worker, WorkerCommand};
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
    let shrunk = gcfuzz::shrink::shrink(&case, &signature, &configs, &mut worker, 200, |_| {}).unwrap();
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
