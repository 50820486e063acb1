//! What the plan builder and the statistics need to know about a module:
//! its exports with their parameter types, and whether it allocates.

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
