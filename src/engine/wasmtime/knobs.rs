//! A plan's knobs (`case::knobs`) as `wasmtime::Config` calls, and the check
//! that they took effect: Wasmtime resolves its settings when the engine is
//! built (defaults, platform refinements, settings that imply others), and
//! a knob that silently did not apply would make every finding under it
//! unreproducible, so on lines with `Engine::get_*` each knob is read back.

use crate::case::{Knob, Knobs, Setting, knobs};
use wasmtime::{Config, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store, UpdateDeadline};

/// Sets each knob on `c`.
pub fn apply(c: &mut Config, knobs: &Knobs) {
    for (knob, setting) in knobs {
        let (flag, bytes) = match setting {
            Setting::Flag(b) => (*b, 0),
            Setting::Bytes(n) => (false, *n),
            Setting::Name(_) => (false, 0),
        };
        match knob {
            Knob::TableLazyInit => {
                c.table_lazy_init(flag);
            }
            Knob::SignalsBasedTraps => {
                c.signals_based_traps(flag);
            }
            Knob::SpectreMitigations => {
                let value = if flag { "true" } else { "false" };
                // SAFETY: both are documented Cranelift settings and take a
                // boolean; `case::knobs::check` keeps them off whenever
                // signals-based traps are off, as Wasmtime requires.
                unsafe {
                    c.cranelift_flag_set("enable_heap_access_spectre_mitigation", value);
                    c.cranelift_flag_set("enable_table_access_spectre_mitigation", value);
                }
            }
            Knob::MemoryReservation => {
                c.memory_reservation(bytes);
            }
            Knob::MemoryGuardSize => {
                c.memory_guard_size(bytes);
            }
            Knob::MemoryReservationForGrowth => {
                c.memory_reservation_for_growth(bytes);
            }
            Knob::GuardBeforeLinearMemory => {
                c.guard_before_linear_memory(flag);
            }
            Knob::MemoryInitCow => {
                c.memory_init_cow(flag);
            }
            #[cfg(wasmtime_gc_heap_tunables)]
            Knob::GcHeapReservation => {
                c.gc_heap_reservation(bytes);
            }
            #[cfg(wasmtime_gc_heap_tunables)]
            Knob::GcHeapGuardSize => {
                c.gc_heap_guard_size(bytes);
            }
            #[cfg(wasmtime_gc_heap_tunables)]
            Knob::GcHeapReservationForGrowth => {
                c.gc_heap_reservation_for_growth(bytes);
            }
            #[cfg(wasmtime_gc_heap_tunables)]
            Knob::GcHeapMayMove => {
                c.gc_heap_may_move(flag);
            }
            Knob::OptLevel => {
                c.cranelift_opt_level(opt_level(setting));
            }
            #[cfg(wasmtime_single_pass)]
            Knob::Regalloc => {
                c.cranelift_regalloc_algorithm(regalloc(setting));
            }
            #[cfg(wasmtime_inlining_modes)]
            Knob::Inlining => {
                c.compiler_inlining(if flag { wasmtime::Inlining::Yes } else { wasmtime::Inlining::No });
            }
            #[cfg(all(wasmtime_inlining, not(wasmtime_inlining_modes)))]
            Knob::Inlining => {
                c.compiler_inlining(flag);
            }
            Knob::EpochInterruption => {
                c.epoch_interruption(flag);
            }
            Knob::NanCanonicalization => {
                c.cranelift_nan_canonicalization(flag);
            }
            Knob::PoolingAllocator => {
                c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool(setting)));
            }
            // The plan codec drops knobs the line lacks.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

/// The pool of `case::knobs::Pool`.
fn pool(setting: &Setting) -> PoolingAllocationConfig {
    let pool = knobs::Pool::of(setting);
    let mut p = PoolingAllocationConfig::new();
    p.total_core_instances(pool.instances)
        .total_memories(pool.memories)
        .total_tables(pool.tables)
        .total_gc_heaps(pool.gc_heaps)
        .total_stacks(pool.stacks)
        .max_memories_per_module(pool.per_module)
        .max_tables_per_module(pool.per_module)
        .max_memory_size(pool.max_memory_size)
        .table_elements(pool.table_elements)
        .max_unused_warm_slots(pool.warm_slots)
        .linear_memory_keep_resident(pool.keep_resident)
        .table_keep_resident(pool.keep_resident);
    p
}

fn opt_level(setting: &Setting) -> OptLevel {
    match setting {
        Setting::Name(n) if n == "none" => OptLevel::None,
        Setting::Name(n) if n == "speed-and-size" => OptLevel::SpeedAndSize,
        _ => OptLevel::Speed,
    }
}

#[cfg(wasmtime_single_pass)]
fn regalloc(setting: &Setting) -> wasmtime::RegallocAlgorithm {
    match setting {
        Setting::Name(n) if n == "single-pass" => wasmtime::RegallocAlgorithm::SinglePass,
        _ => wasmtime::RegallocAlgorithm::Backtracking,
    }
}

/// Sets up a store for its engine's knobs. With epoch interruption, the
/// deadline is always passed, so every check (function entries, loop
/// headers) calls out to the host; the callback collects at checks 1, 2, 4,
/// … 2^16 (a collection at a safepoint nothing else makes one at, early
/// and late in a run, at a bounded cost), then moves the deadline out of
/// reach (nothing advances the epoch). Collecting is invisible to a
/// correct program, so results stay comparable with Null.
pub fn prepare_store<T: 'static>(store: &mut Store<T>, knobs: &Knobs) {
    if knobs.get(&Knob::EpochInterruption) != Some(&Setting::Flag(true)) {
        return;
    }
    store.set_epoch_deadline(0);
    let mut checks: u64 = 0;
    store.epoch_deadline_callback(move |cx| {
        checks += 1;
        if checks.is_power_of_two() {
            super::api::collect(cx)?;
        }
        Ok(UpdateDeadline::Continue(u64::from(checks >= 1 << 16)))
    });
}

/// The first knob `engine` does not run with, as "knob: asked X, engine
/// has Y" (`Ok` on lines that cannot read settings back, and for the
/// Cranelift flags, which no getter shows).
pub fn verify(engine: &wasmtime::Engine, knobs: &Knobs) -> Result<(), String> {
    #[cfg(wasmtime_engine_getters)]
    for (knob, setting) in knobs {
        let flag = |b: bool| Some(Setting::Flag(b));
        let bytes = |n: u64| Some(Setting::Bytes(n));
        let actual = match knob {
            Knob::TableLazyInit => flag(engine.get_table_lazy_init()),
            Knob::SignalsBasedTraps => flag(engine.get_signals_based_traps()),
            Knob::SpectreMitigations => None,
            Knob::MemoryReservation => bytes(engine.get_memory_reservation()),
            Knob::MemoryGuardSize => bytes(engine.get_memory_guard_size()),
            Knob::MemoryReservationForGrowth => bytes(engine.get_memory_reservation_for_growth()),
            Knob::GuardBeforeLinearMemory => flag(engine.get_guard_before_linear_memory()),
            Knob::MemoryInitCow => flag(engine.get_memory_init_cow()),
            Knob::GcHeapReservation => bytes(engine.get_gc_heap_reservation()),
            Knob::GcHeapGuardSize => bytes(engine.get_gc_heap_guard_size()),
            Knob::GcHeapReservationForGrowth => bytes(engine.get_gc_heap_reservation_for_growth()),
            Knob::GcHeapMayMove => flag(engine.get_gc_heap_may_move()),
            Knob::OptLevel => (engine.get_cranelift_opt_level() != Some(opt_level(setting)))
                .then(|| Setting::Name(format!("{:?}", engine.get_cranelift_opt_level()))),
            Knob::Regalloc => (engine.get_cranelift_regalloc_algorithm() != Some(regalloc(setting)))
                .then(|| Setting::Name(format!("{:?}", engine.get_cranelift_regalloc_algorithm()))),
            Knob::Inlining => flag(engine.get_compiler_inlining() != wasmtime::Inlining::No),
            Knob::EpochInterruption => flag(engine.get_epoch_interruption()),
            Knob::NanCanonicalization => flag(engine.get_cranelift_nan_canonicalization() == Some(true)),
            Knob::PoolingAllocator => match engine.get_pooling_config() {
                None => Some(Setting::Name("on-demand".into())),
                Some(p) => Some(Setting::Name(
                    if p.get_memory_keep_resident() > 0 { "keep-resident" } else { "decommit" }.into(),
                )),
            },
        };
        if let Some(actual) = actual.filter(|a| a != setting) {
            return Err(format!("knob {}: asked {setting}, the engine has {actual}", knob.name()));
        }
    }
    let _ = (engine, knobs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::ConfigId;
    use crate::engine::wasmtime::WasmtimeEngine;

    fn engine(id: ConfigId, knobs: &Knobs) -> wasmtime::Engine {
        let config = WasmtimeEngine::config(id, Some(1), None, knobs).unwrap();
        wasmtime::Engine::new(&config).unwrap_or_else(|e| panic!("{id} refuses {}: {e:#}", knobs::describe(knobs)))
    }

    /// Every value a plan can draw, alone and all together, is accepted by
    /// every collecting configuration of the line and in effect after.
    #[test]
    fn every_drawn_setting_is_accepted_and_takes_effect() {
        let offered: Vec<Knob> = Knob::ALL.iter().copied().filter(|k| k.on_line()).collect();
        let widest = offered.iter().map(|k| k.choices().len()).max().unwrap();
        let mut sets: Vec<Knobs> = Vec::new();
        for &knob in &offered {
            for choice in knob.choices() {
                let mut one: Knobs = [(knob, choice)].into();
                if let Some((_, growth)) = knobs::GROWTH_PAIRS.iter().find(|(r, _)| *r == knob) {
                    one.insert(*growth, Setting::Bytes(1 << 20));
                }
                sets.push(one);
            }
        }
        for i in 0..widest {
            let mut all: Knobs = offered.iter().map(|k| (*k, k.choices()[i % k.choices().len()].clone())).collect();
            knobs::settle(&mut all);
            sets.push(all);
        }
        let mut ran = 0;
        let ids: Vec<ConfigId> =
            ConfigId::ALL.iter().copied().filter(|c| c.is_wasmtime() && *c != ConfigId::Null && c.on_line()).collect();
        for &id in &ids {
            for set in &sets {
                let set = knobs::for_config(set, id);
                knobs::check(&set).unwrap();
                let engine = engine(id, &set);
                verify(&engine, &set).unwrap_or_else(|e| panic!("{id}: {e}"));
                // Some settings are refused only when code is compiled or
                // a store is made.
                assert_eq!(
                    run(&engine, &set).unwrap_or_else(|e| panic!("{id}, {}: {e:#}", knobs::describe(&set))),
                    65539
                );
                ran += 1;
            }
        }
        assert!(sets.len() >= 20 && ids.len() >= 3, "{} knob sets, {} configurations", sets.len(), ids.len());
        assert_eq!(ran, sets.len() * ids.len());
    }

    /// Grows a memory, fills a table eagerly, allocates GC objects across a
    /// growth of the GC heap: every kind of code the knobs change.
    fn run(engine: &wasmtime::Engine, knobs: &Knobs) -> wasmtime::Result<i32> {
        let module = wasmtime::Module::new(
            engine,
            r#"(module
                 (type $s (struct (field i32)))
                 (type $a (array (mut i32)))
                 (memory 1)
                 (table $t 2 funcref (ref.func $f))
                 (elem declare func $f)
                 (func $f (result i32) (i32.const 1))
                 (func (export "run") (result i32)
                   (local $keep (ref null $a))
                   (local $i i32)
                   (drop (memory.grow (i32.const 1)))
                   (i32.store (i32.const 65536) (i32.const 65536))
                   (loop $l
                     (local.set $keep (array.new $a (local.get $i) (i32.const 1000)))
                     (local.set $i (i32.add (local.get $i) (i32.const 1)))
                     (br_if $l (i32.lt_u (local.get $i) (i32.const 64))))
                   (i32.add (i32.load (i32.const 65536))
                     (i32.add (call_indirect (result i32) (i32.const 1))
                       (i32.add (array.get $a (local.get $keep) (i32.const 999))
                         (struct.get $s 0 (struct.new $s (i32.const -61))))))))"#,
        )?;
        let mut store = wasmtime::Store::new(engine, ());
        store.set_fuel(u64::MAX)?;
        prepare_store(&mut store, knobs);
        let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
        instance.get_typed_func::<(), i32>(&mut store, "run")?.call(&mut store, ())
    }

    /// With epoch interruption the checks collect: a host object whose last
    /// reference was an ended call's argument (DRC drops such a reference
    /// only in a collection) is freed by the next call's checks, and not
    /// without the knob.
    #[cfg(wasmtime_engine_getters)]
    #[test]
    fn epoch_checks_collect() {
        use std::sync::Arc;
        use wasmtime::{ExternRef, Rooted};
        let freed = |knobs: &Knobs| -> bool {
            let engine = engine(ConfigId::Drc, knobs);
            let module = wasmtime::Module::new(
                &engine,
                r#"(module
                     (func (export "take") (param externref))
                     (func (export "spin") (local $i i32)
                       (loop $l
                         (local.set $i (i32.add (local.get $i) (i32.const 1)))
                         (br_if $l (i32.lt_u (local.get $i) (i32.const 8))))))"#,
            )
            .unwrap();
            let mut store = wasmtime::Store::new(&engine, ());
            store.set_fuel(u64::MAX).unwrap();
            prepare_store(&mut store, knobs);
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            let data = Arc::new(());
            {
                let mut scope = wasmtime::RootScope::new(&mut store);
                let r = ExternRef::new(&mut scope, data.clone()).unwrap();
                let take = instance.get_typed_func::<Option<Rooted<ExternRef>>, ()>(&mut scope, "take").unwrap();
                take.call(&mut scope, Some(r)).unwrap();
            }
            instance.get_typed_func::<(), ()>(&mut store, "spin").unwrap().call(&mut store, ()).unwrap();
            Arc::strong_count(&data) == 1
        };
        assert!(!freed(&Knobs::new()), "freed without a collection");
        assert!(freed(&[(Knob::EpochInterruption, Setting::Flag(true))].into()), "the epoch checks did not collect");
    }

    /// A knob the harness failed to pass on is reported, not run silently
    /// with the default.
    #[cfg(wasmtime_engine_getters)]
    #[test]
    fn a_knob_left_unapplied_is_reported() {
        for &knob in Knob::ALL.iter().filter(|k| k.on_line() && **k != Knob::SpectreMitigations) {
            for choice in knob.choices() {
                let asked: Knobs = [(knob, choice.clone())].into();
                let built = engine(ConfigId::Drc, &Knobs::new());
                let err = verify(&built, &asked).expect_err(&format!("{knob:?} {choice} went unnoticed"));
                assert!(err.starts_with(&format!("knob {}:", knob.name())), "{err}");
            }
        }
    }
}
