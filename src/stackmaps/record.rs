//! Stack-map findings as crash records (`report::record`).

use super::compile::{Plant, compile};
use super::program::{CONFIGS, CompileConfig, Program};
use crate::oracle::Problem;
use anyhow::{Context, Result};

use crate::line;
use crate::report::record::{self, Body, ClifBody};

/// The identity of a finding: the first problem's kind and the settings.
pub fn finding_signature(problems: &[Problem], config: CompileConfig) -> Option<String> {
    problems.first().map(|p| {
        format!("stackmap-{}-{}-{}", p.kind, config.opt_level.replace('_', "-"), config.regalloc.replace('_', "-"))
    })
}

/// Stores a (shrunk) finding under `dir/<signature>/` with its program and
/// CLIF, or bumps the hit count of a known one.
pub fn store(
    dir: &std::path::Path,
    prog: &Program,
    config: CompileConfig,
    problems: &[Problem],
    seed: Option<u64>,
    index: Option<u64>,
) -> Result<(std::path::PathBuf, bool)> {
    let signature = finding_signature(problems, config).context("no problem to store")?;
    let body = Body::Clif(ClifBody {
        signature: signature.clone(),
        problems: problems.to_vec(),
        opt_level: config.opt_level.into(),
        regalloc: config.regalloc.into(),
        seed,
        index,
    });
    let files = [
        ("program.json", serde_json::to_string_pretty(prog)?.into_bytes()),
        ("program.clif", compile(prog, config, Plant::default())?.clif.into_bytes()),
    ];
    record::store(dir, &signature, record::fresh(line::CRANELIFT, body), &files, |_| false)
}

/// The compile configuration a record names.
pub fn config_named(opt_level: &str, regalloc: &str) -> Option<CompileConfig> {
    CONFIGS.iter().copied().find(|c| c.opt_level == opt_level && c.regalloc == regalloc)
}
