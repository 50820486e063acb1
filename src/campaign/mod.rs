//! Campaigns: the loops that drive the pipeline. `gcfuzz run` ([`run`]), the
//! scheduled job over the libFuzzer targets ([`nightly`]), the libFuzzer
//! entry points themselves ([`fuzz`]), and the generator statistics behind
//! `gcfuzz stats` ([`stats`], and the operand edges the interpreter meets:
//! [`edges`]). What a campaign reports is in `summary`.

pub mod edges;
pub mod fuzz;
pub mod nightly;
mod progress;
pub mod run;
pub mod stats;
mod summary;
