//! The plan section codec: the plan travels inside the module as a custom
//! section ([`PLAN_SECTION`]), so a reproducer `.wasm` (or its `.wat`) is
//! self-contained: `gcfuzz repro` runs exactly the calls, arguments and GC
//! settings that found the bug.

use super::{ModuleInfo, Plan, Profile, TestCase, fuzzed_features, line_refuses};
use crate::line;
use anyhow::{Context, Result, bail};

/// Custom section carrying the JSON-encoded [`Plan`].
pub const PLAN_SECTION: &str = "gcfuzz:plan";

impl TestCase {
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
        if wasmparser::Validator::new_with_features(fuzzed_features()).validate_all(wasm).is_ok() {
            bail!("the module uses a proposal Wasmtime {} does not run ({})", line::wasmtime_version(), e.message());
        }
        return Err(e).context("invalid module");
    }
    if let Some(what) = line_refuses(wasm) {
        bail!("the module uses {what}, which Wasmtime {} refuses", line::wasmtime_version());
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
                // configurations this one lacks (see `line`).
                p.configs.retain(|c| c.on_line());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Arg, ConfigId};

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
