//! Wasmtime's own `.wast` runner (wasmtime-wast) on one configuration: how
//! the regression files `report::regression` writes are checked.

use super::{WasmtimeEngine, compat};
use crate::case::ConfigId;
use crate::line::{self, Cap};
use anyhow::Result;
use std::path::Path;

/// Runs a `.wast` with Wasmtime's wast runner on configuration `config`
/// (with the `wasmtime.gc` import its tests use). An error is a failed
/// directive; an engine panic propagates.
pub fn run(wast: &str, config: ConfigId, zeal: Option<u32>) -> Result<()> {
    if !line::has(Cap::WastGcImport) && wast.contains(r#"(import "wasmtime" "gc""#) {
        anyhow::bail!(
            "the script imports wasmtime.gc, which the wast runner of Wasmtime {} lacks",
            line::wasmtime_version()
        );
    }
    let mut c = WasmtimeEngine::config(config, zeal, None, &crate::case::Knobs::new())?;
    c.consume_fuel(false);
    let engine = wasmtime::Engine::new(&c)?;
    let mut ctx = compat::wast_context(&engine)?;
    compat::run_wast(&mut ctx, "regression.wast", wast).map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// Runs `gcfuzz wast --here` for one configuration in a child process of
/// `exe` (an engine panic can abort the process: panics in libcalls do not
/// unwind); the verdict with the child's own words, or how it died.
pub fn run_in_child(
    exe: &Path,
    file: &Path,
    config: ConfigId,
    zeal: Option<u32>,
) -> Result<std::result::Result<(), String>> {
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("wast").arg(file).arg("--here").arg("--configs").arg(config.name());
    if let Some(z) = zeal {
        cmd.arg("--zeal").arg(z.to_string());
    }
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(Ok(()));
    }
    if let Some(line) = stdout.lines().find_map(|l| l.split_once(": FAIL: ").map(|(_, m)| m.to_string())) {
        return Ok(Err(line));
    }
    // Died: the panic message, when there was one.
    let panic = stderr.lines().skip_while(|l| !l.contains("panicked at")).nth(1).unwrap_or("").trim().to_string();
    Ok(Err(format!(
        "engine died ({}){}",
        out.status,
        if panic.is_empty() { String::new() } else { format!(": {panic}") }
    )))
}
