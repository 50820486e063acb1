//! Findings and their signatures (the records under `crashes/` are
//! `report::record`'s).
//!
//! A signature is a stable identity for a bug: it leaves out addresses,
//! numbers, and the frames of panic machinery and of the harness, so the same
//! bug found twice lands in the same `crashes/<signature>/` directory.

use super::compare::{Mismatch, MismatchKind};
use super::frames::{FOUND_LATER, found_in, operator_family, safepoint, significant_frames};
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
        let (name, shape) = symptom(first);
        let mut key = format!("mismatch|{name}|{}|{shape}", families.join(","));
        // The instruction that made the differing value, where the reference
        // interpreter traced it.
        let from = match &first.producer {
            Some(op) => {
                key.push_str(&format!("|from {op}"));
                format!(" (value from {op})")
            }
            None => String::new(),
        };
        let signature = format!("mismatch-{name}-{}-{}", slug(&families.join("-")), short_hash(&key));
        let summary = format!(
            "{} mismatch at {}: {} says {}, {} says {}{from}",
            first.kind, first.at, first.reference, first.expected, first.other, first.actual
        );
        Finding { kind: FindingKind::Mismatch, signature, summary, configs, mismatches, crash: None }
    }

    pub fn crash(kind: FindingKind, crash: CrashInfo) -> Finding {
        let message = normalize_message(&crash.message);
        let hang = kind == FindingKind::Timeout;
        let frames = match (hang, crash.location.is_none() && crash.signal.is_some()) {
            // A hang's Wasm frames are the path that called in.
            (true, _) => significant_frames(
                &crash.frames.iter().filter(|f| !f.starts_with("wasm ")).cloned().collect::<Vec<_>>(),
            ),
            // A fatal signal's Wasm frames above the fault are the path that
            // called down to it, not the place: only the faulting frame counts.
            (false, true) => {
                let outer = crash.frames.iter().skip(1).filter(|f| !f.starts_with("wasm "));
                significant_frames(&crash.frames.iter().take(1).chain(outer).cloned().collect::<Vec<_>>())
            }
            (false, false) => significant_frames(&crash.frames),
        };
        let frames: Vec<String> = frames
            .into_iter()
            .map(|f| match f.strip_prefix("wasm ") {
                Some(op) => format!("wasm {}", operator_family(op)),
                None => f,
            })
            .collect();
        // An assert on the collector's bookkeeping fires where the broken
        // state is next used: keyed on whether a collection found it.
        let later = FOUND_LATER.iter().any(|m| message.contains(m));
        let frames = match later {
            true => vec![found_in(&crash.frames).to_string()],
            false => frames,
        };
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
        // operator at the fault (its Rust frames are Wasmtime's plumbing); a
        // panic under Wasm frames by the safepoint that called out.
        let called_out = crash.location.is_some() && !crate::outcome::detected_in_compiled_code(&crash.message);
        let mut key = format!("{how}|{message}|{}", frames.join("|"));
        // A hang is keyed on its frames alone: a loop that never ends in the
        // runtime is a property of the state it walks (a corrupted heap),
        // not of the instruction that called in. 42.0.2's DRC collection
        // hung alike at a host call's collection and at one between calls.
        if let Some(op) = crash.wasm.as_ref().filter(|_| !hang && !later) {
            let place = if called_out { safepoint(op, &crash.frames) } else { operator_family(op) };
            key.push_str(&format!("|wasm {place}"));
        }
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

/// What a mismatch is keyed on: its kind and shape, except that a
/// difference in a GC object is keyed on whether the reference designates
/// another object (`object-identity`: another type, kind or length, lost
/// aliasing) or the object reads other contents (`object-contents`), not on
/// where the host read it (a result, a global, a table, a held reference)
/// nor on what the stale reference happened to find in its place: those
/// follow from the case, not the bug (on 31.0.0 one DRC bug gave 26
/// signatures, one per place and kind of object it met).
fn symptom(m: &Mismatch) -> (String, String) {
    let object = |side: &str| matches!(side, "struct" | "array" | "exn" | "alias");
    if matches!(m.kind, MismatchKind::HeapShape | MismatchKind::Held) {
        let shape = ["global ", "table ", "held "].iter().fold(m.shape.as_str(), |s, p| s.strip_prefix(p).unwrap_or(s));
        let identity = match shape.split_once(" vs ") {
            Some((a, b)) => object(a) || object(b),
            None => matches!(
                shape,
                "struct type" | "array type" | "array length" | "object numbering" | "aliasing" | "exception tag"
            ),
        };
        if identity {
            return ("object-identity".into(), "object identity".into());
        }
        if shape.starts_with("field ") || shape.starts_with("elem ") {
            return ("object-contents".into(), "object contents".into());
        }
    }
    (m.kind.to_string(), m.shape.clone())
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

    #[test]
    fn messages_are_normalized() {
        assert_eq!(normalize_message("0x110 is not in the table"), "0x_ is not in the table");
        assert_eq!(
            normalize_message("index out of bounds: the len is 3 but the index is 17\nmore"),
            "index out of bounds: the len is N but the index is N"
        );
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
    fn broken_collector_bookkeeping_is_one_symptom_wherever_it_is_found() {
        const COUNT: &str = "assertion `left != right` failed: 0x18 is supposedly live; should have nonzero ref count";
        let sweep =
            ["wasmtime::drc::DrcHeap::dec_ref_and_maybe_dealloc", "wasmtime::drc::DrcCollection::collect_increment"];
        let found = |message: &str, frames: &[&str], wasm: Option<&str>, extra: &[&str]| {
            let mut frames: Vec<String> = frames.iter().map(|s| s.to_string()).collect();
            frames.extend(extra.iter().map(|s| s.to_string()));
            let c = CrashInfo {
                location: Some("drc.rs:1".into()),
                wasm: wasm.map(String::from),
                frames,
                ..crash(message, &[])
            };
            Finding::crash(FindingKind::Crash, c).signature
        };
        let at_call = found(COUNT, &sweep, Some("Call"), &[]);
        assert_eq!(at_call, found(COUNT, &sweep, Some("Block"), &["wasmtime::store::new_epoch"]), "an epoch check");
        assert_eq!(at_call, found(COUNT, &sweep, None, &["wasmtime::store::StoreOpaque::gc"]), "between calls");
        assert_eq!(at_call, found(COUNT, &sweep, Some("StructNew"), &[]), "an allocation");
        // Found outside a collection (a freed object the host held): another.
        let host =
            found(COUNT, &["wasmtime::drc::DrcHeap::inc_ref", "wasmtime::drc::DrcHeap::clone_gc_ref"], None, &[]);
        assert_ne!(at_call, host);
        // Another symptom, another signature; asserts that are not about
        // the collector's bookkeeping keep their safepoint.
        assert_ne!(at_call, found("invalid `VMGcKind`: 0b0", &sweep, Some("Call"), &[]));
        // The bump chunk of the over-approximated roots, found full where an
        // allocation, the host or an initializer hands a reference over.
        const BUMP: &str = "assertion `left == right` failed: slots >= the `next` bump finger are always `None`";
        let expose = "wasmtime::gc_runtime::GcHeap::expose_gc_ref_to_wasm";
        let alloc = found(BUMP, &[expose, "wasmtime::libcalls::gc_alloc_raw"], Some("StructNew"), &[]);
        assert_eq!(alloc, found(BUMP, &[expose, "wasmtime::libcalls::array_new_data"], Some("ArrayNewData"), &[]));
        assert_eq!(alloc, found(BUMP, &[expose, "wasmtime::const_expr::ConstExprEvaluator::eval"], None, &[]));
        let roots = "every on-stack gc_ref inside a Wasm frame should have an entry: 0x110 is not in the table";
        assert_ne!(found(roots, &sweep, Some("Call"), &[]), found(roots, &sweep, Some("StructNew"), &[]));
    }

    #[test]
    fn a_hang_is_keyed_on_where_it_loops_not_on_what_called_in() {
        let hang = |frames: &[&str], wasm: Option<&str>| {
            let c =
                CrashInfo { exit_code: None, wasm: wasm.map(String::from), ..crash("exceeded the time limit", frames) };
            Finding::crash(FindingKind::Timeout, c)
        };
        let collect = ["wasmtime::drc::DrcCollection::collect_increment", "wasmtime::store::gc"];
        let at_call = hang(&collect, Some("Call"));
        assert_eq!(at_call.signature, hang(&collect, None).signature, "a collection between calls hangs alike");
        assert!(at_call.summary.ends_with("(at Wasm Call)"), "{}", at_call.summary);
        assert_ne!(at_call.signature, hang(&["cranelift_codegen::compile"], None).signature);
        assert!(at_call.signature.starts_with("timeout-exceeded-the-time-limit-"), "{}", at_call.signature);
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
        assert!(a.signature.starts_with("mismatch-object-contents-copying-"), "{}", a.signature);
        // One DRC bug, seen with whichever variant the plan drew: one signature.
        let with_o0 = Finding::mismatch(vec![m("drc", "aliasing", "1"), m("drc-o0", "aliasing", "1")]);
        let with_pulley = Finding::mismatch(vec![m("drc", "aliasing", "1"), m("pulley-drc", "aliasing", "1")]);
        let alone = Finding::mismatch(vec![m("drc", "aliasing", "1")]);
        assert_eq!(with_o0.signature, with_pulley.signature);
        assert_eq!(with_o0.signature, alone.signature);
        assert!(with_o0.signature.starts_with("mismatch-object-identity-drc-"), "{}", with_o0.signature);
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
    #[test]
    fn a_stale_object_is_one_symptom_wherever_the_host_reads_it() {
        let m = |kind: MismatchKind, shape: &str| Mismatch {
            kind,
            reference: "null".into(),
            other: "drc".into(),
            at: "somewhere".into(),
            expected: "1".into(),
            actual: "2".into(),
            shape: shape.into(),
            producer: None,
            site: None,
        };
        let sig = |kind, shape| Finding::mismatch(vec![m(kind, shape)]).signature;
        let identity = sig(MismatchKind::HeapShape, "struct type");
        for (kind, shape) in [
            (MismatchKind::Held, "held struct vs extern"),
            (MismatchKind::HeapShape, "global array vs extern"),
            (MismatchKind::HeapShape, "table array length"),
            (MismatchKind::HeapShape, "aliasing"),
            (MismatchKind::Held, "held array vs struct"),
        ] {
            assert_eq!(sig(kind, shape), identity, "{kind} {shape}");
        }
        assert!(identity.starts_with("mismatch-object-identity-drc-"), "{identity}");
        let contents = sig(MismatchKind::HeapShape, "table field i32 value");
        assert_eq!(sig(MismatchKind::Held, "held elem f64 value"), contents);
        assert_ne!(contents, identity);
        // Values that are no objects keep their own shape.
        assert_ne!(sig(MismatchKind::Held, "held i31 value"), sig(MismatchKind::Held, "held extern payload"));
        assert_ne!(sig(MismatchKind::Held, "held null vs i31"), identity);
        assert_ne!(sig(MismatchKind::Global, "global i64 value"), sig(MismatchKind::Result, "i64 value"));
    }

    #[test]
    fn collector_panics_are_keyed_on_the_kind_of_safepoint() {
        let at = |op: &str, extra: &[&str]| {
            let mut frames = vec!["wasmtime::runtime::vm::gc::enabled::drc::DrcHeap::dec_ref_and_maybe_dealloc"];
            frames.extend_from_slice(extra);
            let c = CrashInfo {
                location: Some("wasmtime-31.0.0/src/runtime/vm/gc/enabled/drc.rs:1".into()),
                wasm: Some(op.into()),
                ..crash("assertion `left != right` failed: 0x8 is supposedly live", &frames)
            };
            Finding::crash(FindingKind::Crash, c).signature
        };
        let call = at("Call", &[]);
        assert_eq!(at("CallRef", &[]), call);
        assert_eq!(at("CallIndirect", &[]), call);
        assert_eq!(at("ReturnCall", &[]), call);
        assert_ne!(at("StructNew", &[]), call, "an allocation is another safepoint");
        let epoch = [
            "gcfuzz::engine::wasmtime::knobs::prepare_store::{{closure}}",
            "wasmtime::runtime::vm::libcalls::raw::new_epoch",
        ];
        assert_eq!(at("Loop", &epoch), at("Nop", &epoch), "an epoch check, at a loop header or a function's entry");
        assert_ne!(at("Loop", &epoch), call);
        // A fault compiled code detected keeps the operator at the fault.
        let fault = |op: &str| {
            let c = CrashInfo {
                location: Some("wasmtime-48.0.8/src/runtime/bug.rs:65".into()),
                wasm: Some(op.into()),
                ..crash("BUG: gc heap corruption detected in compiled code", &[])
            };
            Finding::crash(FindingKind::Crash, c).signature
        };
        assert_ne!(fault("CallRef"), fault("Call"));
    }

    #[test]
    fn a_stale_reference_read_through_any_api_is_one_place() {
        let read = |frames: &[&str]| {
            let c = CrashInfo {
                location: Some("wasmtime-36.0.20/src/runtime/store/gc.rs:40".into()),
                ..crash("attempted to access the store's GC heap before it has been allocated", frames)
            };
            Finding::crash(FindingKind::Crash, c).signature
        };
        const FROM_CLONED: &str = "wasmtime::runtime::gc::enabled::anyref::AnyRef::from_cloned_gc_ref";
        let elem = read(&[
            FROM_CLONED,
            "wasmtime::runtime::vm::gc::enabled::arrayref::VMArrayRef::read_elem",
            "wasmtime::runtime::gc::enabled::arrayref::ArrayRef::_get",
            "gcfuzz::engine::wasmtime::walk",
        ]);
        let global = read(&[FROM_CLONED, "wasmtime::runtime::externals::global::Global::get", "gcfuzz::x"]);
        let typed = read(&[
            FROM_CLONED,
            "wasmtime::runtime::gc::enabled::anyref::<impl wasmtime::runtime::func::typed::WasmTy for core::option::Option<wasmtime::runtime::gc::enabled::rooting::Rooted<wasmtime::runtime::gc::enabled::anyref::AnyRef>>>::load",
            "wasmtime_setjmp_31_0_0",
        ]);
        assert_eq!(elem, global);
        assert_ne!(typed, elem, "a read under Wasm frames is another place");
        // Where it panicked still counts.
        assert_ne!(read(&["wasmtime::runtime::vm::gc::gc_ref::VMGcHeader::kind", "gcfuzz::x"]), global);
        // A check inlined into each API function (36.0.20's missing GC
        // heap): one place, whichever API read the reference.
        let kind = read(&["wasmtime::runtime::gc::enabled::anyref::AnyRef::_is_struct", "gcfuzz::x"]);
        let raw = read(&[
            "wasmtime::runtime::gc::enabled::externref::ExternRef::_from_raw",
            "wasmtime::runtime::values::Val::_from_raw",
            "gcfuzz::x",
        ]);
        assert_eq!(kind, elem);
        assert_eq!(raw, elem);
    }
}
