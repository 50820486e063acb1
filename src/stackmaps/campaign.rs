//! `gcfuzz stackmaps`: seeded programs on every configuration, on threads.

use super::check::check;
use super::compile::Plant;
use super::generate::generate;
use super::model::expected;
use super::program::CONFIGS;
use super::record::store;
use super::shrink::shrink;
use anyhow::Result;
use arbitrary::Unstructured;
use serde::Serialize;

/// What `gcfuzz stackmaps` found.
#[derive(Debug, Default, Serialize)]
pub struct CampaignSummary {
    pub seed: u64,
    pub seconds: f64,
    pub programs: u64,
    /// Programs times configurations compiled and checked.
    pub checks: u64,
    pub programs_per_sec: f64,
    /// Safepoints the model expected and the host checked, summed.
    pub safepoints: u64,
    pub findings: Vec<CampaignFinding>,
}

#[derive(Debug, Serialize)]
pub struct CampaignFinding {
    pub signature: String,
    pub kind: String,
    pub detail: String,
    pub path: std::path::PathBuf,
    pub new: bool,
    pub index: u64,
}

impl CampaignSummary {
    /// The closing line of `gcfuzz stackmaps`.
    pub fn line(&self) -> String {
        format!(
            "{} programs x {} configurations in {:.1}s ({:.0} programs/s), {} safepoints checked, {} findings",
            self.programs,
            CONFIGS.len(),
            self.seconds,
            self.programs_per_sec,
            self.safepoints,
            self.findings.len()
        )
    }
}

/// Checks seeded programs on every configuration for `time` (or
/// `max_programs`), on `jobs` threads; findings are shrunk and stored in
/// `out`.
pub fn campaign(
    seed: u64,
    time: std::time::Duration,
    max_programs: Option<u64>,
    jobs: usize,
    out: &std::path::Path,
) -> Result<CampaignSummary> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    let start = std::time::Instant::now();
    let next = AtomicU64::new(0);
    let summary = Mutex::new(CampaignSummary { seed, ..Default::default() });
    let last = Mutex::new(start);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if start.elapsed() >= time || max_programs.is_some_and(|m| i >= m) {
                        return Ok(());
                    }
                    let input = crate::case::seeded_input(seed, i);
                    let Ok(prog) = generate(&mut Unstructured::new(&input)) else { continue };
                    let safepoints = expected(&prog, true).safepoints.len() as u64;
                    let mut found = Vec::new();
                    for config in CONFIGS {
                        let problems = check(&prog, *config, Plant::default())?;
                        if let Some(first) = problems.first() {
                            let small = shrink(&prog, *config, Plant::default(), &first.kind);
                            let problems = check(&small, *config, Plant::default())?;
                            let (path, new) = store(out, &small, *config, &problems, Some(seed), Some(i))?;
                            let p = problems.first().unwrap_or(first).clone();
                            found.push(CampaignFinding {
                                signature: path.file_name().unwrap_or_default().to_string_lossy().into(),
                                kind: p.kind,
                                detail: p.detail,
                                path,
                                new,
                                index: i,
                            });
                        }
                    }
                    let mut sum = summary.lock().unwrap();
                    sum.programs += 1;
                    sum.checks += CONFIGS.len() as u64;
                    sum.safepoints += safepoints * CONFIGS.len() as u64;
                    for f in &found {
                        eprintln!("{} finding {}: {}", if f.new { "new" } else { "known" }, f.path.display(), f.detail);
                    }
                    sum.findings.extend(found);
                    let mut last = last.lock().unwrap();
                    if last.elapsed() >= std::time::Duration::from_secs(10) {
                        *last = std::time::Instant::now();
                        let secs = start.elapsed().as_secs_f64();
                        eprintln!(
                            "[{secs:>6.0}s] programs {} ({:.0}/s) findings {}",
                            sum.programs,
                            sum.programs as f64 / secs,
                            sum.findings.len()
                        );
                    }
                }
            });
        }
    });
    let mut sum = summary.into_inner().unwrap();
    sum.seconds = start.elapsed().as_secs_f64();
    sum.programs_per_sec = sum.programs as f64 / sum.seconds.max(1e-9);
    Ok(sum)
}
