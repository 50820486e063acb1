//! What the plan builder and the statistics need to know about a module:
//! its exports with their parameter types, whether it allocates, and
//! whether it contains an operator sequence (a known bug's avoid rule).

use anyhow::Result;
use wasmparser::{CompositeInnerType, ExternalKind, HeapType, Operator, Parser, Payload, ValType};

/// What the plan builder needs to know about a module.
pub struct ModuleInfo {
    /// Exported functions in export order, with parameter types.
    pub exported_funcs: Vec<(String, Vec<ValType>)>,
    /// Their result types, in the same order.
    pub exported_results: Vec<Vec<ValType>>,
    /// For each type index, whether it is a function type.
    pub is_func_type: Vec<bool>,
}

impl ModuleInfo {
    pub fn parse(wasm: &[u8]) -> Result<ModuleInfo> {
        let mut types: Vec<Option<(Vec<ValType>, Vec<ValType>)>> = Vec::new();
        let mut func_types: Vec<u32> = Vec::new();
        let mut exported_funcs = Vec::new();
        let mut exported_results = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group?.into_types() {
                            types.push(match &sub.composite_type.inner {
                                CompositeInnerType::Func(f) => Some((f.params().to_vec(), f.results().to_vec())),
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
                            let (params, results) =
                                ty.and_then(|t| types.get(t as usize).cloned().flatten()).unwrap_or_default();
                            exported_funcs.push((export.name.to_string(), params));
                            exported_results.push(results);
                        }
                    }
                }
                _ => {}
            }
        }
        let is_func_type = types.iter().map(Option::is_some).collect();
        Ok(ModuleInfo { exported_funcs, exported_results, is_func_type })
    }
}

impl ModuleInfo {
    /// The parameter types of exported function `export`.
    pub fn params_of(&self, export: &str) -> Option<&[ValType]> {
        self.exported_funcs.iter().find(|(name, _)| name == export).map(|(_, p)| p.as_slice())
    }

    /// The result types of exported function `export` (none if there is no
    /// such export).
    pub fn results_of(&self, export: &str) -> &[ValType] {
        self.exported_funcs.iter().position(|(name, _)| name == export).map_or(&[], |i| &self.exported_results[i])
    }

    /// Whether a value of type `result` can always be passed as an argument
    /// of type `param`: the same type, or a reference of a subtype this
    /// check can tell without the type section (a concrete struct or array
    /// type for `anyref` and `eqref`, any reference of the same hierarchy
    /// for its top type).
    pub fn fits(&self, result: &ValType, param: &ValType) -> bool {
        use wasmparser::AbstractHeapType as A;
        let (ValType::Ref(r), ValType::Ref(p)) = (result, param) else { return result == param };
        if r.is_nullable() && !p.is_nullable() {
            return false;
        }
        if r.heap_type() == p.heap_type() {
            return true;
        }
        let hierarchy = self.hierarchy(result);
        match p.heap_type() {
            HeapType::Abstract { shared: false, ty: A::Any } => hierarchy == "any",
            HeapType::Abstract { shared: false, ty: A::Eq } => {
                hierarchy == "any"
                    && !matches!(r.heap_type(), HeapType::Abstract { ty: A::Any, .. })
                    && !matches!(r.heap_type(), HeapType::Abstract { ty: A::Extern | A::NoExtern, .. })
            }
            HeapType::Abstract { shared: false, ty: A::Extern } => hierarchy == "extern",
            HeapType::Abstract { shared: false, ty: A::Func } => hierarchy == "func",
            _ => false,
        }
    }

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
    fn results_fit_parameters_of_their_type_or_a_supertype_only() {
        let wasm = wat::parse_str(
            r#"(module (type $s (struct)) (type $f (func))
                 (func (export "s") (result (ref $s)) unreachable)
                 (func (export "sn") (result (ref null $s)) unreachable)
                 (func (export "f") (result (ref $f)) unreachable)
                 (func (export "e") (result externref) unreachable)
                 (func (export "i") (result i32) unreachable))"#,
        )
        .unwrap();
        let info = ModuleInfo::parse(&wasm).unwrap();
        let result = |name: &str| {
            let i = info.exported_funcs.iter().position(|(n, _)| n == name).unwrap();
            info.exported_results[i][0]
        };
        let (s, sn, f, e, i) = (result("s"), result("sn"), result("f"), result("e"), result("i"));
        let any = ValType::Ref(wasmparser::RefType::ANYREF);
        let eq = ValType::Ref(wasmparser::RefType::EQREF);
        let func = ValType::Ref(wasmparser::RefType::FUNCREF);
        let ext = ValType::Ref(wasmparser::RefType::EXTERNREF);
        assert!(info.fits(&s, &s) && info.fits(&s, &sn) && info.fits(&s, &any) && info.fits(&s, &eq));
        assert!(!info.fits(&sn, &s), "a nullable result for a non-null parameter");
        assert!(info.fits(&f, &func) && !info.fits(&f, &any) && !info.fits(&f, &eq));
        assert!(info.fits(&e, &ext) && !info.fits(&e, &any));
        assert!(info.fits(&i, &ValType::I32) && !info.fits(&i, &ValType::I64) && !info.fits(&any, &eq));
    }

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
        // In a linked module of a case, too.
        let main = super::super::TestCase::from_module_bytes(b"(module)").unwrap();
        let mut case = main.clone();
        case.plan.linked.push(wasm.iter().map(|b| format!("{b:02x}")).collect());
        assert!(!rule.matches(&case.wasm) && case.hits(&rule));
        assert!(!main.hits(&rule));
    }
}
