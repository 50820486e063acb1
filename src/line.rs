//! The Wasmtime lines gcfuzz builds against, as plain data: the release,
//! and what each line offers the harness. The line is chosen by Cargo
//! feature (`wasmtime-48`, the default; `wasmtime-50`, the newest release,
//! nightly toolchain only; `wasmtime-42`; `wasmtime-36`, the LTS line;
//! `wasmtime-31`). The build script reads this same file and emits one
//! `cfg` per capability of the chosen line (`wasmtime_exceptions`,
//! `wasmtime_copying`, …), so code that needs a capability's types says
//! which capability it is about, and the data here and the cfgs cannot
//! disagree. No Wasmtime types here: the calls whose signatures changed
//! between lines are in `engine::wasmtime::compat`.
//!
//! | capability | 50 | 48 | 42 | 36 | 31 |
//! |---|---|---|---|---|---|
//! | Copying collector | yes | yes | no | no | no |
//! | `gc_zeal_alloc_counter`, `gc_heap_initial_size` | yes | yes | no | no | no |
//! | exceptions | yes | yes | yes | no | no |
//! | Wasm-to-Wasm inlining | yes | yes | yes | yes | no |
//! | single-pass register allocator | yes | yes | yes | no | yes |
//! | internal-assert metadata (`WasmtimeBug`), `OutOfMemory` errors | yes | yes | no | no | no |
//! | `Store::gc_heap_capacity` (the leak oracle's yardstick) | yes | yes | no | no | no |
//! | `gc_heap_reservation` and the other GC heap tunables | yes | yes | no | no | no |
//! | `Engine::get_*` (settings read back from an engine) | yes | yes | no | no | no |
//! | `wasmtime::Inlining` modes (before: a flag) | yes | yes | no | no | no |
//! | `OwnedRooted` (before: `ManuallyRooted`, which must be unrooted by hand) | yes | yes | yes | no | no |
//! | GC objects with `v128` fields | yes | yes | yes | yes | no |

/// One thing a Wasmtime line has or lacks. Harness capabilities first, then
/// shapes of the API that changed between lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// The Copying collector (`copying`, `copying-inline`).
    Copying,
    /// `Config::gc_zeal_alloc_counter` and `Config::gc_heap_initial_size`:
    /// without them, collections happen only at host `gc` calls and when the
    /// heap fills.
    Zeal,
    /// The exception-handling proposal (`ExnRef`, `ThrownException`).
    Exceptions,
    /// The `exn` heap types in `wasmtime::HeapType`.
    ExnHeapTypes,
    /// Wasm-to-Wasm inlining in Cranelift.
    Inlining,
    /// Cranelift's single-pass register allocator.
    SinglePass,
    /// `metadata_for_internal_asserts`, `WasmtimeBug` and `OutOfMemory`.
    InternalAsserts,
    /// `any.convert_extern` / `extern.convert_any` in constant expressions
    /// (31.0.0's validator calls them non-constant).
    ConstConversions,
    /// `wasmtime-wast` provides the `wasmtime.gc` import regression tests use.
    WastGcImport,
    /// `Store::gc` and `Caller::gc` return a `Result`.
    GcFallible,
    /// `Store::gc` and `Caller::gc` take an optional size hint.
    GcSizeHint,
    /// `wasmtime_wast::WastContext::new` takes an `Async` argument.
    WastAsync,
    /// `WastContext` owns a `Store<()>` (before it took the engine).
    WastOwnsStore,
    /// `WastContext::run_wast` (31.0.0 calls it `run_buffer`).
    WastRunWast,
    /// `Store::gc_heap_capacity`: how much GC heap a store holds, which bounds
    /// what Null allocated (see `oracle::leak`).
    GcHeapCapacity,
    /// `Config::gc_heap_reservation`, `gc_heap_guard_size`,
    /// `gc_heap_reservation_for_growth`, `gc_heap_may_move`.
    GcHeapTunables,
    /// `Engine::get_*`: what an engine's settings really are, so the harness
    /// can check a drawn knob took effect.
    EngineGetters,
    /// `Config::compiler_inlining` takes a `wasmtime::Inlining` (on earlier
    /// lines a `bool`).
    InliningModes,
    /// `wasmtime::OwnedRooted`: manual roots the host holds across calls.
    OwnedRoots,
    /// GC objects with `v128` fields: 31.0.0's free list refuses their
    /// 16-byte alignment ("requested allocation's alignment of 16 is greater
    /// than max supported alignment of 8"), a clean error Null does not
    /// give, so modules with such types are refused there.
    V128Fields,
    /// An array in a constant expression far past the GC heap's limit fails
    /// at once. 42.0.2 and 36.0.20 spend past the per-case time limit on
    /// one (a table initializer's `array.new_default` of ~10⁹ elements:
    /// Null and DRC time out twice per case, and a 10-minute 36.0.20
    /// campaign ran 4 cases/s), so there array lengths in constant
    /// expressions keep wasm-smith's cap.
    HugeConstArrays,
}

impl Cap {
    pub const ALL: &'static [Cap] = &[
        Cap::Copying,
        Cap::Zeal,
        Cap::Exceptions,
        Cap::ExnHeapTypes,
        Cap::Inlining,
        Cap::SinglePass,
        Cap::InternalAsserts,
        Cap::ConstConversions,
        Cap::WastGcImport,
        Cap::GcFallible,
        Cap::GcSizeHint,
        Cap::WastAsync,
        Cap::WastOwnsStore,
        Cap::WastRunWast,
        Cap::GcHeapCapacity,
        Cap::GcHeapTunables,
        Cap::EngineGetters,
        Cap::InliningModes,
        Cap::OwnedRoots,
        Cap::HugeConstArrays,
        Cap::V128Fields,
    ];

    /// The `cfg` the build script emits when the line has this capability.
    pub const fn cfg(self) -> &'static str {
        match self {
            Cap::Copying => "wasmtime_copying",
            Cap::Zeal => "wasmtime_zeal",
            Cap::Exceptions => "wasmtime_exceptions",
            Cap::ExnHeapTypes => "wasmtime_exn_heap_types",
            Cap::Inlining => "wasmtime_inlining",
            Cap::SinglePass => "wasmtime_single_pass",
            Cap::InternalAsserts => "wasmtime_internal_asserts",
            Cap::ConstConversions => "wasmtime_const_conversions",
            Cap::WastGcImport => "wasmtime_wast_gc_import",
            Cap::GcFallible => "wasmtime_gc_fallible",
            Cap::GcSizeHint => "wasmtime_gc_size_hint",
            Cap::WastAsync => "wasmtime_wast_async",
            Cap::WastOwnsStore => "wasmtime_wast_owns_store",
            Cap::WastRunWast => "wasmtime_wast_run_wast",
            Cap::GcHeapCapacity => "wasmtime_gc_heap_capacity",
            Cap::GcHeapTunables => "wasmtime_gc_heap_tunables",
            Cap::EngineGetters => "wasmtime_engine_getters",
            Cap::InliningModes => "wasmtime_inlining_modes",
            Cap::OwnedRoots => "wasmtime_owned_roots",
            Cap::HugeConstArrays => "wasmtime_huge_const_arrays",
            Cap::V128Fields => "wasmtime_v128_fields",
        }
    }
}

/// A supported Wasmtime line.
pub struct Line {
    /// The Cargo feature that selects it.
    pub feature: &'static str,
    /// The release on crates.io.
    pub release: &'static str,
    pub caps: &'static [Cap],
}

use Cap::*;

/// What 48 and 50 both have: everything.
const NEWEST: &[Cap] = &[
    Copying,
    Zeal,
    Exceptions,
    ExnHeapTypes,
    Inlining,
    SinglePass,
    InternalAsserts,
    ConstConversions,
    WastGcImport,
    GcFallible,
    GcSizeHint,
    WastAsync,
    WastRunWast,
    GcHeapCapacity,
    GcHeapTunables,
    EngineGetters,
    InliningModes,
    OwnedRoots,
    HugeConstArrays,
    V128Fields,
];

pub const LINES: &[Line] = &[
    Line { feature: "wasmtime-50", release: "50.0.1", caps: NEWEST },
    Line { feature: "wasmtime-48", release: "48.0.8", caps: NEWEST },
    Line {
        feature: "wasmtime-42",
        release: "42.0.2",
        caps: &[
            Exceptions,
            ExnHeapTypes,
            Inlining,
            SinglePass,
            ConstConversions,
            GcFallible,
            GcSizeHint,
            WastAsync,
            WastRunWast,
            OwnedRoots,
            V128Fields,
        ],
    },
    Line {
        feature: "wasmtime-36",
        release: "36.0.20",
        caps: &[
            ExnHeapTypes,
            Inlining,
            ConstConversions,
            GcSizeHint,
            WastAsync,
            WastOwnsStore,
            WastRunWast,
            V128Fields,
        ],
    },
    Line { feature: "wasmtime-31", release: "31.0.0", caps: &[SinglePass, WastOwnsStore, HugeConstArrays] },
];

/// The line this build runs (the build script names its feature).
pub fn current() -> &'static Line {
    let feature = option_env!("GCFUZZ_WASMTIME_LINE").unwrap_or("wasmtime-48");
    LINES.iter().find(|l| l.feature == feature).expect("the build script names a known line")
}

/// Whether the line under test has `cap`.
pub fn has(cap: Cap) -> bool {
    current().caps.contains(&cap)
}

/// The exact Wasmtime version under test: the line's release, or what a
/// build against a local checkout names through `GCFUZZ_WASMTIME_VERSION`
/// (see `scripts/wasmtime-lines.sh --local`).
pub fn wasmtime_version() -> &'static str {
    match option_env!("GCFUZZ_WASMTIME_VERSION") {
        Some(v) if !v.is_empty() => v,
        _ => current().release,
    }
}

/// The Cranelift the stack-map verifier links (pinned in `Cargo.toml` to the
/// default line's).
pub const CRANELIFT: &str = "cranelift 0.135.8";
/// The wasmi oracle.
pub const WASMI: &str = "wasmi 2.0.0";

/// The engine versions as records and `--version` name them: a
/// `crashes/*/finding.json` lists the ones it is expected to reproduce on in
/// `expected_on`.
pub fn engine_versions() -> [&'static str; 3] {
    static WASMTIME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    [WASMTIME.get_or_init(|| format!("wasmtime {}", wasmtime_version())), WASMI, CRANELIFT]
}

/// `wasmtime X.Y.Z`, the engine a Wasm finding is recorded on.
pub fn wasmtime() -> &'static str {
    engine_versions()[0]
}
