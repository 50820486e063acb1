//! Triage: what happens to a finding after the oracle reports it. Confirming
//! it in a fresh worker before it is stored ([`confirm`]), or finding the
//! earlier cases it needs when it does not reproduce alone ([`history`]),
//! opening a
//! reproducer file and re-checking it ([`open`]), minimizing it ([`shrink`],
//! with the instruction-level [`reduce`]), finding the settings it needs
//! ([`narrow`]), and bucketing a directory of crash inputs ([`bulk`]).

pub mod bulk;
pub mod confirm;
pub mod history;
pub mod narrow;
pub mod open;
pub mod reduce;
pub mod shrink;
