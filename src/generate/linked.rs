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
//! types, and an import of every export at its own type and at the wider
//! types import matching allows (`Exports::wider`).

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

/// Renumbers one rec group of a module into its twin: references into the
/// group go to the twin's members, references to earlier types to the
/// copies of them (`Shift`).
struct Twin {
    shift: u32,
    /// The group's first member, in its module's numbering, and its size.
    first: u32,
    len: u32,
    /// Where the twin's first member lands.
    twin_first: u32,
}

impl Reencode for Twin {
    type Error = std::convert::Infallible;

    fn type_index(&mut self, ty: u32) -> Result<u32, ReencodeError<Self::Error>> {
        match ty.checked_sub(self.first) {
            Some(k) if k < self.len => Ok(self.twin_first + k),
            _ => Ok(ty + self.shift),
        }
    }
}

/// At most this many rec groups of one earlier module get a twin.
const TWINS_PER_MODULE: usize = 8;

/// One module's type section and the types of what it exports.
struct Exports<'a> {
    types: Option<wasmparser::TypeSectionReader<'a>>,
    type_count: u32,
    /// Each type's declared supertype, and its abstract heap type (`func`,
    /// `struct`, `array`).
    supertypes: Vec<Option<u32>>,
    kinds: Vec<wasmparser::AbstractHeapType>,
    /// (name, type) of every export, in export order.
    exports: Vec<(&'a str, TypeRef)>,
}

impl<'a> Exports<'a> {
    fn parse(wasm: &'a [u8]) -> Result<Exports<'a>> {
        let (mut funcs, mut tables, mut memories, mut globals, mut tags) = (vec![], vec![], vec![], vec![], vec![]);
        let mut found = Exports { types: None, type_count: 0, supertypes: vec![], kinds: vec![], exports: vec![] };
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader.clone() {
                        for sub in group?.into_types() {
                            found.supertypes.push(sub.supertype_idxs.first().and_then(|i| i.as_module_index()));
                            found.kinds.push(match sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(_) => wasmparser::AbstractHeapType::Func,
                                wasmparser::CompositeInnerType::Array(_) => wasmparser::AbstractHeapType::Array,
                                _ => wasmparser::AbstractHeapType::Struct,
                            });
                        }
                    }
                    found.type_count = found.supertypes.len() as u32;
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

impl Exports<'_> {
    /// The wider types an export of type `ty` can also be imported at
    /// (import matching is subtyping): a function at each declared
    /// supertype of its type; an immutable reference global at each
    /// declared supertype of its type, then at each abstract type above it
    /// (`struct`, `eq`, `any`…), in its own nullability, and at the
    /// nullable top of its hierarchy. Tables and mutable globals match only
    /// their own type.
    fn wider(&self, ty: TypeRef) -> Vec<TypeRef> {
        use wasmparser::{AbstractHeapType as A, HeapType, RefType as R, ValType as V};
        match ty {
            TypeRef::Func(t) => self.declared_supertypes(t).into_iter().map(TypeRef::Func).collect(),
            TypeRef::Global(g) if !g.mutable => {
                let V::Ref(r) = g.content_type else { return vec![] };
                let abstracts: &[A] = match r.heap_type() {
                    HeapType::Abstract { shared: true, .. } => return vec![],
                    HeapType::Abstract { ty, .. } => match ty {
                        A::Struct | A::Array | A::I31 => &[A::Eq, A::Any],
                        A::Eq => &[A::Any],
                        A::NoFunc => &[A::Func],
                        A::NoExtern => &[A::Extern],
                        A::NoExn => &[A::Exn],
                        A::None => &[A::Any],
                        _ => &[],
                    },
                    HeapType::Concrete(i) | HeapType::Exact(i) => {
                        match i.as_module_index().and_then(|i| self.kinds.get(i as usize)) {
                            Some(A::Func) => &[A::Func],
                            Some(A::Array) => &[A::Array, A::Eq, A::Any],
                            _ => &[A::Struct, A::Eq, A::Any],
                        }
                    }
                };
                let concrete = match r.heap_type() {
                    HeapType::Concrete(i) | HeapType::Exact(i) => i.as_module_index().map_or(vec![], |i| {
                        self.declared_supertypes(i)
                            .into_iter()
                            .map(|s| HeapType::Concrete(wasmparser::UnpackedIndex::Module(s)))
                            .collect()
                    }),
                    HeapType::Abstract { .. } => vec![],
                };
                let abstracts = abstracts.iter().map(|&ty| HeapType::Abstract { shared: false, ty });
                let top = abstracts.clone().next_back().map(|top| R::new(true, top));
                let mut wider: Vec<R> =
                    concrete.into_iter().chain(abstracts).filter_map(|h| R::new(r.is_nullable(), h)).collect();
                wider.extend(top.flatten());
                wider.dedup();
                wider.retain(|w| *w != r);
                let global = |w| TypeRef::Global(wasmparser::GlobalType { content_type: V::Ref(w), ..g });
                wider.into_iter().map(global).collect()
            }
            _ => vec![],
        }
    }

    /// `t`'s declared supertypes, nearest first.
    fn declared_supertypes(&self, mut t: u32) -> Vec<u32> {
        let mut chain = Vec::new();
        while let Some(Some(s)) = self.supertypes.get(t as usize) {
            chain.push(*s);
            t = *s;
        }
        chain
    }
}

/// The available-imports module for the module generated after `earlier`
/// (registered as `m0`, `m1`, … in order), with `profile`'s host functions:
/// each export offered at its own type and at its wider ones.
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
        let mut twins = 0;
        if let Some(reader) = module.types.clone() {
            shift
                .parse_type_section(&mut types, reader.clone())
                .map_err(|e| anyhow::anyhow!("types of {}: {e:?}", linked_name(k)))?;
            twins = twin_groups(&mut types, reader, offset, offset + module.type_count)
                .map_err(|e| anyhow::anyhow!("twin types of {}: {e}", linked_name(k)))?;
        }
        for &(name, ty) in &module.exports {
            let ty = match ty {
                // Imported as a function of its type: wasm-smith does not
                // generate exact function imports.
                TypeRef::FuncExact(t) => TypeRef::Func(t),
                ty => ty,
            };
            for ty in std::iter::once(ty).chain(module.wider(ty)) {
                funcs += matches!(ty, TypeRef::Func(_)) as usize;
                let entity: EntityType = shift.entity_type(ty).map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
                imports.import(&linked_name(k), name, entity);
            }
        }
        offset += module.type_count + twins;
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

/// Declares again, after a module's own types (copied at `shift`), the
/// first of its rec groups each with one more member, an empty struct, from
/// type index `at` on. A type's identity is its whole rec group, so each
/// twin is another type than the one it copies, though written alike: a
/// later module that tests or casts the earlier instance's objects against
/// it must fail, calls through a table of the original type must trap. An
/// engine that canonicalizes a type by its own definition, or by a prefix
/// of its group, would pass them. Returns how many types it added.
fn twin_groups(types: &mut TypeSection, reader: wasmparser::TypeSectionReader, shift: u32, at: u32) -> Result<u32> {
    let mut first = 0;
    let mut added = 0;
    for (n, group) in reader.into_iter().enumerate() {
        let group = group?;
        let len = group.types().len() as u32;
        if n < TWINS_PER_MODULE {
            let mut twin = Twin { shift, first, len, twin_first: at + added };
            let mut members = Vec::with_capacity(len as usize + 1);
            for sub in group.into_types() {
                members.push(twin.sub_type(sub).map_err(|e| anyhow::anyhow!("{e:?}"))?);
            }
            members.push(wasm_encoder::SubType {
                is_final: true,
                supertype_idxs: vec![],
                composite_type: wasm_encoder::CompositeType {
                    inner: wasm_encoder::CompositeInnerType::Struct(wasm_encoder::StructType { fields: Box::new([]) }),
                    shared: false,
                    descriptor: None,
                    describes: None,
                },
            });
            added += members.len() as u32;
            types.ty().rec(members);
        }
        first += len;
    }
    Ok(added)
}

/// The twins a module declares (`twin_groups`, copied into it by
/// wasm-smith): (original, twin) type index pairs, found by shape, since a
/// rewrite pass sees only the module. A group is the twin of an earlier one
/// when it is that group, its references into itself renumbered, plus a
/// final empty struct.
pub fn twins(wasm: &[u8]) -> Vec<(u32, u32)> {
    let mut groups: Vec<(u32, Vec<wasmparser::SubType>)> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(Payload::TypeSection(reader)) = payload else { continue };
        let mut first = 0;
        for group in reader.into_iter().flatten() {
            let members: Vec<wasmparser::SubType> = group.into_types().collect();
            let len = members.len() as u32;
            groups.push((first, members));
            first += len;
        }
    }
    // A group's members re-encoded through `r`, as bytes to compare.
    let encode = |r: &mut dyn FnMut(&wasmparser::SubType) -> Option<wasm_encoder::SubType>,
                  g: &[wasmparser::SubType]| {
        let mut section = TypeSection::new();
        for sub in g {
            section.ty().subtype(&r(sub)?);
        }
        let mut bytes = Vec::new();
        wasm_encoder::Encode::encode(&section, &mut bytes);
        Some(bytes)
    };
    let mut pairs = Vec::new();
    for (g, (twin_first, twin)) in groups.iter().enumerate() {
        let Some((last, members)) = twin.split_last() else { continue };
        let empty =
            matches!(&last.composite_type.inner, wasmparser::CompositeInnerType::Struct(s) if s.fields.is_empty());
        if members.is_empty() || !empty || !last.is_final || !last.supertype_idxs.is_empty() {
            continue;
        }
        let Some(own) = encode(&mut |s| wasm_encoder::reencode::RoundtripReencoder.sub_type(s.clone()).ok(), members)
        else {
            continue;
        };
        let original = groups[..g].iter().find(|(first, h)| {
            let mut renumber = Twin { shift: 0, first: *first, len: h.len() as u32, twin_first: *twin_first };
            h.len() == members.len() && encode(&mut |s| renumber.sub_type(s.clone()).ok(), h).as_ref() == Some(&own)
        });
        if let Some((first, h)) = original {
            pairs.extend((0..h.len() as u32).map(|k| (first + k, twin_first + k)));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_export_of_every_earlier_module_is_offered_at_its_own_type() {
        let first = wat::parse_str(
            r#"(module (rec (type $s (struct (field i32)))
                           (type $base (sub (func (param (ref $s)))))
                           (type $f (sub $base (func (param (ref $s))))))
                 (import "host" "gc" (func))
                 (func (export "take") (type $f))
                 (global (export "g") (mut (ref null $s)) (ref.null $s))
                 (global (export "k") (ref null $s) (ref.null $s))
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
        // `take` at its own type and at its declared supertype.
        assert_eq!(funcs, 3 + HostFunc::ALL.len());
        let text = wasmprinter::print_bytes(&wasm).unwrap();
        for import in [
            r#"(import "m0" "take" (func (;0;) (type 2)"#,
            r#"(import "m0" "take" (func (;1;) (type 1)"#,
            r#"(import "m0" "g" (global (;0;) (mut (ref null 0))))"#,
            // An immutable global also at each abstract type above its own.
            r#"(import "m0" "k" (global (;1;) (ref null 0)))"#,
            r#"(import "m0" "k" (global (;2;) structref))"#,
            r#"(import "m0" "k" (global (;3;) eqref))"#,
            r#"(import "m0" "k" (global (;4;) anyref))"#,
            r#"(import "m0" "t" (table (;0;) 2 (ref null 2)))"#,
            r#"(import "m0" "mem" (memory (;0;) 1))"#,
            r#"(import "m0" "e" (tag (;0;) (type 4)"#,
            // The second module's own types come after the first one's
            // and their twins.
            r#"(import "m1" "h" (func (;2;) (type 14)"#,
            r#"(import "host" "gc" (func (;3;) (type"#,
        ] {
            assert!(text.contains(import), "{import} not in\n{text}");
        }
        // Each rec group declared again with an empty struct after it, its
        // references into the group going to the twin's members.
        for twin in [
            "(type (;5;) (struct (field i32)))\n    (type (;6;) (sub (func (param (ref 5)))))\n    (type (;7;) (sub 6 (func (param (ref 5)))))\n    (type (;8;) (struct))",
            "(type (;11;) (func (param (ref null 0))))\n    (type (;12;) (struct))",
        ] {
            assert!(text.contains(twin), "{twin} not in\n{text}");
        }
    }

    #[test]
    fn twins_are_found_by_their_shape() {
        let first = wat::parse_str(
            r#"(module (rec (type $a (sub (struct (field (ref null $b))))) (type $b (struct (field i32))))
                       (type $f (func))
                       (global (export "k") (ref null $a) (ref.null $a)))"#,
        )
        .unwrap();
        let (wasm, _) = imports_from(&[first], Profile::Gc).unwrap();
        // $a, $b; $f; twins $a' $b' {} at 3..6; $f' {} at 6..8.
        assert_eq!(twins(&wasm), [(0, 3), (1, 4), (2, 6)]);
        // A group alike but for its empty struct's absence is no twin.
        let alike = wat::parse_str("(module (type (struct (field i32))) (type (struct (field i32))))").unwrap();
        assert_eq!(twins(&alike), []);
    }

    #[test]
    fn a_global_of_a_subtype_is_offered_at_each_declared_supertype() {
        let first = wat::parse_str(
            r#"(module (type $a (sub (struct)))
                       (type $b (sub $a (struct (field i32))))
                       (global (export "k") (ref $b) (struct.new $b (i32.const 1))))"#,
        )
        .unwrap();
        let (wasm, _) = imports_from(&[first], Profile::Gc).unwrap();
        wasmparser::Validator::new_with_features(Profile::Gc.features()).validate_all(&wasm).unwrap();
        let text = wasmprinter::print_bytes(&wasm).unwrap();
        let offered: Vec<&str> = text.lines().filter(|l| l.contains(r#""m0" "k""#)).map(str::trim).collect();
        assert_eq!(
            offered,
            [
                r#"(import "m0" "k" (global (;0;) (ref 1)))"#,
                r#"(import "m0" "k" (global (;1;) (ref 0)))"#,
                r#"(import "m0" "k" (global (;2;) (ref struct)))"#,
                r#"(import "m0" "k" (global (;3;) (ref eq)))"#,
                r#"(import "m0" "k" (global (;4;) (ref any)))"#,
                r#"(import "m0" "k" (global (;5;) anyref))"#,
            ]
        );
    }
}
