//! The Wasmtime calls whose signatures changed between the supported lines.
//! Each `cfg` names the capability (see `crate::line`, whose table the build
//! script turns into these cfgs).

use crate::case::ConfigId;
use crate::line;
use wasmtime::{Config, Store};

/// Sets what is specific to configuration `id` and the plan's zeal and heap
/// size, as far as this line has the knobs (see `crate::line`).
pub fn configure(
    c: &mut Config,
    id: ConfigId,
    zeal: Option<u32>,
    gc_heap_initial: Option<u64>,
) -> wasmtime::Result<()> {
    if !id.on_line() {
        return Err(wasmtime::Error::msg(format!(
            "configuration {id} needs knobs Wasmtime {} lacks",
            line::wasmtime_version()
        )));
    }
    #[cfg(wasmtime_exceptions)]
    c.wasm_exceptions(true);
    #[cfg(wasmtime_internal_asserts)]
    c.metadata_for_internal_asserts(true);
    #[cfg(wasmtime_zeal)]
    {
        if id != ConfigId::Null {
            c.gc_zeal_alloc_counter(zeal.and_then(std::num::NonZeroU32::new))?;
        }
        if let Some(bytes) = gc_heap_initial {
            c.gc_heap_initial_size(bytes);
        }
    }
    // No zeal counter, no initial heap size: the knobs are absent.
    #[cfg(not(wasmtime_zeal))]
    let _ = (zeal, gc_heap_initial);
    #[cfg(wasmtime_copying)]
    if id == ConfigId::Copying || id == ConfigId::CopyingInline {
        c.collector(wasmtime::Collector::Copying);
    }
    #[cfg(all(wasmtime_copying, wasmtime_inlining))]
    if id == ConfigId::CopyingInline {
        c.compiler_inlining(wasmtime::Inlining::Yes);
    }
    #[cfg(wasmtime_single_pass)]
    if id == ConfigId::DrcSinglepass {
        c.cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass);
    }
    // On lines with none of the knobs above, `c` is otherwise unused.
    let _ = c;
    Ok(())
}

/// Runs a `.wast` script in `ctx`.
pub fn run_wast(ctx: &mut WastContext, name: &str, text: &str) -> wasmtime::Result<()> {
    #[cfg(wasmtime_wast_run_wast)]
    return ctx.run_wast(name, text.as_bytes());
    #[cfg(not(wasmtime_wast_run_wast))]
    return ctx.run_buffer(name, text.as_bytes());
}

/// Whether `e` says the engine ran out of memory for a GC object (besides
/// `GcHeapOutOfMemory`, which every line has).
pub fn is_out_of_memory(e: &wasmtime::Error) -> bool {
    #[cfg(wasmtime_internal_asserts)]
    return e.is::<wasmtime::OutOfMemory>();
    #[cfg(not(wasmtime_internal_asserts))]
    {
        let _ = e;
        false
    }
}

/// Whether `e` is Wasmtime reporting one of its own bugs (a failed internal
/// assert in compiled code, detected heap corruption).
pub fn is_engine_bug(e: &wasmtime::Error) -> bool {
    #[cfg(wasmtime_internal_asserts)]
    return e.is::<wasmtime::WasmtimeBug>();
    #[cfg(not(wasmtime_internal_asserts))]
    {
        let _ = e;
        false
    }
}

/// A collection forced by the host: from a host function (a `Caller`),
/// between calls (the `Store`) or at an epoch check (its callback's
/// `StoreContextMut`).
pub fn collect(mut cx: impl wasmtime::AsContextMut) -> wasmtime::Result<()> {
    let mut cx = cx.as_context_mut();
    let _site = super::locate::host_call(&cx);
    #[cfg(wasmtime_gc_fallible)]
    return cx.gc(None);
    #[cfg(all(not(wasmtime_gc_fallible), wasmtime_gc_size_hint))]
    cx.gc(None);
    #[cfg(not(wasmtime_gc_size_hint))]
    cx.gc();
    #[cfg(not(wasmtime_gc_fallible))]
    Ok(())
}

#[cfg(not(wasmtime_wast_owns_store))]
pub type WastContext = wasmtime_wast::WastContext;
#[cfg(wasmtime_wast_owns_store)]
pub type WastContext = wasmtime_wast::WastContext<()>;

/// Wasmtime's wast runner on `engine`, with the spectest module and, where
/// the line has it, the `wasmtime.gc` import.
pub fn wast_context(engine: &wasmtime::Engine) -> wasmtime::Result<WastContext> {
    #[cfg(not(wasmtime_wast_owns_store))]
    let mut ctx = wasmtime_wast::WastContext::new(engine, wasmtime_wast::Async::No, |_| {});
    #[cfg(all(wasmtime_wast_owns_store, wasmtime_wast_async))]
    let mut ctx = wasmtime_wast::WastContext::new(Store::new(engine, ()), wasmtime_wast::Async::No);
    #[cfg(not(wasmtime_wast_async))]
    let mut ctx = wasmtime_wast::WastContext::new(Store::new(engine, ()));
    #[cfg(wasmtime_wast_gc_import)]
    ctx.register_wasmtime()?;
    #[cfg(not(wasmtime_wast_gc_import))]
    ctx.register_spectest(&wasmtime_wast::SpectestConfig { use_shared_memory: false, suppress_prints: true })?;
    Ok(ctx)
}

/// The GC heap `store` holds, in bytes (0 before its first allocation).
pub fn gc_heap_bytes<T>(store: &Store<T>) -> Option<u64> {
    #[cfg(wasmtime_gc_heap_capacity)]
    return Some(store.gc_heap_capacity() as u64);
    #[cfg(not(wasmtime_gc_heap_capacity))]
    {
        let _ = store;
        None
    }
}
