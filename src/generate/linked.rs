//! Linked modules: a case of two or three modules, each later one generated
//! against the exports of the earlier ones (and the host functions), so that
//! calls, globals, tables, memories and tags cross instance boundaries and
//! the same rec groups are declared again in every module (cross-module type
//! canonicalization).
//!
//! wasm-smith generates a module against an "available imports" module: it
//! copies that module's types and imports a random subset of its imports.
//! [`imports_from`] writes such a module from the earlier modules: every
//! type of each (shifted past the ones before it), then the host functions'
//! types, and an import of every export at its own type.

use crate::case::host::{self, HostFunc};
use crate::case::{Profile, linked_name};
use anyhow::Result;
use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasm_encoder::{EntityType, ImportSection, Module, RefType, TypeSection, ValType};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// Renumbers one module's type indices past the types copied before it.
struct Shift(u32);

impl Reencode for Shift {
    type Error = std::convert::Infallible;

    fn type_index(&mut self, ty: u32) -> Result<u32, ReencodeError<Self::Error>> {
        Ok(ty + self.0)
    }
}

/// One module's type section and the types of what it exports.
struct Exports<'a> {
    types: Option<wasmparser::TypeSectionReader<'a>>,
    type_count: u32,
    /// (name, type) of every export, in export order.
    exports: Vec<(&'a str, TypeRef)>,
}

impl<'a> Exports<'a> {
    fn parse(wasm: &'a [u8]) -> Result<Exports<'a>> {
        let (mut funcs, mut tables, mut memories, mut globals, mut tags) = (vec![], vec![], vec![], vec![], vec![]);
        let mut found = Exports { types: None, type_count: 0, exports: vec![] };
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    found.type_count = reader
                        .clone()
                        .into_iter()
                        .map(|g| g.map(|g| g.types().len() as u32))
                        .sum::<Result<u32, _>>()?;
                    found.types = Some(reader);
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        match import?.ty {
                            ty @ (TypeRef::Func(_) | TypeRef::FuncExact(_)) => funcs.push(ty),
                            ty @ TypeRef::Table(_) => tables.push(ty),
                            ty @ TypeRef::Memory(_) => memories.push(ty),
                            ty @ TypeRef::Global(_) => globals.push(ty),
                            ty @ TypeRef::Tag(_) => tags.push(ty),
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        funcs.push(TypeRef::Func(ty?));
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        tables.push(TypeRef::Table(table?.ty));
                    }
                }
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        memories.push(TypeRef::Memory(memory?));
                    }
                }
                Payload::GlobalSection(reader) => {
                    for global in reader {
                        globals.push(TypeRef::Global(global?.ty));
                    }
                }
                Payload::TagSection(reader) => {
                    for tag in reader {
                        tags.push(TypeRef::Tag(tag?));
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        let space = match export.kind {
                            ExternalKind::Func | ExternalKind::FuncExact => &funcs,
                            ExternalKind::Table => &tables,
                            ExternalKind::Memory => &memories,
                            ExternalKind::Global => &globals,
                            ExternalKind::Tag => &tags,
                        };
                        if let Some(ty) = space.get(export.index as usize) {
                            found.exports.push((export.name, *ty));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

/// The available-imports module for the module generated after `earlier`
/// (registered as `m0`, `m1`, … in order), with `profile`'s host functions.
/// Also returns how many functions it offers, which count against
/// wasm-smith's function budget.
pub fn imports_from(earlier: &[Vec<u8>], profile: Profile) -> Result<(Vec<u8>, usize)> {
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    let mut offset = 0;
    let mut funcs = 0;
    for (k, wasm) in earlier.iter().enumerate() {
        let module = Exports::parse(wasm)?;
        let mut shift = Shift(offset);
        if let Some(reader) = module.types {
            shift
                .parse_type_section(&mut types, reader)
                .map_err(|e| anyhow::anyhow!("types of {}: {e:?}", linked_name(k)))?;
        }
        for (name, ty) in module.exports {
            let ty = match ty {
                // Imported as a function of its type: wasm-smith does not
                // generate exact function imports.
                TypeRef::FuncExact(t) => TypeRef::Func(t),
                ty => ty,
            };
            funcs += matches!(ty, TypeRef::Func(_)) as usize;
            let entity: EntityType = shift.entity_type(ty).map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
            imports.import(&linked_name(k), name, entity);
        }
        offset += module.type_count;
    }
    for f in HostFunc::ALL.iter().filter(|f| f.in_profile(profile)) {
        let (params, results) = f.signature();
        let val = |t: &&str| match *t {
            "i32" => ValType::I32,
            "anyref" => ValType::Ref(RefType::ANYREF),
            _ => ValType::Ref(RefType::EXTERNREF),
        };
        types.ty().function(params.iter().map(val), results.iter().map(val));
        imports.import(host::MODULE, f.name(), EntityType::Function(offset));
        offset += 1;
        funcs += 1;
    }
    let mut module = Module::new();
    module.section(&types);
    module.section(&imports);
    Ok((module.finish(), funcs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_export_of_every_earlier_module_is_offered_at_its_own_type() {
        let first = wat::parse_str(
            r#"(module (rec (type $s (struct (field i32))) (type $f (func (param (ref $s)))))
                 (import "host" "gc" (func))
                 (func (export "take") (type $f))
                 (global (export "g") (mut (ref null $s)) (ref.null $s))
                 (table (export "t") 2 (ref null $f))
                 (memory (export "mem") 1)
                 (tag (export "e") (param (ref null $s))))"#,
        )
        .unwrap();
        let second =
            wat::parse_str(r#"(module (type $a (array i8)) (func (export "h") (result (ref null $a)) ref.null $a))"#)
                .unwrap();
        let (wasm, funcs) = imports_from(&[first, second], Profile::Gc).unwrap();
        wasmparser::Validator::new_with_features(Profile::Gc.features()).validate_all(&wasm).unwrap();
        assert_eq!(funcs, 2 + HostFunc::ALL.len());
        let text = wasmprinter::print_bytes(&wasm).unwrap();
        for import in [
            r#"(import "m0" "take" (func (;0;) (type 1)"#,
            r#"(import "m0" "g" (global (;0;) (mut (ref null 0))))"#,
            r#"(import "m0" "t" (table (;0;) 2 (ref null 1)))"#,
            r#"(import "m0" "mem" (memory (;0;) 1))"#,
            r#"(import "m0" "e" (tag (;0;) (type 3)"#,
            // The second module's own types come after the first one's.
            r#"(import "m1" "h" (func (;1;) (type 5)"#,
            r#"(import "host" "gc" (func (;2;) (type"#,
        ] {
            assert!(text.contains(import), "{import} not in\n{text}");
        }
    }
}
