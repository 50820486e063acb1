//! `gcfuzz stats`: rooting pressure ([`crate::generate::pressure`]) over a sample of
//! generated cases, per generator.

use crate::case::seeded_input;
use crate::generate::pressure::{Pressure, analyze};
use crate::generate::{self, Generator};
use serde::Serialize;

/// A collection is forced at every allocation-heavy safepoint when the
/// plan's zeal counter is at most this.
pub const FORCING_ZEAL: u32 = 8;

#[derive(Debug, Default, Serialize)]
pub struct GeneratorStats {
    pub generator: String,
    pub modules: u64,
    /// Inputs that produced no module, or one the analysis rejected.
    pub failures: u64,
    pub with_allocation: u64,
    pub with_live_safepoint: u64,
    /// Modules with a reference live across a safepoint where a collection
    /// is forced: the figure the generators are judged by.
    pub with_forced_live_safepoint: u64,
    pub share_forced_live: f64,
    pub mean_forced_live_sites: f64,
    pub mean_live_sites: f64,
    pub mean_allocation_sites: f64,
    pub mean_gc_calls: f64,
    /// Uses of references live across safepoints, summed, by carrier.
    pub totals: Pressure,
}

/// Analyzes `count` seeded cases of `generator`.
pub fn measure(generator: Generator, seed: u64, count: u64) -> GeneratorStats {
    let mut s = GeneratorStats { generator: generator.name().into(), ..Default::default() };
    let (mut forced_sites, mut live_sites, mut allocs, mut gc_calls) = (0usize, 0usize, 0usize, 0usize);
    for i in 0..count {
        let input = seeded_input(seed, i);
        let Ok(case) = generate::case(generator, &input) else {
            s.failures += 1;
            continue;
        };
        let zeal_forces = case.plan.zeal.is_some_and(|z| z <= FORCING_ZEAL);
        let Ok(p) = analyze(&case.wasm, zeal_forces) else {
            s.failures += 1;
            continue;
        };
        s.modules += 1;
        s.with_allocation += (p.allocation_sites > 0) as u64;
        s.with_live_safepoint += (p.live_safepoints > 0) as u64;
        s.with_forced_live_safepoint += (p.forced_live_safepoints > 0) as u64;
        forced_sites += p.forced_live_safepoints;
        live_sites += p.live_safepoints;
        allocs += p.allocation_sites;
        gc_calls += p.gc_calls;
        let t = &mut s.totals;
        t.functions += p.functions;
        t.allocation_sites += p.allocation_sites;
        t.safepoints += p.safepoints;
        t.gc_calls += p.gc_calls;
        t.live_safepoints += p.live_safepoints;
        t.forced_live_safepoints += p.forced_live_safepoints;
        t.on_stack += p.on_stack;
        t.in_locals += p.in_locals;
        t.through_block_params += p.through_block_params;
        t.through_select += p.through_select;
        t.inside_try_table += p.inside_try_table;
    }
    let n = s.modules.max(1) as f64;
    s.share_forced_live = s.with_forced_live_safepoint as f64 / n;
    s.mean_forced_live_sites = forced_sites as f64 / n;
    s.mean_live_sites = live_sites as f64 / n;
    s.mean_allocation_sites = allocs as f64 / n;
    s.mean_gc_calls = gc_calls as f64 / n;
    s
}

/// The table `gcfuzz stats` prints: one row per generator.
pub fn table(all: &[GeneratorStats]) -> String {
    let mut out = format!(
        "{:<10} {:>7} {:>10} {:>14} {:>12} {:>10} {:>9} {:>9}\n",
        "generator", "modules", "allocating", "forced-live %", "forced/mod", "live/mod", "allocs", "gc calls"
    );
    for s in all {
        out.push_str(&format!(
            "{:<10} {:>7} {:>9.1}% {:>13.1}% {:>12.2} {:>10.2} {:>9.2} {:>9.2}\n",
            s.generator,
            s.modules,
            100.0 * s.with_allocation as f64 / s.modules.max(1) as f64,
            100.0 * s.share_forced_live,
            s.mean_forced_live_sites,
            s.mean_live_sites,
            s.mean_allocation_sites,
            s.mean_gc_calls
        ));
    }
    out
}
