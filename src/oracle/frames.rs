//! The frames of a crash as its signature reads them: the few that say
//! where the bug is, named alike under either symbol mangling, without the
//! panic machinery, the harness and its callers, or the embedding API paths
//! a stale reference was read through; and the Wasm place they give (an
//! operator's family, a safepoint's kind, whether a collection found a
//! broken bookkeeping state).

/// The first frames that say where the bug is: everything up to the panic
/// entry point (the hook, `begin_unwind`, `panic_fmt`), then std, the
/// backtrace crate and the harness itself are left out, as are hashes.
pub fn significant_frames(frames: &[String]) -> Vec<String> {
    let after_panic = frames
        .iter()
        .rposition(|f| f.contains("rust_begin_unwind") || f.contains("panic_fmt") || f.contains("panicking::"))
        .map_or(0, |i| i + 1);
    let frames = &frames[after_panic..];
    // The harness's first frame above the panic is where the bug's code was
    // entered from; the frames above it are its callers (a worker's loop, a
    // test runner, libFuzzer), which differ between a worker and an
    // in-process target for the same bug.
    let frames = match frames.iter().position(|f| {
        let f = f.trim();
        f.starts_with("gcfuzz::") || f.starts_with("<gcfuzz::")
    }) {
        Some(i) => &frames[..i],
        None => frames,
    };
    const NOISE: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "rust_begin_unwind",
        "rust_panic",
        "__rust",
        "backtrace::",
        "gcfuzz::",
        "<gcfuzz::",
        "gcfuzz_",
        "<alloc::",
        "<core::",
        "<std::",
        // Containers: where a loop spends its time, not where a bug is (a
        // hang's samples landed in the map a collector loop filled).
        "hashbrown::",
        "<hashbrown::",
        "__libc",
        "_start",
        "main",
        "wasmtime::runtime::vm::traphandlers::",
        "wasmtime::runtime::func::",
        "wasmtime::runtime::vm::interpreter::",
        // Embedding API entry points and Wasmtime's own bug reporting: the
        // same bug is reached through instantiation or a call.
        "wasmtime::runtime::instance::",
        "wasmtime::runtime::linker::",
        "wasmtime::runtime::bug::",
        "wasmtime::runtime::trap::",
        "wasmtime::runtime::vm::assert_ready",
        "<unknown>",
    ];
    let mut names: Vec<String> = frames
        .iter()
        .map(|f| canonical_frame(&strip_hash(f.trim())))
        .map(|f| match f.starts_with(THREADED) {
            true => THREADED.trim_end_matches("::").to_string(),
            false => f,
        })
        .filter(|f| !f.is_empty() && !NOISE.iter().any(|n| f.starts_with(n)))
        .collect();
    names.dedup();
    if let Some(i) = names.iter().position(|f| THREADED.starts_with(f.as_str())) {
        names.truncate(i + 1);
    }
    // The embedding API's frames are the path the harness read a reference
    // through (a result, a field, a global, a typed call's argument, a
    // kind test): on 31.0.0 one stale reference gave seven signatures by
    // the API it was read with, and on 36.0.20 one missing GC heap four
    // (its check is inlined into each API function, so those were the
    // frames that panicked). A panic with nothing but API frames says so.
    let api = |f: &String| EMBEDDING_API.iter().any(|api| f.contains(api));
    let inside_api = !names.is_empty() && names.iter().all(api);
    names.retain(|f| !api(f));
    if inside_api {
        names.push(IN_THE_API.to_string());
    }
    names.truncate(3);
    names
}

/// The frame a panic raised inside the embedding API keeps.
const IN_THE_API: &str = "wasmtime embedding API";

/// Wasmtime's embedding API and the object accessors under it.
const EMBEDDING_API: &[&str] = &[
    "wasmtime::runtime::gc::",
    "wasmtime::runtime::values::",
    "wasmtime::runtime::externals::",
    "wasmtime::runtime::func::",
    "wasmtime::runtime::vm::gc::enabled::arrayref::VMArrayRef::read",
    "wasmtime::runtime::vm::gc::enabled::structref::VMStructRef::read",
];

/// wasmi's executor is threaded code: each instruction's handler tail-calls
/// the next, so the handler a fault lands in is whichever instruction ran
/// last, and the return addresses above it are stale (a deep recursion
/// leaves nothing else in a raw backtrace). Its handlers are one place, and
/// the frames past it add nothing.
const THREADED: &str = "wasmi::engine::executor::handler::exec::";

/// A frame as the legacy symbol mangling renders it, whichever mangling the
/// compiler used: the v0 scheme (newer toolchains) writes inherent methods
/// as `<path::Type>::method`, generic arguments as `::<…>` and closures as
/// `{closure#0}`, where legacy writes `path::Type::method` and `{{closure}}`.
fn canonical_frame(frame: &str) -> String {
    let mut out = String::with_capacity(frame.len());
    let mut rest = frame;
    // `<path::Type>::method`, but not a trait impl `<T as Trait>::method`.
    if let Some(inner) = rest.strip_prefix('<')
        && let Some(end) = matching_angle(inner)
        && !inner[..end].contains(" as ")
        && inner[end + 1..].starts_with("::")
    {
        out.push_str(&inner[..end]);
        rest = &inner[end + 1..];
    }
    while let Some(i) = rest.find("::<") {
        out.push_str(&rest[..i]);
        rest = match matching_angle(&rest[i + 3..]) {
            Some(end) => &rest[i + 3 + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    let mut canonical = String::with_capacity(out.len());
    let mut text = out.as_str();
    while let Some(i) = text.find("{closure#") {
        canonical.push_str(&text[..i]);
        canonical.push_str("{{closure}}");
        text = text[i..].find('}').map_or("", |j| &text[i + j + 1..]);
    }
    canonical.push_str(text);
    canonical
}

/// The index of the `>` closing an angle bracket opened just before `s`.
fn matching_angle(s: &str) -> Option<usize> {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn strip_hash(frame: &str) -> String {
    match frame.rfind("::h") {
        Some(i) if frame.len() - i == 19 && frame[i + 3..].chars().all(|c| c.is_ascii_hexdigit()) => {
            frame[..i].to_string()
        }
        _ => frame.to_string(),
    }
}

/// Asserts on the collector's own bookkeeping, which fire where a broken
/// state is next used, not where it broke: a freed object's header (a
/// reference count of zero, no valid kind), the free list (a block
/// overlapping the one before it), the over-approximated roots' bump chunk
/// (a slot past the bump finger in use, or left after a sweep). Which use
/// finds it follows from when the case collects or hands a reference over,
/// not from the bug: on 31.0.0 a reference-count assert came at a call's
/// collection, an epoch check's and one between calls, and the same
/// reproducers with a collection before each call all failed the free
/// list's assert instead; the bump-chunk assert came at five allocating
/// instructions, host calls and constant expressions. So they are keyed on
/// whether a collection found them (`found_in`), not on the frames or the
/// Wasm instruction the case happened to reach them by.
pub(super) const FOUND_LATER: &[&str] = &[
    "should have nonzero ref count",
    "invalid `VMGcKind`",
    "next_index >= end_of_prev",
    "slots >= the `next` bump finger are always `None`",
    "after sweeping the bump chunk, all slots should be empty",
];

/// Where a broken bookkeeping state was found: by a collection (tracing
/// roots in Wasm frames, tables, globals) or outside one (the host reading
/// or handing over a reference it holds, an allocation, an initializer).
pub(super) fn found_in(frames: &[String]) -> &'static str {
    match frames.iter().any(|f| f.contains("collect_increment") || f.contains("GarbageCollection")) {
        true => "found in a collection",
        false => "found outside a collection",
    }
}

/// The operator a crash signature keys on: the nullable and non-null forms
/// of a test or cast, and the two polarities of `br_on_cast` and
/// `br_on_null`, share their lowering and the runtime code they call, so a
/// bug reached through both is one bug (Wasmtime 48.0.8's `is_subtype`
/// assert came out as two signatures, a known one and a "new" one, by
/// `ref.test (ref $t)` against `ref.test (ref null $t)`). Summaries keep
/// the exact operator.
pub(super) fn operator_family(op: &str) -> &str {
    match op {
        "RefTestNonNull" | "RefTestNullable" => "RefTest",
        "RefCastNonNull" | "RefCastNullable" => "RefCast",
        "BrOnCast" | "BrOnCastFail" => "BrOnCast",
        "BrOnNull" | "BrOnNonNull" => "BrOnNull",
        other => other,
    }
}

/// The safepoint a panic under Wasm frames was called out from, `op` being
/// the operator of the innermost Wasm frame. A call of any kind is one
/// safepoint: each call instruction gets its stack map from the same
/// liveness of the values around it, whether the call is direct, indirect,
/// by reference or a tail call, and a collector assert found there (a root
/// missing from that stack map, a reference count gone wrong earlier) came
/// out as one signature per kind of call on 31.0.0. So is an epoch check
/// (`epoch-interruption` collects there), whether at a loop header or a
/// function's entry (where the operator is whatever the body starts with).
/// An allocation and the libcall of a table or cast instruction keep their
/// operator.
pub(super) fn safepoint<'a>(op: &'a str, frames: &[String]) -> &'a str {
    match op {
        _ if frames.iter().any(|f| f.contains("::new_epoch")) => "epoch check",
        "Call" | "CallRef" | "CallIndirect" | "ReturnCall" | "ReturnCallRef" | "ReturnCallIndirect" => "call",
        other => operator_family(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_skip_machinery_and_hashes() {
        let owned = |frames: &[&str]| frames.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let frames = owned(&[
            "std::panicking::begin_panic_handler::h0123456789abcdef",
            "core::panicking::panic_fmt",
            "wasmtime::runtime::vm::gc::enabled::drc::DrcHeap::trace::h0123456789abcdef",
            "wasmtime::runtime::store::gc::collect",
            "wasmtime_environ::foo",
            "wasmtime::bar",
            // The harness and its callers: a libFuzzer target's, a test's.
            "gcfuzz::engine::execute",
            "libfuzzer_sys::test_input_wrap",
            "test::run_test",
        ]);
        assert_eq!(
            significant_frames(&frames),
            vec![
                "wasmtime::runtime::vm::gc::enabled::drc::DrcHeap::trace",
                "wasmtime::runtime::store::gc::collect",
                "wasmtime_environ::foo"
            ]
        );
        // Nothing but machinery under the harness: no frames, wherever the
        // harness was called from (a worker's loop, libFuzzer, a test).
        let reported = owned(&[
            "core::panicking::panic_fmt",
            "wasmtime::runtime::bug::WasmtimeBug::new",
            "wasmtime::runtime::trap::from_runtime_box",
            "gcfuzz::engine::execute",
            "libfuzzer_sys::test_input_wrap",
            "test::run_test",
        ]);
        assert!(significant_frames(&reported).is_empty(), "{:?}", significant_frames(&reported));
    }

    #[test]
    fn frames_read_alike_under_either_symbol_mangling() {
        let pairs = [
            ("<wasmtime::runtime::bug::WasmtimeBug>::new", "wasmtime::runtime::bug::WasmtimeBug::new"),
            (
                "wasmtime::runtime::vm::traphandlers::catch_traps::<gcfuzz::engine::wasmtime::Host, <wasmtime::runtime::func::Func>::call_unchecked_raw<gcfuzz::engine::wasmtime::Host>::{closure#0}>",
                "wasmtime::runtime::vm::traphandlers::catch_traps",
            ),
            ("<wasmtime::runtime::func::Func>::call::<&mut X<Y>>", "wasmtime::runtime::func::Func::call"),
            ("std::rt::lang_start::{closure#0}", "std::rt::lang_start::{{closure}}"),
            (
                "<gcfuzz::engine::wasmtime::WasmtimeInstance as gcfuzz::engine::Instance>::call",
                "<gcfuzz::engine::wasmtime::WasmtimeInstance as gcfuzz::engine::Instance>::call",
            ),
        ];
        for (v0, legacy) in pairs {
            assert_eq!(canonical_frame(v0), legacy);
            assert_eq!(canonical_frame(legacy), legacy);
        }
    }
}
