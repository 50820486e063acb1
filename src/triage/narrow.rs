//! Feature narrowing: which Wasm proposals and which engine settings a
//! finding needs, found by re-running it with each one changed, and the
//! smallest setting printed as a `wasmtime` command line and a
//! `wasmtime::Config` snippet.

use crate::case::knobs::{self, Knob, Setting};
use crate::case::{ConfigId, TestCase};
use crate::engine::worker::Executor;
use crate::oracle::{Finding, check_case};
use anyhow::Result;
use std::fmt::Write;

pub struct Narrowed {
    pub signature: String,
    /// `;;!`-style names of the proposals the module needs.
    pub features: Vec<&'static str>,
    /// Each configuration, and whether it reproduces (for mismatches: paired
    /// with the reference).
    pub configs: Vec<(ConfigId, bool)>,
    /// Zeal counters tried on the first reproducing configuration.
    pub zeal: Vec<(Option<u32>, bool)>,
    /// Initial GC heap sizes tried likewise.
    pub heap: Vec<(Option<u64>, bool)>,
    /// Each knob of the plan the witness runs with, and whether the finding
    /// still reproduces with that knob back at Wasmtime's default.
    pub knobs: Vec<(Knob, Setting, bool)>,
    /// Whether the panic comes from a `debug_assert!` (`None`: unknown).
    pub needs_debug_assertions: Option<bool>,
}

impl Narrowed {
    /// The first configuration that reproduces, preferring collecting ones.
    pub fn witness(&self) -> Option<ConfigId> {
        let hits: Vec<ConfigId> = self.configs.iter().filter(|(_, hit)| *hit).map(|(c, _)| *c).collect();
        let wasmtime = |c: &&ConfigId| c.is_wasmtime();
        hits.iter()
            .filter(wasmtime)
            .find(|c| **c != ConfigId::Null)
            .or(hits.iter().find(wasmtime))
            .or(hits.first())
            .copied()
    }

    /// The least zeal that reproduces: none if possible, else the largest
    /// counter (fewest forced collections).
    pub fn zeal_needed(&self) -> Option<Option<u32>> {
        let hits: Vec<Option<u32>> = self.zeal.iter().filter(|(_, hit)| *hit).map(|(z, _)| *z).collect();
        if hits.contains(&None) { Some(None) } else { hits.into_iter().max() }
    }

    /// The knobs the finding needs: those without which it does not
    /// reproduce.
    pub fn knobs_needed(&self) -> impl Iterator<Item = (Knob, &Setting)> {
        self.knobs.iter().filter(|(_, _, without)| !without).map(|(k, s, _)| (*k, s))
    }
}

/// Runs `case` for `finding` under changed settings, collecting what
/// reproduces the same signature.
pub fn narrow(case: &TestCase, finding: &Finding, exec: &mut dyn Executor) -> Result<Narrowed> {
    let reproduces = |case: &TestCase, config: ConfigId, exec: &mut dyn Executor| -> Result<bool> {
        let configs: Vec<String> = match finding.kind {
            kind if kind.needs_reference() && config != ConfigId::Null => vec!["null".into(), config.name().into()],
            _ => vec![config.name().into()],
        };
        let report = check_case(case, &configs, exec)?;
        Ok(report.findings.iter().any(|f| f.signature == finding.signature))
    };
    let mut configs = Vec::new();
    for &config in ConfigId::ALL {
        configs.push((config, reproduces(case, config, exec)?));
    }
    let mut narrowed = Narrowed {
        signature: finding.signature.clone(),
        features: crate::report::regression::needed_by_any(&case.modules()?),
        configs,
        zeal: Vec::new(),
        heap: Vec::new(),
        knobs: Vec::new(),
        needs_debug_assertions: finding.crash.as_ref().and_then(|c| c.location.as_deref()).and_then(debug_assert_at),
    };
    if let Some(witness) = narrowed.witness() {
        for zeal in [None, Some(1000), Some(100), Some(8), Some(2), Some(1)] {
            let mut c = case.clone();
            c.plan.zeal = zeal;
            narrowed.zeal.push((zeal, reproduces(&c, witness, exec)?));
        }
        for heap in [None, Some(64 << 10), Some(1 << 20)] {
            let mut c = case.clone();
            c.plan.gc_heap_initial = heap;
            c.plan.zeal = narrowed.zeal_needed().unwrap_or(case.plan.zeal);
            narrowed.heap.push((heap, reproduces(&c, witness, exec)?));
        }
        for (knob, setting) in knobs::for_config(&case.plan.knobs, witness) {
            let mut c = case.clone();
            c.plan.knobs.remove(&knob);
            c.plan.zeal = narrowed.zeal_needed().unwrap_or(case.plan.zeal);
            narrowed.knobs.push((knob, setting, reproduces(&c, witness, exec)?));
        }
    }
    Ok(narrowed)
}

/// Whether the panic location is a `debug_assert!` line (read from the
/// source in Cargo's registry, where the panic points): `None` if the line
/// cannot be read or is neither kind of assert.
fn debug_assert_at(location: &str) -> Option<bool> {
    let (file, line) = location.rsplit_once(':')?;
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().nth(line.parse::<usize>().ok()?.checked_sub(1)?)?;
    if line.contains("debug_assert") {
        Some(true)
    } else if line.contains("assert") || line.contains("panic!") || line.contains("unreachable!") {
        Some(false)
    } else {
        None
    }
}

/// `wasmtime` CLI flags for a configuration (those the CLI has).
fn cli_flags(config: ConfigId) -> Vec<&'static str> {
    match config {
        ConfigId::Null => vec!["-C collector=null"],
        ConfigId::Drc => vec!["-C collector=drc"],
        ConfigId::Copying => vec!["-C collector=copying"],
        ConfigId::DrcO0 => vec!["-C collector=drc", "-O opt-level=0"],
        ConfigId::DrcSinglepass => vec!["-C collector=drc", "-O regalloc-algorithm=single-pass"],
        ConfigId::CopyingInline => vec!["-C collector=copying", "-C inlining=y"],
        ConfigId::PulleyDrc => vec!["-C collector=drc", "--target pulley64"],
        ConfigId::Wasmi | ConfigId::Interp => vec![],
    }
}

/// The report `gcfuzz narrow` prints.
pub fn render(n: &Narrowed, module: &str) -> String {
    let mut out = String::new();
    let yes_no = |items: &[(String, bool)]| {
        let pick = |want: bool| {
            items.iter().filter(|(_, h)| *h == want).map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        };
        format!("reproduces on: {}; not on: {}", or_none(pick(true)), or_none(pick(false)))
    };
    let _ = writeln!(out, "signature: {}", n.signature);
    let _ = writeln!(out, "proposals needed: {}", or_none(n.features.join(", ")));
    let configs: Vec<(String, bool)> = n.configs.iter().map(|(c, h)| (c.to_string(), *h)).collect();
    let _ = writeln!(out, "configurations: {}", yes_no(&configs));
    let show = |z: &Option<u32>| z.map_or("off".to_string(), |z| format!("every {z}"));
    let zeal: Vec<(String, bool)> = n.zeal.iter().map(|(z, h)| (show(z), *h)).collect();
    let _ = writeln!(out, "gc zeal (collection every N allocations): {}", yes_no(&zeal));
    let heap: Vec<(String, bool)> =
        n.heap.iter().map(|(b, h)| (b.map_or("default".to_string(), |b| format!("{b} bytes")), *h)).collect();
    let _ = writeln!(out, "initial GC heap: {}", yes_no(&heap));
    if !n.knobs.is_empty() {
        let show = |want: bool| {
            let names: Vec<String> = n
                .knobs
                .iter()
                .filter(|(_, _, without)| *without != want)
                .map(|(k, s, _)| knobs::describe(&[(*k, s.clone())].into()))
                .collect();
            or_none(names.join(", "))
        };
        let _ = writeln!(out, "engine settings: needed: {}; not needed: {}", show(true), show(false));
    }
    let _ = writeln!(
        out,
        "debug assertions needed: {}",
        match n.needs_debug_assertions {
            Some(true) => "yes (the panic is a debug_assert!)",
            Some(false) => "no (the panic is an assert!/panic!, live in release builds too)",
            None => "unknown (gcfuzz always runs with debug assertions)",
        }
    );
    let Some(witness) = n.witness() else {
        out.push_str("no configuration reproduces on its own\n");
        return out;
    };
    match witness {
        ConfigId::Wasmi => {
            out.push_str("\nonly wasmi disagrees with the reference: a wasmi bug, no Wasmtime setting involved\n");
            return out;
        }
        ConfigId::Interp => {
            out.push_str(
                "\nonly the reference interpreter disagrees: every Wasmtime configuration computes the same \
                 answer, so either Wasmtime's translation is wrong for all of them or the interpreter is\n",
            );
            return out;
        }
        _ => {}
    }
    let zeal = n.zeal_needed().flatten();
    let mut wasm_flags: Vec<String> = n.features.iter().map(|f| format!("{}=y", f.replace('_', "-"))).collect();
    wasm_flags.push("unknown-imports-trap=y".into());
    let mut flags: Vec<String> = cli_flags(witness).into_iter().map(String::from).collect();
    flags.extend(n.knobs_needed().map(|(k, s)| k.cli(s)));
    let _ = writeln!(out, "\nwasmtime run -W {} {} --invoke <export> {module}", wasm_flags.join(","), flags.join(" "));
    if zeal.is_some() {
        out.push_str("  (plus the zeal counter, which has no CLI flag: see the Config below)\n");
    }
    let _ = writeln!(out, "\nlet mut config = wasmtime::Config::new();");
    for f in &n.features {
        let _ = writeln!(out, "config.wasm_{f}(true);");
    }
    let collector = match witness {
        ConfigId::Null => "Null",
        ConfigId::Copying | ConfigId::CopyingInline => "Copying",
        _ => "DeferredReferenceCounting",
    };
    let _ = writeln!(out, "config.collector(wasmtime::Collector::{collector});");
    match witness {
        ConfigId::DrcO0 => out.push_str("config.cranelift_opt_level(wasmtime::OptLevel::None);\n"),
        ConfigId::DrcSinglepass => {
            out.push_str("config.cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass);\n")
        }
        ConfigId::CopyingInline => out.push_str("config.compiler_inlining(wasmtime::Inlining::Yes);\n"),
        ConfigId::PulleyDrc => out.push_str("config.target(\"pulley64\")?;\n"),
        _ => {}
    }
    if let Some(z) = zeal {
        let _ = writeln!(out, "config.gc_zeal_alloc_counter(std::num::NonZeroU32::new({z}))?; // needs cfg(gc_zeal)");
    }
    if let Some(Some(bytes)) = n.heap.iter().find(|(_, h)| *h).map(|(b, _)| *b) {
        let _ = writeln!(out, "config.gc_heap_initial_size({bytes});");
    }
    for (knob, setting) in n.knobs_needed() {
        let _ = writeln!(out, "{}", knob.config_call(setting));
    }
    out
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}
