//! Exhaustion asymmetry: a collecting configuration that runs out of GC heap
//! (or calls an allocation too large) where Null, which never frees
//! anything, got by with a small part of the same limit. That is a leak, a
//! corrupted free list or a stale length, not a legitimate difference, so it
//! is a finding rather than "inconclusive".
//!
//! The margin: everything Null allocated fits in [`YARDSTICK`] (its GC heap
//! at the end, which only ever grew to hold what it allocated), a sixteenth
//! of the limit every configuration runs under (`case::host::MEMORY_LIMIT`). A
//! collector holds at most what Null allocated, with larger headers: DRC's
//! 24-byte header against Null's 8 is at most 4× for the smallest object
//! (¼ of the limit), Copying's 16-byte minimum at most 2× (⅛ of the limit,
//! in one semi-space). Wasmtime grows a GC heap by doubling until the limit
//! refuses, so a collector can always reach more than half the limit: each
//! still has a factor of two to spare for fragmentation.

use super::finding::Finding;
use crate::case::ConfigId;
use crate::case::host::MEMORY_LIMIT;
use crate::outcome::{Exhausted, Outcome, Status};

/// The most GC heap Null may have held for an exhaustion elsewhere to count
/// as a leak.
pub const YARDSTICK: u64 = (MEMORY_LIMIT / 16) as u64;

/// One configuration out of GC heap where Null was not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    pub config: String,
    /// `instantiate` or `call[i] export`.
    pub at: String,
    pub what: Exhausted,
    /// The GC heap Null held at the end of its run.
    pub null_bytes: u64,
}

/// The leaks among `outcomes`, judged against Null's.
pub fn leaks(outcomes: &[Outcome]) -> Vec<Leak> {
    let Some(null) = outcomes.iter().find(|o| o.config == ConfigId::Null.name()) else { return vec![] };
    let Some(null_bytes) = null.gc_heap_bytes.filter(|b| *b <= YARDSTICK) else { return vec![] };
    if !matches!(null.instantiate, Status::Returned(_)) {
        return vec![];
    }
    outcomes
        .iter()
        .filter(|o| collects(&o.config))
        .filter_map(|o| {
            let (at, what) = gc_exhaustion(o)?;
            // Null ran at least as far, and was not cut short on the way.
            let through = at.map_or(0, |i| i + 1);
            let null_ran =
                null.calls.len() >= through && !null.calls[..through].iter().any(|c| c.status.is_exhausted());
            null_ran.then(|| Leak {
                config: o.config.clone(),
                at: at.map_or("instantiate".into(), |i| format!("call[{i}] {}", o.calls[i].export)),
                what,
                null_bytes,
            })
        })
        .collect()
}

/// Where `o` first ran out of GC heap: `Some(None)` at instantiation,
/// `Some(Some(i))` at call `i`.
fn gc_exhaustion(o: &Outcome) -> Option<(Option<usize>, Exhausted)> {
    let gc = |s: &Status| match s {
        Status::Exhausted(e @ (Exhausted::GcHeapOutOfMemory | Exhausted::AllocationTooLarge)) => Some(*e),
        _ => None,
    };
    if let Some(e) = gc(&o.instantiate) {
        return Some((None, e));
    }
    o.calls.iter().enumerate().find_map(|(i, c)| gc(&c.status).map(|e| (Some(i), e)))
}

/// Wasmtime configurations with a collector. A name gcfuzz does not know (a
/// test's planted configuration) is judged like one.
fn collects(config: &str) -> bool {
    ConfigId::from_name(config).is_none_or(|id| id.is_wasmtime() && id != ConfigId::Null)
}

/// The leak findings of one case: one per collector family, so that which
/// other collectors ran out too does not change a leak's identity.
pub fn findings(outcomes: &[Outcome]) -> Vec<Finding> {
    let mut by_family: std::collections::BTreeMap<String, Vec<Leak>> = Default::default();
    for leak in leaks(outcomes) {
        by_family.entry(super::finding::family(&leak.config).to_string()).or_default().push(leak);
    }
    by_family.into_iter().map(|(family, leaks)| Finding::leak(&family, &leaks)).collect()
}

impl Finding {
    /// One finding for the leaks of collector `family` in one case, keyed
    /// on the family and what ran out (not on where: one lost free shows at
    /// whichever allocation fills the heap).
    pub fn leak(family: &str, leaks: &[Leak]) -> Finding {
        let first = &leaks[0];
        let mut configs: Vec<String> = leaks.iter().map(|l| l.config.clone()).collect();
        configs.sort();
        let what = match first.what {
            Exhausted::AllocationTooLarge => "allocation-too-large",
            _ => "gc-heap-out-of-memory",
        };
        let key = format!("leak|{family}|{what}");
        let signature = format!("leak-{family}-{what}-{}", super::finding::short_hash(&key));
        let summary = format!(
            "leak on {}: {what} at {}, where null held {} KiB of GC heap in all (limit {} KiB)",
            first.config,
            first.at,
            first.null_bytes.div_ceil(1024),
            MEMORY_LIMIT / 1024
        );
        Finding { kind: super::FindingKind::Leak, signature, summary, configs, mismatches: vec![], crash: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::CallRecord;

    fn outcome(config: &str, calls: Vec<Status>, gc_heap_bytes: Option<u64>) -> Outcome {
        Outcome {
            config: config.into(),
            instantiate: Status::Returned(vec![]),
            calls: calls.into_iter().map(|status| CallRecord { export: "f".into(), status, fuel: None }).collect(),
            state: None,
            micros: 0,
            producers: Default::default(),
            gc_heap_bytes,
        }
    }

    #[test]
    fn a_collector_out_of_heap_where_null_got_by_with_little_is_a_leak() {
        let ok = || Status::Returned(vec![]);
        let oom = || Status::Exhausted(Exhausted::GcHeapOutOfMemory);
        let null = |bytes| outcome("null", vec![ok(), ok()], Some(bytes));
        let drc = outcome("drc-o0", vec![ok(), oom()], Some(16 << 20));
        let found = leaks(&[null(64 << 10), drc.clone()]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].at, "call[1] f");
        let f = Finding::leak("drc", &found);
        assert!(f.signature.starts_with("leak-drc-gc-heap-out-of-memory-"), "{}", f.signature);
        // Null near the limit itself: headers and fragmentation may explain it.
        assert!(leaks(&[null(YARDSTICK + 1), drc.clone()]).is_empty());
        // Null cut short before that call: nothing to judge by.
        let null_short = outcome("null", vec![oom()], Some(64 << 10));
        assert!(leaks(&[null_short, drc.clone()]).is_empty());
        // Engines without a collector, and stack overflow, are not leaks.
        let interp = outcome("interp", vec![ok(), oom()], None);
        let deep = outcome("drc", vec![ok(), Status::Exhausted(Exhausted::StackOverflow)], None);
        assert!(leaks(&[null(64 << 10), interp, deep]).is_empty());
        // Another collector family is another signature.
        let copying = outcome("copying", vec![ok(), oom()], None);
        let both = findings(&[null(64 << 10), drc.clone(), copying]);
        assert_eq!(both.len(), 2, "one finding per collector family: {both:?}");
        assert_eq!(both[1].signature, f.signature, "the DRC leak keeps its identity beside another collector's");
        assert_ne!(both[0].signature, f.signature);
    }
}
