//! Runs specification test scripts (`.wast`) against the interpreter: the
//! conformance check of the oracle. Every directive counts as passed,
//! failed, or skipped because it needs a feature outside the interpreter's
//! scope (SIMD, threads, memory64, …; see [`super::features`]).

use super::module::{GlobalTy, MemTy, TableTy};
use super::store::{Extern, Host, Limits, Store};
use super::types::{Heap, ValTy};
use super::{AnyRef, Ref, Stop, Val};
use crate::outcome::{Exhausted, TrapClass};
use std::collections::HashMap;
use wast::core::{NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::{Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet};

/// What became of one script's directives.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    /// Line and reason of each failed directive.
    pub failed: Vec<(usize, String)>,
    /// Line and reason of each directive out of scope.
    pub skipped: Vec<(usize, String)>,
}

impl Report {
    pub fn total(&self) -> usize {
        self.passed + self.failed.len() + self.skipped.len()
    }
}

/// Limits for scripts: generous, but small enough that a test growing a
/// memory to 4 GiB is refused (the spec allows `memory.grow` to fail).
const LIMITS: Limits =
    Limits { fuel: 1 << 32, max_frames: 10_000, memory_bytes: 1 << 30, table_elems: 1 << 24, heap_slots: 1 << 26 };

/// A module of the script, encoded before any runs (the store borrows the
/// bytes for its whole life).
enum Prepared {
    /// Binary index, or why it could not be encoded.
    Module(Result<usize, String>),
    Nothing,
}

/// Runs the script `text`.
pub fn run(text: &str) -> Result<Report, String> {
    let mut lexer = wast::lexer::Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = wast::parser::ParseBuffer::new_with_lexer(lexer).map_err(|e| e.to_string())?;
    let mut script: Wast = wast::parser::parse(&buf).map_err(|e| e.to_string())?;
    let line = |span: wast::token::Span| span.linecol_in(text).0 + 1;

    // Pass 1: encode every module a directive instantiates.
    let mut binaries: Vec<Vec<u8>> = Vec::new();
    let mut prepared = Vec::new();
    for d in script.directives.iter_mut() {
        let p = match d {
            WastDirective::Module(w)
            | WastDirective::ModuleDefinition(w)
            | WastDirective::AssertInvalid { module: w, .. }
            | WastDirective::AssertMalformed { module: w, .. } => keep(w.encode(), &mut binaries),
            WastDirective::AssertUnlinkable { module, .. }
            | WastDirective::AssertTrap { exec: WastExecute::Wat(module), .. }
            | WastDirective::AssertReturn { exec: WastExecute::Wat(module), .. } => {
                keep(module.encode(), &mut binaries)
            }
            _ => Prepared::Nothing,
        };
        prepared.push(p);
    }

    // Pass 2: run.
    let mut store = Store::new(super::features(), LIMITS);
    let mut runner = Runner {
        registered: HashMap::new(),
        named: HashMap::new(),
        current: None,
        definitions: HashMap::new(),
        last_definition: None,
    };
    runner.spectest(&mut store);
    let mut report = Report::default();
    for (d, p) in script.directives.iter().zip(&prepared) {
        let at = line(d.span());
        match runner.directive(&mut store, d, p, &binaries) {
            Verdict::Pass => report.passed += 1,
            Verdict::Fail(why) => report.failed.push((at, why)),
            Verdict::Skip(why) => report.skipped.push((at, why)),
        }
    }
    Ok(report)
}

/// An encoded module stored for pass 2, or why it did not encode.
fn keep(encoded: Result<Vec<u8>, wast::Error>, binaries: &mut Vec<Vec<u8>>) -> Prepared {
    match encoded {
        Ok(b) => {
            binaries.push(b);
            Prepared::Module(Ok(binaries.len() - 1))
        }
        Err(e) => Prepared::Module(Err(e.message())),
    }
}

enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
}

/// Why a module does not validate under the interpreter's features, when
/// it would validate with every feature on: then it is out of scope.
fn out_of_scope(bytes: &[u8]) -> Option<String> {
    let validate = |f| wasmparser::Validator::new_with_features(f).validate_all(bytes).map(|_| ());
    let why = validate(super::features()).err()?;
    validate(wasmparser::WasmFeatures::all())
        .is_ok()
        .then(|| format!("needs a feature outside the interpreter's scope: {}", why.message()))
}

struct Runner {
    /// Registered module names → their exports.
    registered: HashMap<String, Vec<(String, Extern)>>,
    /// `$name` → instance (None: the module was out of scope).
    named: HashMap<String, Option<u32>>,
    /// The most recent module's instance (None: out of scope or failed).
    current: Option<Option<u32>>,
    /// `(module definition $name …)` → its binary (None: out of scope).
    definitions: HashMap<String, Option<usize>>,
    /// The most recent module definition.
    last_definition: Option<Option<usize>>,
}

impl Runner {
    fn spectest<'a>(&mut self, store: &mut Store<'a>) {
        let mut exports = Vec::new();
        let funcs: [(&str, &[ValTy<u32>]); 7] = [
            ("print", &[]),
            ("print_i32", &[ValTy::I32]),
            ("print_i64", &[ValTy::I64]),
            ("print_f32", &[ValTy::F32]),
            ("print_f64", &[ValTy::F64]),
            ("print_i32_f32", &[ValTy::I32, ValTy::F32]),
            ("print_f64_f64", &[ValTy::F64, ValTy::F64]),
        ];
        for (name, params) in funcs {
            let ty = store.func_type(params, &[]);
            exports.push((name.to_string(), Extern::Func(store.add_host_func(ty, Host::Nop))));
        }
        let globals = [
            ("global_i32", ValTy::I32, Val::I32(666)),
            ("global_i64", ValTy::I64, Val::I64(666)),
            ("global_f32", ValTy::F32, Val::F32(666.6f32.to_bits())),
            ("global_f64", ValTy::F64, Val::F64(666.6f64.to_bits())),
        ];
        for (name, ty, val) in globals {
            exports.push((name.to_string(), Extern::Global(store.add_global(GlobalTy { ty, mutable: false }, val))));
        }
        let funcref = ValTy::Ref { nullable: true, heap: Heap::Abstract(wasmparser::AbstractHeapType::Func) };
        let table = store.add_table(TableTy { elem: funcref, min: 10, max: Some(20) }, Ref::Null);
        exports.push(("table".to_string(), Extern::Table(table)));
        exports.push(("memory".to_string(), Extern::Memory(store.add_memory(MemTy { min: 1, max: Some(2) }))));
        self.registered.insert("spectest".to_string(), exports);
    }

    fn instance(&self, id: Option<wast::token::Id>) -> Result<Option<u32>, String> {
        match id {
            Some(id) => self.named.get(id.name()).copied().ok_or_else(|| format!("no module ${}", id.name())),
            None => self.current.ok_or_else(|| "no module yet".to_string()),
        }
    }

    /// Instantiates binary `b`: the instance, or why not.
    fn instantiate<'a>(&mut self, store: &mut Store<'a>, bytes: &'a [u8]) -> Result<u32, Stop> {
        let module = store.load(bytes).map_err(Stop::Error)?;
        let mut imports = Vec::new();
        for import in &module.imports {
            let ext = self
                .registered
                .get(import.module)
                .and_then(|exports| exports.iter().find(|(n, _)| n == import.name))
                .map(|(_, e)| *e)
                .ok_or_else(|| Stop::Error(format!("unknown import {}.{}", import.module, import.name)))?;
            imports.push(ext);
        }
        store.instantiate(module, &imports)
    }

    fn directive<'a>(
        &mut self,
        store: &mut Store<'a>,
        d: &WastDirective,
        p: &Prepared,
        binaries: &'a [Vec<u8>],
    ) -> Verdict {
        match (d, p) {
            (WastDirective::Module(w), Prepared::Module(b)) => {
                let name = w.name().map(|id| id.name().to_string());
                let result = match b {
                    Err(e) => Err(Verdict::Fail(format!("encoding: {e}"))),
                    Ok(i) => {
                        let bytes = &binaries[*i];
                        if let Some(why) = out_of_scope(bytes) {
                            Err(Verdict::Skip(why))
                        } else {
                            self.instantiate(store, bytes)
                                .map_err(|e| Verdict::Fail(format!("instantiation: {}", describe(store, &e))))
                        }
                    }
                };
                let inst = result.as_ref().ok().copied();
                self.current = Some(inst);
                if let Some(name) = name {
                    self.named.insert(name, inst);
                }
                match result {
                    Ok(_) => Verdict::Pass,
                    Err(v) => v,
                }
            }
            (WastDirective::ModuleDefinition(w), Prepared::Module(b)) => {
                let bin = match b {
                    Err(e) => return Verdict::Fail(format!("encoding: {e}")),
                    Ok(i) => *i,
                };
                let in_scope = out_of_scope(&binaries[bin]).is_none();
                self.last_definition = Some(in_scope.then_some(bin));
                if let Some(id) = w.name() {
                    self.definitions.insert(id.name().to_string(), in_scope.then_some(bin));
                }
                if !in_scope {
                    return Verdict::Skip("module out of scope".into());
                }
                match store.load(&binaries[bin]) {
                    Ok(_) => Verdict::Pass,
                    Err(e) => Verdict::Fail(format!("definition: {e}")),
                }
            }
            (WastDirective::ModuleInstance { instance, module, .. }, _) => {
                let bin = match module {
                    Some(id) => self.definitions.get(id.name()).copied(),
                    None => self.last_definition,
                };
                let result = match bin {
                    None => Err(Verdict::Fail("no such module definition".into())),
                    Some(None) => Err(Verdict::Skip("module out of scope".into())),
                    Some(Some(i)) => self
                        .instantiate(store, &binaries[i])
                        .map_err(|e| Verdict::Fail(format!("instantiation: {}", describe(store, &e)))),
                };
                let inst = result.as_ref().ok().copied();
                self.current = Some(inst);
                if let Some(id) = instance {
                    self.named.insert(id.name().to_string(), inst);
                }
                match result {
                    Ok(_) => Verdict::Pass,
                    Err(v) => v,
                }
            }
            (WastDirective::Register { name, module, .. }, _) => match self.instance(*module) {
                Ok(Some(inst)) => {
                    let exports = store.insts[inst as usize].exports.iter().map(|(n, e)| (n.to_string(), *e)).collect();
                    self.registered.insert(name.to_string(), exports);
                    Verdict::Pass
                }
                Ok(None) => Verdict::Skip("module out of scope".into()),
                Err(e) => Verdict::Fail(e),
            },
            (WastDirective::Invoke(i), _) => match self.invoke(store, i) {
                Err(v) => v,
                Ok(Ok(_)) => Verdict::Pass,
                Ok(Err(e)) => Verdict::Fail(describe(store, &e)),
            },
            (WastDirective::AssertReturn { exec, results, .. }, _) => {
                let got = match exec {
                    WastExecute::Invoke(i) => match self.invoke(store, i) {
                        Err(v) => return v,
                        Ok(r) => r,
                    },
                    WastExecute::Get { module, global, .. } => match self.instance(*module) {
                        Ok(None) => return Verdict::Skip("module out of scope".into()),
                        Err(e) => return Verdict::Fail(e),
                        Ok(Some(inst)) => match store.export(inst, global) {
                            Some(Extern::Global(g)) => Ok(vec![store.globals[g as usize].val]),
                            _ => return Verdict::Fail(format!("no global {global}")),
                        },
                    },
                    WastExecute::Wat(_) => return Verdict::Skip("assert_return of a module".into()),
                };
                match got {
                    Err(e) => Verdict::Fail(describe(store, &e)),
                    Ok(vals) if vals.len() != results.len() => {
                        Verdict::Fail(format!("{} results, expected {}", vals.len(), results.len()))
                    }
                    Ok(vals) => {
                        for (v, want) in vals.iter().zip(results) {
                            if !matches_ret(v, want) {
                                return Verdict::Fail(format!("got {v:?}, expected {want:?}"));
                            }
                        }
                        Verdict::Pass
                    }
                }
            }
            (WastDirective::AssertTrap { exec, message, .. }, p) => {
                let got = match (exec, p) {
                    (WastExecute::Invoke(i), _) => match self.invoke(store, i) {
                        Err(v) => return v,
                        Ok(r) => r.map(|_| ()),
                    },
                    (WastExecute::Wat(_), Prepared::Module(Ok(b))) => {
                        let bytes = &binaries[*b];
                        if let Some(why) = out_of_scope(bytes) {
                            return Verdict::Skip(why);
                        }
                        self.instantiate(store, bytes).map(|_| ())
                    }
                    (WastExecute::Wat(_), Prepared::Module(Err(e))) => return Verdict::Fail(format!("encoding: {e}")),
                    _ => return Verdict::Skip("assert_trap of a global".into()),
                };
                match got {
                    Err(Stop::Trap(class)) if trap_matches(&class, message) => Verdict::Pass,
                    Err(e) => Verdict::Fail(format!("{}, expected trap {message:?}", describe(store, &e))),
                    Ok(()) => Verdict::Fail(format!("returned, expected trap {message:?}")),
                }
            }
            (WastDirective::AssertExhaustion { call, .. }, _) => match self.invoke(store, call) {
                Err(v) => v,
                Ok(Err(Stop::Exhausted(Exhausted::StackOverflow))) => Verdict::Pass,
                Ok(other) => Verdict::Fail(format!("{other:?}, expected call stack exhaustion")),
            },
            (WastDirective::AssertException { exec: WastExecute::Invoke(i), .. }, _) => match self.invoke(store, i) {
                Err(v) => v,
                Ok(Err(Stop::Uncaught(_))) => Verdict::Pass,
                Ok(other) => Verdict::Fail(format!("{other:?}, expected an exception")),
            },
            (WastDirective::AssertUnlinkable { .. }, Prepared::Module(Ok(b))) => {
                let bytes = &binaries[*b];
                if let Some(why) = out_of_scope(bytes) {
                    return Verdict::Skip(why);
                }
                match self.instantiate(store, bytes) {
                    Err(Stop::Error(_)) => Verdict::Pass,
                    other => Verdict::Fail(format!("{other:?}, expected a link error")),
                }
            }
            (WastDirective::AssertInvalid { .. } | WastDirective::AssertMalformed { .. }, Prepared::Module(b)) => {
                match b {
                    // Text that does not even encode is malformed.
                    Err(_) => Verdict::Pass,
                    Ok(i) => match store.load(&binaries[*i]) {
                        Err(_) => Verdict::Pass,
                        Ok(_) => Verdict::Fail("module accepted, expected it rejected".into()),
                    },
                }
            }
            (other, _) => Verdict::Skip(format!("directive out of scope: {}", directive_name(other))),
        }
    }

    /// Runs an invocation: `Err` is the verdict when it could not run at all.
    fn invoke<'a>(&mut self, store: &mut Store<'a>, i: &WastInvoke) -> Result<Result<Vec<Val>, Stop>, Verdict> {
        let inst = match self.instance(i.module) {
            Ok(Some(inst)) => inst,
            Ok(None) => return Err(Verdict::Skip("module out of scope".into())),
            Err(e) => return Err(Verdict::Fail(e)),
        };
        let Some(Extern::Func(f)) = store.export(inst, i.name) else {
            return Err(Verdict::Fail(format!("no function {:?}", i.name)));
        };
        let mut args = Vec::new();
        for a in &i.args {
            match arg(a) {
                Some(v) => args.push(v),
                None => return Err(Verdict::Skip(format!("argument out of scope: {a:?}"))),
            }
        }
        Ok(store.invoke(f, args))
    }
}

fn directive_name(d: &WastDirective) -> &'static str {
    match d {
        WastDirective::Thread(_) => "thread",
        WastDirective::Wait { .. } => "wait",
        WastDirective::AssertSuspension { .. } => "assert_suspension",
        WastDirective::AssertInvalidCustom { .. } | WastDirective::AssertMalformedCustom { .. } => "custom section",
        _ => "other",
    }
}

fn describe(store: &Store, e: &Stop) -> String {
    match e {
        Stop::Trap(c) => format!("trap {c:?}"),
        Stop::Exhausted(x) => format!("exhausted {x:?}"),
        Stop::Uncaught(exn) => format!("uncaught exception {:?}", store.exns[*exn as usize].vals),
        Stop::Error(m) => format!("error: {m}"),
    }
}

fn arg(a: &WastArg) -> Option<Val> {
    let WastArg::Core(a) = a else { return None };
    Some(match a {
        WastArgCore::I32(v) => Val::I32(*v),
        WastArgCore::I64(v) => Val::I64(*v),
        WastArgCore::F32(f) => Val::F32(f.bits),
        WastArgCore::F64(f) => Val::F64(f.bits),
        WastArgCore::RefNull(_) => Val::Ref(Ref::Null),
        WastArgCore::RefExtern(n) => Val::Ref(Ref::Extern(AnyRef::Host(*n))),
        WastArgCore::RefHost(n) => Val::Ref(Ref::Any(AnyRef::Host(*n))),
        WastArgCore::V128(v) => Val::V128(u128::from_le_bytes(v.to_le_bytes())),
    })
}

fn matches_ret(v: &Val, want: &WastRet) -> bool {
    let WastRet::Core(want) = want else { return false };
    matches_core(v, want)
}

fn matches_core(v: &Val, want: &WastRetCore) -> bool {
    match (want, v) {
        (WastRetCore::I32(w), Val::I32(x)) => w == x,
        (WastRetCore::I64(w), Val::I64(x)) => w == x,
        (WastRetCore::F32(p), Val::F32(x)) => match p {
            NanPattern::CanonicalNan => x & 0x7fff_ffff == 0x7fc0_0000,
            NanPattern::ArithmeticNan => f32::from_bits(*x).is_nan() && x & 0x0040_0000 != 0,
            NanPattern::Value(f) => f.bits == *x,
        },
        (WastRetCore::F64(p), Val::F64(x)) => match p {
            NanPattern::CanonicalNan => x & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
            NanPattern::ArithmeticNan => f64::from_bits(*x).is_nan() && x & 0x0008_0000_0000_0000 != 0,
            NanPattern::Value(f) => f.bits == *x,
        },
        (WastRetCore::V128(p), Val::V128(x)) => v128_matches(p, *x),
        (WastRetCore::RefNull(_), Val::Ref(r)) => *r == Ref::Null,
        (WastRetCore::RefExtern(None), Val::Ref(r)) => matches!(r, Ref::Extern(_)),
        (WastRetCore::RefExtern(Some(n)), Val::Ref(r)) => *r == Ref::Extern(AnyRef::Host(*n)),
        (WastRetCore::RefHost(n), Val::Ref(r)) => *r == Ref::Any(AnyRef::Host(*n)),
        (WastRetCore::RefFunc(_), Val::Ref(r)) => matches!(r, Ref::Func(_)),
        (WastRetCore::RefAny, Val::Ref(r)) => matches!(r, Ref::Any(_)),
        (WastRetCore::RefEq, Val::Ref(r)) => {
            matches!(r, Ref::Any(AnyRef::I31(_) | AnyRef::Struct(_) | AnyRef::Array(_)))
        }
        (WastRetCore::RefArray, Val::Ref(r)) => matches!(r, Ref::Any(AnyRef::Array(_))),
        (WastRetCore::RefStruct, Val::Ref(r)) => matches!(r, Ref::Any(AnyRef::Struct(_))),
        (WastRetCore::RefI31, Val::Ref(r)) => matches!(r, Ref::Any(AnyRef::I31(_))),
        (WastRetCore::Either(alts), v) => alts.iter().any(|w| matches_core(v, w)),
        _ => false,
    }
}

/// Lane by lane, floats by their NaN patterns.
fn v128_matches(p: &V128Pattern, x: u128) -> bool {
    let b = x.to_le_bytes();
    let lane = |i: usize, w: usize| &b[i * w..(i + 1) * w];
    match p {
        V128Pattern::I8x16(l) => l.iter().enumerate().all(|(i, v)| v.to_le_bytes() == lane(i, 1)),
        V128Pattern::I16x8(l) => l.iter().enumerate().all(|(i, v)| v.to_le_bytes() == lane(i, 2)),
        V128Pattern::I32x4(l) => l.iter().enumerate().all(|(i, v)| v.to_le_bytes() == lane(i, 4)),
        V128Pattern::I64x2(l) => l.iter().enumerate().all(|(i, v)| v.to_le_bytes() == lane(i, 8)),
        V128Pattern::F32x4(l) => l.iter().enumerate().all(|(i, p)| {
            let x = Val::F32(u32::from_le_bytes(lane(i, 4).try_into().unwrap()));
            matches_core(&x, &WastRetCore::F32(*p))
        }),
        V128Pattern::F64x2(l) => l.iter().enumerate().all(|(i, p)| {
            let x = Val::F64(u64::from_le_bytes(lane(i, 8).try_into().unwrap()));
            matches_core(&x, &WastRetCore::F64(*p))
        }),
    }
}

/// Whether a trap class is the trap a script's message names.
fn trap_matches(class: &TrapClass, message: &str) -> bool {
    let accepted: &[&str] = match class {
        TrapClass::Unreachable => &["unreachable"],
        TrapClass::MemoryOutOfBounds => &["out of bounds memory access"],
        TrapClass::TableOutOfBounds => &["out of bounds table access", "undefined element"],
        TrapClass::IndirectCallToNull => &["uninitialized element"],
        TrapClass::BadSignature => &["indirect call type mismatch"],
        TrapClass::IntegerOverflow => &["integer overflow"],
        TrapClass::IntegerDivisionByZero => &["integer divide by zero"],
        TrapClass::BadConversionToInteger => &["invalid conversion to integer"],
        TrapClass::NullReference => &["null"],
        TrapClass::ArrayOutOfBounds => &["out of bounds array access"],
        TrapClass::CastFailure => &["cast failure"],
        TrapClass::Other(_) => &[],
    };
    accepted.iter().any(|a| message.starts_with(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_expectations_fail_and_out_of_scope_modules_are_skipped() {
        let script = r#"
            (module
              (type $s (struct (field i8)))
              (func (export "neg") (result i32)
                (struct.get_s $s 0 (struct.new $s (i32.const 255))))
              (func (export "div") (param i32) (result i32)
                (i32.div_s (i32.const 1) (local.get 0))))
            (assert_return (invoke "neg") (i32.const -1))
            (assert_return (invoke "neg") (i32.const 255))
            (assert_trap (invoke "div" (i32.const 0)) "integer divide by zero")
            (assert_trap (invoke "div" (i32.const 1)) "integer divide by zero")
            (module (func (export "v") (result v128)
              (i32x4.relaxed_trunc_f32x4_s (v128.const i64x2 0 0))))
            (assert_return (invoke "v") (v128.const i64x2 0 0))
            (module (func (export "w") (param v128) (result v128)
              (i16x8.add_sat_s (local.get 0) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (assert_return (invoke "w" (v128.const i16x8 32767 0 0 0 0 0 0 -1))
              (v128.const i16x8 32767 1 1 1 1 1 1 0))
            (assert_return (invoke "w" (v128.const i16x8 0 0 0 0 0 0 0 0))
              (v128.const i16x8 0 1 1 1 1 1 1 1))
        "#;
        let report = run(script).unwrap();
        assert_eq!(report.passed, 5, "{report:?}");
        let failed: Vec<usize> = report.failed.iter().map(|(line, _)| *line).collect();
        assert_eq!(failed, [9, 11, 19], "{report:?}");
        assert_eq!(report.skipped.len(), 2, "{report:?}");
        assert!(report.skipped[0].1.contains("outside the interpreter's scope"), "{report:?}");
    }
}
