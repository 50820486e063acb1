//! Configuration ids: engine choice as data. A [`ConfigId`] names one engine
//! configuration; plans list the ones taking part, worker processes receive
//! them by name, and `engine::real_engine` builds them.

use crate::line::{self, Cap};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The configurations gcfuzz knows. The first three and the interpreter run
/// on every case; one of [`ConfigId::VARIANTS`] joins them per case; wasmi
/// joins cases inside its feature set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigId {
    /// Wasmtime, Cranelift native, Null collector: never collects, so it is
    /// the ground truth for rooting. The reference configuration.
    Null,
    /// Deferred reference counting collector, zeal-forced collections.
    Drc,
    /// Copying collector: moves objects, so a missed root becomes a stale
    /// pointer rather than a leak.
    Copying,
    /// DRC with Cranelift optimizations off.
    DrcO0,
    /// DRC with the single-pass register allocator.
    DrcSinglepass,
    /// Copying with Wasm-to-Wasm inlining on (stack maps of inlined frames).
    CopyingInline,
    /// Pulley, Wasmtime's interpreter, with DRC.
    PulleyDrc,
    /// wasmi 2.0 as an independent oracle for modules in its feature set.
    Wasmi,
    /// gcfuzz's own reference interpreter: the independent oracle for GC
    /// modules (it runs every case).
    Interp,
}

impl ConfigId {
    pub const ALL: &'static [ConfigId] = &[
        ConfigId::Null,
        ConfigId::Drc,
        ConfigId::Copying,
        ConfigId::DrcO0,
        ConfigId::DrcSinglepass,
        ConfigId::CopyingInline,
        ConfigId::PulleyDrc,
        ConfigId::Wasmi,
        ConfigId::Interp,
    ];
    /// One of these joins each generated case.
    pub const VARIANTS: &'static [ConfigId] =
        &[ConfigId::DrcO0, ConfigId::DrcSinglepass, ConfigId::CopyingInline, ConfigId::PulleyDrc];

    pub fn name(self) -> &'static str {
        match self {
            ConfigId::Null => "null",
            ConfigId::Drc => "drc",
            ConfigId::Copying => "copying",
            ConfigId::DrcO0 => "drc-o0",
            ConfigId::DrcSinglepass => "drc-singlepass",
            ConfigId::CopyingInline => "copying-inline",
            ConfigId::PulleyDrc => "pulley-drc",
            ConfigId::Wasmi => "wasmi",
            ConfigId::Interp => "interp",
        }
    }

    /// Whether this is a Wasmtime configuration (not an independent oracle).
    pub fn is_wasmtime(self) -> bool {
        !matches!(self, ConfigId::Wasmi | ConfigId::Interp)
    }

    /// Whether the Wasmtime line under test can run this configuration.
    pub fn on_line(self) -> bool {
        match self {
            ConfigId::Copying => line::has(Cap::Copying),
            ConfigId::CopyingInline => line::has(Cap::Copying) && line::has(Cap::Inlining),
            ConfigId::DrcSinglepass => line::has(Cap::SinglePass),
            _ => true,
        }
    }

    /// The family a configuration belongs to for a finding's identity: its
    /// collector for Wasmtime configurations (the variants drawn per case
    /// differ in compiler settings, not in which collector's bug they show),
    /// its own name for the other engines.
    pub fn family(self) -> &'static str {
        match self {
            ConfigId::Null => "null",
            ConfigId::Drc | ConfigId::DrcO0 | ConfigId::DrcSinglepass | ConfigId::PulleyDrc => "drc",
            ConfigId::Copying | ConfigId::CopyingInline => "copying",
            ConfigId::Wasmi => "wasmi",
            ConfigId::Interp => "interp",
        }
    }

    pub fn from_name(name: &str) -> Option<ConfigId> {
        ConfigId::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for ConfigId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_round_trip() {
        for &id in ConfigId::ALL {
            assert_eq!(ConfigId::from_name(id.name()), Some(id));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{}\"", id.name()));
        }
        assert_eq!(ConfigId::from_name("nope"), None);
    }
}
