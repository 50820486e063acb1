//! The oracle: judging what the engines did. [`compare`] sets outcomes side
//! by side by shape, [`finding`] turns crashes and disagreements into
//! findings with signatures (their crash frames read by [`frames`]), [`leak`] reads exhaustion against Null's heap
//! as a leak, and [`check`] is the one-case check every stage after
//! execution calls.

pub mod check;
pub mod compare;
mod diff;
pub mod finding;
pub mod frames;
pub mod leak;

pub use check::{CaseReport, check_case};
pub use finding::{Finding, FindingKind, Problem};
