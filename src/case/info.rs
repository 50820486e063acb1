//! What the plan builder and the statistics need to know about a module:
//! its exports with their parameter types, whether it allocates, and
//! whether it contains an operator sequence (a known bug's avoid rule).

use anyhow::Result;
use wasmparser::{CompositeInnerType, ExternalKind, HeapType, Operator, Parser, Payload, ValType};

/// What the plan builder needs to know about a module.
pub struct ModuleInfo {
    /// Exported functions in export order, with parameter types.
    pub exported_funcs: Vec<(String, Vec<ValType>)>,
    /// For each type index, whether it is a function type.
    pub is_func_type: Vec<bool>,
}

impl ModuleInfo {
    pub fn parse(wasm: &[u8]) -> Result<ModuleInfo> {
        let mut types: Vec<Option<Vec<ValType>>> = Vec::new();
        let mut func_types: Vec<u32> = Vec::new();
        let mut exported_funcs = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group?.into_types() {
                            types.push(match &sub.composite_type.inner {
                                CompositeInnerType::Func(f) => Some(f.params().to_vec()),
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        if let wasmparser::TypeRef::Func(ty) = import?.ty {
                            func_types.push(ty);
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        func_types.push(ty?);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        if export.kind == ExternalKind::Func {
                            let ty = func_types.get(export.index as usize).copied();
                            let params = ty.and_then(|t| types.get(t as usize).cloned().flatten());
                            exported_funcs.push((export.name.to_string(), params.unwrap_or_default()));
                        }
                    }
                }
                _ => {}
            }
        }
        let is_func_type = types.iter().map(Option::is_some).collect();
        Ok(ModuleInfo { exported_funcs, is_func_type })
    }
}

impl ModuleInfo {
    /// The top of a reference type's hierarchy (`any`, `func`, `extern` or
    /// `exn`), which decides what a null of it is to a host.
    pub fn hierarchy(&self, ty: &ValType) -> &'static str {
        use wasmparser::AbstractHeapType as A;
        let ValType::Ref(r) = ty else { return "any" };
        match r.heap_type() {
            HeapType::Abstract { ty: A::Func | A::NoFunc, .. } => "func",
            HeapType::Abstract { ty: A::Extern | A::NoExtern, .. } => "extern",
            HeapType::Abstract { ty: A::Exn | A::NoExn, .. } => "exn",
            HeapType::Abstract { .. } => "any",
            HeapType::Concrete(i) | HeapType::Exact(i) => match i.as_module_index() {
                Some(i) if self.is_func_type.get(i as usize) == Some(&true) => "func",
                _ => "any",
            },
        }
    }
}

/// Whether `op` allocates a struct or array.
pub fn is_allocation(op: &Operator) -> bool {
    matches!(
        op,
        Operator::StructNew { .. }
            | Operator::StructNewDefault { .. }
            | Operator::ArrayNew { .. }
            | Operator::ArrayNewDefault { .. }
            | Operator::ArrayNewFixed { .. }
            | Operator::ArrayNewData { .. }
            | Operator::ArrayNewElem { .. }
    )
}

/// Whether the module contains a struct or array allocation.
pub fn allocates(wasm: &[u8]) -> bool {
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(Payload::CodeSectionEntry(body)) = payload else {
            continue;
        };
        let Ok(mut ops) = body.get_operators_reader() else {
            continue;
        };
        while !ops.eof() {
            match ops.read() {
                Ok(op) if is_allocation(&op) => return true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    false
}

/// An operator's name as wasmparser spells the variant (`RefTestNonNull`,
/// `AnyConvertExtern`): the vocabulary of Wasm locations in crash
/// signatures and of avoid rules.
pub fn operator_name(op: &Operator) -> String {
    let name = format!("{op:?}");
    name.split([' ', '{', '(']).next().unwrap_or_default().to_string()
}

/// Whether some function body has the operators named by `sequence` one
/// right after the other.
pub fn contains_sequence(wasm: &[u8], sequence: &[String]) -> bool {
    Parser::new(0).parse_all(wasm).any(|payload| {
        let Ok(Payload::CodeSectionEntry(body)) = payload else { return false };
        let Ok(ops) = body.get_operators_reader() else { return false };
        let names: Vec<String> = ops.into_iter().map_while(Result::ok).map(|op| operator_name(&op)).collect();
        has_run(&names, sequence)
    })
}

/// Whether `names` holds `sequence` as a contiguous run (never the empty
/// one).
fn has_run<S: AsRef<str>>(names: &[S], sequence: &[String]) -> bool {
    !sequence.is_empty() && names.windows(sequence.len()).any(|w| w.iter().zip(sequence).all(|(n, s)| n.as_ref() == s))
}

/// A known bug's avoid rule (`report::record::Record::avoid`): an operator
/// sequence that triggers it. Generators do not emit it where they choose
/// their own instructions ([`AvoidRule::forbids`]); a case that contains it
/// anyway is skipped ([`AvoidRule::matches`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvoidRule {
    /// The bug's signature.
    pub signature: String,
    pub sequence: Vec<String>,
}

impl AvoidRule {
    /// Whether `wasm` contains the sequence.
    pub fn matches(&self, wasm: &[u8]) -> bool {
        contains_sequence(wasm, &self.sequence)
    }

    /// Whether emitting the operators `emitted`, in order, would produce the
    /// sequence.
    pub fn forbids(&self, emitted: &[&str]) -> bool {
        has_run(emitted, &self.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_sequences_are_found_only_when_adjacent() {
        let wasm = wat::parse_str(
            "(module (func (param externref) (result i32)
               (ref.test (ref struct) (any.convert_extern (local.get 0)))))",
        )
        .unwrap();
        let seq = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(contains_sequence(&wasm, &seq("AnyConvertExtern RefTestNonNull")));
        assert!(contains_sequence(&wasm, &seq("LocalGet AnyConvertExtern RefTestNonNull End")));
        assert!(!contains_sequence(&wasm, &seq("LocalGet RefTestNonNull")));
        assert!(!contains_sequence(&wasm, &seq("ExternConvertAny")));
        assert!(!contains_sequence(&wasm, &[]));
        // A run that starts inside a longer run of its first operator.
        let twice = wat::parse_str("(module (func (drop (i32.add (i32.const 1) (i32.const 2)))))").unwrap();
        assert!(contains_sequence(&twice, &seq("I32Const I32Const I32Add")));
        let rule = AvoidRule { signature: "s".into(), sequence: seq("AnyConvertExtern RefTestNonNull") };
        assert!(rule.matches(&wasm) && rule.forbids(&["LocalGet", "AnyConvertExtern", "RefTestNonNull"]));
        assert!(!rule.forbids(&["AnyConvertExtern", "LocalGet", "RefTestNonNull"]));
    }
}
