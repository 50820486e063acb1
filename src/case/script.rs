//! Reading a regression script back into a case: the `.wast` that
//! `gcfuzz regression` writes (or one a maintainer edited in that form), so
//! `gcfuzz repro`, `shrink`, `narrow` and `triage` take the human form of a
//! reproducer as well as its `.wasm`.
//!
//! The modules registered before the last one are the case's linked modules
//! (registered as `m0`, `m1`, … in order, the names their importers use);
//! the last module defined is the main one; the `$host` module the script
//! defines for Wasmtime's wast runner is left out (gcfuzz's own host
//! provides those functions). Each invocation is a call of the plan, and
//! `(invoke $host "gc")` forces a collection before the next one. The
//! engine settings come from the [`PLAN_LINE`] comment the writer leaves;
//! without it, the defaults a module without a plan gets. Expected results
//! are not read: the configurations judge each other, as in a campaign.

use super::plan::{Arg, Call, Plan};
use super::{ModuleInfo, TestCase, host, linked_name};
use anyhow::{Context, Result, bail};
use wast::core::WastArgCore;
use wast::token::Id;
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute};

/// The comment line that carries the plan's settings (the plan without its
/// calls and modules, as JSON).
pub const PLAN_LINE: &str = ";; gcfuzz plan: ";

/// The module a script defines for the host functions.
const HOST_ID: &str = "host";

/// A module of the script, by its `$id` when it has one.
struct Defined {
    id: Option<String>,
    wasm: Vec<u8>,
    registered: bool,
}

impl TestCase {
    /// Reads a regression script (see the module docs).
    pub fn from_wast(text: &str) -> Result<TestCase> {
        let mut lexer = wast::lexer::Lexer::new(text);
        lexer.allow_confusing_unicode(true);
        let at = |span: wast::token::Span| {
            let (line, col) = span.linecol_in(text);
            format!("line {}, column {}", line + 1, col + 1)
        };
        let parse_error = |e: wast::Error| anyhow::anyhow!("{} at {}", e.message(), at(e.span()));
        let buf = wast::parser::ParseBuffer::new_with_lexer(lexer).map_err(parse_error)?;
        let script: Wast = wast::parser::parse(&buf).map_err(parse_error)?;
        let mut modules: Vec<Defined> = Vec::new();
        let mut calls: Vec<(usize, Call)> = Vec::new();
        let mut collect_next = false;
        for directive in script.directives {
            let span = directive.span();
            let invoke = match directive {
                WastDirective::Module(QuoteWat::Wat(mut wat))
                | WastDirective::AssertTrap { exec: WastExecute::Wat(mut wat), .. } => {
                    let id = match &wat {
                        wast::Wat::Module(m) => m.id.map(|i| i.name().to_string()),
                        wast::Wat::Component(_) => bail!("a component at {}: a case holds core modules", at(span)),
                    };
                    let wasm = wat.encode().map_err(parse_error)?;
                    // An `assert_trap` of a module instantiates the main
                    // module's copy (the writer defines the module, then
                    // asserts that a copy traps): it stands for that module.
                    let copy = id.is_none() && modules.last().is_some_and(|m| !m.registered);
                    if copy {
                        modules.last_mut().expect("a main module").wasm = wasm;
                    } else if id.as_deref() != Some(HOST_ID) {
                        modules.push(Defined { id, wasm, registered: false });
                    }
                    continue;
                }
                WastDirective::Register { name, module, .. } => {
                    if module.map(|m| m.name()) == Some(HOST_ID) && name == host::MODULE {
                        continue;
                    }
                    let k = modules.iter().filter(|m| m.registered).count();
                    let Some(m) = find(&mut modules, module) else {
                        bail!("register names no module defined before it at {}", at(span));
                    };
                    if name != linked_name(k) || m.registered {
                        bail!(
                            "registers {name:?} at {}: a case's linked modules are registered once each, as m0, m1, … \
                             in the order they are defined",
                            at(span)
                        );
                    }
                    m.registered = true;
                    continue;
                }
                WastDirective::Invoke(i)
                | WastDirective::AssertReturn { exec: WastExecute::Invoke(i), .. }
                | WastDirective::AssertTrap { exec: WastExecute::Invoke(i), .. }
                | WastDirective::AssertException { exec: WastExecute::Invoke(i), .. }
                | WastDirective::AssertExhaustion { call: i, .. } => i,
                other => bail!(
                    "{} at {}: a regression script has modules, `register`, `invoke` and assertions on invocations",
                    kind(&other),
                    at(span)
                ),
            };
            if invoke.module.map(|m| m.name()) == Some(HOST_ID) {
                if invoke.name != "gc" || !invoke.args.is_empty() {
                    bail!("of the host module a script invokes only \"gc\" at {}", at(span));
                }
                collect_next = true;
                continue;
            }
            let module = match invoke.module {
                Some(id) => modules.iter().rposition(|m| m.id.as_deref() == Some(id.name())),
                None => modules.len().checked_sub(1),
            };
            let Some(module) = module else {
                bail!("the invocation names no module defined before it at {}", at(span));
            };
            let args = invoke.args.iter().map(arg).collect::<Option<Vec<_>>>().with_context(|| {
                format!(
                    "an argument gcfuzz's host cannot pass (numbers, v128, null and ref.extern only) at {}",
                    at(span)
                )
            })?;
            let call = Call {
                export: invoke.name.to_string(),
                args,
                collect_before: collect_next,
                expect: None,
                module: None,
            };
            calls.push((module, call));
            collect_next = false;
        }
        assemble(text, modules, calls)
    }
}

/// The case of a script's modules and calls, with the plan's settings from
/// its [`PLAN_LINE`] (or the defaults).
fn assemble(text: &str, modules: Vec<Defined>, calls: Vec<(usize, Call)>) -> Result<TestCase> {
    let Some(main) = modules.iter().rposition(|m| !m.registered) else {
        bail!("the script defines no module to test (every module it defines is registered)");
    };
    if modules[main + 1..].iter().any(|m| m.registered) || modules[..main].iter().any(|m| !m.registered) {
        bail!("the script's modules are not a case: every module but the last must be registered, in order");
    }
    let linked: Vec<Vec<u8>> = modules[..main].iter().map(|m| m.wasm.clone()).collect();
    let wasm = modules[main].wasm.clone();
    let mut plan = match text.lines().find_map(|l| l.strip_prefix(PLAN_LINE)) {
        Some(json) => serde_json::from_str::<Plan>(json).context("the script's plan line")?,
        None => Plan::default_for(&wasm, &ModuleInfo::parse(&wasm)?),
    };
    plan.calls = Vec::with_capacity(calls.len());
    for (module, mut call) in calls {
        call.module = match module {
            i if i == main => None,
            i if i < main => Some(i as u32),
            _ => bail!("an invocation comes before the module it calls is defined"),
        };
        plan.calls.push(call);
    }
    let case = TestCase { wasm, plan }.with_linked(&linked);
    // The same checks a `.wasm` reproducer passes.
    TestCase::from_module_bytes(&case.to_module_bytes())
}

/// The module `id` names (the last one defined for `None`).
fn find<'m>(modules: &'m mut [Defined], id: Option<Id>) -> Option<&'m mut Defined> {
    match id {
        None => modules.last_mut(),
        Some(id) => modules.iter_mut().rev().find(|m| m.id.as_deref() == Some(id.name())),
    }
}

fn arg(a: &WastArg) -> Option<Arg> {
    let WastArg::Core(core) = a else { return None };
    Some(match core {
        WastArgCore::I32(v) => Arg::I32(*v),
        WastArgCore::I64(v) => Arg::I64(*v),
        WastArgCore::F32(f) => Arg::F32(f.bits),
        WastArgCore::F64(f) => Arg::F64(f.bits),
        WastArgCore::V128(v) => Arg::V128(u128::from_le_bytes(v.to_le_bytes())),
        WastArgCore::RefNull(_) => Arg::Null,
        WastArgCore::RefExtern(n) => Arg::Extern(*n),
        WastArgCore::RefHost(_) => return None,
    })
}

/// A directive's keyword, for errors.
fn kind(d: &WastDirective) -> &'static str {
    match d {
        WastDirective::AssertMalformed { .. } | WastDirective::AssertMalformedCustom { .. } => "assert_malformed",
        WastDirective::AssertInvalid { .. } | WastDirective::AssertInvalidCustom { .. } => "assert_invalid",
        WastDirective::AssertUnlinkable { .. } => "assert_unlinkable",
        WastDirective::ModuleDefinition(_) | WastDirective::ModuleInstance { .. } => "a module definition",
        WastDirective::Module(_) => "a quoted module",
        _ => "a directive of another kind",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::ConfigId;

    const HOST: &str = r#"(module $host (func (export "gc")))
(register "host" $host)"#;

    #[test]
    fn modules_calls_and_collections_are_read() {
        let script = format!(
            r#"{HOST}
(module $m0 (func (export "k") (result i32) (i32.const 7)))
(register "m0" $m0)
(module $test
  (import "m0" "k" (func $k (result i32)))
  (func (export "f") (param i32 i64 f32 externref anyref) (result i32) (call $k)))
(assert_return (invoke $test "f" (i32.const -1) (i64.const 2) (f32.const nan:0x1) (ref.extern 5) (ref.null any))
  (i32.const 7))
(invoke $host "gc")
(invoke $m0 "k")
(invoke "f" (i32.const 0) (i64.const 0) (f32.const 0) (ref.null extern) (ref.null any))"#
        );
        let case = TestCase::from_wast(&script).unwrap();
        assert_eq!(case.linked().unwrap().len(), 1);
        let calls: Vec<_> = case.plan.calls.iter().map(|c| (c.export.as_str(), c.module, c.collect_before)).collect();
        assert_eq!(calls, [("f", None, false), ("k", Some(0), true), ("f", None, false)]);
        assert_eq!(
            case.plan.calls[0].args,
            [Arg::I32(-1), Arg::I64(2), Arg::F32(0x7f80_0001), Arg::Extern(5), Arg::Null]
        );
        // No plan line: the settings a module without a plan gets.
        assert_eq!(case.plan.configs[0], ConfigId::Null);
        assert_eq!(case.plan.zeal, Some(1));
    }

    /// The writer's form for a module that traps at instantiation: the
    /// module, then `assert_trap` of a copy; read back, one main module.
    #[test]
    fn an_instantiation_trap_is_the_main_module() {
        let script = format!(
            "{HOST}\n(module $test (func $f unreachable) (start $f))\n\
             (assert_trap (module binary \"\\00asm\\01\\00\\00\\00\") \"unreachable\")"
        );
        let case = TestCase::from_wast(&script).unwrap();
        assert!(case.linked().unwrap().is_empty());
        assert_eq!(case.wasm, b"\0asm\x01\0\0\0");
    }

    #[test]
    fn the_plan_line_gives_the_settings() {
        let script = format!(
            "{PLAN_LINE}{}\n(module (func (export \"f\")))\n(invoke \"f\")",
            r#"{"profile":"Gc","calls":[],"zeal":7,"gc_heap_initial":null,"configs":["null","drc"]}"#
        );
        let case = TestCase::from_wast(&script).unwrap();
        assert_eq!((case.plan.zeal, case.plan.configs.len(), case.plan.calls.len()), (Some(7), 2, 1));
    }

    #[test]
    fn scripts_that_are_no_case_are_one_line_errors() {
        let err = |script: &str| format!("{:#}", TestCase::from_wast(script).unwrap_err());
        let e = err("(module $a (func))\n(register \"lib\" $a)\n(module)");
        assert!(e.contains("at line 2, column 2") && e.contains("m0, m1"), "{e}");
        let e = err("(module (func (export \"f\") (param externref)))\n(invoke \"f\" (ref.host 1))");
        assert!(e.contains("line 2") && e.contains("cannot pass"), "{e}");
        let e = err("(module)\n(assert_invalid (module (func (result i32))) \"type mismatch\")");
        assert!(e.contains("assert_invalid"), "{e}");
        let e = err("(module\n  (func (result i32)\n    i32.const 1 oops))");
        assert!(e.contains("line 3"), "{e}");
        let e = err(&format!("{HOST}\n(invoke $host \"gc_any\" (ref.null any))"));
        assert!(e.contains("only \"gc\""), "{e}");
        let e = err(HOST);
        assert!(e.contains("no module to test"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
