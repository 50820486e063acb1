//! Every reproducer under `crashes/` replays against the engines this build
//! pins, and reproduces exactly when its metadata says it is expected to
//! (an open bug in one of these engine versions); otherwise it must not. Its
//! regression `.wast` fails on Wasmtime exactly when the bug is Wasmtime's.

use gcfuzz::case::TestCase;
use gcfuzz::engine::worker::{Worker, WorkerCommand};
use gcfuzz::oracle::check_case;
use gcfuzz::report::record::{Body, ClifBody, Record, read_record};
use std::time::Duration;

#[test]
fn reproducers_replay_as_their_metadata_says() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes");
    let entries = std::fs::read_dir(&dir).expect("crashes/ exists");
    let worker = WorkerCommand { program: env!("CARGO_BIN_EXE_gcfuzz").into(), args: vec!["worker".into()] };
    let mut worker = Worker::new(worker, Duration::from_secs(60));
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if !path.is_dir() || path.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        let record = read_record(&path).unwrap();
        let body = match &record.body {
            Body::Wasm(body) => body,
            Body::Clif(body) => {
                replay_stackmap(&path, &record, body);
                checked += 1;
                continue;
            }
        };
        assert_eq!(path.file_name().unwrap().to_string_lossy(), body.finding.signature, "directory named by signature");
        let case = TestCase::from_module_bytes(&std::fs::read(path.join("module.wasm")).unwrap()).unwrap();
        let configs: Vec<String> = case.plan.configs.iter().map(|c| c.name().to_string()).collect();
        let report = check_case(&case, &configs, &mut worker).unwrap();
        let reproduced = report.findings.iter().any(|f| f.signature == body.finding.signature);
        let expected = record.expected_on.iter().any(|e| gcfuzz::line::engine_versions().contains(&e.as_str()));
        assert_eq!(
            reproduced,
            expected,
            "{}: reproduced={reproduced}, but expected_on={:?}; findings now: {:?}",
            path.display(),
            record.expected_on,
            report.findings.iter().map(|f| &f.signature).collect::<Vec<_>>()
        );
        // The regression test fails on Wasmtime exactly when the bug is
        // expected on this Wasmtime (wasmi bugs: Wasmtime passes it). Wasm
        // cannot make host externrefs, so a `.wast` for a module that needs
        // `host.extern_new` approximates them and is not held to this.
        let wasmtime_bug = record.expected_on.iter().any(|e| e == gcfuzz::line::engine_versions()[0]);
        let needs_host_externrefs = case.to_wat().contains("\"extern_new\"");
        let wast = std::process::Command::new(env!("CARGO_BIN_EXE_gcfuzz"))
            .arg("wast")
            .arg(path.join("regression.wast"))
            .output()
            .unwrap();
        assert!(wast.status.code().is_some(), "{}: the wast runner died", path.display());
        if !needs_host_externrefs {
            assert_eq!(
                wast.status.code(),
                Some(if wasmtime_bug { 1 } else { 0 }),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&wast.stdout)
            );
        }
        // The text form is the same case.
        let wat = std::fs::read_to_string(path.join("module.wat")).unwrap();
        assert_eq!(TestCase::from_module_bytes(wat.as_bytes()).unwrap().plan, case.plan, "{}", path.display());
        checked += 1;
    }
    eprintln!("replayed {checked} reproducers");
    // Every reproducer directory was checked, and there are some.
    let dirs = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(checked, dirs, "checked {checked} of {dirs} reproducer directories");
    assert!(checked >= 10, "only {checked} reproducers: crashes/ lost some");
}

/// A stack-map verifier finding: its program reproduces on its Cranelift
/// configuration exactly when expected on this Cranelift.
fn replay_stackmap(path: &std::path::Path, record: &Record, body: &ClifBody) {
    use gcfuzz::stackmaps;
    assert_eq!(path.file_name().unwrap().to_string_lossy(), body.signature);
    let prog: stackmaps::Program =
        serde_json::from_str(&std::fs::read_to_string(path.join("program.json")).unwrap()).unwrap();
    let config = stackmaps::config_named(&body.opt_level, &body.regalloc).expect("known configuration");
    let problems = stackmaps::check(&prog, config, Default::default()).unwrap();
    let reproduced = problems.first().map(|p| p.kind.as_str()) == body.problems.first().map(|p| p.kind.as_str());
    let expected = record.expected_on.iter().any(|e| e == gcfuzz::line::CRANELIFT);
    assert_eq!(reproduced, expected, "{}: {problems:?}", path.display());
}
