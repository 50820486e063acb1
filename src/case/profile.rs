//! Profiles: the two families of modules a case can hold, and the Wasm
//! features each may use on the Wasmtime line under test.

use crate::line::{self, Cap};
use serde::{Deserialize, Serialize};
use wasmparser::WasmFeatures;

/// Which family of modules a case belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Profile {
    /// GC, typed function references, often exceptions and tail calls.
    Gc,
    /// MVP + reference types (externref/funcref-heavy), tail calls, bulk
    /// memory, multi-memory: what wasmi 2.0 runs.
    RefTypes,
}

/// Every proposal gcfuzz fuzzes on some line: Wasm 3.0 without relaxed
/// SIMD (its results may differ between correct engines), memory64 and
/// threads. A module outside [`Profile::Gc`] but inside this set uses a
/// proposal the line under test lacks.
pub fn fuzzed_features() -> WasmFeatures {
    WasmFeatures::WASM2
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::GC
        | WasmFeatures::FUNCTION_REFERENCES
        | WasmFeatures::EXCEPTIONS
}

impl Profile {
    /// The Wasm features modules of this profile may use.
    pub fn features(self) -> WasmFeatures {
        let base =
            WasmFeatures::WASM2 | WasmFeatures::TAIL_CALL | WasmFeatures::MULTI_MEMORY | WasmFeatures::EXTENDED_CONST;
        match self {
            // wasmi runs these without its SIMD feature.
            Profile::RefTypes => base.difference(WasmFeatures::SIMD),
            Profile::Gc => {
                let gc = base | WasmFeatures::GC | WasmFeatures::FUNCTION_REFERENCES;
                // Only where the Wasmtime under test runs them.
                if line::has(Cap::Exceptions) { gc | WasmFeatures::EXCEPTIONS } else { gc }
            }
        }
    }

    /// Validates `wasm` against this profile's features.
    pub fn validate(self, wasm: &[u8]) -> std::result::Result<(), wasmparser::BinaryReaderError> {
        wasmparser::Validator::new_with_features(self.features()).validate_all(wasm).map(|_| ())
    }
}

/// Whether `wasm` needs proposal `feature` (a valid module under
/// [`Profile::Gc`] that no longer validates without it).
pub fn needs(wasm: &[u8], feature: WasmFeatures) -> bool {
    wasmparser::Validator::new_with_features(Profile::Gc.features().difference(feature)).validate_all(wasm).is_err()
}

/// Whether a struct or array type of `wasm` has a `v128` field.
pub fn has_v128_fields(wasm: &[u8]) -> bool {
    use wasmparser::{CompositeInnerType as C, StorageType, ValType};
    let v128 = |s: &StorageType| matches!(s, StorageType::Val(ValType::V128));
    wasmparser::Parser::new(0).parse_all(wasm).any(|p| match p {
        Ok(wasmparser::Payload::TypeSection(r)) => r.into_iter().flatten().any(|group| {
            group.types().any(|t| match &t.composite_type.inner {
                C::Struct(s) => s.fields.iter().any(|f| v128(&f.element_type)),
                C::Array(a) => v128(&a.0.element_type),
                _ => false,
            })
        }),
        _ => false,
    })
}

/// What in a valid module (under `Profile::Gc`) the line under test refuses
/// although the specification allows it, if anything: generated modules with
/// it are dropped, reproducers with it refused with this reason.
pub fn line_refuses(wasm: &[u8]) -> Option<&'static str> {
    if !line::has(Cap::V128Fields) && has_v128_fields(wasm) {
        return Some("a v128 field in a struct or array type");
    }
    if line::has(Cap::ConstConversions) {
        return None;
    }
    use wasmparser::{ElementItems, ElementKind, Operator, Payload};
    let conversion = |expr: &wasmparser::ConstExpr| {
        expr.get_operators_reader()
            .into_iter()
            .any(|op| matches!(op, Ok(Operator::AnyConvertExtern | Operator::ExternConvertAny)))
    };
    let found = wasmparser::Parser::new(0).parse_all(wasm).any(|payload| match payload {
        Ok(Payload::GlobalSection(r)) => r.into_iter().flatten().any(|g| conversion(&g.init_expr)),
        Ok(Payload::TableSection(r)) => r.into_iter().flatten().any(|t| match &t.init {
            wasmparser::TableInit::Expr(e) => conversion(e),
            wasmparser::TableInit::RefNull => false,
        }),
        Ok(Payload::ElementSection(r)) => r.into_iter().flatten().any(|e| {
            let offset = matches!(&e.kind, ElementKind::Active { offset_expr, .. } if conversion(offset_expr));
            let items = match e.items {
                ElementItems::Expressions(_, exprs) => exprs.into_iter().flatten().any(|x| conversion(&x)),
                ElementItems::Functions(_) => false,
            };
            offset || items
        }),
        _ => false,
    });
    found.then_some("any.convert_extern or extern.convert_any in a constant expression")
}
