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
        // cannot make host externrefs, so a `.wast` for a case any of whose
        // modules needs `host.extern_new` or `host.extern_id` approximates
        // them and is not held to this.
        let wasmtime_bug = record.expected_on.iter().any(|e| e == gcfuzz::line::engine_versions()[0]);
        let needs_host_externrefs = case.modules().unwrap().iter().any(|m| {
            let text = wasmprinter::print_bytes(m).unwrap();
            text.contains("\"extern_new\"") || text.contains("\"extern_id\"")
        });
        // Under the zeal counter the case was found with, as its header says.
        let mut wast = std::process::Command::new(env!("CARGO_BIN_EXE_gcfuzz"));
        wast.arg("wast").arg(path.join("regression.wast"));
        if let Some(zeal) = case.plan.zeal.filter(|_| gcfuzz::line::has(gcfuzz::line::Cap::Zeal)) {
            wast.arg("--zeal").arg(zeal.to_string());
        }
        let wast = wast.output().unwrap();
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

/// One bug, one signature, whichever variant configuration and zeal counter
/// a plan drew: each reproducer of a bug open on this build, run with every
/// other variant in place of the one it has and under other zeal counters,
/// gives, on the configurations its finding names, its own signature or none
/// (a bug of one variant only), never another one. Another configuration may
/// show the bug in a form of its own (Pulley has no inline GC checks: where
/// native code reports heap corruption, it faults); those are listed.
#[test]
fn reproducers_keep_their_signature_whichever_variant_and_zeal_the_plan_draws() {
    use gcfuzz::case::ConfigId;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes");
    let worker = WorkerCommand { program: env!("CARGO_BIN_EXE_gcfuzz").into(), args: vec!["worker".into()] };
    let mut worker = Worker::new(worker, Duration::from_secs(60));
    let mut open_here = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(record) = read_record(&path) else { continue };
        let Body::Wasm(body) = &record.body else { continue };
        if !record.expected_on.iter().any(|e| gcfuzz::line::engine_versions().contains(&e.as_str())) {
            continue;
        }
        open_here += 1;
        let case = TestCase::from_module_bytes(&std::fs::read(path.join("module.wasm")).unwrap()).unwrap();
        let mut draws = Vec::new();
        for variant in ConfigId::VARIANTS.iter().filter(|v| v.on_line()) {
            let mut c = case.clone();
            c.plan.configs.retain(|id| !ConfigId::VARIANTS.contains(id));
            c.plan.configs.insert(3.min(c.plan.configs.len()), *variant);
            draws.push((format!("variant {variant}"), c));
        }
        for zeal in [None, Some(1), Some(100)] {
            let mut c = case.clone();
            c.plan.zeal = zeal;
            draws.push((format!("zeal {zeal:?}"), c));
        }
        let mut reproduced = 0;
        let had = &body.finding.configs;
        for (what, c) in &draws {
            let configs: Vec<String> = c.plan.configs.iter().map(|id| id.name().to_string()).collect();
            let report = check_case(c, &configs, &mut worker).unwrap();
            for f in &report.findings {
                if f.signature == body.finding.signature {
                    reproduced += 1;
                } else if f.configs.iter().all(|c| !had.contains(c)) {
                    eprintln!("{} with {what}: another form on {:?}: {}", path.display(), f.configs, f.summary);
                } else {
                    panic!("{} with {what}: {} on {:?} instead", path.display(), f.signature, f.configs);
                }
            }
        }
        eprintln!(
            "{}: its signature in {reproduced} of {} draws, no other on its configurations",
            path.display(),
            draws.len()
        );
        assert!(reproduced > 0, "{}: reproduced under no draw", path.display());
    }
    assert!(open_here > 0 || gcfuzz::line::wasmtime_version() != "48.0.8", "no reproducer is open on 48.0.8");
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

/// Every reproducer is named by the signature today's key gives its stored
/// finding, whichever engine line it was found on: a change to the key
/// that renames a bug shows here, also for the entries this build cannot
/// replay (the 31, 36 and 42 lines'), whose records must then be re-run on
/// their line (`gcfuzz repro --json`) and their folders renamed.
#[test]
fn reproducers_are_named_by_todays_signature_of_their_record() {
    use gcfuzz::oracle::{Finding, FindingKind};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(record) = read_record(&path) else { continue };
        let Body::Wasm(body) = &record.body else { continue };
        let f = &body.finding;
        let today = match f.kind {
            FindingKind::Mismatch => Finding::mismatch(f.mismatches.clone()),
            // Judged from the outcomes by `oracle::leak`, not from the record.
            FindingKind::Leak => continue,
            kind => Finding::crash(kind, f.crash.clone().expect("a crash record")),
        };
        assert_eq!(today.signature, f.signature, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} records checked");
}
