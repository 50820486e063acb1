//! One crash record: `crashes/<signature>/finding.json`, for every kind of
//! reproducer (a Wasm case, or a CLIF program of the stack-map verifier),
//! and the one atomic store that writes it with its files.

use super::regression;
use crate::case::{ConfigId, TestCase};
use crate::line;
use crate::oracle::{Finding, Problem};
use crate::outcome::Outcome;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// `crashes/<signature>/finding.json`: bookkeeping shared by every finding,
/// and the body of its kind of reproducer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The engine the reproducer was found on, one of
    /// `line::engine_versions()` (e.g. `wasmtime 48.0.8`).
    pub engine: String,
    /// Engine versions on which this reproducer is expected to still
    /// reproduce (a known, unfixed bug); empty means "fixed or never seen
    /// again": replaying it must not reproduce.
    #[serde(default)]
    pub expected_on: Vec<String>,
    /// What a person learned about this finding (root cause, upstream
    /// issue, which engine is at fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Operator sequences (wasmparser names, space-separated, e.g.
    /// `AnyConvertExtern RefTestNonNull`) that trigger this bug: while it is
    /// expected on the engine under test, campaigns and the libFuzzer
    /// targets skip cases containing one, so the known bug does not crowd
    /// out new ones (counted as avoided).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub avoid: Vec<String>,
    pub hits: u64,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(flatten)]
    pub body: Body,
}

/// What the record's directory reproduces, tagged `"reproducer"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "reproducer", rename_all = "kebab-case")]
pub enum Body {
    /// `module.wasm` / `module.wat` (plan embedded), `regression.wast`, and
    /// the raw fuzz input `input.bin` when there was one.
    Wasm(Box<WasmBody>),
    /// `program.json` and its CLIF, `program.clif`.
    Clif(ClifBody),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WasmBody {
    pub finding: Finding,
    pub origin: Origin,
    /// Size of `module.wasm`, to keep the smallest reproducer.
    pub size: usize,
    pub outcomes: Vec<Outcome>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClifBody {
    pub signature: String,
    pub problems: Vec<Problem>,
    pub opt_level: String,
    pub regalloc: String,
    pub seed: Option<u64>,
    pub index: Option<u64>,
}

/// Where a case came from, so it can be regenerated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub seed: Option<u64>,
    pub index: Option<u64>,
    /// Which of the module's plans a campaign drew (absent: the first, the
    /// one its input gives; `generate::replan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<u32>,
    /// The file it was triaged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl Record {
    /// The Wasm body, for records of Wasm reproducers.
    pub fn wasm(&self) -> Option<&WasmBody> {
        match &self.body {
            Body::Wasm(w) => Some(w),
            Body::Clif(_) => None,
        }
    }
}

/// Every file a reproducer directory may hold besides `finding.json`.
const REPRODUCER_FILES: &[&str] =
    &["module.wasm", "module.wat", "regression.wast", "input.bin", "program.json", "program.clif"];

/// Records a finding under `dir/<signature>/`. A new signature gets a
/// directory (written under a temporary name, then renamed, so a killed
/// campaign never leaves half a reproducer) with `fresh` and `files`; a known
/// one gets its hit count and last-seen time bumped, and its body and files
/// replaced by these when `better` says they beat the stored ones. Returns
/// the directory and whether the signature is new.
pub fn store(
    dir: &Path,
    signature: &str,
    fresh: Record,
    files: &[(&str, Vec<u8>)],
    better: impl Fn(&Record) -> bool,
) -> Result<(PathBuf, bool)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join(signature);
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let existing = read_record(&target).ok();
    // A record that exists but cannot be read (written by another version)
    // is replaced, its folder kept.
    let new = !target.exists();
    let replace = existing.as_ref().is_none_or(&better);
    let mut record = existing.unwrap_or_else(|| Record { first_seen: now.clone(), hits: 0, ..fresh.clone() });
    record.hits += 1;
    record.last_seen = now;
    if replace {
        record.engine = fresh.engine.clone();
        record.body = fresh.body.clone();
    }
    let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(dir)?;
    if replace {
        for (name, bytes) in files {
            fs::write(tmp.path().join(name), bytes)?;
        }
    }
    fs::write(tmp.path().join("finding.json"), serde_json::to_string_pretty(&record)?)?;
    if new {
        let tmp = tmp.keep();
        if fs::rename(&tmp, &target).is_err() {
            // Another job stored the same signature first: merge into it.
            fs::remove_dir_all(&tmp).ok();
            return store(dir, signature, fresh, files, better).map(|(p, _)| (p, false));
        }
    } else {
        for entry in fs::read_dir(tmp.path())? {
            let entry = entry?;
            fs::rename(entry.path(), target.join(entry.file_name()))?;
        }
        if replace {
            for stale in REPRODUCER_FILES.iter().filter(|f| !files.iter().any(|(n, _)| n == *f)) {
                fs::remove_file(target.join(stale)).ok();
            }
        }
    }
    Ok((target, new))
}

/// A fresh record of `body`, found on `engine` now.
pub fn fresh(engine: &str, body: Body) -> Record {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    Record {
        engine: engine.to_string(),
        expected_on: vec![],
        notes: None,
        avoid: vec![],
        hits: 0,
        first_seen: now.clone(),
        last_seen: now,
        body,
    }
}

/// The files of a Wasm reproducer: the module with its plan (binary and
/// text), the regression `.wast`, and the raw input when there is one.
fn wasm_files(
    finding: &Finding,
    case: &TestCase,
    input: Option<&[u8]>,
    outcomes: &[Outcome],
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut files = vec![
        ("module.wasm", case.to_module_bytes()),
        ("module.wat", case.to_wat().into_bytes()),
        ("regression.wast", regression_wast(finding, case, outcomes)?.into_bytes()),
    ];
    if let Some(input) = input {
        files.push(("input.bin", input.to_vec()));
    }
    Ok(files)
}

/// Records the Wasm `finding` for `case` under `dir/<signature>/`.
/// `reproducer` says this case may be the directory's reproducer: a fresh
/// worker gave it this signature (or `dir` holds the unreproducible ones).
/// Such a case is stored when the signature is new and replaces a larger
/// stored one; any other case only counts as a hit, so a stored reproducer
/// is always one that replayed from its own bytes. A signature with no
/// record yet needs a reproducer.
pub fn store_wasm(
    dir: &Path,
    finding: &Finding,
    case: &TestCase,
    input: Option<&[u8]>,
    origin: Origin,
    outcomes: &[Outcome],
    reproducer: bool,
) -> Result<(PathBuf, bool)> {
    anyhow::ensure!(
        reproducer || dir.join(&finding.signature).join("finding.json").exists(),
        "{}: no reproducer a fresh worker confirmed",
        finding.signature
    );
    let files = wasm_files(finding, case, input, outcomes)?;
    let size = files[0].1.len();
    let body = Body::Wasm(Box::new(WasmBody { finding: finding.clone(), origin, size, outcomes: outcomes.to_vec() }));
    let better = |r: &Record| reproducer && r.wasm().is_some_and(|w| size < w.size);
    store(dir, &finding.signature, fresh(line::wasmtime(), body), &files, better)
}

/// The size of the Wasm reproducer stored for `signature` in `dir`.
pub fn stored_size(dir: &Path, signature: &str) -> Option<usize> {
    read_record(&dir.join(signature)).ok()?.wasm().map(|w| w.size)
}

/// The regression `.wast` for a finding, expectations from the first
/// configuration that ran to the end (the reference, unless it crashed).
fn regression_wast(finding: &Finding, case: &TestCase, outcomes: &[Outcome]) -> Result<String> {
    regression::wast(case, &finding.signature, outcomes.first(), &finding.summary)
}

/// Replaces the reproducer in `crashes/<signature>/` with a smaller form of
/// the same case (a shrunk one) and its outcomes, each file written then
/// renamed into place.
pub fn replace_reproducer(target: &Path, case: &TestCase, outcomes: &[Outcome]) -> Result<()> {
    let mut record = read_record(target)?;
    let Body::Wasm(body) = &mut record.body else {
        anyhow::bail!("{} holds no Wasm reproducer", target.display());
    };
    let module = case.to_module_bytes();
    body.size = module.len();
    body.outcomes = outcomes.to_vec();
    let wast = regression_wast(&body.finding, case, outcomes)?;
    for (name, bytes) in [
        ("module.wasm", module),
        ("module.wat", case.to_wat().into_bytes()),
        ("regression.wast", wast.into_bytes()),
        ("finding.json", serde_json::to_string_pretty(&record)?.into_bytes()),
    ] {
        write_whole(target, name, &bytes)?;
    }
    Ok(())
}

/// Writes `dir/name` through a temporary file in `dir`, so a reader (or a
/// killed process) never sees half of it.
pub fn write_whole(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    fs::write(tmp.path(), bytes)?;
    tmp.persist(dir.join(name))?;
    Ok(())
}

/// What a person replaying the reproducer in `dir` on this build should know
/// when its record was made on another engine version: where it was found,
/// whether it is expected to reproduce here, which of its configurations this
/// Wasmtime line lacks. `None` when there is no record or nothing differs.
pub fn replay_note(dir: &Path) -> Option<String> {
    let record = read_record(dir).ok()?;
    let here = line::wasmtime();
    if record.engine == here {
        return None;
    }
    let expected = if record.expected_on.iter().any(|e| e == here) {
        format!("it is expected to reproduce on {here}")
    } else if record.expected_on.is_empty() {
        "it is not expected to reproduce anywhere (fixed or never seen again)".to_string()
    } else {
        format!("it is expected on {} only, not on this build's {here}", record.expected_on.join(", "))
    };
    let mut missing: Vec<&str> = record
        .wasm()
        .map_or(&[][..], |w| &w.outcomes)
        .iter()
        .filter_map(|o| ConfigId::from_name(&o.config))
        .filter(|c| !c.on_line())
        .map(|c| c.name())
        .collect();
    missing.dedup();
    let skipped = match missing.is_empty() {
        true => String::new(),
        false => format!("; skipping {} (not in {here})", missing.join(", ")),
    };
    Some(format!("note: this reproducer was recorded on {}; {expected}{skipped}", record.engine))
}

/// The records in `dir` (a `crashes/` directory) of bugs known on this
/// build: their `expected_on` names one of `line::engine_versions()`. By
/// signature (the directory name); a missing directory knows nothing.
fn known_records(dir: &Path) -> std::collections::BTreeMap<String, Record> {
    let here = line::engine_versions();
    let Ok(entries) = fs::read_dir(dir) else { return Default::default() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), read_record(&e.path()).ok()?)))
        .filter(|(_, record)| record.expected_on.iter().any(|v| here.contains(&v.as_str())))
        .collect()
}

/// The signatures of the bugs in `dir` known on this build.
pub fn known_signatures(dir: &Path) -> std::collections::BTreeSet<String> {
    known_records(dir).into_keys().collect()
}

/// The avoid rules of the bugs in `dir` known on this build, by signature.
pub fn known_avoid_rules(dir: &Path) -> Vec<crate::case::AvoidRule> {
    known_records(dir)
        .into_iter()
        .flat_map(|(signature, record)| {
            record.avoid.into_iter().map(move |rule| crate::case::AvoidRule {
                signature: signature.clone(),
                sequence: rule.split_whitespace().map(String::from).collect(),
            })
        })
        .collect()
}

/// Copies the finding in `from` (a directory a campaign wrote) into
/// `crashes` as a known bug of the engine it was found on. When `crashes`
/// has that signature already, its reproducer stays and the engine is added
/// to its `expected_on` (the same bug seen on another line). Returns the
/// directory in `crashes`.
pub fn promote(from: &Path, crashes: &Path) -> Result<PathBuf> {
    let mut record = read_record(from)?;
    let name = from.file_name().with_context(|| format!("{} names no signature", from.display()))?;
    let target = crashes.join(name);
    if let Ok(mut known) = read_record(&target) {
        if known.expected_on.contains(&record.engine) {
            anyhow::bail!("{} is known on {} already", target.display(), record.engine);
        }
        known.expected_on.push(record.engine);
        write_whole(&target, "finding.json", serde_json::to_string_pretty(&known)?.as_bytes())?;
        return Ok(target);
    }
    if record.expected_on.is_empty() {
        record.expected_on.push(record.engine.clone());
    }
    fs::create_dir_all(crashes)?;
    let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(crashes)?;
    for file in REPRODUCER_FILES {
        if from.join(file).exists() {
            fs::copy(from.join(file), tmp.path().join(file))?;
        }
    }
    fs::write(tmp.path().join("finding.json"), serde_json::to_string_pretty(&record)?)?;
    fs::rename(tmp.keep(), &target)?;
    Ok(target)
}

pub fn read_record(dir: &Path) -> Result<Record> {
    let path = dir.join("finding.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::FindingKind;
    use crate::outcome::CrashInfo;

    /// A panic finding on `drc`.
    fn planted_crash() -> Finding {
        let crash = CrashInfo {
            config: "drc".into(),
            message: "planted".into(),
            location: Some("x.rs:1".into()),
            signal: None,
            exit_code: None,
            frames: vec![],
            wasm: None,
        };
        Finding::crash(FindingKind::Crash, crash)
    }

    #[test]
    fn a_promoted_finding_is_known_and_its_hits_stay_in_the_work_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (work, crashes) = (dir.path().join("work"), dir.path().join("crashes"));
        let case = TestCase::from_module_bytes(b"(module (func (export \"f\")))").unwrap();
        let finding = planted_crash();
        let (path, new) = store_wasm(&work, &finding, &case, None, Origin::default(), &[], true).unwrap();
        assert!(new);
        assert!(known_signatures(&crashes).is_empty());
        let promoted = promote(&path, &crashes).unwrap();
        assert_eq!(promoted, crashes.join(&finding.signature));
        let record = read_record(&promoted).unwrap();
        assert_eq!(record.expected_on, [line::wasmtime()]);
        assert!(promoted.join("module.wasm").exists() && promoted.join("regression.wast").exists());
        assert!(known_signatures(&crashes).contains(&finding.signature));
        assert!(promote(&path, &crashes).is_err(), "promoting twice");
        // A second hit goes to the work directory; the promoted copy is untouched.
        store_wasm(&work, &finding, &case, None, Origin::default(), &[], true).unwrap();
        assert_eq!(read_record(&path).unwrap().hits, 2);
        assert_eq!(read_record(&promoted).unwrap().hits, 1);
    }

    /// Outcomes with v128 values survive the record; a record that cannot
    /// be read is replaced rather than retried forever.
    #[test]
    fn v128_outcomes_round_trip_and_an_unreadable_record_is_replaced() {
        use crate::outcome::{CallRecord, Outcome, Status, Value};
        let work = tempfile::tempdir().unwrap();
        let case = TestCase::from_module_bytes(b"(module (func (export \"f\")))").unwrap();
        let finding = planted_crash();
        let v = Value::V128(0xffff_0000_0000_0000_0000_0000_0000_0001);
        let outcome = Outcome {
            config: "null".into(),
            instantiate: Status::Returned(vec![]),
            calls: vec![CallRecord { export: "f".into(), status: Status::Returned(vec![v.clone()]), fuel: None }],
            state: None,
            micros: 0,
            gc_heap_bytes: None,
            producers: Default::default(),
        };
        let (path, _) = store_wasm(work.path(), &finding, &case, None, Origin::default(), &[outcome], true).unwrap();
        let record = read_record(&path).unwrap();
        assert_eq!(record.wasm().unwrap().outcomes[0].calls[0].status, Status::Returned(vec![v]));
        std::fs::write(path.join("finding.json"), "{ not a record").unwrap();
        let (again, new) = store_wasm(work.path(), &finding, &case, None, Origin::default(), &[], true).unwrap();
        assert_eq!((again, new), (path.clone(), false));
        assert_eq!(read_record(&path).unwrap().hits, 1);
    }

    /// A stored reproducer is only ever one a fresh worker confirmed: an
    /// unconfirmed case, however small, only counts as a hit.
    #[test]
    fn only_a_confirmed_case_becomes_the_reproducer() {
        let work = tempfile::tempdir().unwrap();
        let big = TestCase::from_module_bytes(b"(module (func (export \"f\")) (func (export \"g\")))").unwrap();
        let small = TestCase::from_module_bytes(b"(module (func (export \"f\")))").unwrap();
        let finding = planted_crash();
        let store = |case: &TestCase, confirmed| {
            store_wasm(work.path(), &finding, case, None, Origin::default(), &[], confirmed)
        };
        assert!(store(&small, false).is_err(), "a first case needs confirming");
        let (path, _) = store(&big, true).unwrap();
        let big_size = big.to_module_bytes().len();
        store(&small, false).unwrap();
        assert_eq!(stored_size(work.path(), &finding.signature), Some(big_size));
        assert_eq!(std::fs::read(path.join("module.wasm")).unwrap(), big.to_module_bytes());
        assert_eq!(read_record(&path).unwrap().hits, 2);
        store(&small, true).unwrap();
        assert_eq!(std::fs::read(path.join("module.wasm")).unwrap(), small.to_module_bytes());
    }
}
