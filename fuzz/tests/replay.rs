//! The stable build of each fuzz target replays its seed corpus cleanly: the
//! shims are wired to the library, and the corpus holds no finding.

use std::process::Command;

fn replays(binary: &str, corpus: &str) {
    let out = Command::new(binary).arg(corpus).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let count = std::fs::read_dir(corpus).unwrap().count();
    assert!(count >= 8, "corpus has only {count} inputs");
    assert!(stderr.contains(&format!("replayed {count} inputs")), "{stderr}");
}

#[test]
fn differential_replays_its_seed_corpus() {
    replays(env!("CARGO_BIN_EXE_differential"), concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/differential"));
}

#[test]
fn gc_stress_replays_its_seed_corpus() {
    replays(env!("CARGO_BIN_EXE_gc_stress"), concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/gc_stress"));
}

#[test]
fn stackmaps_replays_its_seed_corpus() {
    replays(env!("CARGO_BIN_EXE_stackmaps"), concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/stackmaps"));
}

#[test]
fn differential_rejects_unreadable_input_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_differential")).arg("/nonexistent/input").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1);
}

/// A known bug (in `crashes/`, expected on this build) is counted and passed
/// over, not a crash; without the list of known bugs the same input is one;
/// with the bug's avoid rule, a case holding its trigger is not run.
#[test]
fn differential_passes_over_a_known_bug() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../crashes/crash-bug-gc-heap-corruption-detected-in-642f7b7c");
    let record = std::fs::read_to_string(format!("{dir}/finding.json")).unwrap();
    if !record.contains(&format!("\"wasmtime {}\"", gcfuzz::line::wasmtime_version())) {
        return; // not a bug of this Wasmtime line
    }
    // The reproducer module (a fuzz input makes whatever case the
    // generators of the day make of it), on native configurations only:
    // this bug's Pulley form is a fatal signal, which no target passes over.
    let mut case =
        gcfuzz::case::TestCase::from_module_bytes(&std::fs::read(format!("{dir}/module.wasm")).unwrap()).unwrap();
    case.plan.configs.retain(|c| !c.name().starts_with("pulley"));
    let input = std::env::temp_dir().join(format!("gcfuzz-known-module-{}.wasm", std::process::id()));
    std::fs::write(&input, case.to_module_bytes()).unwrap();
    let run = |known: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_differential")).arg(&input).env("GCFUZZ_KNOWN", known).output();
        let out = out.unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // The same bug known, but without its avoid rule: hit and passed over.
    let known = std::env::temp_dir().join(format!("gcfuzz-known-{}", std::process::id()));
    let copy = known.join("crash-bug-gc-heap-corruption-detected-in-642f7b7c");
    std::fs::create_dir_all(&copy).unwrap();
    let without_rule = record.replace(r#""avoid": ["#, r#""avoid_off": ["#);
    assert_ne!(without_rule, record, "the record has an avoid rule");
    std::fs::write(copy.join("finding.json"), without_rule).unwrap();
    let (ok, stderr) = run(&known);
    std::fs::remove_dir_all(&known).unwrap();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("known bug crash-bug-gc-heap-corruption-detected-in-642f7b7c"), "{stderr}");
    // Unknown: a finding.
    let (ok, stderr) = run(std::path::Path::new("/nonexistent"));
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("gcfuzz finding crash-bug-gc-heap-corruption-detected-in-642f7b7c"), "{stderr}");
    // As `crashes/` has it, with the rule: the case with the trigger is not run.
    let (ok, stderr) = run(std::path::Path::new(dir).parent().unwrap());
    std::fs::remove_file(&input).unwrap();
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("skipped a case with the trigger of crash-bug-gc-heap-corruption-detected-in-642f7b7c"),
        "{stderr}"
    );
}
