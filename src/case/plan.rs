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
    /// Result `result` of call `call` of this plan (an earlier one), which
    /// the host has held since: GC objects round-tripping through the host.
    /// If that call did not return, this call is not made
    /// ([`Arg::NOT_RETURNED`]).
    Earlier {
        call: u32,
        result: u32,
    },
}

impl Arg {
    /// How a call whose [`Arg::Earlier`] has no value is reported, alike by
    /// every engine.
    pub const NOT_RETURNED: &'static str = "not made: an argument comes from a call that did not return";
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
    /// Whose export: linked module `i` of the case (`Plan::linked`); absent
    /// for the main module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<u32>,
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
    /// Modules instantiated before the main one, in order, each registered
    /// under [`linked_name`] for the later ones to import from: hex-encoded
    /// module bytes. Empty for one-module cases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked: Vec<String>,
}

/// The import module name linked module `i` is registered under.
pub fn linked_name(i: usize) -> String {
    format!("m{i}")
}

impl Plan {
    /// This plan without call `i`: arguments that were its results become
    /// nulls, later calls' references to earlier ones are renumbered.
    pub fn without_call(&self, i: usize) -> Plan {
        let mut plan = self.clone();
        plan.calls.remove(i);
        for call in &mut plan.calls[i..] {
            for arg in &mut call.args {
                if let Arg::Earlier { call: from, .. } = arg {
                    match (*from as usize).cmp(&i) {
                        std::cmp::Ordering::Equal => *arg = Arg::Null,
                        std::cmp::Ordering::Greater => *from -= 1,
                        std::cmp::Ordering::Less => {}
                    }
                }
            }
        }
        plan
    }

    /// This plan with `call` inserted as call `i`: later calls' references
    /// to earlier ones are renumbered.
    pub fn with_call_at(&self, i: usize, call: Call) -> Plan {
        let mut plan = self.clone();
        for later in &mut plan.calls[i..] {
            for arg in &mut later.args {
                if let Arg::Earlier { call: from, .. } = arg
                    && *from as usize >= i
                {
                    *from += 1;
                }
            }
        }
        plan.calls.insert(i, call);
        plan
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
                module: None,
            })
            .collect();
        let mut configs = vec![ConfigId::Null, ConfigId::Drc, ConfigId::Copying];
        configs.extend_from_slice(ConfigId::VARIANTS);
        configs.retain(|c| c.on_line());
        if profile == Profile::RefTypes {
            configs.push(ConfigId::Wasmi);
        }
        configs.push(ConfigId::Interp);
        Plan {
            profile,
            calls,
            zeal: Some(1),
            gc_heap_initial: None,
            knobs: Knobs::new(),
            configs,
            history: vec![],
            linked: vec![],
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_a_call_renumbers_the_results_later_calls_hold() {
        let call =
            |args: Vec<Arg>| Call { export: "f".into(), args, collect_before: false, expect: None, module: None };
        let plan = Plan {
            profile: Profile::Gc,
            calls: vec![
                call(vec![]),
                call(vec![]),
                call(vec![Arg::Earlier { call: 0, result: 0 }, Arg::Earlier { call: 1, result: 2 }]),
            ],
            zeal: None,
            gc_heap_initial: None,
            knobs: Knobs::new(),
            configs: vec![],
            history: vec![],
            linked: vec![],
        };
        let without_first = plan.without_call(0);
        assert_eq!(without_first.calls[1].args, [Arg::Null, Arg::Earlier { call: 0, result: 2 }]);
        let without_second = plan.without_call(1);
        assert_eq!(without_second.calls[1].args, [Arg::Earlier { call: 0, result: 0 }, Arg::Null]);
        assert_eq!(plan.without_call(2).calls.len(), 2);
        // Inserting a call renumbers the other way; dropping it again undoes it.
        let with = plan.with_call_at(1, call(vec![Arg::I32(5)]));
        assert_eq!(with.calls[1].args, [Arg::I32(5)]);
        assert_eq!(with.calls[3].args, [Arg::Earlier { call: 0, result: 0 }, Arg::Earlier { call: 2, result: 2 }]);
        assert_eq!(with.without_call(1), plan);
    }
}
