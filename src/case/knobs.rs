//! Engine settings drawn per case ("knobs"): the Wasmtime settings beyond
//! collector, opt level and zeal that change GC, table, memory or trap code
//! or runtime behaviour. A plan records the ones it drew, so a reproducer
//! replays them and `gcfuzz narrow` can say which a finding needs. They
//! apply to every collecting Wasmtime configuration; Null keeps Wasmtime's
//! defaults, so every finding still has a ground truth.
//!
//! Only settings that cannot change what a correct engine computes are
//! here: linear memories may always move (a reservation too small for
//! growth moves the memory instead of failing `memory.grow`), and a GC heap
//! is pinned only with the default reservation of several GiB.

use crate::line::{self, Cap};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::ConfigId;

/// One setting a plan can draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Knob {
    /// `Config::table_lazy_init`: eager tables take another `table.get`
    /// and `call_indirect` path.
    TableLazyInit,
    /// `Config::signals_based_traps`: off, every bounds check and null
    /// check is explicit code.
    SignalsBasedTraps,
    /// Cranelift's heap and table access Spectre mitigations (both flags).
    SpectreMitigations,
    /// `Config::memory_reservation`: small, linear-memory accesses get
    /// explicit bounds checks and growth moves the memory.
    MemoryReservation,
    /// `Config::memory_guard_size`.
    MemoryGuardSize,
    /// `Config::memory_reservation_for_growth`.
    MemoryReservationForGrowth,
    /// `Config::guard_before_linear_memory`.
    GuardBeforeLinearMemory,
    /// `Config::memory_init_cow`.
    MemoryInitCow,
    /// `Config::gc_heap_reservation`: small, GC heap accesses get explicit
    /// bounds checks and growth moves the heap under live references.
    GcHeapReservation,
    /// `Config::gc_heap_guard_size`.
    GcHeapGuardSize,
    /// `Config::gc_heap_reservation_for_growth`.
    GcHeapReservationForGrowth,
    /// `Config::gc_heap_may_move`.
    GcHeapMayMove,
    /// `Config::cranelift_opt_level`.
    OptLevel,
    /// `Config::cranelift_regalloc_algorithm`.
    Regalloc,
    /// `Config::compiler_inlining` (Wasm-to-Wasm inlining).
    Inlining,
    /// `Config::epoch_interruption`: every function entry and loop header
    /// checks the epoch deadline and calls out when it passed. The store's
    /// deadline is always passed, and its callback collects at checks 1, 2,
    /// 4, … (`engine::wasmtime::knobs::prepare_store`): collections at
    /// safepoints no other path reaches.
    EpochInterruption,
    /// `Config::cranelift_nan_canonicalization`: float results pass through
    /// extra code; the generators canonicalize NaNs, so results stay equal,
    /// except after the operators of [`NAN_BITS_OPEN`]: not drawn for cases
    /// that have them ([`nan_bits_open`]).
    NanCanonicalization,
    /// `Config::allocation_strategy` with the pooling allocator: instances,
    /// memories, tables and GC heaps come from pools of slots that later
    /// cases reuse, reset either by decommitting them (`decommit`) or by
    /// clearing the first 64 KiB they keep resident (`keep-resident`). The
    /// pool's size limits equal the store limits every engine runs under
    /// (`host::MEMORY_LIMIT`, `TABLE_LIMIT`), so growth fails where it
    /// fails elsewhere.
    PoolingAllocator,
}

/// Float operators whose NaN results Cranelift's NaN canonicalization
/// rewrites and wasm-smith's does not: the spec leaves their NaN bits open,
/// so with the knob on one configuration only, the bits may differ legally
/// (an `f64.promote_f32` of a NaN reinterpreted into an `i64` global read
/// `0xFFFFE00000000000` on Null and the canonical NaN on DRC, 36.0.20).
pub const NAN_BITS_OPEN: &[&str] = &[
    "F64PromoteF32",
    "F32DemoteF64",
    "F64x2PromoteLowF32x4",
    "F32x4DemoteF64x2Zero",
    "F32x4RelaxedMadd",
    "F32x4RelaxedNmadd",
    "F64x2RelaxedMadd",
    "F64x2RelaxedNmadd",
];

/// Whether some function of `wasm` has an operator of [`NAN_BITS_OPEN`].
pub fn nan_bits_open(wasm: &[u8]) -> bool {
    NAN_BITS_OPEN.iter().any(|op| super::info::contains_sequence(wasm, &[op.to_string()]))
}

/// A knob's value: a flag, a size in bytes, or a named choice.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Setting {
    Flag(bool),
    Bytes(u64),
    Name(String),
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setting::Flag(b) => write!(f, "{b}"),
            Setting::Bytes(n) => write!(f, "{n}"),
            Setting::Name(n) => f.write_str(n),
        }
    }
}

/// The knobs a plan drew (absent ones keep Wasmtime's default).
pub type Knobs = BTreeMap<Knob, Setting>;

/// Sizes that are not multiples of any page size, next to page multiples.
const ODD: u64 = 100_000;

impl Knob {
    pub const ALL: &'static [Knob] = &[
        Knob::TableLazyInit,
        Knob::SignalsBasedTraps,
        Knob::SpectreMitigations,
        Knob::MemoryReservation,
        Knob::MemoryGuardSize,
        Knob::MemoryReservationForGrowth,
        Knob::GuardBeforeLinearMemory,
        Knob::MemoryInitCow,
        Knob::GcHeapReservation,
        Knob::GcHeapGuardSize,
        Knob::GcHeapReservationForGrowth,
        Knob::GcHeapMayMove,
        Knob::OptLevel,
        Knob::Regalloc,
        Knob::Inlining,
        Knob::EpochInterruption,
        Knob::NanCanonicalization,
        Knob::PoolingAllocator,
    ];

    /// The name in plans and reports (and the `wasmtime` CLI's `-O` or `-W`
    /// option, but for the Spectre flags and inlining).
    pub fn name(self) -> &'static str {
        match self {
            Knob::TableLazyInit => "table-lazy-init",
            Knob::SignalsBasedTraps => "signals-based-traps",
            Knob::SpectreMitigations => "spectre-mitigations",
            Knob::MemoryReservation => "memory-reservation",
            Knob::MemoryGuardSize => "memory-guard-size",
            Knob::MemoryReservationForGrowth => "memory-reservation-for-growth",
            Knob::GuardBeforeLinearMemory => "guard-before-linear-memory",
            Knob::MemoryInitCow => "memory-init-cow",
            Knob::GcHeapReservation => "gc-heap-reservation",
            Knob::GcHeapGuardSize => "gc-heap-guard-size",
            Knob::GcHeapReservationForGrowth => "gc-heap-reservation-for-growth",
            Knob::GcHeapMayMove => "gc-heap-may-move",
            Knob::OptLevel => "opt-level",
            Knob::Regalloc => "regalloc-algorithm",
            Knob::Inlining => "inlining",
            Knob::EpochInterruption => "epoch-interruption",
            Knob::NanCanonicalization => "nan-canonicalization",
            Knob::PoolingAllocator => "pooling-allocator",
        }
    }

    /// Whether the Wasmtime line under test has this setting.
    pub fn on_line(self) -> bool {
        match self {
            Knob::GcHeapReservation
            | Knob::GcHeapGuardSize
            | Knob::GcHeapReservationForGrowth
            | Knob::GcHeapMayMove => line::has(Cap::GcHeapTunables),
            Knob::Regalloc => line::has(Cap::SinglePass),
            Knob::Inlining => line::has(Cap::Inlining),
            _ => true,
        }
    }

    /// The values a plan draws: each differs from Wasmtime's default.
    pub fn choices(self) -> Vec<Setting> {
        use Setting::*;
        match self {
            Knob::TableLazyInit
            | Knob::SignalsBasedTraps
            | Knob::SpectreMitigations
            | Knob::GuardBeforeLinearMemory
            | Knob::MemoryInitCow
            | Knob::GcHeapMayMove => vec![Flag(false)],
            Knob::Inlining | Knob::EpochInterruption | Knob::NanCanonicalization => vec![Flag(true)],
            Knob::MemoryReservation | Knob::GcHeapReservation => {
                [0, 64 << 10, ODD, 1 << 20, 16 << 20].map(Bytes).to_vec()
            }
            Knob::MemoryGuardSize | Knob::GcHeapGuardSize => [0, 4 << 10, ODD, 1 << 20].map(Bytes).to_vec(),
            Knob::MemoryReservationForGrowth | Knob::GcHeapReservationForGrowth => {
                [0, 4097, 64 << 10, 1 << 20].map(Bytes).to_vec()
            }
            Knob::OptLevel => vec![Name("none".into()), Name("speed-and-size".into())],
            Knob::Regalloc => vec![Name("single-pass".into())],
            Knob::PoolingAllocator => vec![Name("decommit".into()), Name("keep-resident".into())],
        }
    }

    /// Whether `setting` is a value this knob takes.
    fn accepts(self, setting: &Setting) -> bool {
        match (self, setting) {
            (Knob::OptLevel, Setting::Name(n)) => ["none", "speed", "speed-and-size"].contains(&n.as_str()),
            (Knob::Regalloc, Setting::Name(n)) => ["backtracking", "single-pass"].contains(&n.as_str()),
            (Knob::PoolingAllocator, Setting::Name(n)) => ["decommit", "keep-resident"].contains(&n.as_str()),
            (Knob::OptLevel | Knob::Regalloc | Knob::PoolingAllocator, _) => false,
            (_, Setting::Flag(_)) => self.choices().iter().all(|c| matches!(c, Setting::Flag(_))),
            (_, Setting::Bytes(_)) => self.choices().iter().all(|c| matches!(c, Setting::Bytes(_))),
            (_, Setting::Name(_)) => false,
        }
    }

    /// The setting as `wasmtime run` flags.
    pub fn cli(self, setting: &Setting) -> String {
        let value = match setting {
            Setting::Flag(b) => if *b { "y" } else { "n" }.to_string(),
            Setting::Bytes(n) => n.to_string(),
            Setting::Name(n) => match (self, n.as_str()) {
                (Knob::OptLevel, "none") => "0".into(),
                (Knob::OptLevel, "speed") => "2".into(),
                (Knob::OptLevel, _) => "s".into(),
                _ => n.clone(),
            },
        };
        match self {
            Knob::SpectreMitigations => {
                let v = if value == "y" { "true" } else { "false" };
                format!(
                    "-C cranelift-enable_heap_access_spectre_mitigation={v} \
                     -C cranelift-enable_table_access_spectre_mitigation={v}"
                )
            }
            Knob::Inlining => format!("-C inlining={value}"),
            Knob::EpochInterruption | Knob::NanCanonicalization => format!("-W {}={value}", self.name()),
            Knob::PoolingAllocator => std::iter::once("-O pooling-allocator=y".to_string())
                .chain(Pool::of(setting).settings().iter().map(|(_, option, n)| format!("-O {option}={n}")))
                .collect::<Vec<_>>()
                .join(" "),
            _ => format!("-O {}={value}", self.name()),
        }
    }

    /// The setting as `wasmtime::Config` calls.
    pub fn config_call(self, setting: &Setting) -> String {
        let value = match setting {
            Setting::Flag(b) => b.to_string(),
            Setting::Bytes(n) => n.to_string(),
            Setting::Name(n) => match n.as_str() {
                "none" => "wasmtime::OptLevel::None".into(),
                "speed" => "wasmtime::OptLevel::Speed".into(),
                "speed-and-size" => "wasmtime::OptLevel::SpeedAndSize".into(),
                "single-pass" => "wasmtime::RegallocAlgorithm::SinglePass".into(),
                _ => "wasmtime::RegallocAlgorithm::Backtracking".into(),
            },
        };
        match self {
            Knob::SpectreMitigations => format!(
                "unsafe {{ config.cranelift_flag_set(\"enable_heap_access_spectre_mitigation\", \"{value}\"); \
                 config.cranelift_flag_set(\"enable_table_access_spectre_mitigation\", \"{value}\"); }}"
            ),
            Knob::Inlining if value == "true" => "config.compiler_inlining(wasmtime::Inlining::Yes);".into(),
            Knob::Inlining => "config.compiler_inlining(wasmtime::Inlining::No);".into(),
            Knob::OptLevel => format!("config.cranelift_opt_level({value});"),
            Knob::Regalloc => format!("config.cranelift_regalloc_algorithm({value});"),
            Knob::NanCanonicalization => format!("config.cranelift_nan_canonicalization({value});"),
            Knob::PoolingAllocator => format!(
                "let mut pool = wasmtime::PoolingAllocationConfig::new(); {} \
                 config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));",
                Pool::of(setting)
                    .settings()
                    .iter()
                    .map(|(method, _, n)| format!("pool.{method}({n});"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Knob::EpochInterruption => format!(
                "config.epoch_interruption({value}); // and in the store: set_epoch_deadline(0), and an \
                 epoch_deadline_callback that collects at its calls 1, 2, 4, … and returns Continue(0)"
            ),
            _ => format!("config.{}({value});", self.name().replace('-', "_")),
        }
    }
}

/// The pooling allocator of a `pooling-allocator` setting: room for a
/// linked case's instances, memories, tables and GC heap with some to spare
/// (one store at a time; more would only reserve more address space), limits
/// equal to the store limits every engine runs under, so that instantiation
/// and growth fail where they fail without the pool, no warm slots kept
/// apart, so that every case reuses the slots earlier cases used, and no
/// async stacks (cases run synchronously; Wasmtime's default of 1000 maps
/// 2 GiB of stacks up front, past a worker's memory limit).
pub struct Pool {
    pub instances: u32,
    pub memories: u32,
    pub tables: u32,
    pub gc_heaps: u32,
    /// Memories and tables a module may define.
    pub per_module: u32,
    pub max_memory_size: usize,
    pub table_elements: usize,
    pub stacks: u32,
    pub warm_slots: u32,
    /// Bytes of each memory and table slot reset in place rather than
    /// decommitted.
    pub keep_resident: usize,
}

impl Pool {
    pub fn of(setting: &Setting) -> Pool {
        Pool {
            instances: 8,
            memories: 32,
            tables: 32,
            gc_heaps: 8,
            per_module: 16,
            max_memory_size: super::host::MEMORY_LIMIT,
            table_elements: super::host::TABLE_LIMIT,
            stacks: 0,
            warm_slots: 0,
            keep_resident: if *setting == Setting::Name("keep-resident".into()) { 64 << 10 } else { 0 },
        }
    }

    /// `PoolingAllocationConfig` method names, the `wasmtime` CLI's `-O`
    /// option names, and values.
    pub fn settings(&self) -> Vec<(&'static str, &'static str, u64)> {
        let (count, size) = (|n: u32| u64::from(n), |n: usize| n as u64);
        vec![
            ("total_core_instances", "pooling-total-core-instances", count(self.instances)),
            ("total_memories", "pooling-total-memories", count(self.memories)),
            ("total_tables", "pooling-total-tables", count(self.tables)),
            ("total_gc_heaps", "pooling-total-gc-heaps", count(self.gc_heaps)),
            ("total_stacks", "pooling-total-stacks", count(self.stacks)),
            ("max_memories_per_module", "pooling-max-memories-per-module", count(self.per_module)),
            ("max_tables_per_module", "pooling-max-tables-per-module", count(self.per_module)),
            ("max_memory_size", "pooling-max-memory-size", size(self.max_memory_size)),
            ("table_elements", "pooling-table-elements", size(self.table_elements)),
            ("max_unused_warm_slots", "pooling-max-unused-warm-slots", count(self.warm_slots)),
            ("linear_memory_keep_resident", "pooling-memory-keep-resident", size(self.keep_resident)),
            ("table_keep_resident", "pooling-table-keep-resident", size(self.keep_resident)),
        ]
    }
}

/// Knobs the pooling allocator cannot take: its GC heaps share the memory
/// pool, so Wasmtime requires their reservation, guard and growth settings
/// to equal the linear memories' (it asserts that), and a pooled memory
/// cannot be larger than its reservation (a small one would make growth
/// fail where the reference's succeeds).
pub const NOT_POOLED: [Knob; 7] = [
    Knob::MemoryReservation,
    Knob::MemoryGuardSize,
    Knob::MemoryReservationForGrowth,
    Knob::GcHeapReservation,
    Knob::GcHeapGuardSize,
    Knob::GcHeapReservationForGrowth,
    Knob::GcHeapMayMove,
];

/// Makes a drawn set acceptable to [`check`] by dropping what conflicts: a
/// pinned GC heap next to a reservation of its own, the pooling allocator
/// next to a knob it cannot take.
pub fn settle(knobs: &mut Knobs) {
    for knob in [Knob::GcHeapMayMove, Knob::PoolingAllocator] {
        if check(knobs).is_err() {
            knobs.remove(&knob);
        }
    }
}

/// A reservation of its own comes with a growth reservation of its own: with
/// a small reservation (and on Pulley, or without signals-based traps)
/// Wasmtime allocates memories and GC heaps with their growth reservation,
/// 2 GiB by default, which a worker's memory limit refuses where `null`'s
/// reserved-only memory succeeds.
pub const GROWTH_PAIRS: [(Knob, Knob); 2] = [
    (Knob::MemoryReservation, Knob::MemoryReservationForGrowth),
    (Knob::GcHeapReservation, Knob::GcHeapReservationForGrowth),
];

/// `name=value, …`, as reports print them.
pub fn describe(knobs: &Knobs) -> String {
    knobs.iter().map(|(k, s)| format!("{}={s}", k.name())).collect::<Vec<_>>().join(", ")
}

/// Refuses knobs a plan cannot carry: a value the knob does not take, a
/// knob the line lacks, a combination Wasmtime refuses or one that could
/// change what a correct engine computes.
pub fn check(knobs: &Knobs) -> Result<()> {
    for (knob, setting) in knobs {
        if !knob.accepts(setting) {
            bail!("knob {}: {setting} is not a value it takes", knob.name());
        }
        if !knob.on_line() {
            bail!("knob {}: Wasmtime {} lacks it", knob.name(), line::wasmtime_version());
        }
    }
    if knobs.get(&Knob::SignalsBasedTraps) == Some(&Setting::Flag(false))
        && knobs.get(&Knob::SpectreMitigations) == Some(&Setting::Flag(true))
    {
        bail!("knobs: Spectre mitigations need signals-based traps");
    }
    for (reservation, growth) in &GROWTH_PAIRS {
        if knobs.contains_key(reservation) && !knobs.contains_key(growth) {
            bail!(
                "knobs: {} without {}: a memory Wasmtime allocates rather than reserves would claim the default 2 GiB \
                 for growth, past a worker's memory limit",
                reservation.name(),
                growth.name()
            );
        }
    }
    if knobs.contains_key(&Knob::PoolingAllocator)
        && let Some(k) = NOT_POOLED.iter().find(|k| knobs.contains_key(k))
    {
        bail!("knobs: the pooling allocator with {}: its GC heaps and memories share one pool", k.name());
    }
    if knobs.get(&Knob::GcHeapMayMove) == Some(&Setting::Flag(false)) && knobs.contains_key(&Knob::GcHeapReservation) {
        bail!("knobs: a pinned GC heap with a reservation of its own could run out where the reference does not");
    }
    Ok(())
}

/// The knobs configuration `id` runs with: none for Null (the ground truth)
/// and the other engines, and none a variant fixes itself (its opt level,
/// allocator or inlining).
pub fn for_config(knobs: &Knobs, id: ConfigId) -> Knobs {
    if !id.is_wasmtime() || id == ConfigId::Null {
        return Knobs::new();
    }
    let fixed = match id {
        ConfigId::DrcO0 => Some(Knob::OptLevel),
        ConfigId::DrcSinglepass => Some(Knob::Regalloc),
        ConfigId::CopyingInline => Some(Knob::Inlining),
        _ => None,
    };
    knobs.iter().filter(|(k, _)| Some(**k) != fixed).map(|(k, s)| (*k, s.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_is_accepted_and_differs_from_the_default_spelling() {
        for &knob in Knob::ALL {
            for choice in knob.choices() {
                assert!(knob.accepts(&choice), "{knob:?} {choice:?}");
                let mut one = Knobs::new();
                one.insert(knob, choice.clone());
                if let Some((_, growth)) = GROWTH_PAIRS.iter().find(|(r, _)| *r == knob) {
                    assert!(check(&one).is_err(), "{knob:?} alone");
                    one.insert(*growth, Setting::Bytes(1 << 20));
                }
                if knob.on_line() {
                    check(&one).unwrap();
                }
            }
            assert!(!knob.accepts(&Setting::Name("bogus".into())), "{knob:?}");
        }
        assert!(!Knob::MemoryGuardSize.accepts(&Setting::Flag(true)));
        assert!(!Knob::TableLazyInit.accepts(&Setting::Bytes(1)));
    }

    #[test]
    fn knobs_round_trip_through_json_by_name() {
        let knobs: Knobs = [
            (Knob::TableLazyInit, Setting::Flag(false)),
            (Knob::MemoryGuardSize, Setting::Bytes(ODD)),
            (Knob::OptLevel, Setting::Name("none".into())),
        ]
        .into_iter()
        .collect();
        let json = serde_json::to_string(&knobs).unwrap();
        assert_eq!(json, r#"{"table-lazy-init":false,"memory-guard-size":100000,"opt-level":"none"}"#);
        assert_eq!(serde_json::from_str::<Knobs>(&json).unwrap(), knobs);
    }

    #[test]
    fn the_reference_and_the_variants_keep_their_own_settings() {
        let knobs: Knobs =
            [(Knob::OptLevel, Setting::Name("speed-and-size".into())), (Knob::TableLazyInit, Setting::Flag(false))]
                .into_iter()
                .collect();
        assert!(for_config(&knobs, ConfigId::Null).is_empty());
        assert!(for_config(&knobs, ConfigId::Interp).is_empty());
        assert_eq!(for_config(&knobs, ConfigId::Drc), knobs);
        assert_eq!(for_config(&knobs, ConfigId::DrcO0).keys().collect::<Vec<_>>(), [&Knob::TableLazyInit]);
    }

    #[test]
    fn combinations_that_could_change_results_are_refused() {
        let pinned: Knobs = [
            (Knob::GcHeapMayMove, Setting::Flag(false)),
            (Knob::GcHeapReservation, Setting::Bytes(64 << 10)),
            (Knob::GcHeapReservationForGrowth, Setting::Bytes(1 << 20)),
        ]
        .into_iter()
        .collect();
        if line::has(Cap::GcHeapTunables) {
            assert!(check(&pinned).unwrap_err().to_string().contains("pinned"));
        }
        let spectre: Knobs =
            [(Knob::SignalsBasedTraps, Setting::Flag(false)), (Knob::SpectreMitigations, Setting::Flag(true))]
                .into_iter()
                .collect();
        assert!(check(&spectre).is_err());
    }

    #[test]
    fn the_pooling_allocator_is_dropped_next_to_a_reservation_it_cannot_take() {
        let pooled = |k: Knob, s: Setting| -> Knobs {
            [(Knob::PoolingAllocator, Setting::Name("decommit".into())), (k, s)].into_iter().collect()
        };
        for knob in NOT_POOLED {
            let mut set = pooled(knob, knob.choices()[0].clone());
            if let Some((_, growth)) = GROWTH_PAIRS.iter().find(|(r, _)| *r == knob) {
                set.insert(*growth, Setting::Bytes(1 << 20));
            }
            assert!(check(&set).unwrap_err().to_string().contains("pooling"), "{knob:?}");
            settle(&mut set);
            assert!(!set.contains_key(&Knob::PoolingAllocator) || !set.contains_key(&knob), "{knob:?}");
            check(&set).unwrap();
        }
        let mut kept = pooled(Knob::TableLazyInit, Setting::Flag(false));
        settle(&mut kept);
        assert_eq!(kept.len(), 2);
        check(&kept).unwrap();
    }
}
