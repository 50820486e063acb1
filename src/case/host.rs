//! The host import ABI: the functions every engine offers generated modules
//! under the import module [`MODULE`], their names and signatures, and the
//! import declarations generators hand to wasm-smith. Each engine adapter
//! matches on [`HostFunc`], so a new host function is a compile error in
//! every adapter until it is implemented there.

use super::Profile;

/// Linear memory (and GC heap) and table limits the host sets, identical in
/// every engine so that `memory.grow` / `table.grow` fail at the same point.
pub const MEMORY_LIMIT: usize = 16 << 20;
pub const TABLE_LIMIT: usize = 10_000;

/// Name of the host module every generated module may import from.
pub const MODULE: &str = "host";

/// One host function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostFunc {
    /// `gc: [] -> []` forces a collection, so one can happen at any call site.
    Gc,
    /// `gc_any: [anyref] -> [anyref]` forces one while the host holds the argument.
    GcAny,
    /// `gc_extern: [externref] -> [externref]` likewise for `externref`.
    GcExtern,
    /// `extern_new: [i32] -> [externref]` makes a host `externref` with that payload.
    ExternNew,
    /// `extern_id: [externref] -> [i32]` reads the payload back (-1 for null,
    /// -2 for a reference the host did not make).
    ExternId,
}

impl HostFunc {
    pub const ALL: &'static [HostFunc] =
        &[HostFunc::Gc, HostFunc::GcAny, HostFunc::GcExtern, HostFunc::ExternNew, HostFunc::ExternId];

    pub fn name(self) -> &'static str {
        match self {
            HostFunc::Gc => "gc",
            HostFunc::GcAny => "gc_any",
            HostFunc::GcExtern => "gc_extern",
            HostFunc::ExternNew => "extern_new",
            HostFunc::ExternId => "extern_id",
        }
    }

    /// The host function an import `module.name` names, if any.
    pub fn import(module: &str, name: &str) -> Option<HostFunc> {
        (module == MODULE).then(|| HostFunc::ALL.iter().copied().find(|f| f.name() == name)).flatten()
    }

    /// Parameter and result types, in text form.
    pub fn signature(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            HostFunc::Gc => (&[], &[]),
            HostFunc::GcAny => (&["anyref"], &["anyref"]),
            HostFunc::GcExtern => (&["externref"], &["externref"]),
            HostFunc::ExternNew => (&["i32"], &["externref"]),
            HostFunc::ExternId => (&["externref"], &["i32"]),
        }
    }

    /// Whether calling it forces a collection.
    pub fn collects(self) -> bool {
        matches!(self, HostFunc::Gc | HostFunc::GcAny | HostFunc::GcExtern)
    }

    /// Whether modules of `profile` may import it (`anyref` is GC only).
    pub fn in_profile(self, profile: Profile) -> bool {
        profile == Profile::Gc || self != HostFunc::GcAny
    }
}

/// The import declarations on offer to modules of `profile`, as a WAT module
/// (what wasm-smith's `available_imports` takes).
pub fn imports_wat(profile: Profile) -> String {
    let mut out = String::from("(module\n");
    for f in HostFunc::ALL.iter().filter(|f| f.in_profile(profile)) {
        let (params, results) = f.signature();
        let list = |kind: &str, tys: &[&str]| match tys {
            [] => String::new(),
            tys => format!(" ({kind} {})", tys.join(" ")),
        };
        out.push_str(&format!(
            "  (import \"{MODULE}\" \"{}\" (func{}{}))\n",
            f.name(),
            list("param", params),
            list("result", results)
        ));
    }
    out.push(')');
    out
}

/// The host module for Wasmtime's `.wast` runner, written in Wasm on top of
/// its `wasmtime.gc` import. `extern_new` cannot make a host `externref` from
/// inside Wasm, so it returns an `i31` converted to `externref` with the same
/// payload, which `extern_id` reads back.
pub const WAST_MODULE: &str = r#"(module $host
  (import "wasmtime" "gc" (func $gc))
  (func (export "gc") (call $gc))
  (func (export "gc_any") (param anyref) (result anyref) (call $gc) (local.get 0))
  (func (export "gc_extern") (param externref) (result externref) (call $gc) (local.get 0))
  (func (export "extern_new") (param i32) (result externref)
    (extern.convert_any (ref.i31 (local.get 0))))
  (func (export "extern_id") (param externref) (result i32)
    (if (ref.is_null (local.get 0)) (then (return (i32.const -1))))
    (if (ref.test (ref i31) (any.convert_extern (local.get 0)))
      (then (return (i31.get_s (ref.cast (ref i31) (any.convert_extern (local.get 0)))))))
    (i32.const -2)))
(register "host" $host)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_declarations_name_every_function_of_the_profile() {
        let gc = wat::parse_str(imports_wat(Profile::Gc)).unwrap();
        let reftypes = wat::parse_str(imports_wat(Profile::RefTypes)).unwrap();
        let names = |wasm: &[u8]| -> Vec<String> {
            wasmparser::Parser::new(0)
                .parse_all(wasm)
                .filter_map(|p| match p {
                    Ok(wasmparser::Payload::ImportSection(r)) => {
                        Some(r.into_imports().map(|i| i.unwrap().name.to_string()).collect::<Vec<_>>())
                    }
                    _ => None,
                })
                .flatten()
                .collect()
        };
        assert_eq!(names(&gc), ["gc", "gc_any", "gc_extern", "extern_new", "extern_id"]);
        assert_eq!(names(&reftypes), ["gc", "gc_extern", "extern_new", "extern_id"]);
        // The wast host module exports the same functions.
        for f in HostFunc::ALL {
            assert!(WAST_MODULE.contains(&format!("(export \"{}\")", f.name())), "{f:?}");
        }
        assert_eq!(HostFunc::import("host", "gc_any"), Some(HostFunc::GcAny));
        assert_eq!(HostFunc::import("env", "gc"), None);
    }
}
