//! Comparing outcomes. The references judge: Wasmtime with the Null
//! collector (it never collects: the ground truth for rooting), then the
//! reference interpreter, then wasmi ([`REFERENCES`]). Every other
//! configuration must match the first reference that can judge it, call by
//! call, then in exported state; when every reference is cut short (or
//! crashed), it must still match the collecting configurations before it.
//!
//! Anything engines may legitimately disagree on (resource exhaustion, fuel)
//! ends the comparison as inconclusive from that call on: never a finding.

pub use super::diff::{MismatchKind, Site};
use super::diff::{diff_ref, diff_state, diff_value};
use crate::outcome::{Outcome, Status};
use serde::{Deserialize, Serialize};

/// The first difference between the reference and one other configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub kind: MismatchKind,
    pub reference: String,
    pub other: String,
    /// Location, e.g. `call[2] f .result[0].field[1]`.
    pub at: String,
    pub expected: String,
    pub actual: String,
    /// The difference with values, names and indices left out: what the
    /// bug signature is built from.
    pub shape: String,
    /// The operator that produced the differing value (a call's result or
    /// an exported global), as the reference interpreter traced it: part of
    /// the signature, so two bugs that corrupt the same kind of value through
    /// different instructions are told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// Which value differs, for finding its producer.
    #[serde(skip)]
    pub site: Option<Site>,
}

/// Names the producer of each mismatch's differing value from `tracer`, an
/// outcome of the reference interpreter (which traces where values come
/// from), when that run finished every call: a run cut short traced nothing
/// for what followed.
pub fn name_producers(mismatches: &mut [Mismatch], tracer: &Outcome) {
    if tracer.state.is_none() {
        return;
    }
    for m in mismatches {
        m.producer = m.site.as_ref().and_then(|site| producer(tracer, site));
    }
}

/// The operator `outcome` traced for `site`.
fn producer(outcome: &Outcome, site: &Site) -> Option<String> {
    match site {
        Site::Result { call, index } => outcome.producers.results.get(*call)?.get(*index)?.clone(),
        Site::Global(name) => outcome.producers.globals.iter().find(|(n, _)| n == name).map(|(_, op)| op.clone()),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Agree,
    /// The comparison stopped early for a reason engines may differ on: the
    /// reason's class (`GcHeapOutOfMemory`, `OutOfFuel`, …), which campaigns
    /// count.
    Inconclusive(String),
    Mismatch(Mismatch),
}

/// The oracles, in the order they judge.
pub const REFERENCES: &[&str] = &["null", "interp", "wasmi"];

fn reference_rank(o: &Outcome) -> Option<usize> {
    REFERENCES.iter().position(|r| *r == o.config)
}

/// Judges every outcome: a reference by the references ranked above it, any
/// other configuration by the first reference that gives a conclusive
/// verdict, or, when none does, by the first earlier non-reference outcome
/// that does (two collecting configurations that disagree are a finding
/// too). Without references, the first outcome judges the rest. Returns the
/// mismatches (one per disagreeing configuration) and, when some outcome
/// could not be judged conclusively by anyone, why the first such one not.
pub fn compare_all(outcomes: &[Outcome]) -> (Vec<Mismatch>, Option<String>) {
    let mut references: Vec<&Outcome> = outcomes.iter().filter(|o| reference_rank(o).is_some()).collect();
    references.sort_by_key(|o| reference_rank(o));
    let mut mismatches = Vec::new();
    let mut inconclusive = None;
    for (i, other) in outcomes.iter().enumerate() {
        let judges: Vec<&Outcome> = match reference_rank(other) {
            Some(rank) => references.iter().copied().filter(|r| reference_rank(r) < Some(rank)).collect(),
            None => {
                references.iter().copied().chain(outcomes[..i].iter().filter(|o| reference_rank(o).is_none())).collect()
            }
        };
        if judges.is_empty() {
            continue;
        }
        let verdicts: Vec<Verdict> = judges.iter().map(|judge| compare(judge, other)).collect();
        match verdicts.iter().find(|v| !matches!(v, Verdict::Inconclusive(_))) {
            Some(Verdict::Mismatch(m)) => mismatches.push(m.clone()),
            Some(_) => {}
            None => {
                if let Some(Verdict::Inconclusive(why)) = verdicts.into_iter().next() {
                    inconclusive.get_or_insert(why);
                }
            }
        }
    }
    (mismatches, inconclusive)
}

/// Compares one configuration's outcome against the reference's.
pub fn compare(reference: &Outcome, other: &Outcome) -> Verdict {
    let mismatch = |kind, at: String, expected: String, actual: String, shape: String, site: Option<Site>| {
        Verdict::Mismatch(Mismatch {
            kind,
            reference: reference.config.clone(),
            other: other.config.clone(),
            at,
            expected,
            actual,
            shape,
            producer: None,
            site,
        })
    };
    if let Some(v) = status_verdict(&reference.instantiate, &other.instantiate, "instantiate".into(), None) {
        return match v {
            StatusDiff::Inconclusive(why) => Verdict::Inconclusive(why),
            StatusDiff::Differ { shape, .. } => mismatch(
                MismatchKind::Instantiate,
                "instantiate".into(),
                reference.instantiate.to_string(),
                other.instantiate.to_string(),
                shape,
                None,
            ),
        };
    }
    for (i, (r, o)) in reference.calls.iter().zip(&other.calls).enumerate() {
        let at = format!("call[{i}] {}", r.export);
        // How far the other run got, where both count fuel alike.
        let further = r.fuel.zip(o.fuel).map(|(r, o)| o.cmp(&r));
        match status_verdict(&r.status, &o.status, at.clone(), further) {
            None => {}
            Some(StatusDiff::Inconclusive(why)) => return Verdict::Inconclusive(why),
            Some(StatusDiff::Differ { kind, at, shape, result }) => {
                let site = result.map(|index| Site::Result { call: i, index });
                return mismatch(kind, at, r.status.to_string(), o.status.to_string(), shape, site);
            }
        }
    }
    if reference.calls.len() != other.calls.len() {
        // One side stopped early (exhausted or engine bug, both handled above
        // for the common prefix): nothing more to compare.
        return Verdict::Inconclusive("runs stopped at different calls".into());
    }
    match (&reference.state, &other.state) {
        (Some(r), Some(o)) => match diff_state(r, o) {
            None => Verdict::Agree,
            Some((d, site)) => mismatch(d.kind, d.at, d.expected, d.actual, d.shape, site),
        },
        (None, None) => Verdict::Agree,
        _ => Verdict::Inconclusive("state missing on one side".into()),
    }
}

/// The first call of `outcome` that returned something other than the
/// plan expects (a model's expectation, see `Call::expect`). Calls cut short
/// or exhausted are not judged.
pub fn check_expected(outcome: &Outcome, plan: &crate::case::Plan) -> Option<Mismatch> {
    for (i, (call, record)) in plan.calls.iter().zip(&outcome.calls).enumerate() {
        let Some(expect) = &call.expect else { continue };
        let expected = Status::Returned(expect.clone());
        let at = format!("call[{i}] {}", call.export);
        match status_verdict(&expected, &record.status, at, None) {
            None | Some(StatusDiff::Inconclusive(_)) => {}
            Some(StatusDiff::Differ { kind, at, shape, .. }) => {
                return Some(Mismatch {
                    kind,
                    reference: "model".into(),
                    other: outcome.config.clone(),
                    at,
                    expected: expected.to_string(),
                    actual: record.status.to_string(),
                    shape,
                    producer: None,
                    site: None,
                });
            }
        }
    }
    None
}

enum StatusDiff {
    Inconclusive(String),
    /// `result`: which result of a call that returned differs.
    Differ {
        kind: MismatchKind,
        at: String,
        shape: String,
        result: Option<usize>,
    },
}

fn status_kind(s: &Status) -> String {
    match s {
        Status::Returned(_) => "returned".into(),
        Status::Trapped(class) => format!("trap {class:?}"),
        Status::Uncaught(_) => "uncaught exception".into(),
        Status::Exhausted(e) => format!("exhausted {e:?}"),
        Status::Error(msg) => format!("{} error", error_class(msg)),
    }
}

/// What kind of failure an engine's error is: the module was refused
/// (`compile`), an import did not link (`link`), or the harness could not
/// drive the engine (arguments, walks, fuel: `harness`). Two errors agree
/// only within a class: a module one engine refuses and another cannot link
/// is a difference, not agreement.
fn error_class(msg: &str) -> &'static str {
    if msg.starts_with("compile") {
        "compile"
    } else if msg.contains("import") {
        "link"
    } else {
        "harness"
    }
}

/// `None` when the statuses agree. `further`: whether the other run got
/// further than the reference before it stopped (by fuel), where known.
fn status_verdict(r: &Status, o: &Status, at: String, further: Option<std::cmp::Ordering>) -> Option<StatusDiff> {
    match (r, o) {
        (Status::Exhausted(e), _) | (_, Status::Exhausted(e)) => Some(StatusDiff::Inconclusive(format!("{e:?}"))),
        (Status::Returned(a), Status::Returned(b)) => {
            if a.len() != b.len() {
                let shape = "result arity".into();
                return Some(StatusDiff::Differ { kind: MismatchKind::Result, at, shape, result: None });
            }
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| {
                diff_value(x, y, format!("{at}.result[{i}]")).map(|d| StatusDiff::Differ {
                    kind: if d.in_heap { MismatchKind::HeapShape } else { MismatchKind::Result },
                    at: d.at,
                    shape: d.shape,
                    result: Some(i),
                })
            })
        }
        (Status::Uncaught(a), Status::Uncaught(b)) => diff_ref(a, b, format!("{at}.exception"), false)
            .map(|d| StatusDiff::Differ { kind: MismatchKind::HeapShape, at: d.at, shape: d.shape, result: None }),
        (Status::Error(a), Status::Error(b)) if error_class(a) == error_class(b) => None,
        (a, b) if a == b => None,
        // Keyed on where the runs parted, not on how the other one ended: a
        // trap the other engine missed is that trap, whatever it did after
        // (returned, or trapped further on, as fuel shows); otherwise it is
        // what the disagreeing engine did, whether the reference returned or
        // trapped differently further on.
        (a, b) => Some(StatusDiff::Differ {
            kind: if at == "instantiate" { MismatchKind::Instantiate } else { MismatchKind::Trap },
            shape: match (a, b, further) {
                (Status::Trapped(_), Status::Returned(_), _)
                | (Status::Trapped(_), _, Some(std::cmp::Ordering::Greater)) => format!("missed {}", status_kind(a)),
                (_, Status::Returned(_), _) => format!("{} vs returned", status_kind(a)),
                _ => status_kind(b),
            },
            at,
            result: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CallRecord, Exhausted, MemorySummary, Ref, State, TrapClass, Value};

    #[test]
    fn errors_agree_only_within_their_class() {
        let err = |m: &str| Status::Error(m.into());
        let at = || "instantiate".to_string();
        assert!(status_verdict(&err("compile: bad type"), &err("compile: invalid"), at(), None).is_none());
        assert!(
            status_verdict(&err("unknown import host.x"), &err("incompatible import type for host.gc"), at(), None)
                .is_none()
        );
        let Some(StatusDiff::Differ { shape, .. }) =
            status_verdict(&err("compile: bad"), &err("unknown import env.f"), at(), None)
        else {
            panic!("a compile error and a link error differ")
        };
        assert_eq!(shape, "link error");
    }

    #[test]
    fn when_null_is_cut_short_the_interpreter_judges_and_collectors_judge_each_other() {
        let ok = |v| Status::Returned(vec![Value::I32(v)]);
        let exhausted = Status::Exhausted(Exhausted::GcHeapOutOfMemory);
        // Null ran out of GC heap (it never frees): the interpreter judges.
        let outcomes =
            [outcome("null", vec![exhausted.clone()]), outcome("drc", vec![ok(2)]), outcome("interp", vec![ok(1)])];
        let (m, _) = compare_all(&outcomes);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!((m[0].reference.as_str(), m[0].other.as_str()), ("interp", "drc"));
        // Without a conclusive reference, two collectors that disagree are
        // still a finding, and the cut-short outcome is counted.
        let outcomes = [
            outcome("null", vec![exhausted.clone()]),
            outcome("drc", vec![ok(1)]),
            outcome("copying", vec![ok(2)]),
            outcome("interp", vec![exhausted.clone()]),
        ];
        let (m, inconclusive) = compare_all(&outcomes);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!((m[0].reference.as_str(), m[0].other.as_str()), ("drc", "copying"));
        assert_eq!(inconclusive.as_deref(), Some("GcHeapOutOfMemory"));
        // A crashed Null (no outcome) does not make DRC the reference: the
        // interpreter judges DRC, and is not itself judged by DRC.
        let outcomes = [outcome("drc", vec![ok(2)]), outcome("copying", vec![ok(1)]), outcome("interp", vec![ok(1)])];
        let (m, _) = compare_all(&outcomes);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!((m[0].reference.as_str(), m[0].other.as_str()), ("interp", "drc"));
    }

    fn outcome(config: &str, calls: Vec<Status>) -> Outcome {
        Outcome {
            config: config.into(),
            instantiate: Status::Returned(vec![]),
            calls: calls.into_iter().map(|status| CallRecord { export: "f".into(), status, fuel: None }).collect(),
            state: Some(State::default()),
            micros: 0,
            producers: Default::default(),
            gc_heap_bytes: None,
        }
    }

    fn obj(id: u32, field: i32) -> Value {
        Value::Ref(Ref::Struct { id, ty: "struct(i32)".into(), fields: vec![Value::I32(field)] })
    }

    #[test]
    fn equal_outcomes_agree() {
        let a = outcome("null", vec![Status::Returned(vec![Value::I32(1), obj(0, 2)])]);
        let b = outcome("drc", vec![Status::Returned(vec![Value::I32(1), obj(0, 2)])]);
        assert_eq!(compare(&a, &b), Verdict::Agree);
    }

    #[test]
    fn scalar_difference_is_a_result_mismatch() {
        let a = outcome("null", vec![Status::Returned(vec![Value::I32(1)])]);
        let b = outcome("drc", vec![Status::Returned(vec![Value::I32(2)])]);
        let Verdict::Mismatch(m) = compare(&a, &b) else { panic!() };
        assert_eq!(m.kind, MismatchKind::Result);
        assert_eq!(m.shape, "i32 value");
        assert_eq!(m.at, "call[0] f.result[0]");
    }

    #[test]
    fn field_difference_is_heap_shape() {
        let a = outcome("null", vec![Status::Returned(vec![obj(0, 1)])]);
        let b = outcome("copying", vec![Status::Returned(vec![obj(0, 7)])]);
        let Verdict::Mismatch(m) = compare(&a, &b) else { panic!() };
        assert_eq!(m.kind, MismatchKind::HeapShape);
        assert_eq!(m.shape, "field i32 value");
        assert_eq!(m.at, "call[0] f.result[0].field[0]");
    }

    #[test]
    fn lost_aliasing_is_heap_shape() {
        // Two results that are the same object on one side, two equal objects
        // on the other: `ref.eq` would tell them apart.
        let a = outcome("null", vec![Status::Returned(vec![obj(0, 1), Value::Ref(Ref::Seen(0))])]);
        let b = outcome("drc", vec![Status::Returned(vec![obj(0, 1), obj(1, 1)])]);
        let Verdict::Mismatch(m) = compare(&a, &b) else { panic!() };
        assert_eq!(m.kind, MismatchKind::HeapShape);
        assert_eq!(m.shape, "aliasing");
    }

    #[test]
    fn trap_classes_are_compared() {
        let a = outcome("null", vec![Status::Trapped(TrapClass::CastFailure)]);
        let b = outcome("drc", vec![Status::Trapped(TrapClass::NullReference)]);
        let Verdict::Mismatch(m) = compare(&a, &b) else { panic!() };
        assert_eq!(m.kind, MismatchKind::Trap);
        assert_eq!(m.shape, "trap NullReference");
        let c = outcome("drc", vec![Status::Trapped(TrapClass::CastFailure)]);
        assert_eq!(compare(&a, &c), Verdict::Agree);
        // The same wrong trap where the reference returned: the same shape.
        let returned = outcome("null", vec![Status::Returned(vec![])]);
        let Verdict::Mismatch(m2) = compare(&returned, &b) else { panic!() };
        assert_eq!(m2.shape, m.shape);
        // A missed trap keeps the trap it missed, whether the other engine
        // returned or (as its fuel shows) trapped further on.
        let Verdict::Mismatch(missed) = compare(&a, &returned) else { panic!() };
        assert_eq!(missed.shape, "missed trap CastFailure");
        let fueled = |config: &str, status: Status, fuel| {
            let mut o = outcome(config, vec![status]);
            o.calls[0].fuel = Some(fuel);
            o
        };
        let reference = fueled("null", Status::Trapped(TrapClass::TableOutOfBounds), 100);
        let further = fueled("drc", Status::Trapped(TrapClass::NullReference), 180);
        let Verdict::Mismatch(m) = compare(&reference, &further) else { panic!() };
        assert_eq!(m.shape, "missed trap TableOutOfBounds");
        // Trapping before the reference's trap, or where fuel cannot tell,
        // is the other engine's own trap.
        for fuel in [40, 100] {
            let earlier = fueled("drc", Status::Trapped(TrapClass::NullReference), fuel);
            let Verdict::Mismatch(m) = compare(&reference, &earlier) else { panic!() };
            assert_eq!(m.shape, "trap NullReference");
        }
    }

    #[test]
    fn exhaustion_is_inconclusive_but_earlier_calls_count() {
        let a = outcome("null", vec![Status::Returned(vec![]), Status::Exhausted(Exhausted::GcHeapOutOfMemory)]);
        let b = outcome("drc", vec![Status::Returned(vec![]), Status::Returned(vec![Value::I32(3)])]);
        assert!(matches!(compare(&a, &b), Verdict::Inconclusive(_)));
        let c = outcome("drc", vec![Status::Trapped(TrapClass::Unreachable), Status::Returned(vec![])]);
        assert!(matches!(compare(&a, &c), Verdict::Mismatch(_)));
    }

    #[test]
    fn memory_and_globals_are_compared() {
        let mut a = outcome("null", vec![]);
        let mut b = outcome("drc", vec![]);
        a.state.as_mut().unwrap().memories.push(("m".into(), MemorySummary { size: 65536, hash: 1 }));
        b.state.as_mut().unwrap().memories.push(("m".into(), MemorySummary { size: 65536, hash: 2 }));
        let Verdict::Mismatch(m) = compare(&a, &b) else { panic!() };
        assert_eq!(m.kind, MismatchKind::Memory);
        b.state.as_mut().unwrap().memories[0].1.hash = 1;
        assert_eq!(compare(&a, &b), Verdict::Agree);
        a.state.as_mut().unwrap().globals.push(("g".into(), Value::I64(1)));
        b.state.as_mut().unwrap().globals.push(("g".into(), Value::I64(1)));
        assert_eq!(compare(&a, &b), Verdict::Agree);
        b.state.as_mut().unwrap().globals[0].1 = Value::I64(0);
        let Verdict::Mismatch(m) = compare(&a, &b) else { panic!() };
        assert_eq!(m.kind, MismatchKind::Global);
    }

    #[test]
    fn compare_all_names_each_disagreeing_config() {
        let a = outcome("null", vec![Status::Returned(vec![Value::I32(1)])]);
        let b = outcome("drc", vec![Status::Returned(vec![Value::I32(1)])]);
        let c = outcome("copying", vec![Status::Returned(vec![Value::I32(0)])]);
        let (ms, inconclusive) = compare_all(&[a, b, c]);
        assert!(inconclusive.is_none());
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].other, "copying");
    }
}
