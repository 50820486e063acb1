//! Opening a reproducer: read a `.wasm`, `.wat` or regression `.wast` file
//! (`TestCase::from_wast`), say where it was
//! recorded when that was another engine version, and check it on its
//! configurations. Every command that starts from a file (`repro`, `shrink`,
//! `narrow`, `regression`) begins here.

use crate::case::{ConfigId, TestCase};
use crate::engine::worker::Executor;
use crate::oracle::{CaseReport, Finding, check_case};
use crate::report::record::replay_note;
use anyhow::{Context, Result, bail};
use std::path::Path;

/// A reproducer file read into its case.
pub struct Opened {
    pub case: TestCase,
    /// What the record beside the file says about replaying it on this
    /// build (`report::record::replay_note`), when anything.
    pub note: Option<String>,
}

/// Reads `file`; errors name the file.
pub fn open(file: &Path) -> Result<Opened> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let note = file.parent().and_then(replay_note);
    let case = parse(file, &bytes).with_context(|| format!("{}", file.display()))?;
    Ok(Opened { case, note })
}

/// The case in a reproducer's bytes: a regression script by its `.wast`
/// extension, else a module (`.wasm` or `.wat`).
pub fn parse(file: &Path, bytes: &[u8]) -> Result<TestCase> {
    match file.extension().and_then(|e| e.to_str()) {
        Some("wast") => TestCase::from_wast(&String::from_utf8_lossy(bytes)),
        _ => TestCase::from_module_bytes(bytes),
    }
}

/// The names of the plan's configurations, only those in `only` when it is
/// not empty.
pub fn config_names(case: &TestCase, only: &[ConfigId]) -> Vec<String> {
    case.plan.configs.iter().filter(|c| only.is_empty() || only.contains(c)).map(|c| c.name().to_string()).collect()
}

/// Checks `case` on all its configurations.
pub fn check_all(case: &TestCase, exec: &mut dyn Executor) -> Result<CaseReport> {
    check_case(case, &config_names(case, &[]), exec)
}

/// The finding with `signature` (the first finding when `None`), or an
/// error saying that `file` does not reproduce it.
pub fn pick<'a>(report: &'a CaseReport, signature: Option<&str>, file: &Path) -> Result<&'a Finding> {
    let found = match signature {
        Some(sig) => report.findings.iter().find(|f| f.signature == sig),
        None => report.findings.first(),
    };
    match found {
        Some(f) => Ok(f),
        None => {
            bail!("{}: does not reproduce{}", file.display(), signature.map(|s| format!(" {s}")).unwrap_or_default())
        }
    }
}
