//! The plan drawn for a generated module: calls of its exports with drawn
//! arguments, host-forced collections, zeal and heap settings, and the
//! configurations taking part.

use super::rooted::PROBE_EXPORT;
use crate::case::knobs::{self, Knob, Knobs, Setting};
use crate::case::{Arg, Call, ConfigId, ModuleInfo, Plan, Profile, arg_possible};
use arbitrary::Unstructured;
use wasmparser::{HeapType, ValType};

/// At most this many calls per case.
const MAX_CALLS: usize = 16;

/// Draws a plan for a generated module.
pub fn draw(profile: Profile, info: &ModuleInfo, u: &mut Unstructured) -> arbitrary::Result<Plan> {
    let callable = callable(info);
    let mut calls = Vec::new();
    for (name, params) in callable.iter().take(MAX_CALLS - 4) {
        calls.push(Call {
            export: name.clone(),
            args: draw_args(params, u)?,
            collect_before: u.ratio(1, 4)?,
            expect: None,
            module: None,
        });
    }
    if !callable.is_empty() {
        for _ in 0..u.int_in_range(0..=4)? {
            let (name, params) = u.choose(&callable)?;
            calls.push(Call {
                export: name.clone(),
                args: draw_args(params, u)?,
                collect_before: u.ratio(1, 4)?,
                expect: None,
                module: None,
            });
        }
    }
    call_fed_exports(info, &mut calls, u)?;
    hold_results(info, &mut calls, u)?;
    // A few zeal settings only: each distinct one needs its own Wasmtime
    // engine per configuration in every worker. A collection at every
    // allocation halves DRC throughput (gc_zeal scans the free list for
    // poison at each collection); every second to eighth costs next to
    // nothing, so small counters get most of the share.
    let zeal = match u.int_in_range(0..=9)? {
        0..=1 => None,
        2..=3 => Some(1),
        4..=7 => Some(*u.choose(&[2, 3, 5, 8])?),
        _ => Some(*u.choose(&[100, 1000])?),
    };
    // A small initial GC heap grows early; in half of those (by the call
    // count: no input byte moves) one that is no multiple of the page size
    // takes the rounding paths of heap setup and growth. (Small heaps in
    // half the plans rather than a quarter cost a tenth of the throughput.)
    let gc_heap_initial = match u.int_in_range(0..=3)? {
        0 if calls.len() % 2 == 1 => Some(70_001),
        0 => Some(64 << 10),
        _ => None,
    };
    let knobs = draw_knobs(u)?;
    let mut configs = vec![ConfigId::Null, ConfigId::Drc, ConfigId::Copying];
    configs.retain(|c| c.on_line());
    let variants: Vec<ConfigId> = ConfigId::VARIANTS.iter().copied().filter(|c| c.on_line()).collect();
    configs.push(*u.choose(&variants)?);
    if profile == Profile::RefTypes {
        configs.push(ConfigId::Wasmi);
    }
    configs.push(ConfigId::Interp);
    Ok(Plan { profile, calls, zeal, gc_heap_initial, knobs, configs, history: vec![], linked: vec![] })
}

/// The rooting pass's edge probe, called last (after the linked modules'
/// calls are placed), without a draw: its trap ends only its own call.
pub fn call_probe(plan: &mut Plan, main: &ModuleInfo) {
    if main.params_of(PROBE_EXPORT).is_some() {
        plan.calls.push(Call {
            export: PROBE_EXPORT.into(),
            args: vec![],
            collect_before: false,
            expect: None,
            module: None,
        });
    }
}

/// The exports a plan draws calls of: those the host can make arguments
/// for, the probe aside (called once, last, without a draw: modules the pass
/// rewrote get the plan of the module it was given, plus that call).
fn callable(info: &ModuleInfo) -> Vec<&(String, Vec<ValType>)> {
    info.exported_funcs
        .iter()
        .filter(|(name, params)| name != PROBE_EXPORT && params.iter().all(arg_possible))
        .collect()
}

/// Calls of the linked modules' exports (`Call::module`), one to three of
/// each module's, at drawn places among the main module's calls: what one
/// instance left in its globals, tables and memories is then read through
/// the other's code.
pub fn call_linked(
    plan: &mut Plan,
    linked: &[ModuleInfo],
    main: &ModuleInfo,
    u: &mut Unstructured,
) -> arbitrary::Result<()> {
    for (module, info) in linked.iter().enumerate() {
        let callable = callable(info);
        if callable.is_empty() {
            continue;
        }
        for _ in 0..u.int_in_range(1..=3)? {
            let (name, params) = u.choose(&callable)?;
            let call = Call {
                export: name.clone(),
                args: draw_args(params, u)?,
                collect_before: u.ratio(1, 4)?,
                expect: None,
                module: Some(module as u32),
            };
            let at = u.int_in_range(0..=plan.calls.len())?;
            *plan = plan.with_call_at(at, call);
        }
    }
    pass_between_modules(plan, linked, main, u)
}

/// Passes the references one module's calls returned to another module's
/// exports, for a third of the parameters of an abstract reference type
/// (`anyref`, `eqref`, `externref`, `funcref`, …) that such a result fits:
/// objects allocated in one instance, then cast, tested and stored by the
/// other's code, where their types are the other module's declarations of
/// the same rec groups. (A concrete parameter type is another module's
/// index space: whether a result fits it is canonicalization's question,
/// left to the code itself.)
fn pass_between_modules(
    plan: &mut Plan,
    linked: &[ModuleInfo],
    main: &ModuleInfo,
    u: &mut Unstructured,
) -> arbitrary::Result<()> {
    let info_of = |call: &Call| call.module.and_then(|k| linked.get(k as usize)).unwrap_or(main);
    for i in 1..plan.calls.len() {
        let callee = info_of(&plan.calls[i]);
        let Some(params) = callee.params_of(&plan.calls[i].export) else { continue };
        for (j, param) in params.iter().enumerate() {
            let ValType::Ref(r) = param else { continue };
            if !matches!(r.heap_type(), HeapType::Abstract { .. }) || plan.calls[i].args.len() <= j {
                continue;
            }
            let fitting: Vec<(u32, u32)> = plan.calls[..i]
                .iter()
                .enumerate()
                .filter(|(_, c)| c.module != plan.calls[i].module)
                .flat_map(|(k, c)| {
                    let producer = info_of(c);
                    producer
                        .results_of(&c.export)
                        .iter()
                        .enumerate()
                        .filter(move |(_, r)| producer.fits(r, param))
                        .map(move |(r, _)| (k as u32, r as u32))
                })
                .collect();
            if !fitting.is_empty() && u.ratio(1, 3)? {
                let (call, result) = *u.choose(&fitting)?;
                plan.calls[i].args[j] = Arg::Earlier { call, result };
            }
        }
    }
    Ok(())
}

/// Calls, once each and in export order, the exports the host cannot make
/// arguments for (a non-null concrete reference parameter) when an earlier
/// call returned a value for every such parameter: only a round-trip
/// through the host reaches them.
fn call_fed_exports(info: &ModuleInfo, calls: &mut Vec<Call>, u: &mut Unstructured) -> arbitrary::Result<()> {
    for (export, params) in info.exported_funcs.iter().filter(|(_, params)| !params.iter().all(arg_possible)) {
        if calls.len() >= MAX_CALLS {
            break;
        }
        let mut args = Vec::with_capacity(params.len());
        for param in params {
            if arg_possible(param) {
                args.extend(draw_args(std::slice::from_ref(param), u)?);
                continue;
            }
            let fitting = fitting_results(info, calls, param);
            if fitting.is_empty() {
                break;
            }
            let (call, result) = *u.choose(&fitting)?;
            args.push(Arg::Earlier { call, result });
        }
        if args.len() == params.len() {
            calls.push(Call {
                export: export.clone(),
                args,
                collect_before: u.ratio(1, 4)?,
                expect: None,
                module: None,
            });
        }
    }
    Ok(())
}

/// Every (call, result) of `calls` whose result type fits `param`.
fn fitting_results(info: &ModuleInfo, calls: &[Call], param: &ValType) -> Vec<(u32, u32)> {
    calls
        .iter()
        .enumerate()
        .flat_map(|(k, call)| {
            info.results_of(&call.export)
                .iter()
                .enumerate()
                .filter(|(_, r)| info.fits(r, param))
                .map(move |(r, _)| (k as u32, r as u32))
        })
        .collect()
}

/// Passes references earlier calls returned back into later calls: a
/// third of the reference arguments that some earlier result fits, and in
/// a quarter of the calls with several such arguments the same object in
/// each of them (GC objects round-tripping through the host, held across
/// the collections the plan forces in between).
fn hold_results(info: &ModuleInfo, calls: &mut [Call], u: &mut Unstructured) -> arbitrary::Result<()> {
    for i in 1..calls.len() {
        let Some(params) = info.params_of(&calls[i].export).map(<[ValType]>::to_vec) else { continue };
        let same = u.ratio(1, 4)?;
        let mut chosen: Option<(u32, u32)> = None;
        for (j, param) in params.iter().enumerate() {
            if !param.is_reference_type() {
                continue;
            }
            let fitting = fitting_results(info, &calls[..i], param);
            if fitting.is_empty() {
                continue;
            }
            let pick = match chosen {
                Some(c) if same && fitting.contains(&c) => Some(c),
                _ if u.ratio(1, 3)? => Some(*u.choose(&fitting)?),
                _ => None,
            };
            if let Some((call, result)) = pick {
                calls[i].args[j] = Arg::Earlier { call, result };
                chosen = Some((call, result));
            }
        }
    }
    Ok(())
}

/// Half the cases keep Wasmtime's defaults (the settings embedders run);
/// the others change one to four knobs the line has, each to a value other
/// than its default.
fn draw_knobs(u: &mut Unstructured) -> arbitrary::Result<Knobs> {
    let mut drawn = Knobs::new();
    if u.ratio(1, 2)? {
        return Ok(drawn);
    }
    let mut offered: Vec<Knob> = Knob::ALL.iter().copied().filter(|k| k.on_line()).collect();
    for _ in 0..u.int_in_range(1..=4)? {
        if offered.is_empty() {
            break;
        }
        let knob = offered.remove(u.choose_index(offered.len())?);
        let choice = u.choose(&knob.choices())?.clone();
        drawn.insert(knob, choice);
    }
    // A reservation of its own gets a growth reservation of its own; a
    // pinned heap or the pooling allocator goes where it conflicts (see
    // `case::knobs`).
    for (reservation, growth) in knobs::GROWTH_PAIRS {
        if drawn.contains_key(&reservation) && !drawn.contains_key(&growth) {
            drawn.insert(growth, Setting::Bytes(1 << 20));
        }
    }
    knobs::settle(&mut drawn);
    debug_assert!(knobs::check(&drawn).is_ok());
    Ok(drawn)
}

fn draw_args(params: &[ValType], u: &mut Unstructured) -> arbitrary::Result<Vec<Arg>> {
    use wasmparser::AbstractHeapType as A;
    params
        .iter()
        .map(|ty| {
            // Small integers half the time: they make valid indices and lengths.
            let small = u.ratio(1, 2)?;
            Ok(match ty {
                ValType::I32 if small => Arg::I32(u.int_in_range(-2..=16)?),
                ValType::I32 => Arg::I32(u.arbitrary()?),
                ValType::I64 if small => Arg::I64(u.int_in_range(-2..=16)?),
                ValType::I64 => Arg::I64(u.arbitrary()?),
                ValType::F32 => Arg::F32(u.arbitrary()?),
                ValType::F64 => Arg::F64(u.arbitrary()?),
                ValType::V128 => Arg::V128(u.arbitrary()?),
                ValType::Ref(r) => {
                    let null = r.is_nullable() && u.ratio(1, 2)?;
                    match r.heap_type() {
                        _ if null => Arg::Null,
                        HeapType::Abstract { ty: A::Extern, .. } => Arg::Extern(u.int_in_range(0..=7)?),
                        HeapType::Abstract { ty: A::Any | A::Eq | A::I31, .. } => Arg::I31(u.int_in_range(-8..=8)?),
                        _ => Arg::Null,
                    }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export taking a non-null struct is called exactly when an earlier
    /// call's result can feed it, and then with that result.
    #[test]
    fn exports_only_a_held_result_can_feed_are_called_with_one() {
        let wasm = wat::parse_str(
            r#"(module (type $s (struct (field i32)))
                 (func (export "make") (result (ref $s)) (struct.new $s (i32.const 1)))
                 (func (export "read") (param (ref $s)) (result i32) (struct.get $s 0 (local.get 0))))"#,
        )
        .unwrap();
        let info = ModuleInfo::parse(&wasm).unwrap();
        let mut fed = 0;
        for seed in 0..40u8 {
            let bytes: Vec<u8> = (0..512).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let plan = draw(Profile::Gc, &info, &mut Unstructured::new(&bytes)).unwrap();
            for (i, call) in plan.calls.iter().enumerate().filter(|(_, c)| c.export == "read") {
                let Arg::Earlier { call: from, result: 0 } = call.args[0] else { panic!("{:?}", call.args) };
                assert!((from as usize) < i && plan.calls[from as usize].export == "make");
                fed += 1;
            }
        }
        assert!(fed >= 40, "read was called {fed} times in 40 plans");
    }
}
