//! The plan section codec: the plan travels inside the module as a custom
//! section ([`PLAN_SECTION`]), so a reproducer `.wasm` (or its `.wat`) is
//! self-contained: `gcfuzz repro` runs exactly the calls, arguments and GC
//! settings that found the bug.

use super::host::HostFunc;
use super::{ModuleInfo, Plan, Profile, TestCase, fuzzed_features, line_refuses, linked_name};
use crate::line;
use anyhow::{Context, Result, bail};

/// Custom section carrying the JSON-encoded [`Plan`].
pub const PLAN_SECTION: &str = "gcfuzz:plan";

impl TestCase {
    /// Reads a `.wasm` or `.wat` reproducer. Its plan section, when present,
    /// gives the plan; otherwise every export is called once with default
    /// arguments on every configuration that can run the module.
    pub fn from_module_bytes(bytes: &[u8]) -> Result<TestCase> {
        let wasm = wat::parse_bytes(bytes).map_err(|e| anyhow::anyhow!("{}", wat_error(&e.to_string())))?;
        check_module(&wasm)?;
        let (wasm, plan) = split_plan(&wasm)?;
        let plan = match plan {
            Some(plan) => plan,
            None => {
                let info = ModuleInfo::parse(&wasm)?;
                Plan::default_for(&wasm, &info)
            }
        };
        let case = TestCase { wasm, plan };
        let linked = case.linked().context("plan section: linked modules")?;
        for (i, module) in linked.iter().enumerate() {
            check_module(module)
                .and_then(|()| check_imports(module, i))
                .with_context(|| format!("linked module {}", linked_name(i)))?;
        }
        check_imports(&case.wasm, linked.len())?;
        Ok(case)
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

/// A WAT error in one line, with its position: the message, then where
/// (`at line L, column C`) from the rendered `--> <anon>:L:C` line.
fn wat_error(rendered: &str) -> String {
    let message = rendered.lines().next().unwrap_or("").trim();
    let at = rendered.lines().find_map(|l| l.trim().strip_prefix("-->")).and_then(|loc| {
        let mut parts = loc.trim().rsplitn(3, ':');
        let col = parts.next()?.parse::<u32>().ok()?;
        let line = parts.next()?.parse::<u32>().ok()?;
        Some(format!(" at line {line}, column {col}"))
    });
    format!("{message}{}", at.unwrap_or_default())
}

/// The first import that is neither one of the host functions nor an export
/// of one of the `linked` modules before it, if any: every engine would
/// fail to link it alike, which compares as agreement.
fn foreign_import(wasm: &[u8], linked: usize) -> Option<(String, String)> {
    wasmparser::Parser::new(0).parse_all(wasm).find_map(|payload| match payload {
        Ok(wasmparser::Payload::ImportSection(r)) => r.into_imports().flatten().find_map(|i| {
            let host = matches!(i.ty, wasmparser::TypeRef::Func(_)) && HostFunc::import(i.module, i.name).is_some();
            let earlier = (0..linked).any(|k| linked_name(k) == i.module);
            (!host && !earlier).then(|| (i.module.to_string(), i.name.to_string()))
        }),
        _ => None,
    })
}

/// Refuses a module that imports what neither the host nor the modules
/// linked before it provide.
fn check_imports(wasm: &[u8], linked: usize) -> Result<()> {
    if let Some((module, name)) = foreign_import(wasm, linked) {
        let earlier = match linked {
            0 => String::new(),
            n => format!(" and the exports of the {n} module(s) linked before it"),
        };
        bail!(
            "the module imports {module}.{name}; gcfuzz provides only the `{}` functions{earlier}",
            super::host::MODULE
        );
    }
    Ok(())
}

/// Validates a module under the fuzzed features and the line's refusals, so
/// bad input gets a clear error here rather than a confusing one later.
fn check_module(wasm: &[u8]) -> Result<()> {
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
    Ok(())
}

/// Splits the plan section off a (valid) module.
fn split_plan(wasm: &[u8]) -> Result<(Vec<u8>, Option<Plan>)> {
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
                // configurations or knobs this one lacks (see `line`).
                p.configs.retain(|c| c.on_line());
                p.knobs.retain(|k, _| k.on_line());
                super::knobs::check(&p.knobs).context("plan section")?;
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
        let err = TestCase::from_module_bytes(b"(module\n  (func (result i32)\n    i32.const 1 oops))").unwrap_err();
        assert!(format!("{err:#}").ends_with("at line 3, column 17"), "{err:#}");
        let err = TestCase::from_module_bytes(br#"(module (import "env" "f" (func)))"#).unwrap_err();
        assert!(format!("{err:#}").contains("imports env.f"), "{err:#}");
        let err = TestCase::from_module_bytes(br#"(module (import "host" "gc" (global i32)))"#).unwrap_err();
        assert!(format!("{err:#}").contains("imports host.gc"), "{err:#}");
    }
}
