//! The nightly job's orchestration, with a stand-in for the libFuzzer
//! binaries (cargo-fuzz and the nightly toolchain are not needed): status
//! lines become the report's series, artifacts are triaged and moved out of
//! the way only after their finding is stored, a killed run's leftovers are
//! picked up by the next, and the exit code says whether anything is new.

use std::path::Path;
use std::process::Command;

/// A fake fuzz target: prints libFuzzer-style status lines, adds one corpus
/// entry, and implements `-merge=1` by copying the corpus.
const FAKE: &str = r##"#!/bin/sh
if [ "$1" = "-merge=1" ]; then cp "$3"/* "$2"/ 2>/dev/null; exit 0; fi
corpus="$1"
echo "INFO: -fork=2: fuzzing in separate process(s)" >&2
echo "#10: cov: 100 ft: 200 corp: 1 exec/s: 5 oom/timeout/crash: 0/0/0 time: 1s job: 1" >&2
echo "#20: cov: 150 ft: 260 corp: 2 exec/s: 5 oom/timeout/crash: 0/0/0 time: 2s job: 2" >&2
echo new > "$corpus/entry-$$"
exit 0
"##;

fn setup(root: &Path) {
    let bin = root.join("target/x86_64-unknown-linux-gnu/release");
    std::fs::create_dir_all(&bin).unwrap();
    for target in ["differential", "gc_stress", "stackmaps"] {
        let path = bin.join(target);
        std::fs::write(&path, FAKE).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
}

fn nightly(root: &Path) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_gcfuzz"))
        .current_dir(root)
        .args(["nightly", "--no-build", "--time", "2", "--jobs", "2", "--known", "crashes", "--work", "work"])
        .output()
        .unwrap();
    let report = std::fs::read_to_string(root.join("work/report.json")).unwrap();
    assert!(std::fs::read_to_string(root.join("work/report.html")).unwrap().contains("<svg"));
    (out.status.code().unwrap(), serde_json::from_str(&report).unwrap())
}

#[test]
fn nightly_reports_triages_and_resumes() {
    let root = tempfile::tempdir().unwrap();
    setup(root.path());
    // Left behind by a run that was killed before triage: a known Wasmtime
    // 48.0.8 panic (see crashes/).
    let artifacts = root.path().join("work/artifacts/differential");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(
        artifacts.join("crash-left-behind.wat"),
        r#"(module (type $a (sub (array (mut i8))))
             (func (export "f") (param externref) (result i32) (ref.test (ref $a) (any.convert_extern (local.get 0))))
             (@custom "gcfuzz:plan" "{\22profile\22:\22Gc\22,\22calls\22:[{\22export\22:\22f\22,\22args\22:[{\22Extern\22:2}],\22collect_before\22:false}],\22zeal\22:null,\22gc_heap_initial\22:null,\22configs\22:[\22null\22,\22drc\22]}"))"#,
    )
    .unwrap();

    let (code, report) = nightly(root.path());
    assert_eq!(code, 1, "{report:#}");
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    assert_eq!(targets[0]["final_cov"], 150);
    assert_eq!(targets[0]["series"].as_array().unwrap().len(), 2);
    assert_eq!(targets[0]["corpus_after"], 1);
    let sigs = report["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0]["new"], true);
    let signature = sigs[0]["signature"].as_str().unwrap();
    assert!(root.path().join("work/findings").join(signature).join("module.wasm").exists());
    assert!(!root.path().join("crashes").exists(), "the known bugs are only read");
    // Stored, then moved out of the way.
    assert!(artifacts.join("done/crash-left-behind.wat").exists());
    assert!(!artifacts.join("crash-left-behind.wat").exists());

    // The next run has nothing new; the corpus keeps growing.
    let (code, report) = nightly(root.path());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["targets"][0]["corpus_before"], 1);
    assert_eq!(report["targets"][0]["corpus_after"], 2);
}

#[test]
fn a_missing_fuzz_binary_is_an_infrastructure_failure() {
    let root = tempfile::tempdir().unwrap();
    let (code, report) = nightly(root.path());
    assert_eq!(code, 2);
    assert!(report["targets"][0]["error"].as_str().unwrap().contains("starting"), "{report:#}");
}
