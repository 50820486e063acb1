//! An instruction-level reducer. wasm-shrink's mutators do not handle GC
//! types, so it leaves GC modules as they are; this reducer works on any
//! module: it replaces whole function bodies with `unreachable`, then deletes
//! ever smaller runs of exports and instructions (delta debugging), keeping a
//! candidate only when it validates and the caller's predicate still holds.
//!
//! Instructions are kept as raw byte slices: Wasm operators are position
//! independent (branch targets are relative depths), so deleting a run and
//! re-validating is all it takes.

use crate::case::Profile;
use anyhow::{Result, bail};
use wasmparser::{BinaryReader, Parser, Payload};

/// A module split into sections; function bodies split into instructions,
/// the export section into entries (both removable), the rest raw.
#[derive(Clone)]
struct Split {
    parts: Vec<Part>,
}

#[derive(Clone)]
enum Part {
    /// The header or a whole section as it was (id, size, contents).
    Raw(Vec<u8>),
    /// Export entries (name, kind, index), raw.
    Exports(Vec<Vec<u8>>),
    Code(Vec<Body>),
}

#[derive(Clone)]
struct Body {
    locals: Vec<u8>,
    /// One entry per instruction, the function's final `end` excluded.
    ops: Vec<Vec<u8>>,
}

const UNREACHABLE: u8 = 0x00;
const END: u8 = 0x0b;
const EXPORT_SECTION: u8 = 7;
const CODE_SECTION: u8 = 10;

/// Appends `v` as an unsigned LEB128 (wasm-encoder's encoding).
fn leb(v: usize, out: &mut Vec<u8>) {
    wasm_encoder::Encode::encode(&u32::try_from(v).expect("module sizes fit in u32"), out);
}

/// Splits a vector section's contents into its entries' raw bytes, using
/// `read` to step over one entry.
fn entries(contents: &[u8], read: impl Fn(&mut BinaryReader) -> Result<()>) -> Result<Vec<Vec<u8>>> {
    let mut reader = BinaryReader::new(contents, 0);
    let count = reader.read_var_u32()?;
    let mut out = Vec::new();
    for _ in 0..count {
        let start = reader.original_position() as usize;
        read(&mut reader)?;
        out.push(contents[start..reader.original_position() as usize].to_vec());
    }
    Ok(out)
}

fn body(wasm: &[u8], body: wasmparser::FunctionBody) -> Result<Body> {
    let mut locals = body.get_locals_reader()?;
    for _ in 0..locals.get_count() {
        locals.read()?;
    }
    let range = body.range();
    let range = range.start as usize..range.end as usize;
    let ops_start = locals.original_position() as usize;
    let mut offsets = Vec::new();
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        offsets.push(reader.original_position() as usize);
        reader.read()?;
    }
    offsets.push(range.end);
    // The last operator is the function's `end`.
    let ops = offsets.windows(2).take(offsets.len().saturating_sub(2)).map(|w| wasm[w[0]..w[1]].to_vec()).collect();
    Ok(Body { locals: wasm[range.start..ops_start].to_vec(), ops })
}

impl Split {
    fn parse(wasm: &[u8]) -> Result<Split> {
        let mut bodies = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::CodeSectionEntry(b) = payload? {
                bodies.push(body(wasm, b)?);
            }
        }
        let mut parts = vec![Part::Raw(wasm[..8].to_vec())];
        let mut offset = 8;
        while offset < wasm.len() {
            let mut reader = BinaryReader::new(&wasm[offset + 1..], 0);
            let size = reader.read_var_u32()? as usize;
            let start = offset + 1 + reader.original_position() as usize;
            let end = start + size;
            parts.push(match wasm[offset] {
                CODE_SECTION => Part::Code(std::mem::take(&mut bodies)),
                EXPORT_SECTION => Part::Exports(entries(&wasm[start..end], |r| {
                    r.read_string()?;
                    r.read_u8()?;
                    r.read_var_u32()?;
                    Ok(())
                })?),
                _ => Part::Raw(wasm[offset..end].to_vec()),
            });
            offset = end;
        }
        Ok(Split { parts })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let section = |id: u8, contents: Vec<u8>, out: &mut Vec<u8>| {
            out.push(id);
            leb(contents.len(), out);
            out.extend_from_slice(&contents);
        };
        for part in &self.parts {
            match part {
                Part::Raw(bytes) => out.extend_from_slice(bytes),
                Part::Exports(entries) => {
                    let mut contents = Vec::new();
                    leb(entries.len(), &mut contents);
                    entries.iter().for_each(|e| contents.extend_from_slice(e));
                    section(EXPORT_SECTION, contents, &mut out);
                }
                Part::Code(bodies) => {
                    let mut contents = Vec::new();
                    leb(bodies.len(), &mut contents);
                    for body in bodies {
                        let mut bytes = body.locals.clone();
                        body.ops.iter().for_each(|op| bytes.extend_from_slice(op));
                        bytes.push(END);
                        leb(bytes.len(), &mut contents);
                        contents.extend_from_slice(&bytes);
                    }
                    section(CODE_SECTION, contents, &mut out);
                }
            }
        }
        out
    }

    /// The removable items: sections, export entries and instructions.
    fn items(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Raw(_) => 1,
                Part::Exports(e) => e.len(),
                Part::Code(bodies) => bodies.iter().map(|b| b.ops.len()).sum(),
            })
            .sum()
    }

    /// Lists of removable items: the export entries, then each body's ops.
    fn lists(&mut self) -> Vec<&mut Vec<Vec<u8>>> {
        let mut lists = Vec::new();
        for part in &mut self.parts {
            match part {
                Part::Raw(_) => {}
                Part::Exports(e) => lists.push(e),
                Part::Code(bodies) => lists.extend(bodies.iter_mut().map(|b| &mut b.ops)),
            }
        }
        lists
    }

    fn bodies(&mut self) -> Option<&mut Vec<Body>> {
        self.parts.iter_mut().find_map(|p| match p {
            Part::Code(bodies) => Some(bodies),
            _ => None,
        })
    }
}

fn valid(wasm: &[u8]) -> bool {
    wasmparser::Validator::new_with_features(Profile::Gc.features()).validate_all(wasm).is_ok()
}

/// Reduces `wasm` while `interesting` holds. `on_smaller` hears each new
/// smallest size. The input itself must be interesting.
pub fn reduce(
    wasm: &[u8],
    mut interesting: impl FnMut(&[u8]) -> Result<bool>,
    mut on_smaller: impl FnMut(usize),
) -> Result<Vec<u8>> {
    let mut best = Split::parse(wasm)?;
    let mut best_len = best.encode().len();
    if best.encode() != wasm && !interesting(&best.encode())? {
        bail!("re-encoded module no longer reproduces");
    }
    let mut try_candidate = |candidate: Split, best: &mut Split| -> Result<bool> {
        let bytes = candidate.encode();
        if bytes.len() >= best_len || !valid(&bytes) || !interesting(&bytes)? {
            return Ok(false);
        }
        best_len = bytes.len();
        on_smaller(best_len);
        *best = candidate;
        Ok(true)
    };
    loop {
        let before = best.items();
        // Whole bodies first, largest first: one run removes a function's code.
        let sizes: Vec<usize> = best.bodies().map(|b| b.iter().map(|b| b.ops.len()).collect()).unwrap_or_default();
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
        for f in order.into_iter().filter(|&f| sizes[f] > 1) {
            let mut candidate = best.clone();
            candidate.bodies().expect("has code")[f].ops = vec![vec![UNREACHABLE]];
            try_candidate(candidate, &mut best)?;
        }
        // Whole sections (names, unused memories, globals, data…); the
        // header is part 0.
        let mut p = 1;
        while p < best.parts.len() {
            let mut candidate = best.clone();
            candidate.parts.remove(p);
            if !try_candidate(candidate, &mut best)? {
                p += 1;
            }
        }
        // Then runs of items in each list, halving the run length down to one.
        for l in 0..best.lists().len() {
            let mut chunk = best.lists()[l].len() / 2;
            while chunk >= 1 {
                let mut i = 0;
                while i < best.lists()[l].len() {
                    let mut candidate = best.clone();
                    let list = &mut candidate.lists()[l];
                    let end = (i + chunk).min(list.len());
                    list.drain(i..end);
                    if !try_candidate(candidate, &mut best)? {
                        i += chunk;
                    }
                }
                chunk /= 2;
            }
        }
        if best.items() == before {
            return Ok(best.encode());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_round_trips_and_reduces_to_what_matters() {
        let wasm = wat::parse_str(
            r#"(module
                 (type $s (struct (field i32)))
                 (global $g (mut i32) (i32.const 0))
                 (func (export "f") (result i32)
                   (drop (i32.add (i32.const 1) (i32.const 2)))
                   (drop (struct.new $s (i32.const 3)))
                   (global.set $g (i32.const 42))
                   (i32.mul (i32.const 6) (i32.const 7)))
                 (func (export "g") (local i64) (local.set 0 (i64.const 9)) (nop) (nop))
                 (data "abc"))"#,
        )
        .unwrap();
        assert_eq!(Split::parse(&wasm).unwrap().encode(), wasm);
        // "Interesting": the module still sets the global to 42.
        let keeps_store = |w: &[u8]| -> Result<bool> {
            let text = wasmprinter::print_bytes(w)?;
            Ok(text.contains("i32.const 42") && text.contains("global.set"))
        };
        let reduced = reduce(&wasm, keeps_store, |_| {}).unwrap();
        let text = wasmprinter::print_bytes(&reduced).unwrap();
        assert!(valid(&reduced));
        assert!(reduced.len() < wasm.len());
        assert!(!text.contains("struct.new") && !text.contains("i32.add") && !text.contains("i64.const 9"), "{text}");
        assert!(text.contains("global.set"), "{text}");
    }
}
