//! Findings and their signatures (the records under `crashes/` are
//! `report::record`'s).
//!
//! A signature is a stable identity for a bug: it leaves out addresses,
//! numbers, and the frames of panic machinery and of the harness, so the same
//! bug found twice lands in the same `crashes/<signature>/` directory.

use super::compare::Mismatch;
use crate::case::ConfigId;
use crate::outcome::CrashInfo;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// Configurations disagree with the reference.
    Mismatch,
    /// A configuration panicked, aborted or died of a signal.
    Crash,
    /// A configuration exceeded the wall-clock limit twice.
    Timeout,
    /// A worker went past its memory limit.
    OutOfMemory,
    /// A collecting configuration ran out of GC heap where Null, which never
    /// frees, did not come near the limit (`oracle::leak`).
    Leak,
}

impl FindingKind {
    /// Whether the finding is judged against the reference, which must then
    /// run with it (shrinking, narrowing), rather than seen on its own.
    pub fn needs_reference(self) -> bool {
        matches!(self, FindingKind::Mismatch | FindingKind::Leak)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub signature: String,
    /// One line for humans.
    pub summary: String,
    /// The configurations showing the problem.
    pub configs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<CrashInfo>,
}

impl Finding {
    pub fn mismatch(mismatches: Vec<Mismatch>) -> Finding {
        let first = &mismatches[0];
        let mut configs: Vec<String> = mismatches.iter().map(|m| m.other.clone()).collect();
        configs.sort();
        // Keyed on the families that disagree, not the exact configurations:
        // which variant a plan drew must not split one bug in two. Not on
        // the reference that judged: Null, the interpreter and wasmi agree
        // wherever they judge, and which one did depends on what ran (Null
        // exhausted, or not drawn in process).
        let mut families: Vec<&str> = configs.iter().map(|c| family(c)).collect();
        families.sort();
        families.dedup();
        let mut key = format!("mismatch|{}|{}|{}", first.kind, families.join(","), first.shape);
        // The instruction that made the differing value, where the reference
        // interpreter traced it.
        let from = match &first.producer {
            Some(op) => {
                key.push_str(&format!("|from {op}"));
                format!(" (value from {op})")
            }
            None => String::new(),
        };
        let signature = format!("mismatch-{}-{}-{}", first.kind, slug(&families.join("-")), short_hash(&key));
        let summary = format!(
            "{} mismatch at {}: {} says {}, {} says {}{from}",
            first.kind, first.at, first.reference, first.expected, first.other, first.actual
        );
        Finding { kind: FindingKind::Mismatch, signature, summary, configs, mismatches, crash: None }
    }

    pub fn crash(kind: FindingKind, crash: CrashInfo) -> Finding {
        let message = normalize_message(&crash.message);
        // A fatal signal's Wasm frames above the fault are the path that
        // called down to it, not the place: only the faulting frame counts.
        let frames = match crash.location.is_none() && crash.signal.is_some() {
            true => {
                let outer = crash.frames.iter().skip(1).filter(|f| !f.starts_with("wasm "));
                significant_frames(&crash.frames.iter().take(1).chain(outer).cloned().collect::<Vec<_>>())
            }
            false => significant_frames(&crash.frames),
        };
        let frames: Vec<String> = frames
            .into_iter()
            .map(|f| match f.strip_prefix("wasm ") {
                Some(op) => format!("wasm {}", operator_family(op)),
                None => f,
            })
            .collect();
        let how = match (kind, &crash.location, crash.signal, crash.exit_code) {
            (FindingKind::Timeout, ..) => "timeout".to_string(),
            (FindingKind::OutOfMemory, ..) => "out of memory".to_string(),
            (_, Some(_), ..) => "panic".to_string(),
            (_, None, Some(sig), _) => format!("signal {sig}"),
            (_, None, None, Some(code)) => format!("exit {code}"),
            _ => "crash".to_string(),
        };
        // A death with neither a panic nor frames has nothing to tell one
        // bug from another but the engine it happened in.
        let message = if frames.is_empty() && crash.location.is_none() {
            format!("{message} in {}", engine_family(&crash.config))
        } else {
            message
        };
        // A failure compiled code detected is told apart by the Wasm
        // operator at the fault (its Rust frames are Wasmtime's plumbing).
        let key = match &crash.wasm {
            Some(op) => format!("{how}|{message}|{}|wasm {}", frames.join("|"), operator_family(op)),
            None => format!("{how}|{message}|{}", frames.join("|")),
        };
        let prefix = match kind {
            FindingKind::Timeout => "timeout".to_string(),
            FindingKind::OutOfMemory => "oom".to_string(),
            _ => "crash".to_string(),
        };
        let signature = format!("{prefix}-{}-{}", slug(&message), short_hash(&key));
        let first_line = crash.message.lines().next().unwrap_or("").trim();
        // Where: the Wasm operator at the fault, or for a death without a
        // panic (a fatal signal) the function it happened in.
        let at = match (&crash.wasm, &crash.location, frames.first()) {
            (Some(op), ..) => format!(" (at Wasm {op})"),
            (None, None, Some(frame)) => format!(" (in {frame})"),
            _ => String::new(),
        };
        let summary = format!("{} on {}: {}{at}", how, crash.config, first_line);
        Finding {
            kind,
            signature,
            summary,
            configs: vec![crash.config.clone()],
            mismatches: vec![],
            crash: Some(crash),
        }
    }
}

/// A finding of the stack-map verifier (`stackmaps`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `unregistered-root`, `stale-slot`, `missed-relocation`, `wrong-result`,
    /// `safepoint-count`.
    pub kind: String,
    pub detail: String,
}

/// The operator a crash signature keys on: the nullable and non-null forms
/// of a test or cast, and the two polarities of `br_on_cast` and
/// `br_on_null`, share their lowering and the runtime code they call, so a
/// bug reached through both is one bug (Wasmtime 48.0.8's `is_subtype`
/// assert came out as two signatures, a known one and a "new" one, by
/// `ref.test (ref $t)` against `ref.test (ref null $t)`). Summaries keep
/// the exact operator.
fn operator_family(op: &str) -> &str {
    match op {
        "RefTestNonNull" | "RefTestNullable" => "RefTest",
        "RefCastNonNull" | "RefCastNullable" => "RefCast",
        "BrOnCast" | "BrOnCastFail" => "BrOnCast",
        "BrOnNull" | "BrOnNonNull" => "BrOnNull",
        other => other,
    }
}

/// A configuration's family (`ConfigId::family`); a name gcfuzz does not
/// know (a test's planted configuration) is its own family.
pub(super) fn family(config: &str) -> &str {
    match ConfigId::from_name(config) {
        Some(id) => id.family(),
        None => config,
    }
}

/// The engine a configuration runs on: `wasmi`, `pulley` or `cranelift`.
fn engine_family(config: &str) -> &'static str {
    if config.starts_with("wasmi") {
        "wasmi"
    } else if config.starts_with("pulley") {
        "pulley"
    } else {
        "cranelift"
    }
}

/// Replaces what varies between runs of the same bug (addresses, counts,
/// indices) with placeholders, e.g. `0x110 is not in the table` →
/// `0x_ is not in the table`.
pub fn normalize_message(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or("").trim();
    let mut out = String::with_capacity(first.len());
    let mut chars = first.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '0' && chars.peek() == Some(&'x') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                chars.next();
            }
            out.push_str("0x_");
        } else if c.is_ascii_digit() {
            while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                chars.next();
            }
            out.push('N');
        } else {
            out.push(c);
        }
    }
    out
}

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
    names.truncate(3);
    names
}

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

/// A file-name-safe excerpt: lowercase words joined by `-`, at most 40 chars.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for word in s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        if out.len() + word.len() + 1 > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    if out.is_empty() { "unnamed".into() } else { out }
}

pub(super) fn short_hash(key: &str) -> String {
    format!("{:08x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::compare::MismatchKind;

    #[test]
    fn messages_are_normalized() {
        assert_eq!(normalize_message("0x110 is not in the table"), "0x_ is not in the table");
        assert_eq!(
            normalize_message("index out of bounds: the len is 3 but the index is 17\nmore"),
            "index out of bounds: the len is N but the index is N"
        );
    }

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

    fn crash(msg: &str, frames: &[&str]) -> CrashInfo {
        CrashInfo {
            config: "drc".into(),
            message: msg.into(),
            location: None,
            signal: None,
            exit_code: Some(134),
            frames: frames.iter().map(|s| s.to_string()).collect(),
            wasm: None,
        }
    }

    #[test]
    fn failures_in_compiled_code_are_told_apart_by_their_wasm_operator() {
        let bug = |wasm: Option<&str>| {
            let c = CrashInfo {
                location: Some("wasmtime-48.0.8/src/runtime/bug.rs:65".into()),
                wasm: wasm.map(String::from),
                ..crash("BUG: gc heap corruption detected in compiled code", &[])
            };
            Finding::crash(FindingKind::Crash, c)
        };
        let (test, get, get_again) = (bug(Some("RefTestNonNull")), bug(Some("StructGet")), bug(Some("StructGet")));
        assert_ne!(test.signature, get.signature);
        assert_eq!(get.signature, get_again.signature);
        assert_ne!(bug(None).signature, get.signature);
        assert!(test.signature.starts_with("crash-bug-gc-heap-corruption-detected-in-"), "{}", test.signature);
        assert!(test.summary.ends_with("(at Wasm RefTestNonNull)"), "{}", test.summary);
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

    #[test]
    fn faults_in_wasmis_threaded_handlers_are_one_place() {
        let fault = |handlers: &[&str]| {
            let mut frames: Vec<String> =
                handlers.iter().map(|h| format!("wasmi::engine::executor::handler::exec::{h}")).collect();
            frames.push("wasmi::engine::executor::handler::dispatch::backend::execute_until_done".into());
            let c = CrashInfo { signal: Some(11), frames, ..crash("fatal signal SIGSEGV", &[]) };
            Finding::crash(FindingKind::Crash, c).signature
        };
        assert_eq!(fault(&["i64_sext16_rs", "consume_fuel"]), fault(&["u64_copy_s0r", "table_get_ri", "i32_add_rri"]));
        assert_ne!(
            fault(&["i64_sext16_rs"]),
            Finding::crash(FindingKind::Crash, crash("fatal signal SIGSEGV", &["wasmi::func::Func::call"])).signature
        );
    }

    #[test]
    fn a_fatal_signal_is_keyed_on_its_faulting_frame_not_the_wasm_calls_above_it() {
        let death = |frames: &[&str]| {
            let crash = CrashInfo {
                config: "null".into(),
                message: "fatal signal SIGSEGV\nfault address 0x10".into(),
                location: None,
                signal: Some(11),
                exit_code: None,
                frames: frames.iter().map(|f| f.to_string()).collect(),
                wasm: frames[0].strip_prefix("wasm ").map(str::to_owned),
            };
            Finding::crash(FindingKind::Crash, crash).signature
        };
        let direct = death(&["<unknown>", "<unknown>", "wasmtime_setjmp_31_0_0", "gcfuzz::main"]);
        let called = death(&["<unknown>", "wasm Call", "wasm CallRef", "<unknown>", "wasmtime_setjmp_31_0_0"]);
        assert_eq!(direct, called);
        let cast = death(&["wasm BrOnCast", "<unknown>", "wasmtime_setjmp_31_0_0"]);
        assert_ne!(direct, cast, "the faulting frame is the place");
    }

    #[test]
    fn crash_signatures_ignore_numbers_but_not_frames() {
        let a =
            Finding::crash(FindingKind::Crash, crash("0x110 is not in the table", &["wasmtime::a::h0123456789abcdef"]));
        let b =
            Finding::crash(FindingKind::Crash, crash("0x2f8 is not in the table", &["wasmtime::a::hfedcba9876543210"]));
        let c = Finding::crash(FindingKind::Crash, crash("0x110 is not in the table", &["wasmtime::b"]));
        assert_eq!(a.signature, b.signature);
        assert_ne!(a.signature, c.signature);
        assert!(a.signature.starts_with("crash-0x-is-not-in-the-table-"), "{}", a.signature);
        // The same panic reached through Pulley's interpreter loop rather than
        // native code is the same bug.
        let pulley = Finding::crash(
            FindingKind::Crash,
            crash(
                "0x110 is not in the table",
                &["wasmtime::a", "wasmtime::runtime::vm::interpreter::InterpreterRef::call"],
            ),
        );
        assert_eq!(a.signature, pulley.signature);
    }

    #[test]
    fn mismatch_signatures_follow_kind_configs_and_shape() {
        let m = |other: &str, shape: &str, expected: &str| Mismatch {
            kind: MismatchKind::HeapShape,
            reference: "null".into(),
            other: other.into(),
            at: "call[0] f.result[0]".into(),
            expected: expected.into(),
            actual: "x".into(),
            shape: shape.into(),
            producer: None,
            site: None,
        };
        let a = Finding::mismatch(vec![m("copying", "field i32 value", "1")]);
        let b = Finding::mismatch(vec![m("copying", "field i32 value", "2")]);
        let c = Finding::mismatch(vec![m("drc", "field i32 value", "1")]);
        let d = Finding::mismatch(vec![m("copying", "aliasing", "1")]);
        assert_eq!(a.signature, b.signature);
        // Whichever reference judged.
        let by_interp = Mismatch { reference: "interp".into(), ..m("copying", "field i32 value", "1") };
        assert_eq!(a.signature, Finding::mismatch(vec![by_interp]).signature);
        // Whichever reference judged.
        let by_interp =
            Finding::mismatch(vec![Mismatch { reference: "interp".into(), ..m("copying", "field i32 value", "1") }]);
        assert_eq!(a.signature, by_interp.signature);
        assert_ne!(a.signature, c.signature);
        assert_ne!(a.signature, d.signature);
        assert!(a.signature.starts_with("mismatch-heap-shape-copying-"));
        // One DRC bug, seen with whichever variant the plan drew: one signature.
        let with_o0 = Finding::mismatch(vec![m("drc", "aliasing", "1"), m("drc-o0", "aliasing", "1")]);
        let with_pulley = Finding::mismatch(vec![m("drc", "aliasing", "1"), m("pulley-drc", "aliasing", "1")]);
        let alone = Finding::mismatch(vec![m("drc", "aliasing", "1")]);
        assert_eq!(with_o0.signature, with_pulley.signature);
        assert_eq!(with_o0.signature, alone.signature);
        assert!(with_o0.signature.starts_with("mismatch-heap-shape-drc-"), "{}", with_o0.signature);
        // Another collector is another family.
        let both = Finding::mismatch(vec![m("drc", "aliasing", "1"), m("copying", "aliasing", "1")]);
        assert_ne!(both.signature, alone.signature);
        assert_eq!(with_o0.configs, ["drc", "drc-o0"], "the exact configurations are kept");
        // The same value made by two instructions: two bugs.
        let from =
            |op: &str| Finding::mismatch(vec![Mismatch { producer: Some(op.into()), ..m("drc", "aliasing", "1") }]);
        assert_ne!(from("StructGet").signature, from("ArrayGet").signature);
        assert_eq!(from("StructGet").signature, from("StructGet").signature);
        assert_ne!(from("StructGet").signature, alone.signature);
        assert!(from("ArrayGet").summary.ends_with("(value from ArrayGet)"), "{}", from("ArrayGet").summary);
    }
}
