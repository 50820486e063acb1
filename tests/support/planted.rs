//! Deliberately broken engine configurations, for tests only: each wraps a
//! real configuration and misbehaves in one planted way, so the tests can
//! check that gcfuzz notices.

use gcfuzz::case::{Call, ConfigId, TestCase};
use gcfuzz::engine::{Engine, Instance, real_engine};
use gcfuzz::outcome::{State, Status, Value};

/// The message of Wasmtime's DRC rooting assert, as a planted panic.
pub const ROOT_ASSERT: &str = "every on-stack gc_ref inside a Wasm frame should have an entry in the VMGcRefActivationsTable: 0x110 is not in the table";

#[derive(Clone, Copy, PartialEq)]
enum Misbehaviour {
    /// Adds one to every i32 a call returns.
    WrongResult,
    /// Panics with Wasmtime's rooting assert message on the first call.
    Panic,
    /// Panics like `Panic`, but only while the marker file
    /// (`PANIC_ONCE_MARKER`) does not exist, and creates it: a crash that
    /// does not happen again in a fresh worker.
    PanicOnce,
    /// Aborts the process on the first call.
    Abort,
    /// Dies of SIGSEGV on the first call.
    Segfault,
    /// Reads through a null pointer on the first call: a real fault, in
    /// `fault_reading`.
    NullRead,
    /// Writes through a null pointer on the first call, in `fault_writing`.
    NullWrite,
    /// Never returns from the first call (sleeps).
    Hang,
    /// Never returns from the first call, busy in `spin_in_place`: a hang
    /// in another place than `Hang`'s.
    Spin,
    /// Panics when a call returns a struct, like a GC bug that needs one
    /// particular instruction: what the shrinker must keep.
    PanicOnStruct,
    /// Allocates without bound on the first call.
    Leak,
    /// Panics like `Panic`, but only in a case exporting `victim` that
    /// comes after one exporting `poison` in the same engine: a bug that
    /// needs history.
    PanicAfterPoison,
    /// Adds one to every i32 result, but only with a collection at every
    /// allocation: a rooting bug that needs `gc_zeal_alloc_counter(1)`.
    WrongUnderZeal1,
}

/// When set, the real `copying` configuration is replaced by a planted
/// `WrongUnderZeal1` one (the worker's `--plant-copying` flag), so that
/// feature narrowing, which tries the real configuration names, meets a bug
/// in exactly one of them.
pub static PLANT_COPYING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// When set, the real `drc` configuration is replaced by the planted
/// `planted-eager-table-bug` (the worker's `--plant-drc-eager-table` flag),
/// so that narrowing meets a bug that needs one engine setting.
pub static PLANT_DRC_EAGER_TABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// When set, the real `drc` configuration is replaced by a
/// `planted-panic-once` (the worker's `--plant-drc-panic-once` flag), so
/// that a campaign, which runs only real configuration names, meets a crash
/// a fresh worker does not repeat.
pub static PLANT_DRC_PANIC_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The marker file of `planted-panic-once` (set by the planted worker's
/// `--panic-once-marker PATH`).
pub static PANIC_ONCE_MARKER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

pub struct Planted {
    inner: Box<dyn Engine>,
    name: String,
    how: Misbehaviour,
    /// An earlier case in this engine exported `poison`.
    poisoned: bool,
}

/// A host `gc_any` that forgets its root: it collects, then hands back a
/// copy of the object with its first `i32` field changed, as a moving
/// collector would if it moved the object and left a stale reference.
fn forget_root(linker: &mut wasmtime::Linker<gcfuzz::engine::wasmtime::Host>) -> wasmtime::Result<()> {
    use wasmtime::{AnyRef, Rooted, StructRef, StructRefPre, Val};
    linker.func_wrap(
        "host",
        "gc_any",
        |mut caller: wasmtime::Caller<'_, gcfuzz::engine::wasmtime::Host>,
         r: Option<Rooted<AnyRef>>|
         -> wasmtime::Result<Option<Rooted<AnyRef>>> {
            caller.gc(None)?;
            let Some(s) = r.map(|r| r.as_struct(&caller)).transpose()?.flatten() else { return Ok(r) };
            let ty = s.ty(&caller)?;
            let mut fields: Vec<Val> =
                (0..ty.fields().len()).map(|i| s.field(&mut caller, i)).collect::<wasmtime::Result<_>>()?;
            if let Some(Val::I32(v)) = fields.first_mut() {
                *v = v.wrapping_add(1000);
            }
            let pre = StructRefPre::new(&mut caller, ty);
            Ok(Some(StructRef::new(&mut caller, &pre, &fields)?.to_anyref()))
        },
    )?;
    Ok(())
}

/// A host `gc` that leaks: after collecting, it allocates a 64 KiB array
/// and keeps it rooted for ever, as a collector that loses track of freed
/// space would fill its heap with garbage.
fn hoard_on_gc(linker: &mut wasmtime::Linker<gcfuzz::engine::wasmtime::Host>) -> wasmtime::Result<()> {
    use wasmtime::{ArrayRef, ArrayRefPre, ArrayType, FieldType, Mutability, StorageType, Val};
    linker.func_wrap("host", "gc", |mut caller: wasmtime::Caller<'_, gcfuzz::engine::wasmtime::Host>| {
        caller.gc(None)?;
        let ty = ArrayType::new(caller.engine(), FieldType::new(Mutability::Var, StorageType::I8));
        let pre = ArrayRefPre::new(&mut caller, ty);
        let garbage = ArrayRef::new(&mut caller, &pre, &Val::I32(0), 64 << 10)?;
        std::mem::forget(garbage.to_owned_rooted(&mut caller)?);
        wasmtime::Result::<()>::Ok(())
    })?;
    Ok(())
}

/// A host `gc` that panics as a collector assert would, having recorded
/// its call site as the real one does (`locate::host_call`).
fn panic_in_gc(linker: &mut wasmtime::Linker<gcfuzz::engine::wasmtime::Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "host",
        "gc",
        |caller: wasmtime::Caller<'_, gcfuzz::engine::wasmtime::Host>| -> wasmtime::Result<()> {
            let _site = gcfuzz::engine::wasmtime::locate::host_call(&caller);
            panic!("planted collector assert in a host gc call");
        },
    )?;
    Ok(())
}

/// A host `extern_id` off by one, but only in an engine with eager tables
/// (`table-lazy-init = false`): a bug that needs one engine setting.
fn wrong_id_with_eager_tables(linker: &mut wasmtime::Linker<gcfuzz::engine::wasmtime::Host>) -> wasmtime::Result<()> {
    use wasmtime::{ExternRef, Rooted};
    if linker.engine().get_table_lazy_init() {
        return Ok(());
    }
    linker.func_wrap(
        "host",
        "extern_id",
        |caller: wasmtime::Caller<'_, gcfuzz::engine::wasmtime::Host>,
         r: Option<Rooted<ExternRef>>|
         -> wasmtime::Result<i32> {
            let Some(r) = r else { return Ok(-1) };
            Ok(r.data(&caller)?.and_then(|d| d.downcast_ref::<u32>()).map_or(-2, |id| *id as i32 + 1))
        },
    )?;
    Ok(())
}

/// A harness that forgets the plan's engine settings: the case runs with
/// Wasmtime's defaults.
struct ForgetsKnobs {
    inner: Box<dyn Engine>,
}

impl Engine for ForgetsKnobs {
    fn name(&self) -> String {
        "planted-forgets-knobs".into()
    }
    fn supports(&self, case: &TestCase) -> bool {
        self.inner.supports(case)
    }
    fn instantiate<'a>(&'a mut self, case: &TestCase) -> (Status, Option<Box<dyn Instance + 'a>>) {
        let mut case = case.clone();
        case.plan.knobs.clear();
        self.inner.instantiate(&case)
    }
}

/// Wasmtime as if its translation of one GC instruction were wrong: the
/// module is rewritten before `null` compiles it, so every Wasmtime
/// configuration would agree on the wrong answer and only an independent
/// oracle can tell.
struct Mistranslated {
    inner: Box<dyn Engine>,
    name: &'static str,
    rewrite: fn(&str) -> String,
}

/// `i31.get_s` translated as `i31.get_u`: no sign extension.
fn i31_zero_extends(wat: &str) -> String {
    wat.replace("i31.get_s", "i31.get_u")
}

/// `i64x2.extract_lane 0` reads lane 1: a SIMD lane-index bug, in the code
/// that folds `v128` fields into the rooted pass's observation too.
fn extract_lane_swapped(wat: &str) -> String {
    wat.replace("i64x2.extract_lane 0", "i64x2.extract_lane 1")
}

/// A table of `$gc` with a maximum of two (the rooting pass's) has none:
/// `table.grow` past it succeeds, and the edge probe's writes one past the
/// end that should trap (the table's size was two) do not.
fn table_maximum_ignored(wat: &str) -> String {
    wat.lines()
        .map(|line| match line.trim_start().starts_with("(table (;") && line.contains(" 2 2 funcref ref.func ") {
            true => line.replacen(" 2 2 funcref", " 2 funcref", 1),
            false => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `array.new` and `array.new_default` in a global's, table's or element
/// segment's initializer make one element more than their length asks: a
/// constant expression evaluated wrongly at instantiation.
pub fn const_array_one_longer(wat: &str) -> String {
    let in_initializer = |code: &str| ["(global ", "(table ", "(elem "].iter().any(|p| code.starts_with(p));
    wat.lines()
        .map(|line| {
            let code = line.trim_start();
            let op = [" array.new_default ", " array.new "].into_iter().find(|op| code.contains(op));
            let (Some(op), true) = (op, in_initializer(code)) else { return line.to_string() };
            let (before, after) = code.split_once(op).expect("found");
            let Some((head, length)) = before.rsplit_once("i32.const ") else { return line.to_string() };
            match length.trim().parse::<i32>() {
                Ok(n) if (0..1000).contains(&n) => {
                    let indent = &line[..line.len() - code.len()];
                    format!("{indent}{head}i32.const {}{op}{after}", n + 1)
                }
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `struct.get $t 0` reads field 1, the neighbouring field.
fn neighbour_field(wat: &str) -> String {
    wat.lines()
        .map(|line| match line.trim_start().strip_prefix("struct.get ").and_then(|rest| rest.strip_suffix(" 0")) {
            Some(_) => format!("{} 1", &line[..line.len() - 2]),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `ref.test (ref $t)` on a struct type checks only that the operand is a
/// struct: a subtype check that always succeeds.
fn cast_always_succeeds(wat: &str) -> String {
    wat.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            match ["ref.test (ref ", "ref.test (ref null "].iter().find(|p| trimmed.starts_with(**p)) {
                Some(prefix) => format!("{}{prefix}struct)", &line[..line.len() - trimmed.len()]),
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `br_on_cast` from the top of the `any` hierarchy to a concrete type
/// never branches, as if the cast from the top type always failed: the rooted pass's
/// widened template casts back that way, and its fall-through is
/// `unreachable`.
fn cast_from_top_never_branches(wat: &str) -> String {
    wat.lines()
        .map(|line| {
            // Without the printer's `;; label = @N` comment.
            let code = line.split(";;").next().unwrap_or_default().trim();
            match code.starts_with("br_on_cast 0 ")
                && (code.contains(" anyref (ref null ") || code.contains(" (ref any) (ref "))
            {
                true => "drop".to_string(),
                false => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Engine for Mistranslated {
    fn name(&self) -> String {
        self.name.into()
    }
    fn supports(&self, case: &TestCase) -> bool {
        self.inner.supports(case)
    }
    fn instantiate<'a>(&'a mut self, case: &TestCase) -> (Status, Option<Box<dyn Instance + 'a>>) {
        let wat = wasmprinter::print_bytes(&case.wasm).expect("valid module prints");
        let wasm = wat::parse_str((self.rewrite)(&wat)).expect("rewritten module parses");
        self.inner.instantiate(&TestCase { wasm, plan: case.plan.clone() })
    }
}

/// Real configurations by name, plus `planted-*` ones wrapping `drc`.
pub fn factory(name: &str) -> Option<Box<dyn Engine>> {
    let mistranslated = |name: &'static str, rewrite: fn(&str) -> String| -> Option<Box<dyn Engine>> {
        Some(Box::new(Mistranslated { inner: real_engine("null")?, name, rewrite }))
    };
    match name {
        "planted-i31-zero-extends" => return mistranslated("planted-i31-zero-extends", i31_zero_extends),
        "planted-neighbour-field" => return mistranslated("planted-neighbour-field", neighbour_field),
        "planted-const-array-one-longer" => {
            return mistranslated("planted-const-array-one-longer", const_array_one_longer);
        }
        "planted-table-maximum-ignored" => {
            return mistranslated("planted-table-maximum-ignored", table_maximum_ignored);
        }
        "planted-extract-lane-swapped" => {
            return mistranslated("planted-extract-lane-swapped", extract_lane_swapped);
        }
        "planted-cast-always-succeeds" => return mistranslated("planted-cast-always-succeeds", cast_always_succeeds),
        "planted-cast-from-top-never-branches" => {
            return mistranslated("planted-cast-from-top-never-branches", cast_from_top_never_branches);
        }
        _ => {}
    }
    if name == "planted-pulley-gc-panic" {
        let engine = gcfuzz::engine::wasmtime::WasmtimeEngine::with_linker_hook(ConfigId::PulleyDrc, panic_in_gc);
        return Some(Box::new(Renamed { inner: Box::new(engine), name: "planted-pulley-gc-panic" }));
    }
    if name == "planted-gc-leak" {
        let engine = gcfuzz::engine::wasmtime::WasmtimeEngine::with_linker_hook(ConfigId::Drc, hoard_on_gc);
        return Some(Box::new(Renamed { inner: Box::new(engine), name: "planted-gc-leak" }));
    }
    let eager_table_bug =
        || gcfuzz::engine::wasmtime::WasmtimeEngine::with_linker_hook(ConfigId::Drc, wrong_id_with_eager_tables);
    if name == "drc" && PLANT_DRC_EAGER_TABLE.load(std::sync::atomic::Ordering::Relaxed) {
        return Some(Box::new(Renamed { inner: Box::new(eager_table_bug()), name: "drc" }));
    }
    if name == "planted-accepts-any-import" {
        let engine = gcfuzz::engine::interp::InterpEngine::accepting_any_import();
        return Some(Box::new(Renamed { inner: Box::new(engine), name: "planted-accepts-any-import" }));
    }
    if name == "planted-prefix-canonicalization" {
        let engine = gcfuzz::engine::interp::InterpEngine::canonicalizing_by_prefix();
        return Some(Box::new(Renamed { inner: Box::new(engine), name: "planted-prefix-canonicalization" }));
    }
    if name == "planted-drops-held-roots" {
        let engine = gcfuzz::engine::wasmtime::WasmtimeEngine::dropping_held_roots(ConfigId::Drc);
        return Some(Box::new(Renamed { inner: Box::new(engine), name: "planted-drops-held-roots" }));
    }
    if name == "planted-eager-table-bug" {
        return Some(Box::new(Renamed { inner: Box::new(eager_table_bug()), name: "planted-eager-table-bug" }));
    }
    if name == "planted-forgets-knobs" {
        return Some(Box::new(ForgetsKnobs { inner: Box::new(eager_table_bug()) }));
    }
    if name == "planted-forget-root" {
        let engine = gcfuzz::engine::wasmtime::WasmtimeEngine::with_linker_hook(ConfigId::Copying, forget_root);
        return Some(Box::new(Renamed { inner: Box::new(engine), name: "planted-forget-root" }));
    }
    let how = match name {
        "planted-wrong-result" => Misbehaviour::WrongResult,
        "planted-panic" => Misbehaviour::Panic,
        "planted-panic-once" => Misbehaviour::PanicOnce,
        "planted-abort" => Misbehaviour::Abort,
        "planted-segfault" => Misbehaviour::Segfault,
        "planted-hang" => Misbehaviour::Hang,
        "planted-spin" => Misbehaviour::Spin,
        "planted-null-read" => Misbehaviour::NullRead,
        "planted-null-write" => Misbehaviour::NullWrite,
        "planted-panic-on-struct" => Misbehaviour::PanicOnStruct,
        "planted-leak" => Misbehaviour::Leak,
        "planted-panic-after-poison" => Misbehaviour::PanicAfterPoison,
        "drc" if PLANT_DRC_PANIC_ONCE.load(std::sync::atomic::Ordering::Relaxed) => Misbehaviour::PanicOnce,
        "copying" if PLANT_COPYING.load(std::sync::atomic::Ordering::Relaxed) => {
            return Some(Box::new(Planted {
                inner: real_engine("copying")?,
                name: name.into(),
                how: Misbehaviour::WrongUnderZeal1,
                poisoned: false,
            }));
        }
        _ => return real_engine(name),
    };
    Some(Box::new(Planted { inner: real_engine("drc")?, name: name.to_string(), how, poisoned: false }))
}

impl Engine for Planted {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn supports(&self, case: &TestCase) -> bool {
        self.inner.supports(case)
    }
    fn instantiate<'a>(&'a mut self, case: &TestCase) -> (Status, Option<Box<dyn Instance + 'a>>) {
        // The zeal-dependent bug is only there when the plan asks for zeal 1.
        let exports = |wanted: &str| {
            gcfuzz::case::ModuleInfo::parse(&case.wasm)
                .is_ok_and(|info| info.exported_funcs.iter().any(|(name, _)| name == wanted))
        };
        let (poison, victim) = (exports("poison"), exports("victim"));
        let how = match self.how {
            Misbehaviour::WrongUnderZeal1 if case.plan.zeal == Some(1) => Misbehaviour::WrongResult,
            Misbehaviour::WrongUnderZeal1 => Misbehaviour::WrongUnderZeal1,
            Misbehaviour::PanicAfterPoison if self.poisoned && victim => Misbehaviour::Panic,
            Misbehaviour::PanicAfterPoison => Misbehaviour::WrongUnderZeal1,
            other => other,
        };
        self.poisoned |= poison;
        let (status, instance) = self.inner.instantiate(case);
        (status, instance.map(|inner| Box::new(PlantedInstance { inner, how }) as Box<dyn Instance + 'a>))
    }
}

struct PlantedInstance<'a> {
    inner: Box<dyn Instance + 'a>,
    how: Misbehaviour,
}

impl Instance for PlantedInstance<'_> {
    fn call(&mut self, call: &Call) -> Status {
        match self.how {
            Misbehaviour::WrongResult => match self.inner.call(call) {
                Status::Returned(values) => Status::Returned(
                    values
                        .into_iter()
                        .map(|v| match v {
                            Value::I32(x) => Value::I32(x.wrapping_add(1)),
                            other => other,
                        })
                        .collect(),
                ),
                other => other,
            },
            Misbehaviour::Panic => panic!("{ROOT_ASSERT}"),
            Misbehaviour::PanicOnce => {
                let marker = PANIC_ONCE_MARKER.get().expect("--panic-once-marker given");
                if !marker.exists() {
                    std::fs::write(marker, b"crashed").unwrap();
                    panic!("{ROOT_ASSERT}");
                }
                self.inner.call(call)
            }
            Misbehaviour::Abort => std::process::abort(),
            Misbehaviour::Segfault => {
                // Wasmtime's and std's SIGSEGV handlers would treat a raised
                // signal as handled; restore the default action first, as
                // they do before a real fault kills the process.
                // SAFETY: deliberately fatal; the process dies right here.
                unsafe {
                    libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                    libc::raise(libc::SIGSEGV);
                }
                unreachable!()
            }
            Misbehaviour::NullRead => {
                fault_reading(std::hint::black_box(std::ptr::null()));
                unreachable!()
            }
            Misbehaviour::NullWrite => {
                fault_writing(std::hint::black_box(std::ptr::null_mut()));
                unreachable!()
            }
            Misbehaviour::Hang => loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            },
            Misbehaviour::Spin => spin_in_place(),
            Misbehaviour::WrongUnderZeal1 | Misbehaviour::PanicAfterPoison => self.inner.call(call),
            Misbehaviour::Leak => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Misbehaviour::PanicOnStruct => {
                let status = self.inner.call(call);
                if let Status::Returned(values) = &status
                    && values.iter().any(|v| matches!(v, Value::Ref(gcfuzz::outcome::Ref::Struct { .. })))
                {
                    panic!("{ROOT_ASSERT}");
                }
                status
            }
        }
    }
    fn collect(&mut self) {
        self.inner.collect()
    }
    fn state(&mut self) -> State {
        self.inner.state()
    }
}

/// Two faults in two functions: the same signal, two bugs.
#[inline(never)]
pub fn fault_reading(p: *const u64) -> u64 {
    // SAFETY: deliberately not: `p` is null and the process dies here.
    unsafe { std::ptr::read_volatile(p) }
}

#[inline(never)]
pub fn fault_writing(p: *mut u64) {
    // SAFETY: as in `fault_reading`.
    unsafe { std::ptr::write_volatile(p, 1) }
}

/// Busy forever in one function of its own.
#[inline(never)]
pub fn spin_in_place() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// A real engine under a planted name.
struct Renamed {
    inner: Box<dyn Engine>,
    name: &'static str,
}

impl Engine for Renamed {
    fn name(&self) -> String {
        self.name.into()
    }
    fn supports(&self, case: &TestCase) -> bool {
        self.inner.supports(case)
    }
    fn instantiate<'a>(&'a mut self, case: &TestCase) -> (Status, Option<Box<dyn Instance + 'a>>) {
        self.inner.instantiate(case)
    }
}
