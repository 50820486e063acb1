//! Regression tests in the form of Wasmtime's `tests/misc_testsuite/gc/`:
//! `;;!` feature lines, the module, and one directive per planned call with
//! what the reference configuration says is right, so a maintainer can paste
//! the file into a fix. `engine::wasmtime::wast::run` executes such a file
//! with Wasmtime's own wast runner (wasmtime-wast), which is how the tests
//! check them.
//!
//! The generated modules import from `host`; the file defines that module
//! first, on top of `wasmtime.gc` (which Wasmtime's wast runner provides).
//! `host.extern_new` cannot make a host `externref` from inside Wasm, so there
//! it returns an `i31` converted to `externref` carrying the same payload:
//! `host.extern_id` reads it back the same way, but code that converts such
//! a reference back to `anyref` sees an `i31` where the fuzzing host had none.

use crate::case::{Arg, ConfigId, ModuleInfo, PLAN_LINE, Plan, TestCase, host, linked_name, needs};
use crate::line::{self, Cap};
use crate::outcome::{Exhausted, Outcome, Ref, Status, TrapClass, Value};
use anyhow::{Context, Result};
use std::fmt::Write;
use wasmparser::WasmFeatures;

/// `;;!` keys of Wasmtime's wast test configuration, with their features.
const FEATURE_KEYS: &[(&str, WasmFeatures)] = &[
    ("gc", WasmFeatures::GC),
    ("function_references", WasmFeatures::FUNCTION_REFERENCES),
    ("reference_types", WasmFeatures::REFERENCE_TYPES),
    ("exceptions", WasmFeatures::EXCEPTIONS),
    ("tail_call", WasmFeatures::TAIL_CALL),
    ("multi_memory", WasmFeatures::MULTI_MEMORY),
    ("extended_const", WasmFeatures::EXTENDED_CONST),
    ("bulk_memory", WasmFeatures::BULK_MEMORY),
];

/// The proposals `wasm` needs: each one it no longer validates without.
pub fn needed_features(wasm: &[u8]) -> Vec<(&'static str, WasmFeatures)> {
    FEATURE_KEYS.iter().filter(|(_, f)| needs(wasm, *f)).copied().collect()
}

/// The proposals any of `modules` needs (a linked case's modules: one may
/// need what the main module does not), in `FEATURE_KEYS` order.
pub fn needed_by_any(modules: &[Vec<u8>]) -> Vec<&'static str> {
    let needed: Vec<_> = modules.iter().map(|m| needed_features(m)).collect();
    FEATURE_KEYS.iter().map(|(k, _)| *k).filter(|k| needed.iter().any(|n| n.iter().any(|(f, _)| f == k))).collect()
}

/// The `.wast` for `case`, with expectations from `reference` (the outcome of
/// the configuration that is right; `None` when every configuration crashed:
/// then calls are made without assertions and the crash is the failure).
pub fn wast(case: &TestCase, signature: &str, reference: Option<&Outcome>, summary: &str) -> Result<String> {
    let mut out = String::new();
    let linked = case.linked()?;
    for key in needed_by_any(&case.modules()?) {
        writeln!(out, ";;! {key} = true")?;
    }
    writeln!(out, "\n;; gcfuzz {signature}: {summary}")?;
    // The settings, for `gcfuzz repro` to read the script back.
    let settings = Plan { calls: vec![], linked: vec![], ..case.plan.clone() };
    writeln!(out, "{PLAN_LINE}{}", serde_json::to_string(&settings)?)?;
    // Only lines with the zeal counter apply the plan's.
    if let Some(zeal) = case.plan.zeal.filter(|_| line::has(Cap::Zeal)) {
        let collecting = case.plan.configs.iter().any(|c| *c != ConfigId::Null);
        if collecting {
            writeln!(out, ";; Found with gc_zeal_alloc_counter = {zeal} (a collection every {zeal} allocations).")?;
        }
    }
    if !case.plan.knobs.is_empty() {
        let knobs = crate::case::knobs::describe(&case.plan.knobs);
        writeln!(out, ";; Found with these engine settings on the collecting configurations: {knobs}.")?;
    }
    writeln!(
        out,
        ";; Expected results are those of {}.\n",
        reference.map_or("no configuration (all crashed)", |r| &r.config)
    )?;
    out.push_str(host::WAST_MODULE);
    // Linked modules first, each registered under the name the later ones
    // import it by.
    for (k, wasm) in linked.iter().enumerate() {
        let text = wasmprinter::print_bytes(wasm).context("printing a linked module")?;
        let name = linked_name(k);
        writeln!(out, "\n{}\n(register \"{name}\" ${name})", text.replacen("(module", &format!("(module ${name}"), 1))?;
    }
    let text = wasmprinter::print_bytes(&case.wasm).context("printing module")?;
    out.push('\n');
    out.push_str(&text.replacen("(module", "(module $test", 1));
    out.push('\n');

    let infos: Vec<ModuleInfo> = linked.iter().map(|m| ModuleInfo::parse(m)).collect::<Result<_>>()?;
    let main_info = ModuleInfo::parse(&case.wasm)?;
    let expected = |i: usize| reference.and_then(|r| r.calls.get(i)).map(|c| &c.status);
    if let Some(Status::Trapped(class)) = reference.map(|r| &r.instantiate)
        && !linked.is_empty()
    {
        // Which module's instantiation traps is not recorded: the script
        // fails at that module's definition.
        writeln!(out, ";; Instantiation traps: {}", trap_message(class))?;
        return Ok(out);
    }
    if let Some(Status::Trapped(class)) = reference.map(|r| &r.instantiate) {
        // The module itself traps on instantiation; the text above defines it,
        // so assert on a fresh copy.
        writeln!(out, "(assert_trap (module binary {}) \"{}\")", binary_literal(&case.wasm), trap_message(class))?;
        return Ok(out);
    }
    for (i, call) in case.plan.calls.iter().enumerate() {
        if call.collect_before {
            writeln!(out, "(invoke $host \"gc\")")?;
        }
        let (info, instance) = match call.module {
            Some(k) => (infos.get(k as usize).unwrap_or(&main_info), linked_name(k as usize)),
            None => (&main_info, "test".to_string()),
        };
        let params = info.params_of(&call.export);
        let args = call.args.iter().enumerate().map(|(j, a)| match (a, params.and_then(|p| p.get(j))) {
            (Arg::Null, Some(ty)) => Some(format!("(ref.null {})", info.hierarchy(ty))),
            _ => arg(a),
        });
        let Some(args) = args.collect::<Option<Vec<String>>>() else {
            writeln!(out, ";; call[{i}] {:?} skipped: its arguments have no .wast form", call.export)?;
            continue;
        };
        let mut invoke = format!("(invoke ${instance} {}", string_literal(&call.export));
        for a in &args {
            invoke.push(' ');
            invoke.push_str(a);
        }
        invoke.push(')');
        let line = match expected(i) {
            Some(Status::Returned(values)) => {
                format!("(assert_return {invoke} {})", values.iter().map(result_pattern).collect::<Vec<_>>().join(" "))
            }
            Some(Status::Trapped(class)) => format!("(assert_trap {invoke} \"{}\")", trap_message(class)),
            Some(Status::Uncaught(_)) => format!("(assert_exception {invoke})"),
            Some(Status::Exhausted(Exhausted::StackOverflow)) => {
                format!("(assert_exhaustion {invoke} \"call stack exhausted\")")
            }
            // Beyond this call the reference has no verdict: stop here.
            Some(Status::Exhausted(_)) | Some(Status::Error(_)) => break,
            None if reference.is_some() => break,
            None => invoke,
        };
        writeln!(out, "{line}")?;
    }
    Ok(out)
}

fn arg(a: &Arg) -> Option<String> {
    Some(match a {
        Arg::I32(v) => format!("(i32.const {v})"),
        Arg::I64(v) => format!("(i64.const {v})"),
        Arg::F32(b) => float_const("f32", f32::from_bits(*b) as f64, f32::from_bits(*b).is_nan(), *b as u64, 0x7fffff),
        Arg::F64(b) => float_const("f64", f64::from_bits(*b), f64::from_bits(*b).is_nan(), *b, 0xf_ffff_ffff_ffff),
        Arg::V128(v) => format!("(v128.const i64x2 {} {})", *v as u64 as i64, (*v >> 64) as u64 as i64),
        // Nulls need the parameter's hierarchy: see `wast`.
        Arg::Null => return None,
        Arg::Extern(id) => format!("(ref.extern {id})"),
        // A .wast script cannot hold a result for a later invoke.
        Arg::I31(_) | Arg::Earlier { .. } => return None,
    })
}

fn float_const(ty: &str, value: f64, nan: bool, bits: u64, payload_mask: u64) -> String {
    if nan {
        let sign = if bits >> (if ty == "f32" { 31 } else { 63 }) & 1 == 1 { "-" } else { "" };
        format!("({ty}.const {sign}nan:0x{:x})", bits & payload_mask)
    } else if value.is_infinite() {
        format!("({ty}.const {}inf)", if value < 0.0 { "-" } else { "" })
    } else if ty == "f32" {
        format!("({ty}.const {:?})", value as f32)
    } else {
        format!("({ty}.const {value:?})")
    }
}

fn result_pattern(v: &Value) -> String {
    match v {
        Value::I32(v) => format!("(i32.const {v})"),
        Value::I64(v) => format!("(i64.const {v})"),
        Value::F32(b) if f32::from_bits(*b).is_nan() => "(f32.const nan:canonical)".into(),
        Value::F64(b) if f64::from_bits(*b).is_nan() => "(f64.const nan:canonical)".into(),
        Value::F32(b) => float_const("f32", f32::from_bits(*b) as f64, false, *b as u64, 0),
        Value::F64(b) => float_const("f64", f64::from_bits(*b), false, *b, 0),
        Value::V128(v) => format!("(v128.const i64x2 {} {})", *v as u64 as i64, (*v >> 64) as u64 as i64),
        Value::Ref(r) => ref_pattern(r),
    }
}

/// Wast result patterns say what kind of reference, not its contents.
fn ref_pattern(r: &Ref) -> String {
    match r {
        Ref::Null => "(ref.null)".into(),
        Ref::I31(_) => "(ref.i31)".into(),
        Ref::Struct { .. } => "(ref.struct)".into(),
        Ref::Array { .. } => "(ref.array)".into(),
        Ref::Seen(_) => "(ref.eq)".into(),
        Ref::Exn { .. } => "(ref.exn)".into(),
        Ref::Func(_) => "(ref.func)".into(),
        Ref::Extern(id) => format!("(ref.extern {id})"),
        Ref::Internalized(_) => "(ref.extern)".into(),
        Ref::Truncated => "(ref.any)".into(),
    }
}

/// Wasmtime's trap messages (its wast runner matches on a substring).
fn trap_message(class: &TrapClass) -> String {
    match class {
        TrapClass::Unreachable => "unreachable",
        TrapClass::MemoryOutOfBounds => "out of bounds memory access",
        TrapClass::TableOutOfBounds => "out of bounds table access",
        TrapClass::IndirectCallToNull => "uninitialized element",
        TrapClass::BadSignature => "indirect call type mismatch",
        TrapClass::IntegerOverflow => "integer overflow",
        TrapClass::IntegerDivisionByZero => "integer divide by zero",
        TrapClass::BadConversionToInteger => "invalid conversion to integer",
        TrapClass::NullReference => "null reference",
        TrapClass::ArrayOutOfBounds => "out of bounds array access",
        TrapClass::CastFailure => "cast failure",
        TrapClass::Other(s) => s,
    }
    .to_string()
}

fn string_literal(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => write!(out, "\\{}", b as char).unwrap(),
            0x20..=0x7e => out.push(b as char),
            _ => write!(out, "\\{b:02x}").unwrap(),
        }
    }
    out.push('"');
    out
}

fn binary_literal(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for b in bytes {
        write!(out, "\\{b:02x}").unwrap();
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_patterns() {
        assert_eq!(string_literal("a\"b\u{1}"), "\"a\\\"b\\01\"");
        assert_eq!(result_pattern(&Value::f32(0x7fc0_0001)), "(f32.const nan:canonical)");
        assert_eq!(result_pattern(&Value::F64(1.5f64.to_bits())), "(f64.const 1.5)");
        assert_eq!(result_pattern(&Value::F32((-0.0f32).to_bits())), "(f32.const -0.0)");
        assert_eq!(arg(&Arg::F32(0xffc0_0001)).unwrap(), "(f32.const -nan:0x400001)");
        assert_eq!(arg(&Arg::Extern(3)).unwrap(), "(ref.extern 3)");
    }

    #[test]
    fn needed_features_are_the_ones_used() {
        let gc = wat::parse_str("(module (type (struct)) (func (drop (struct.new 0))))").unwrap();
        let keys: Vec<_> = needed_features(&gc).into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"gc"));
        assert!(!keys.contains(&"exceptions") && !keys.contains(&"tail_call"));
        let mvp = wat::parse_str("(module (func))").unwrap();
        assert!(needed_features(&mvp).is_empty());
        // A linked case needs what any of its modules needs.
        assert!(needed_by_any(&[mvp.clone(), gc.clone()]).contains(&"gc"));
        assert!(needed_by_any(&[mvp]).is_empty());
    }
}
