//! The execution plan: which exports to call with which arguments, host-forced
//! collections, GC settings, and the configurations taking part.

use super::{ConfigId, Knobs, ModuleInfo, Profile};
use serde::{Deserialize, Serialize};
use wasmparser::{HeapType, ValType};

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
    /// Engine settings beyond collector, opt level and zeal, drawn per case
    /// for the collecting Wasmtime configurations (`case::knobs`).
    #[serde(default, skip_serializing_if = "Knobs::is_empty")]
    pub knobs: Knobs,
    /// The configurations taking part; the first is the reference.
    pub configs: Vec<ConfigId>,
    /// Earlier cases to run first, in the same engines, for a bug that
    /// needs the history of a long-lived engine (`triage::history`): each a
    /// reproducer's bytes (its own plan embedded), hex-encoded, oldest
    /// first. Empty for almost every case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<String>,
}

impl Plan {
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
        configs.retain(|c| c.on_line());
        if profile == Profile::RefTypes {
            configs.push(ConfigId::Wasmi);
        }
        configs.push(ConfigId::Interp);
        Plan { profile, calls, zeal: Some(1), gc_heap_initial: None, knobs: Knobs::new(), configs, history: vec![] }
    }
}

/// Whether the host can make an argument of this type.
pub fn arg_possible(ty: &ValType) -> bool {
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
