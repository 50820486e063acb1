//! Generation: fuzz input bytes to a [`TestCase`]. One file per generator
//! (`smith`, the `rooted` rewrite pass on top of it, `gc_stress`), plus the
//! plan drawn for a generated module (`plan`) and the static rooting-pressure
//! analysis that measures what the generators reach (`pressure`).
//!
//! Adding a generator: a file here, a [`Generator`] variant, and its arm in
//! [`case`].

pub mod gc_stress;
pub mod linked;
pub mod plan;
pub mod pressure;
pub mod reach;
pub mod rooted;
pub mod smith;

use crate::case::{AvoidRule, ModuleInfo, Profile, TestCase, line_refuses};
use crate::line;
use anyhow::{Result, bail};
use arbitrary::Unstructured;
use serde::{Deserialize, Serialize};

/// Deterministic fuel that `ensure_termination` bakes into every module: each
/// function entry and loop iteration spends one unit, then `unreachable`
/// traps. Unlike engine fuel it counts the same on every engine.
pub const MODULE_FUEL: u32 = 1000;

/// Which generator builds a case's module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Generator {
    /// `smith` followed by the rooting rewrite pass (`rooted`) on GC
    /// modules: references held across forced collections and observed
    /// after them. The default.
    Rooted,
    /// wasm-smith, swarm-configured for GC (`smith::smith_config`).
    Smith,
    /// wasm-smith with an arbitrary configuration and GC forced on, as
    /// Wasmtime's own fuzzers use it: the baseline the others are measured
    /// against.
    Plain,
    /// The rooting generator (`gc_stress`): programs built for rooting, with a
    /// model that knows the result.
    GcStress,
}

impl Generator {
    pub fn name(self) -> &'static str {
        match self {
            Generator::Rooted => "rooted",
            Generator::Smith => "smith",
            Generator::Plain => "plain",
            Generator::GcStress => "gc-stress",
        }
    }
}

/// The case for fuzz input `data` from the default generator.
pub fn fuzz_case(data: &[u8]) -> Result<TestCase> {
    case(Generator::Rooted, data)
}

/// Builds the case for fuzz input `data` with `generator`. The input is
/// split: the module draws from the front, the rewrite pass from a small
/// middle part and the plan from the tail (wasm-smith consumes all it is
/// given, which would otherwise leave the rest at their defaults).
pub fn case(generator: Generator, data: &[u8]) -> Result<TestCase> {
    case_avoiding(generator, data, &[])
}

/// [`case`], honouring the known bugs' avoid rules where the generator
/// picks instructions itself (the rooted pass's observations), so a known
/// bug's trigger does not crowd out everything else. The same input gives
/// another case under other rules.
pub fn case_avoiding(generator: Generator, data: &[u8], avoid: &[AvoidRule]) -> Result<TestCase> {
    build(generator, data, avoid, true)
}

/// [`case`] without the rewrites that change what a correct engine computes
/// (the rooted pass's edge operands, which may make an instruction trap):
/// what the pass's semantics test compares with the unrewritten module.
pub fn case_preserving(generator: Generator, data: &[u8], avoid: &[AvoidRule]) -> Result<TestCase> {
    build(generator, data, avoid, false)
}

fn build(generator: Generator, data: &[u8], avoid: &[AvoidRule], edges: bool) -> Result<TestCase> {
    let (rest, plan_bytes) = data.split_at(data.len() - (data.len() / 8).min(256));
    let (module_bytes, pass_bytes) = rest.split_at(rest.len() - (rest.len() / 16).min(128));
    let mut u = Unstructured::new(module_bytes);
    let (profile, mut modules) = match generator {
        Generator::Smith | Generator::Rooted => {
            let count = module_count(data);
            let parts = module_parts(module_bytes, count);
            let mut u = Unstructured::new(parts[0]);
            let profile = smith::choose_profile(&mut u)?;
            // GC modules only: the pass's observations use GC instructions,
            // which would take a module out of wasmi's reach. A module the
            // pass cannot handle stays as it is.
            let rewrite = |wasm: Vec<u8>| match (generator, profile) {
                (Generator::Rooted, Profile::Gc) => {
                    rooted::rewrite(&wasm, &mut Unstructured::new(pass_bytes), avoid, edges).map_or(wasm, |(w, _)| w)
                }
                _ => wasm,
            };
            let first = match count {
                1 => smith::module(profile, &mut u)?,
                _ => smith::linked_module(profile, &mut u, None, true)?,
            };
            let mut modules = vec![first];
            for (i, part) in parts.iter().enumerate().skip(1) {
                // Generated against the earlier modules as wasm-smith made
                // them (it cannot generate code around the non-nullable
                // types the pass adds); one that cannot be generated from
                // its part leaves the case with the modules before it.
                let Ok((available, funcs)) = linked::imports_from(&modules, profile) else { break };
                let provider = i + 1 < count;
                match smith::linked_module(profile, &mut Unstructured::new(part), Some((available, funcs)), provider) {
                    Ok(wasm) => modules.push(wasm),
                    Err(_) => break,
                }
            }
            // The pass keeps every export's name and type, so the imports
            // still match.
            let modules: Vec<Vec<u8>> = modules.into_iter().map(rewrite).collect();
            (profile, modules)
        }
        Generator::Plain => (Profile::Gc, vec![smith::plain_module(&mut u)?]),
        Generator::GcStress => {
            let (wasm, plan) = gc_stress::case(&mut u, &mut Unstructured::new(plan_bytes))?;
            return Ok(TestCase { wasm, plan });
        }
    };
    for wasm in &modules {
        if let Some(what) = line_refuses(wasm) {
            bail!("generated module uses {what}, which Wasmtime {} refuses", line::wasmtime_version());
        }
    }
    let wasm = modules.pop().expect("a main module");
    let mut plan_u = Unstructured::new(plan_bytes);
    let main = ModuleInfo::parse(&wasm)?;
    let mut plan = plan::draw(profile, &main, &mut plan_u)?;
    let linked: Vec<ModuleInfo> = modules.iter().map(|m| ModuleInfo::parse(m)).collect::<Result<_>>()?;
    if !linked.is_empty() {
        plan::call_linked(&mut plan, &linked, &main, &mut plan_u)?;
    }
    plan::call_probe(&mut plan, &main);
    if modules.iter().chain([&wasm]).any(|m| crate::case::knobs::nan_bits_open(m)) {
        plan.knobs.remove(&crate::case::knobs::Knob::NanCanonicalization);
    }
    Ok(TestCase { wasm, plan }.with_linked(&modules))
}

/// Another plan for `case`'s modules, drawn from `data`: other calls,
/// arguments, host-forced collections and zeal counter, with the first
/// plan's configurations, knobs and GC heap size, the settings compiled
/// code depends on, so every configuration runs it on the code it compiled
/// for the first (a worker keeps it, `engine::wasmtime`). `None` for the
/// `gc-stress` generator, whose plan belongs to its model.
pub fn replan(generator: Generator, case: &TestCase, data: &[u8]) -> Result<Option<TestCase>> {
    if generator == Generator::GcStress {
        return Ok(None);
    }
    let first = &case.plan;
    let mut u = Unstructured::new(data);
    let main = ModuleInfo::parse(&case.wasm)?;
    let mut plan = plan::draw(first.profile, &main, &mut u)?;
    let linked: Vec<ModuleInfo> = case.linked()?.iter().map(|m| ModuleInfo::parse(m)).collect::<Result<_>>()?;
    if !linked.is_empty() {
        plan::call_linked(&mut plan, &linked, &main, &mut u)?;
    }
    plan::call_probe(&mut plan, &main);
    plan.configs.clone_from(&first.configs);
    plan.knobs.clone_from(&first.knobs);
    plan.gc_heap_initial = first.gc_heap_initial;
    plan.linked.clone_from(&first.linked);
    Ok(Some(TestCase { wasm: case.wasm.clone(), plan }))
}

/// How many modules the case for `data` links: two in an eighth of the
/// inputs, three in a sixteenth, one in the rest. Every module costs a
/// compilation on each configuration, and linked cases (three eighths of
/// the inputs in a first try) cut cases per second by 30%. Drawn from the
/// input's last byte, so an input whose case has one module gives the case
/// it gave before linking existed.
fn module_count(data: &[u8]) -> usize {
    match data.last().map_or(15, |b| b % 16) {
        0 | 1 => 2,
        2 => 3,
        _ => 1,
    }
}

/// `bytes` split into `count` consecutive parts of (nearly) equal length.
fn module_parts(bytes: &[u8], count: usize) -> Vec<&[u8]> {
    let len = bytes.len().div_ceil(count).max(1);
    let mut parts: Vec<&[u8]> = bytes.chunks(len).collect();
    parts.resize(count.max(1), &[]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::seeded_input;

    #[test]
    fn fuzz_input_derivation_is_deterministic() {
        let data = seeded_input(1, 2);
        assert_eq!(data, seeded_input(1, 2));
        assert_ne!(data, seeded_input(1, 3));
        let a = fuzz_case(&data).unwrap();
        let b = fuzz_case(&data).unwrap();
        assert_eq!(a, b);
    }

    /// NaN canonicalization is drawn only for cases whose NaN bits it cannot
    /// change legally (`case::knobs::nan_bits_open`).
    #[test]
    fn nan_canonicalization_is_not_drawn_where_nan_bits_are_open() {
        use crate::case::knobs::{Knob, nan_bits_open};
        let (mut open, mut drawn) = (0, 0);
        for i in 0..600 {
            let Ok(case) = super::case(Generator::Rooted, &seeded_input(5, i)) else { continue };
            let has_knob = case.plan.knobs.contains_key(&Knob::NanCanonicalization);
            let modules = case.modules().unwrap();
            if modules.iter().any(|m| nan_bits_open(m)) {
                open += 1;
                assert!(!has_knob, "case {i}: NaN canonicalization drawn for a promote or demote");
            }
            drawn += has_knob as usize;
        }
        assert!(open >= 5 && drawn >= 5, "{open} cases with open NaN bits, {drawn} with the knob");
    }

    /// A module's later plans keep what compiled code depends on and draw
    /// the rest again: they call other exports with other arguments, under
    /// other zeal counters.
    #[test]
    fn later_plans_keep_the_compile_settings_and_draw_the_rest() {
        let (mut other_calls, mut other_zeal, mut cases) = (0, 0, 0);
        for i in 0..40 {
            let Ok(case) = fuzz_case(&seeded_input(9, i)) else { continue };
            cases += 1;
            for k in 1..4 {
                let again = replan(Generator::Rooted, &case, &crate::case::plan_input(9, i, k)).unwrap().unwrap();
                assert_eq!((&again.wasm, &again.plan.linked), (&case.wasm, &case.plan.linked));
                assert_eq!((&again.plan.configs, &again.plan.knobs), (&case.plan.configs, &case.plan.knobs));
                assert_eq!(again.plan.gc_heap_initial, case.plan.gc_heap_initial);
                assert_eq!(TestCase::from_module_bytes(&again.to_module_bytes()).unwrap(), again);
                other_calls += (again.plan.calls != case.plan.calls) as usize;
                other_zeal += (again.plan.zeal != case.plan.zeal) as usize;
            }
        }
        assert!(cases >= 35, "{cases}");
        assert!(other_calls >= cases * 3 * 3 / 4, "{other_calls} of {cases}x3 plans call otherwise");
        assert!(other_zeal >= cases, "{other_zeal} of {cases}x3 plans change the zeal counter");
        let stress = case(Generator::GcStress, &seeded_input(9, 0)).unwrap();
        assert!(replan(Generator::GcStress, &stress, &[1; 64]).unwrap().is_none());
    }

    #[test]
    fn some_cases_link_modules_that_import_from_each_other() {
        let (mut counts, mut importing, mut calls) = ([0; 4], 0, 0);
        for i in 0..120 {
            let Ok(case) = fuzz_case(&seeded_input(5, i)) else { continue };
            // The codec checks every module and its imports.
            assert_eq!(TestCase::from_module_bytes(&case.to_module_bytes()).unwrap(), case);
            let linked = case.linked().unwrap();
            counts[linked.len() + 1] += 1;
            let imports_earlier = |wasm: &[u8]| {
                wasmparser::Parser::new(0).parse_all(wasm).any(|p| match p {
                    Ok(wasmparser::Payload::ImportSection(r)) => {
                        r.into_imports().flatten().any(|i| i.module.starts_with('m'))
                    }
                    _ => false,
                })
            };
            importing += (!linked.is_empty() && imports_earlier(&case.wasm)) as usize;
            calls += case.plan.calls.iter().any(|c| c.module.is_some()) as usize;
        }
        // An eighth of the inputs link two modules, a sixteenth three.
        assert!(counts[1] >= 50 && counts[2] >= 5 && counts[3] >= 2, "{counts:?}");
        assert!(importing >= (counts[2] + counts[3]) / 2, "{importing} of {counts:?} import");
        assert!(calls >= (counts[2] + counts[3]) / 2, "{calls} of {counts:?} call a linked module");
    }

    #[test]
    fn plan_survives_the_round_trip_through_wasm_and_wat() {
        for i in 0..20 {
            let case = fuzz_case(&seeded_input(3, i)).unwrap();
            let from_wasm = TestCase::from_module_bytes(&case.to_module_bytes()).unwrap();
            assert_eq!(from_wasm, case);
            // Text round trips may re-encode (e.g. merge local declarations):
            // the plan and the printed module must survive.
            let from_wat = TestCase::from_module_bytes(case.to_wat().as_bytes()).unwrap();
            assert_eq!(from_wat.plan, case.plan);
            assert_eq!(from_wat.to_wat(), case.to_wat());
        }
    }
}
