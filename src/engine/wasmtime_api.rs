//! Everything that differs between the supported Wasmtime lines, in one
//! place: which knobs a line has, and the calls whose signatures changed.
//! The line is chosen by Cargo feature (`wasmtime-48`, the default;
//! `wasmtime-42`; `wasmtime-36`, the LTS line; `wasmtime-31`); `lib.rs` makes
//! it the crate's `wasmtime`.
//!
//! | knob | 48 | 42 | 36 | 31 |
//! |---|---|---|---|---|
//! | Copying collector | yes | no | no | no |
//! | `gc_zeal_alloc_counter`, `gc_heap_initial_size` | yes | no | no | no |
//! | exceptions | yes | yes | no | no |
//! | Wasm-to-Wasm inlining | yes | yes | yes | no |
//! | single-pass register allocator | yes | yes | no | yes |
//! | internal-assert metadata (`WasmtimeBug`) | yes | no | no | no |

use super::ConfigId;
use super::wasmtime::Host;
use wasmtime::{Caller, Config, Store};

/// What the Wasmtime line under test offers the harness.
pub struct Knobs {
    /// The Copying collector (`copying`, `copying-inline`).
    pub copying: bool,
    /// `Config::gc_zeal_alloc_counter` and `Config::gc_heap_initial_size`:
    /// without them, collections happen only at host `gc` calls and when the
    /// heap fills.
    pub zeal: bool,
    /// The exception-handling proposal.
    pub exceptions: bool,
    /// Wasm-to-Wasm inlining in Cranelift.
    pub inlining: bool,
    /// Cranelift's single-pass register allocator.
    pub single_pass: bool,
    /// `wasmtime-wast` provides the `wasmtime.gc` import regression tests use.
    pub wast_gc_import: bool,
    /// `any.convert_extern` / `extern.convert_any` in constant expressions
    /// (31.0.0's validator calls them non-constant).
    pub const_conversions: bool,
}

/// The exact version under test: the line's release, or what a build
/// against a local checkout names through `GCFUZZ_WASMTIME_VERSION` (see
/// `scripts/wasmtime-lines.sh --local`).
pub const VERSION: &str = match option_env!("GCFUZZ_WASMTIME_VERSION") {
    Some(v) if !v.is_empty() => v,
    _ => RELEASE,
};
#[cfg(feature = "wasmtime-48")]
const RELEASE: &str = "48.0.8";
#[cfg(feature = "wasmtime-42")]
const RELEASE: &str = "42.0.2";
#[cfg(feature = "wasmtime-36")]
const RELEASE: &str = "36.0.20";
#[cfg(feature = "wasmtime-31")]
const RELEASE: &str = "31.0.0";

#[cfg(feature = "wasmtime-48")]
pub const KNOBS: Knobs = Knobs {
    copying: true,
    zeal: true,
    exceptions: true,
    inlining: true,
    single_pass: true,
    wast_gc_import: true,
    const_conversions: true,
};

#[cfg(feature = "wasmtime-42")]
pub const KNOBS: Knobs = Knobs {
    copying: false,
    zeal: false,
    exceptions: true,
    inlining: true,
    single_pass: true,
    wast_gc_import: false,
    const_conversions: true,
};

#[cfg(feature = "wasmtime-36")]
pub const KNOBS: Knobs = Knobs {
    copying: false,
    zeal: false,
    exceptions: false,
    inlining: true,
    single_pass: false,
    wast_gc_import: false,
    const_conversions: true,
};

#[cfg(feature = "wasmtime-31")]
pub const KNOBS: Knobs = Knobs {
    copying: false,
    zeal: false,
    exceptions: false,
    inlining: false,
    single_pass: true,
    wast_gc_import: false,
    const_conversions: false,
};

/// Whether this line can run configuration `id`.
pub fn has(id: ConfigId) -> bool {
    match id {
        ConfigId::Copying => KNOBS.copying,
        ConfigId::CopyingInline => KNOBS.copying && KNOBS.inlining,
        ConfigId::DrcSinglepass => KNOBS.single_pass,
        _ => true,
    }
}

/// What in a valid module (under `Profile::Gc`) this line refuses although
/// the specification allows it, if anything: generated modules with it are
/// dropped, reproducers with it refused with this reason.
pub fn unsupported(wasm: &[u8]) -> Option<&'static str> {
    if KNOBS.const_conversions {
        return None;
    }
    use wasmparser::{ElementItems, ElementKind, Operator, Payload};
    let conversion = |expr: &wasmparser::ConstExpr| {
        expr.get_operators_reader()
            .into_iter()
            .any(|op| matches!(op, Ok(Operator::AnyConvertExtern | Operator::ExternConvertAny)))
    };
    let found = wasmparser::Parser::new(0).parse_all(wasm).any(|payload| match payload {
        Ok(Payload::GlobalSection(r)) => r.into_iter().flatten().any(|g| conversion(&g.init_expr)),
        Ok(Payload::TableSection(r)) => r.into_iter().flatten().any(|t| match &t.init {
            wasmparser::TableInit::Expr(e) => conversion(e),
            wasmparser::TableInit::RefNull => false,
        }),
        Ok(Payload::ElementSection(r)) => r.into_iter().flatten().any(|e| {
            let offset = matches!(&e.kind, ElementKind::Active { offset_expr, .. } if conversion(offset_expr));
            let items = match e.items {
                ElementItems::Expressions(_, exprs) => exprs.into_iter().flatten().any(|x| conversion(&x)),
                ElementItems::Functions(_) => false,
            };
            offset || items
        }),
        _ => false,
    });
    found.then_some("any.convert_extern or extern.convert_any in a constant expression")
}

/// Sets what is specific to configuration `id` and the plan's zeal and heap
/// size, as far as this line has the knobs (see [`Knobs`]).
pub fn configure(
    c: &mut Config,
    id: ConfigId,
    zeal: Option<u32>,
    gc_heap_initial: Option<u64>,
) -> wasmtime::Result<()> {
    #[cfg(feature = "wasmtime-48")]
    {
        c.wasm_exceptions(true);
        c.metadata_for_internal_asserts(true);
        if id != ConfigId::Null {
            c.gc_zeal_alloc_counter(zeal.and_then(std::num::NonZeroU32::new))?;
        }
        if let Some(bytes) = gc_heap_initial {
            c.gc_heap_initial_size(bytes);
        }
        if id == ConfigId::Copying || id == ConfigId::CopyingInline {
            c.collector(wasmtime::Collector::Copying);
        }
        if id == ConfigId::CopyingInline {
            c.compiler_inlining(wasmtime::Inlining::Yes);
        }
    }
    #[cfg(feature = "wasmtime-42")]
    c.wasm_exceptions(true);
    #[cfg(not(feature = "wasmtime-48"))]
    {
        // No zeal counter, no initial heap size: the knobs are absent.
        let _ = (zeal, gc_heap_initial);
        if !has(id) {
            return Err(wasmtime::Error::msg(format!("configuration {id} needs knobs Wasmtime {VERSION} lacks")));
        }
    }
    #[cfg(not(feature = "wasmtime-36"))]
    if id == ConfigId::DrcSinglepass {
        c.cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass);
    }
    #[cfg(feature = "wasmtime-36")]
    let _ = c;
    Ok(())
}

/// Runs a `.wast` script in `ctx`.
pub fn run_wast(ctx: &mut WastContext, name: &str, text: &str) -> wasmtime::Result<()> {
    #[cfg(not(feature = "wasmtime-31"))]
    return ctx.run_wast(name, text.as_bytes());
    #[cfg(feature = "wasmtime-31")]
    return ctx.run_buffer(name, text.as_bytes());
}

/// Whether `e` says the engine ran out of memory for a GC object (besides
/// `GcHeapOutOfMemory`, which every line has).
pub fn is_out_of_memory(e: &wasmtime::Error) -> bool {
    #[cfg(feature = "wasmtime-48")]
    return e.is::<wasmtime::OutOfMemory>();
    #[cfg(not(feature = "wasmtime-48"))]
    {
        let _ = e;
        false
    }
}

/// Whether `e` is Wasmtime reporting one of its own bugs (a failed internal
/// assert in compiled code, detected heap corruption).
pub fn is_engine_bug(e: &wasmtime::Error) -> bool {
    #[cfg(feature = "wasmtime-48")]
    return e.is::<wasmtime::WasmtimeBug>();
    #[cfg(not(feature = "wasmtime-48"))]
    {
        let _ = e;
        false
    }
}

/// A collection forced by the host from inside a host function.
pub fn host_gc(caller: &mut Caller<'_, Host>) -> wasmtime::Result<()> {
    #[cfg(any(feature = "wasmtime-48", feature = "wasmtime-42"))]
    return caller.gc(None);
    #[cfg(feature = "wasmtime-36")]
    caller.gc(None);
    #[cfg(feature = "wasmtime-31")]
    caller.gc();
    #[cfg(any(feature = "wasmtime-36", feature = "wasmtime-31"))]
    Ok(())
}

/// A collection forced by the host between calls.
pub fn store_gc(store: &mut Store<Host>) {
    // A failure here resurfaces as a trap or mismatch in the next call.
    #[cfg(any(feature = "wasmtime-48", feature = "wasmtime-42"))]
    let _ = store.gc(None);
    #[cfg(feature = "wasmtime-36")]
    store.gc(None);
    #[cfg(feature = "wasmtime-31")]
    store.gc();
}

#[cfg(any(feature = "wasmtime-48", feature = "wasmtime-42"))]
pub type WastContext = wasmtime_wast::WastContext;
#[cfg(any(feature = "wasmtime-36", feature = "wasmtime-31"))]
pub type WastContext = wasmtime_wast::WastContext<()>;

/// Wasmtime's wast runner on `engine`, with the spectest module and, where
/// the line has it, the `wasmtime.gc` import.
pub fn wast_context(engine: &wasmtime::Engine) -> wasmtime::Result<WastContext> {
    #[cfg(feature = "wasmtime-48")]
    {
        let mut ctx = wasmtime_wast::WastContext::new(engine, wasmtime_wast::Async::No, |_| {});
        ctx.register_wasmtime()?;
        Ok(ctx)
    }
    #[cfg(feature = "wasmtime-42")]
    {
        let mut ctx = wasmtime_wast::WastContext::new(engine, wasmtime_wast::Async::No, |_| {});
        ctx.register_spectest(&wasmtime_wast::SpectestConfig { use_shared_memory: false, suppress_prints: true })?;
        Ok(ctx)
    }
    #[cfg(feature = "wasmtime-36")]
    {
        let mut ctx = wasmtime_wast::WastContext::new(Store::new(engine, ()), wasmtime_wast::Async::No);
        ctx.register_spectest(&wasmtime_wast::SpectestConfig { use_shared_memory: false, suppress_prints: true })?;
        Ok(ctx)
    }
    #[cfg(feature = "wasmtime-31")]
    {
        let mut ctx = wasmtime_wast::WastContext::new(Store::new(engine, ()));
        ctx.register_spectest(&wasmtime_wast::SpectestConfig { use_shared_memory: false, suppress_prints: true })?;
        Ok(ctx)
    }
}
