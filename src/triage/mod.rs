//! Triage: what happens to a finding after the oracle reports it. Opening a
//! reproducer file and re-checking it ([`open`]), minimizing it ([`shrink`],
//! with the instruction-level [`reduce`]), finding the settings it needs
//! ([`narrow`]), and bucketing a directory of crash inputs ([`bulk`]).

pub mod bulk;
pub mod narrow;
pub mod open;
pub mod reduce;
pub mod shrink;
