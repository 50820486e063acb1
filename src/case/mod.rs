//! A test case: module bytes plus the execution plan, derived deterministically
//! from fuzz input bytes (by `generate`) so that a crash file replays exactly.
//!
//! Data only: the case, its plan, configuration ids, profiles, the host
//! import ABI and the plan section codec. Nothing here runs, generates or
//! judges; every stage imports this folder and it imports no stage.

mod codec;
mod config;
pub mod host;
mod info;
pub mod knobs;
mod plan;
mod profile;
mod script;
mod testcase;

pub use codec::PLAN_SECTION;
pub use config::ConfigId;
pub use info::{AvoidRule, ModuleInfo, allocates, contains_sequence, is_allocation, operator_name};
pub use knobs::{Knob, Knobs, Setting};
pub use plan::{Arg, Call, Plan, arg_possible, linked_name};
pub use profile::{Profile, fuzzed_features, has_v128_fields, line_refuses, needs};
pub use script::PLAN_LINE;
pub use testcase::{TestCase, plan_input, seeded_input};
