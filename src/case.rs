//! A test case: module bytes plus the execution plan, derived deterministically
//! from fuzz input bytes so that a crash file replays exactly.
//!
//! The plan travels inside the module as a custom section ([`PLAN_SECTION`]),
//! so a reproducer `.wasm` (or its `.wat`) is self-contained: `gcfuzz repro`
//! runs exactly the calls, arguments and GC settings that found the bug.

use crate::engine::ConfigId;
use crate::engine::wasmtime_api as api;
use crate::generate::{self, Generator, Profile};
use anyhow::{Context, Result, bail};
use arbitrary::Unstructured;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use wasmparser::{CompositeInnerType, ExternalKind, HeapType, Operator, Parser, Payload, ValType};

/// Custom section carrying the JSON-encoded [`Plan`].
pub const PLAN_SECTION: &str = "gcfuzz:plan";

/// At most this many calls per case.
const MAX_CALLS: usize = 16;

/// An argument the host passes to an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arg {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    /// A null reference of the parameter's type.
    Null,
    /// A host `externref` with this payload.
    Extern(u32),
    /// An `i31ref` (for `anyref`, `eqref` and `i31ref` parameters).
    I31(i32),
}

/// One call of an exported function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub export: String,
    pub args: Vec<Arg>,
    /// Force a collection from the host just before the call.
    pub collect_before: bool,
    /// The values the call must return, when a model knows them (the
    /// rooting generator's): any configuration returning something else,
    /// or trapping, is a finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<crate::outcome::Value>>,
}

/// How to run a module: what to call and under which engine settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub profile: Profile,
    pub calls: Vec<Call>,
    /// `gc_zeal_alloc_counter` for configurations that collect: a collection
    /// is forced every this many allocations.
    pub zeal: Option<u32>,
    /// Initial GC heap size in bytes (engine default when absent).
    pub gc_heap_initial: Option<u64>,
    /// The configurations taking part; the first is the reference.
    pub configs: Vec<ConfigId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    /// The module without the plan section.
    pub wasm: Vec<u8>,
    pub plan: Plan,
}

/// Deterministic pseudo-random fuzz input number `index` of campaign `seed`.
pub fn seeded_input(seed: u64, index: u64) -> Vec<u8> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    let mut rng = rand_chacha::ChaCha8Rng::from_seed(key);
    let len = 2048 + (rng.next_u32() as usize % (14 * 1024));
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    data
}

impl TestCase {
    /// Builds the case for fuzz input `data`. The plan draws from the tail
    /// of the input and the module from the rest: wasm-smith consumes all it
    /// is given, which would otherwise leave every plan at its defaults.
    pub fn from_fuzz_input(data: &[u8]) -> Result<TestCase> {
        Self::generate(Generator::Rooted, data)
    }

    /// Builds the case for fuzz input `data` with `generator`. The input is
    /// split: the module draws from the front, the rewrite pass from a small
    /// middle part and the plan from the tail (wasm-smith consumes all it is
    /// given, which would otherwise leave the rest at their defaults).
    pub fn generate(generator: Generator, data: &[u8]) -> Result<TestCase> {
        let (rest, plan_bytes) = data.split_at(data.len() - (data.len() / 8).min(256));
        let (module_bytes, pass_bytes) = rest.split_at(rest.len() - (rest.len() / 16).min(128));
        let mut u = Unstructured::new(module_bytes);
        let (profile, wasm) = match generator {
            Generator::Smith | Generator::Rooted => {
                let profile = generate::choose_profile(&mut u)?;
                let wasm = generate::module(profile, &mut u)?;
                match (generator, profile) {
                    // GC modules only: the pass's observations use GC
                    // instructions, which would take a module out of wasmi's
                    // reach. A module the pass cannot handle stays as it is.
                    (Generator::Rooted, Profile::Gc) => {
                        let rewritten = crate::rewrite::rewrite(&wasm, &mut Unstructured::new(pass_bytes));
                        (profile, rewritten.map_or(wasm, |(w, _)| w))
                    }
                    _ => (profile, wasm),
                }
            }
            Generator::Plain => (Profile::Gc, generate::plain_module(&mut u)?),
            Generator::GcStress => {
                let (wasm, plan) = crate::stress::case(&mut u, &mut Unstructured::new(plan_bytes))?;
                return Ok(TestCase { wasm, plan });
            }
        };
        if let Some(what) = api::unsupported(&wasm) {
            bail!("generated module uses {what}, which Wasmtime {} refuses", api::VERSION);
        }
        let info = ModuleInfo::parse(&wasm)?;
        let plan = Plan::arbitrary(profile, &info, &mut Unstructured::new(plan_bytes))?;
        Ok(TestCase { wasm, plan })
    }

    /// Reads a `.wasm` or `.wat` reproducer. Its plan section, when present,
    /// gives the plan; otherwise every export is called once with default
    /// arguments on every configuration that can run the module.
    pub fn from_module_bytes(bytes: &[u8]) -> Result<TestCase> {
        let wasm =
            wat::parse_bytes(bytes).map_err(|e| anyhow::anyhow!("{}", e.to_string().lines().next().unwrap_or("")))?;
        let (wasm, plan) = split_plan(&wasm)?;
        let plan = match plan {
            Some(plan) => plan,
            None => {
                let info = ModuleInfo::parse(&wasm)?;
                Plan::default_for(&wasm, &info)
            }
        };
        Ok(TestCase { wasm: wasm.to_vec(), plan })
    }

    /// The module with its plan embedded, as written to reproducer files.
    pub fn to_module_bytes(&self) -> Vec<u8> {
        use wasm_encoder::Section;
        let mut out = self.wasm.clone();
        let json = serde_json::to_vec(&self.plan).expect("plan serializes");
        wasm_encoder::CustomSection { name: PLAN_SECTION.into(), data: json.into() }.append_to(&mut out);
        out
    }

    /// The module as WAT text (plan section included).
    pub fn to_wat(&self) -> String {
        wasmprinter::print_bytes(self.to_module_bytes()).unwrap_or_else(|e| format!(";; not printable: {e}\n"))
    }
}

/// Splits the plan section off a module. Validates the module first so bad
/// input gets a clear error here rather than a confusing one later.
fn split_plan(wasm: &[u8]) -> Result<(Vec<u8>, Option<Plan>)> {
    let mut validator = wasmparser::Validator::new_with_features(Profile::Gc.features());
    if let Err(e) = validator.validate_all(wasm) {
        if wasmparser::Validator::new_with_features(crate::interp::features()).validate_all(wasm).is_ok() {
            bail!("the module uses a proposal Wasmtime {} does not run ({})", api::VERSION, e.message());
        }
        return Err(e).context("invalid module");
    }
    if let Some(what) = api::unsupported(wasm) {
        bail!("the module uses {what}, which Wasmtime {} refuses", api::VERSION);
    }
    // Walk the raw sections (id, size, body) and copy all but the plan.
    let mut stripped = wasm[..8].to_vec();
    let mut plan = None;
    let mut offset = 8;
    while offset < wasm.len() {
        let mut reader = wasmparser::BinaryReader::new(&wasm[offset + 1..], 0);
        let size = reader.read_var_u32()? as usize;
        let body = offset + 1 + reader.original_position() as usize;
        let end = body + size;
        if wasm[offset] == 0 {
            let mut body_reader = wasmparser::BinaryReader::new(&wasm[body..end], 0);
            if body_reader.read_string()? == PLAN_SECTION {
                let data = &wasm[body + body_reader.original_position() as usize..end];
                let mut p: Plan = serde_json::from_slice(data).context("corrupt plan section")?;
                // A reproducer from another Wasmtime line may name
                // configurations this one lacks (see `wasmtime_api`).
                p.configs.retain(|c| api::has(*c));
                plan = Some(p);
                offset = end;
                continue;
            }
        }
        stripped.extend_from_slice(&wasm[offset..end]);
        offset = end;
    }
    Ok((stripped, plan))
}

/// What the plan builder needs to know about a module.
pub struct ModuleInfo {
    /// Exported functions in export order, with parameter types.
    pub exported_funcs: Vec<(String, Vec<ValType>)>,
    /// For each type index, whether it is a function type.
    pub is_func_type: Vec<bool>,
}

impl ModuleInfo {
    pub fn parse(wasm: &[u8]) -> Result<ModuleInfo> {
        let mut types: Vec<Option<Vec<ValType>>> = Vec::new();
        let mut func_types: Vec<u32> = Vec::new();
        let mut exported_funcs = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group?.into_types() {
                            types.push(match &sub.composite_type.inner {
                                CompositeInnerType::Func(f) => Some(f.params().to_vec()),
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        if let wasmparser::TypeRef::Func(ty) = import?.ty {
                            func_types.push(ty);
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        func_types.push(ty?);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        if export.kind == ExternalKind::Func {
                            let ty = func_types.get(export.index as usize).copied();
                            let params = ty.and_then(|t| types.get(t as usize).cloned().flatten());
                            exported_funcs.push((export.name.to_string(), params.unwrap_or_default()));
                        }
                    }
                }
                _ => {}
            }
        }
        let is_func_type = types.iter().map(Option::is_some).collect();
        Ok(ModuleInfo { exported_funcs, is_func_type })
    }
}

impl ModuleInfo {
    /// The top of a reference type's hierarchy (`any`, `func`, `extern` or
    /// `exn`), which decides what a null of it is to a host.
    pub fn hierarchy(&self, ty: &ValType) -> &'static str {
        use wasmparser::AbstractHeapType as A;
        let ValType::Ref(r) = ty else { return "any" };
        match r.heap_type() {
            HeapType::Abstract { ty: A::Func | A::NoFunc, .. } => "func",
            HeapType::Abstract { ty: A::Extern | A::NoExtern, .. } => "extern",
            HeapType::Abstract { ty: A::Exn | A::NoExn, .. } => "exn",
            HeapType::Abstract { .. } => "any",
            HeapType::Concrete(i) | HeapType::Exact(i) => match i.as_module_index() {
                Some(i) if self.is_func_type.get(i as usize) == Some(&true) => "func",
                _ => "any",
            },
        }
    }
}

/// Whether `op` allocates a struct or array.
pub fn is_allocation(op: &Operator) -> bool {
    matches!(
        op,
        Operator::StructNew { .. }
            | Operator::StructNewDefault { .. }
            | Operator::ArrayNew { .. }
            | Operator::ArrayNewDefault { .. }
            | Operator::ArrayNewFixed { .. }
            | Operator::ArrayNewData { .. }
            | Operator::ArrayNewElem { .. }
    )
}

/// Whether the module contains a struct or array allocation.
pub fn allocates(wasm: &[u8]) -> bool {
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(Payload::CodeSectionEntry(body)) = payload else {
            continue;
        };
        let Ok(mut ops) = body.get_operators_reader() else {
            continue;
        };
        while !ops.eof() {
            match ops.read() {
                Ok(op) if is_allocation(&op) => return true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    false
}

impl Plan {
    /// Draws a plan for a generated module.
    pub fn arbitrary(profile: Profile, info: &ModuleInfo, u: &mut Unstructured) -> arbitrary::Result<Plan> {
        let callable: Vec<_> =
            info.exported_funcs.iter().filter(|(_, params)| params.iter().all(arg_possible)).collect();
        let mut calls = Vec::new();
        for (name, params) in callable.iter().take(MAX_CALLS - 4) {
            calls.push(Call {
                export: name.clone(),
                args: draw_args(params, u)?,
                collect_before: u.ratio(1, 4)?,
                expect: None,
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
                });
            }
        }
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
        let gc_heap_initial = match u.int_in_range(0..=3)? {
            0 => Some(64 << 10),
            _ => None,
        };
        let mut configs = vec![ConfigId::Null, ConfigId::Drc, ConfigId::Copying];
        configs.retain(|c| api::has(*c));
        let variants: Vec<ConfigId> = ConfigId::VARIANTS.iter().copied().filter(|c| api::has(*c)).collect();
        configs.push(*u.choose(&variants)?);
        if profile == Profile::RefTypes {
            configs.push(ConfigId::Wasmi);
        }
        configs.push(ConfigId::Interp);
        Ok(Plan { profile, calls, zeal, gc_heap_initial, configs })
    }

    /// The plan for a module that came without one: each export once, default
    /// arguments, every configuration that can run it, a collection at every
    /// allocation.
    pub fn default_for(wasm: &[u8], info: &ModuleInfo) -> Plan {
        let profile =
            if wasmparser::Validator::new_with_features(Profile::RefTypes.features()).validate_all(wasm).is_ok() {
                Profile::RefTypes
            } else {
                Profile::Gc
            };
        let calls = info
            .exported_funcs
            .iter()
            .filter(|(_, params)| params.iter().all(arg_possible))
            .map(|(name, params)| Call {
                export: name.clone(),
                args: params.iter().map(default_arg).collect(),
                collect_before: false,
                expect: None,
            })
            .collect();
        let mut configs = vec![ConfigId::Null, ConfigId::Drc, ConfigId::Copying];
        configs.extend_from_slice(ConfigId::VARIANTS);
        configs.retain(|c| api::has(*c));
        if profile == Profile::RefTypes {
            configs.push(ConfigId::Wasmi);
        }
        configs.push(ConfigId::Interp);
        Plan { profile, calls, zeal: Some(1), gc_heap_initial: None, configs }
    }
}

/// Whether the host can make an argument of this type.
fn arg_possible(ty: &ValType) -> bool {
    match ty {
        ValType::Ref(r) => {
            r.is_nullable()
                || matches!(
                    r.heap_type(),
                    HeapType::Abstract {
                        shared: false,
                        ty: wasmparser::AbstractHeapType::Extern
                            | wasmparser::AbstractHeapType::Any
                            | wasmparser::AbstractHeapType::Eq
                            | wasmparser::AbstractHeapType::I31
                    }
                )
        }
        _ => true,
    }
}

fn default_arg(ty: &ValType) -> Arg {
    use wasmparser::AbstractHeapType as A;
    match ty {
        ValType::I32 => Arg::I32(0),
        ValType::I64 => Arg::I64(0),
        ValType::F32 => Arg::F32(0),
        ValType::F64 => Arg::F64(0),
        ValType::V128 => Arg::V128(0),
        ValType::Ref(r) if r.is_nullable() => Arg::Null,
        ValType::Ref(r) => match r.heap_type() {
            HeapType::Abstract { ty: A::Extern, .. } => Arg::Extern(0),
            _ => Arg::I31(0),
        },
    }
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

    #[test]
    fn fuzz_input_derivation_is_deterministic() {
        let data = seeded_input(1, 2);
        assert_eq!(data, seeded_input(1, 2));
        assert_ne!(data, seeded_input(1, 3));
        let a = TestCase::from_fuzz_input(&data).unwrap();
        let b = TestCase::from_fuzz_input(&data).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn plan_survives_the_round_trip_through_wasm_and_wat() {
        for i in 0..20 {
            let case = TestCase::from_fuzz_input(&seeded_input(3, i)).unwrap();
            let from_wasm = TestCase::from_module_bytes(&case.to_module_bytes()).unwrap();
            assert_eq!(from_wasm, case);
            // Text round trips may re-encode (e.g. merge local declarations):
            // the plan and the printed module must survive.
            let from_wat = TestCase::from_module_bytes(case.to_wat().as_bytes()).unwrap();
            assert_eq!(from_wat.plan, case.plan);
            assert_eq!(from_wat.to_wat(), case.to_wat());
        }
    }

    #[test]
    fn module_without_plan_gets_the_default_plan() {
        let case = TestCase::from_module_bytes(
            br#"(module (func (export "f") (param i32 externref (ref extern)) (result i32) local.get 0)
                        (func (export "g") (param (ref $s)) ) (type $s (struct)))"#,
        )
        .unwrap();
        // `g` takes a non-null concrete reference the host cannot make.
        assert_eq!(case.plan.calls.len(), 1);
        assert_eq!(case.plan.calls[0].args, vec![Arg::I32(0), Arg::Null, Arg::Extern(0)]);
        assert_eq!(case.plan.profile, Profile::Gc);
        assert_eq!(case.plan.configs[0], ConfigId::Null);
    }

    #[test]
    fn bad_reproducers_are_clear_errors() {
        let err = TestCase::from_module_bytes(b"(module (func (result i32)))").unwrap_err();
        assert!(format!("{err:#}").contains("invalid module"), "{err:#}");
        let err = TestCase::from_module_bytes(b"(module (func").unwrap_err();
        assert!(!format!("{err:#}").is_empty());
        let err = TestCase::from_module_bytes(b"\0asm\x01\0\0\0\x01").unwrap_err();
        assert!(format!("{err:#}").contains("invalid module"), "{err:#}");
    }
}
