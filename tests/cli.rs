//! The `gcfuzz` command line as a user meets it.

use std::process::Command;

fn gcfuzz() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gcfuzz"))
}

fn write(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn repro_agreeing_module_exits_zero_with_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let wat = write(&dir, "ok.wat", br#"(module (func (export "f") (result i32) i32.const 7))"#);
    let out = gcfuzz().arg("repro").arg(&wat).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("== null"), "{stdout}");
    assert!(stdout.contains("call[0] f: ok(i32:7)"), "{stdout}");
    assert!(stdout.contains("configurations agree"), "{stdout}");
}

#[test]
fn repro_bad_input_is_one_line_and_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        dir.path().join("missing.wasm"),
        write(&dir, "syntax.wat", b"(module (func"),
        write(&dir, "invalid.wat", b"(module (func (result i32)))"),
        write(&dir, "truncated.wasm", b"\0asm\x01\0\0\0\x01\x05"),
    ];
    for file in cases {
        let out = gcfuzz().arg("repro").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert_eq!(stderr.trim().lines().count(), 1, "{}: {stderr}", file.display());
        assert!(stderr.starts_with("gcfuzz: error: "), "{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    }
}

/// What a user can get wrong is refused with one line and exit 2, before
/// anything runs: a zero timeout, a memory limit no worker starts under, a
/// configuration outside the plan, a module importing from anything but
/// `host`, and WAT errors that say where (line and column).
#[test]
fn nonsense_settings_and_inputs_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A GC module: wasmi, which has no GC, is not in its plan.
    let gc = write(&dir, "gc.wat", br#"(module (type $s (struct)) (func (export "f") (result anyref) struct.new $s))"#);
    let env = write(&dir, "env.wat", br#"(module (import "env" "f" (func)) (func (export "g")))"#);
    let wat = write(&dir, "bad.wat", b"(module\n  (func (export \"f\") (result i32)\n    i32.const))");
    let out_dir = dir.path().join("out");
    let out = out_dir.to_str().unwrap();
    let refusals: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "--timeout", "0", "--time", "5", "--out", out], "timeout"),
        (vec!["run", "--memory-limit-mb", "1", "--time", "5", "--out", out], "memory-limit-mb"),
        (vec!["repro", gc.to_str().unwrap(), "--configs", "wasmi"], "wasmi is not in the plan"),
        (vec!["repro", env.to_str().unwrap()], "env"),
        (vec!["repro", wat.to_str().unwrap()], "line 3, column"),
    ];
    for (args, says) in refusals {
        let out = gcfuzz().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("gcfuzz: error: ") && stderr.contains(says), "{args:?}: {stderr}");
    }
    // Nothing was stored by the refused campaigns.
    assert!(!out_dir.exists() || std::fs::read_dir(&out_dir).unwrap().count() == 0);
}

fn run_json(dir: &std::path::Path, seed: &str) -> serde_json::Value {
    let out = gcfuzz()
        .args(["run", "--time", "120", "--max-execs", "12", "--plans", "3", "--jobs", "2", "--json", "--seed", seed])
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn run_json_reports_the_campaign_and_replays_from_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_json(dir.path(), "17");
    for key in [
        "execs",
        "execs_per_sec",
        "modules_with_gc",
        "engine_runs",
        "mismatches",
        "crashes",
        "inconclusive",
        "findings",
    ] {
        assert!(a.get(key).is_some(), "missing {key} in {a}");
    }
    // Twelve cases, less any a known bug's avoid rule skipped.
    let skipped: u64 = a["avoided"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(a["execs"].as_u64().unwrap() + skipped, 12);
    // Four modules, three plans each.
    assert_eq!(a["modules"].as_u64().unwrap() * 3, a["execs"].as_u64().unwrap(), "{a}");
    assert_eq!(a["engine_runs"]["null"], a["execs"]);
    assert_eq!(a["findings"].as_array().unwrap().len(), 0);
    // Same seed, same cases: the same configurations run the same number of times.
    let b = run_json(dir.path(), "17");
    assert_eq!(a["engine_runs"], b["engine_runs"]);
    assert_eq!(a["modules_with_gc"], b["modules_with_gc"]);
    // Nothing was written for a clean campaign.
    assert_eq!(std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn a_known_bugs_avoid_rule_skips_the_cases_that_contain_its_trigger() {
    // A known bug of this build whose trigger is every `i32.const`.
    let known = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes/mismatch-global-wasmi-781896a2");
    let bug = known.path().join("mismatch-global-wasmi-781896a2");
    std::fs::create_dir(&bug).unwrap();
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("finding.json")).unwrap()).unwrap();
    record["expected_on"] = serde_json::json!([gcfuzz::line::engine_versions()[0]]);
    record["avoid"] = serde_json::json!(["I32Const"]);
    std::fs::write(bug.join("finding.json"), record.to_string()).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = gcfuzz()
        .args(["run", "--time", "120", "--max-execs", "20", "--jobs", "1", "--json", "--seed", "3", "--known"])
        .arg(known.path())
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let avoided = summary["avoided"]["mismatch-global-wasmi-781896a2"].as_u64().unwrap_or(0);
    let execs = summary["execs"].as_u64().unwrap();
    // Every case is an index: run or skipped, and nearly all are skipped.
    assert_eq!(avoided + execs + summary["generation_failures"].as_u64().unwrap(), 20, "{summary}");
    assert!(avoided >= 15, "{summary}");
}

#[test]
fn stackmaps_campaign_reports_json_and_finds_nothing_on_the_pinned_cranelift() {
    let dir = tempfile::tempdir().unwrap();
    let out = gcfuzz()
        .args(["stackmaps", "--max-programs", "200", "--time", "120", "--seed", "5", "--json", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["programs"], 200);
    assert_eq!(summary["checks"], 1200);
    assert!(summary["safepoints"].as_u64().unwrap() > 1000);
    assert_eq!(summary["findings"].as_array().unwrap().len(), 0);
}
