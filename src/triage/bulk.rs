//! Bulk triage: bucket a directory of raw crash inputs (libFuzzer `crash-*`
//! artifacts, `.wasm` or `.wat` reproducers) into a working directory of
//! findings by signature, shrinking each new signature's reproducer. The
//! known bugs (`crashes/`) are only read; `gcfuzz promote` is the deliberate
//! step that moves a finding there. A signature not yet stored is stored only
//! when a restarted executor gives it again (`confirm`); otherwise the file
//! is reported as not reproducing.

use super::confirm;
use crate::case::{AvoidRule, TestCase};
use crate::engine::worker::Executor;
use crate::generate::{self, Generator};
use crate::oracle::{FindingKind, check_case};
use crate::report::record::{self, Origin};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One signature seen in the batch.
#[derive(Debug)]
pub struct Bucket {
    pub kind: FindingKind,
    /// Files of this batch that showed it.
    pub count: usize,
    /// Not a known bug of this build (`Options::known`).
    pub new: bool,
    pub path: PathBuf,
    /// Module size after shrinking, when it was shrunk.
    pub shrunk: Option<(usize, usize)>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub buckets: BTreeMap<String, Bucket>,
    /// Files that could not be bucketed, with a one-line reason.
    pub failures: Vec<(PathBuf, String)>,
    /// New signatures a fresh worker did not give again (not stored).
    pub unreproducible: usize,
    pub files: usize,
}

impl Report {
    /// One row per signature, then the totals.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{:<56} {:<11} {:>5}  {:<5}  shrunk", "signature", "kind", "files", "");
        for (signature, b) in &self.buckets {
            let kind =
                serde_json::to_value(b.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let shrunk = b.shrunk.map_or(String::new(), |(from, to)| format!("{from} -> {to} bytes"));
            let status = if b.new { "new" } else { "known" };
            let _ = writeln!(s, "{signature:<56} {kind:<11} {:>5}  {status:<5}  {shrunk}", b.count);
        }
        let _ = writeln!(
            s,
            "{} files: {} bucketed into {} signatures, {} failed; {} findings unreproducible in a fresh worker",
            self.files,
            self.files - self.failures.len(),
            self.buckets.len(),
            self.failures.len(),
            self.unreproducible
        );
        s
    }
}

/// How a file is read: a module (`.wasm` by its magic, `.wat` by its
/// extension), a regression script (`.wast`) or else a raw fuzz input as libFuzzer saves it, for the
/// target whose generator is `generator`, made into the case the target
/// made of it: with the known bugs' avoid rules (`avoid`), which the rooted
/// pass honours.
pub fn load(
    path: &Path,
    bytes: &[u8],
    generator: Generator,
    avoid: &[AvoidRule],
) -> Result<(TestCase, Option<Vec<u8>>)> {
    let is_text = path.extension().is_some_and(|e| e == "wat" || e == "wast");
    if bytes.starts_with(b"\0asm") || is_text {
        Ok((super::open::parse(path, bytes)?, None))
    } else {
        Ok((generate::case_avoiding(generator, bytes, avoid).context("not a fuzz input")?, Some(bytes.to_vec())))
    }
}

/// What a batch is triaged against and how.
pub struct Options<'a> {
    /// The working directory findings are stored in, hits included.
    pub out: &'a Path,
    /// Signatures of the known bugs of this build
    /// (`record::known_signatures` of `crashes/`).
    pub known: BTreeSet<String>,
    /// The generator raw inputs are for (the fuzz target's).
    pub generator: Generator,
    /// The known bugs' avoid rules (`record::known_avoid_rules` of
    /// `crashes/`), as the fuzz targets apply them when they generate.
    pub avoid: Vec<AvoidRule>,
    /// Run on these configurations instead of each plan's.
    pub configs: Option<&'a [String]>,
    /// Shrink attempts per new signature; `None` keeps reproducers as they are.
    pub shrink_attempts: Option<u32>,
}

impl<'a> Options<'a> {
    /// Rooted-generator inputs, each plan's configurations, no shrinking.
    pub fn new(out: &'a Path, known: BTreeSet<String>) -> Options<'a> {
        Options { out, known, generator: Generator::Rooted, avoid: vec![], configs: None, shrink_attempts: None }
    }
}

/// Triages every file in `dir` (not recursing) into `opts.out`. `log` hears
/// one line per file.
pub fn triage(dir: &Path, opts: &Options, exec: &mut dyn Executor, mut log: impl FnMut(&str)) -> Result<Report> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut report = Report { files: files.len(), ..Report::default() };
    for file in files {
        match triage_file(&file, opts, exec, &mut report) {
            Ok(line) => log(&format!("{}: {line}", file.display())),
            Err(e) => {
                let reason = format!("{e:#}").lines().next().unwrap_or_default().to_string();
                log(&format!("{}: {reason}", file.display()));
                report.failures.push((file, reason));
            }
        }
    }
    Ok(report)
}

fn triage_file(file: &Path, opts: &Options, exec: &mut dyn Executor, report: &mut Report) -> Result<String> {
    let out = opts.out;
    let bytes = std::fs::read(file).context("cannot read")?;
    let (case, input) = load(file, &bytes, opts.generator, &opts.avoid)?;
    let configs: Vec<String> = match opts.configs {
        Some(configs) => configs.to_vec(),
        None => case.plan.configs.iter().map(|c| c.name().to_string()).collect(),
    };
    let result = check_case(&case, &configs, exec)?;
    anyhow::ensure!(!result.findings.is_empty(), "does not reproduce (all {} configurations agree)", result.ran.len());
    // A case becomes a signature's stored reproducer (its first, or a
    // smaller one in place of the stored) only once a restarted executor (a
    // fresh worker, no engine history) gives the signature again; any other
    // case of a stored signature is a hit.
    let size = case.to_module_bytes().len();
    let wanted =
        result.findings.iter().any(|f| record::stored_size(out, &f.signature).is_none_or(|stored| size < stored));
    let again = if wanted { confirm::rerun(&case, &configs, exec)? } else { vec![] };
    let mut lines = Vec::new();
    for f in &result.findings {
        let confirmed = again.contains(&f.signature);
        if !confirmed && record::stored_size(out, &f.signature).is_none() {
            report.unreproducible += 1;
            lines.push(format!("{} (unreproducible: a fresh worker gives {})", f.signature, or_nothing(&again)));
            continue;
        }
        let origin = Origin { file: Some(file.display().to_string()), ..Origin::default() };
        let (path, first_stored) =
            record::store_wasm(out, f, &case, input.as_deref(), origin, &result.outcomes, confirmed)?;
        let new = !opts.known.contains(&f.signature);
        let seen_in_batch = report.buckets.contains_key(&f.signature);
        let bucket = report.buckets.entry(f.signature.clone()).or_insert(Bucket {
            kind: f.kind,
            count: 0,
            new,
            path: path.clone(),
            shrunk: None,
        });
        bucket.count += 1;
        let mut how = if new { "new" } else { "known" }.to_string();
        if let (true, true, false, Some(attempts)) = (new, first_stored, seen_in_batch, opts.shrink_attempts) {
            let mut involved: Vec<String> = configs.iter().filter(|c| f.configs.contains(c)).cloned().collect();
            if f.kind.needs_reference() {
                involved.insert(0, configs[0].clone());
            }
            let shrunk = super::shrink::shrink(&case, &f.signature, &involved, exec, attempts, |_| {})?;
            // The shrunk form replaces the stored one only if it replays on
            // the case's configurations in a fresh worker, as `repro` runs it.
            let replayed = confirm::fresh_report(&shrunk.case, &configs, exec)?;
            if replayed.findings.iter().any(|g| g.signature == f.signature) {
                record::replace_reproducer(&path, &shrunk.case, &replayed.outcomes)?;
                bucket.shrunk = Some((shrunk.input_size, shrunk.output_size));
            } else {
                how.push_str("; its shrunk form does not replay in a fresh worker, kept whole");
            }
        }
        lines.push(format!("{} ({how})", f.signature));
    }
    anyhow::ensure!(stored_any(&lines), "does not reproduce in a fresh worker: {}", lines.join(", "));
    Ok(lines.join(", "))
}

fn stored_any(lines: &[String]) -> bool {
    lines.iter().any(|l| !l.contains("(unreproducible"))
}

fn or_nothing(signatures: &[String]) -> String {
    if signatures.is_empty() { "nothing".into() } else { signatures.join(", ") }
}
