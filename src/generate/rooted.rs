//! The rooting rewrite pass: on wasm-smith output, make GC references live
//! across forced collections, and make a stale reference observable.
//!
//! After an instruction that leaves a GC reference on the operand stack, the
//! pass may insert one of these stack-neutral sequences (`$t`, `$u` are new
//! locals of the reference's exact type, `$gc` the host's collecting import,
//! `$obs` a new exported `i64` global):
//!
//! - **local**: `local.tee $t; call $gc; observe($t)`: live on the stack and
//!   in a local across the collection;
//! - **block param**: `block (param T) (result T) call $gc end; local.tee $t;
//!   observe($t)`: carried across the collection as a block parameter;
//! - **select**: `local.tee $t; <allocate a fresh T>; <opaque condition>;
//!   select; local.set $u; call $gc; observe($u); local.get $t`: a fresh
//!   allocation with the original live on the stack, then either of them
//!   through a `select`, across the collection;
//!
//! and before existing calls and allocations it may insert `call $gc`.
//! `observe` reads what a stale or moved object would get wrong (a field, an
//! array's length, the reference's kind), null-guarded so it never traps, and
//! folds it into `$obs`: `$obs = rotl($obs, 5) ^ value`. The original
//! computation is unchanged; on a correct engine the only difference is
//! `$obs`, which the state comparison then checks on every configuration.
//!
//! One coherent piece: the analysis that picks sites and the re-encoder that
//! inserts the sequences share the per-function plan and the new locals'
//! numbering; apart, each half would have to re-derive what the other knows.

use crate::case::AvoidRule;
use crate::case::host::{self, HostFunc};
use anyhow::{Result, bail};
use arbitrary::Unstructured;
use std::collections::HashMap;
use wasm_encoder::reencode::{Reencode, RoundtripReencoder, utils};

type ReencodeError = wasm_encoder::reencode::Error<std::convert::Infallible>;
use wasm_encoder::{BlockType, HeapType, Instruction, ValType};
use wasmparser::{CompositeInnerType, Operator, Parser, Payload, StorageType, SubType, ValidPayload, Validator};

/// Name of the observation global's export.
pub const OBSERVE_EXPORT: &str = "gcfuzz:observe";

/// At most this many insertions per function, of each kind. Each inserted
/// collection costs (a full DRC collection with gc_zeal's heap checks); these
/// limits keep the pass's throughput cost near a third (see README).
const MAX_SITES: usize = 3;
const MAX_GC_BEFORE: usize = 2;

/// Inserted collections per instance: each inserted `call $gc` runs only
/// while this budget (a new global) lasts, so inserted calls in hot loops
/// cannot dominate a run.
const COLLECTION_BUDGET: i32 = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Template {
    Local,
    BlockParam,
    Select,
}

/// One insertion after an instruction.
#[derive(Clone, Debug)]
struct Site {
    /// Index of the instruction the sequence follows.
    after: usize,
    ty: wasmparser::RefType,
    template: Template,
}

/// What the pass does to one defined function.
#[derive(Default)]
struct FuncPlan {
    /// The function's parameter count (locals are numbered after them).
    params: u32,
    sites: Vec<Site>,
    /// Instruction indices to precede with `call $gc`.
    gc_before: Vec<usize>,
}

/// How many insertions were made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rewritten {
    pub sites: usize,
    pub gc_calls: usize,
}

/// Rewrites `wasm`, drawing choices from `u`, emitting no observation that
/// an `avoid` rule forbids. Returns the new module, or an error when the
/// module cannot be rewritten (it is then used as it is).
pub fn rewrite(wasm: &[u8], u: &mut Unstructured, avoid: &[AvoidRule]) -> Result<(Vec<u8>, Rewritten)> {
    let module = Analysis::run(wasm, u)?;
    let stats = Rewritten {
        sites: module.plans.iter().map(|p| p.sites.len()).sum(),
        gc_calls: module.plans.iter().map(|p| p.gc_before.len()).sum(),
    };
    let mut encoder = Encoder::new(&module, avoid);
    let mut out = wasm_encoder::Module::new();
    encoder.parse_core_module(&mut out, Parser::new(0), wasm).map_err(|e| anyhow::anyhow!("re-encoding: {e:?}"))?;
    if !encoder.import_done {
        bail!("module has no import section slot");
    }
    let bytes = out.finish();
    crate::case::Profile::Gc.validate(&bytes).map_err(|e| anyhow::anyhow!("rewritten module invalid: {e}"))?;
    Ok((bytes, stats))
}

/// What phase one learns: the module's types and the insertion plan.
struct Analysis {
    types: Vec<SubType>,
    func_imports: u32,
    /// Function index of an existing `host.gc` import.
    gc_import: Option<u32>,
    globals: u32,
    plans: Vec<FuncPlan>,
}

impl Analysis {
    fn run(wasm: &[u8], u: &mut Unstructured) -> Result<Analysis> {
        let mut validator = Validator::new_with_features(crate::case::Profile::Gc.features());
        let mut a = Analysis { types: Vec::new(), func_imports: 0, gc_import: None, globals: 0, plans: Vec::new() };
        let mut id_to_index: HashMap<wasmparser::types::CoreTypeId, u32> = HashMap::new();
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload?;
            match &payload {
                Payload::TypeSection(reader) => {
                    for group in reader.clone() {
                        a.types.extend(group?.into_types());
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.clone().into_imports() {
                        let import = import?;
                        match import.ty {
                            wasmparser::TypeRef::Func(_) => {
                                if HostFunc::import(import.module, import.name) == Some(HostFunc::Gc) {
                                    a.gc_import = Some(a.func_imports);
                                }
                                a.func_imports += 1;
                            }
                            wasmparser::TypeRef::Global(_) => a.globals += 1,
                            _ => {}
                        }
                    }
                }
                Payload::GlobalSection(reader) => a.globals += reader.count(),
                _ => {}
            }
            let valid = validator.payload(&payload)?;
            if let Payload::TypeSection(_) = payload {
                let types = validator.types(0).expect("module types");
                for i in 0..types.core_type_count_in_module() {
                    id_to_index.entry(types.core_type_at_in_module(i)).or_insert(i);
                }
            }
            if let ValidPayload::Func(func, body) = valid {
                let mut v = func.into_validator(Default::default());
                a.plans.push(plan_function(&mut v, &body, &id_to_index, &a.types, u)?);
            }
        }
        Ok(a)
    }

    fn sub_type(&self, index: u32) -> Option<&SubType> {
        self.types.get(index as usize)
    }
}

/// Converts a validator reference type (type ids) to one by module index.
fn by_index(r: wasmparser::RefType, ids: &HashMap<wasmparser::types::CoreTypeId, u32>) -> Option<wasmparser::RefType> {
    match r.heap_type() {
        wasmparser::HeapType::Abstract { .. } => Some(r),
        wasmparser::HeapType::Concrete(i) | wasmparser::HeapType::Exact(i) => {
            let index = match i.as_module_index() {
                Some(i) => i,
                None => *ids.get(&i.as_core_type_id()?)?,
            };
            wasmparser::RefType::new(
                r.is_nullable(),
                wasmparser::HeapType::Concrete(wasmparser::UnpackedIndex::Module(index)),
            )
        }
    }
}

/// References the pass takes on: ones into the GC heap (not i31, not
/// functions), of types whose values it knows how to observe.
fn eligible(r: &wasmparser::RefType, types: &[SubType]) -> bool {
    use wasmparser::AbstractHeapType as A;
    match r.heap_type() {
        wasmparser::HeapType::Abstract { shared: false, ty } => {
            matches!(ty, A::Any | A::Eq | A::Struct | A::Array | A::Extern)
        }
        wasmparser::HeapType::Concrete(i) => i.as_module_index().and_then(|i| types.get(i as usize)).is_some_and(|t| {
            !t.composite_type.shared
                && matches!(t.composite_type.inner, CompositeInnerType::Struct(_) | CompositeInnerType::Array(_))
        }),
        _ => false,
    }
}

fn plan_function(
    v: &mut wasmparser::FuncValidator<wasmparser::ValidatorResources>,
    body: &wasmparser::FunctionBody,
    ids: &HashMap<wasmparser::types::CoreTypeId, u32>,
    types: &[SubType],
    u: &mut Unstructured,
) -> Result<FuncPlan> {
    let mut locals = body.get_locals_reader()?;
    let mut declared = 0;
    for _ in 0..locals.get_count() {
        let offset = locals.original_position();
        let (count, ty) = locals.read()?;
        v.define_locals(offset, count, ty)?;
        declared += count;
    }
    let total = (0..).take_while(|i| v.get_local_type(*i).is_some()).count() as u32;
    let mut plan = FuncPlan { params: total - declared, ..FuncPlan::default() };
    let mut ops = body.get_operators_reader()?;
    let mut index = 0;
    while !ops.eof() {
        let offset = ops.original_position();
        let op = ops.read()?;
        let is_safepoint = matches!(
            op,
            Operator::Call { .. }
                | Operator::CallRef { .. }
                | Operator::CallIndirect { .. }
                | Operator::StructNew { .. }
                | Operator::StructNewDefault { .. }
                | Operator::ArrayNew { .. }
                | Operator::ArrayNewDefault { .. }
                | Operator::ArrayNewFixed { .. }
        );
        let reachable = v.get_control_frame(0).is_some_and(|f| !f.unreachable);
        if is_safepoint && reachable && plan.gc_before.len() < MAX_GC_BEFORE && u.ratio(1, 8).unwrap_or(false) {
            plan.gc_before.push(index);
        }
        v.op(offset, &op)?;
        // The top operand, if it belongs to the current block (values of
        // enclosing blocks are out of reach here).
        let in_frame =
            v.get_control_frame(0).is_some_and(|f| !f.unreachable && v.operand_stack_height() as usize > f.height);
        let top = if in_frame { v.get_operand_type(0).flatten() } else { None };
        let reachable = in_frame;
        if let (true, Some(wasmparser::ValType::Ref(r))) = (reachable, top)
            && let Some(r) = by_index(r, ids)
            && eligible(&r, types)
            && plan.sites.len() < MAX_SITES
            && u.ratio(1, 3).unwrap_or(false)
        {
            let template = match u.int_in_range(0..=2).unwrap_or(0) {
                0 => Template::Local,
                1 => Template::BlockParam,
                _ if defaultable(&r, types) => Template::Select,
                _ => Template::Local,
            };
            plan.sites.push(Site { after: index, ty: r, template });
        }
        index += 1;
    }
    Ok(plan)
}

/// Whether `struct.new_default` / `array.new_default` can make a `T`.
fn defaultable(r: &wasmparser::RefType, types: &[SubType]) -> bool {
    let wasmparser::HeapType::Concrete(i) = r.heap_type() else { return false };
    let Some(t) = i.as_module_index().and_then(|i| types.get(i as usize)) else { return false };
    let ok = |s: &StorageType| match s {
        StorageType::Val(wasmparser::ValType::Ref(r)) => r.is_nullable(),
        _ => true,
    };
    match &t.composite_type.inner {
        CompositeInnerType::Struct(s) => s.fields.iter().all(|f| ok(&f.element_type)),
        CompositeInnerType::Array(a) => ok(&a.0.element_type),
        _ => false,
    }
}

/// Phase two: re-encode with the plan applied.
struct Encoder<'a> {
    a: &'a Analysis,
    avoid: &'a [AvoidRule],
    /// Index of the `host.gc` import after rewriting.
    gc: u32,
    add_import: bool,
    import_done: bool,
    observe_global: u32,
    /// Types appended for block-parameter sequences, by reference type.
    block_types: Vec<(wasmparser::RefType, u32)>,
    next_function: usize,
}

impl<'a> Encoder<'a> {
    fn new(a: &'a Analysis, avoid: &'a [AvoidRule]) -> Encoder<'a> {
        let mut block_types: Vec<(wasmparser::RefType, u32)> = Vec::new();
        for site in a.plans.iter().flat_map(|p| &p.sites) {
            if site.template == Template::BlockParam && !block_types.iter().any(|(t, _)| *t == site.ty) {
                block_types.push((site.ty, (a.types.len() + block_types.len()) as u32));
            }
        }
        Encoder {
            a,
            avoid,
            gc: a.gc_import.unwrap_or(a.func_imports),
            add_import: a.gc_import.is_none(),
            import_done: false,
            observe_global: a.globals,
            block_types,
            next_function: 0,
        }
    }

    fn emit_import(&mut self, imports: &mut wasm_encoder::ImportSection) -> Result<(), ReencodeError> {
        if self.add_import {
            // `(func)`: the empty function type, appended with the others.
            let ty = self.empty_func_type();
            imports.import(host::MODULE, HostFunc::Gc.name(), wasm_encoder::EntityType::Function(ty));
        }
        self.import_done = true;
        Ok(())
    }

    /// Index of the appended `(func)` type (after the block types).
    fn empty_func_type(&self) -> u32 {
        (self.a.types.len() + self.block_types.len()) as u32
    }

    fn encode_ref(&mut self, r: wasmparser::RefType) -> wasm_encoder::RefType {
        RoundtripReencoder.ref_type(r).expect("reference types re-encode")
    }

    fn encode_val(&mut self, r: wasmparser::RefType) -> ValType {
        ValType::Ref(self.encode_ref(r))
    }

    /// `observe(local)`: leaves an i64 describing the reference in `local`.
    fn observe(&mut self, f: &mut wasm_encoder::Function, local: u32, r: wasmparser::RefType) {
        use wasmparser::AbstractHeapType as A;
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::RefIsNull);
        f.instruction(&Instruction::If(BlockType::Result(ValType::I64)));
        f.instruction(&Instruction::I64Const(0x5a5a));
        f.instruction(&Instruction::Else);
        match r.heap_type() {
            wasmparser::HeapType::Concrete(i) => {
                let index = i.as_module_index().expect("by module index");
                match &self.a.sub_type(index).expect("known type").composite_type.inner {
                    CompositeInnerType::Struct(s) => {
                        match s.fields.iter().position(|f| {
                            !matches!(
                                f.element_type,
                                StorageType::Val(wasmparser::ValType::Ref(_) | wasmparser::ValType::V128)
                            )
                        }) {
                            Some(field) => {
                                f.instruction(&Instruction::LocalGet(local));
                                read_scalar(f, s.fields[field].element_type, |packed| match packed {
                                    true => {
                                        Instruction::StructGetU { struct_type_index: index, field_index: field as u32 }
                                    }
                                    false => {
                                        Instruction::StructGet { struct_type_index: index, field_index: field as u32 }
                                    }
                                });
                            }
                            None => {
                                // No scalar field: the object's field count
                                // is what can be told apart.
                                f.instruction(&Instruction::I64Const(s.fields.len() as i64));
                            }
                        }
                    }
                    CompositeInnerType::Array(arr) => {
                        // Length, and the first element when there is one.
                        f.instruction(&Instruction::LocalGet(local));
                        f.instruction(&Instruction::ArrayLen);
                        f.instruction(&Instruction::I64ExtendI32U);
                        if !matches!(
                            arr.0.element_type,
                            StorageType::Val(wasmparser::ValType::Ref(_) | wasmparser::ValType::V128)
                        ) {
                            f.instruction(&Instruction::LocalGet(local));
                            f.instruction(&Instruction::ArrayLen);
                            f.instruction(&Instruction::If(BlockType::Result(ValType::I64)));
                            f.instruction(&Instruction::LocalGet(local));
                            f.instruction(&Instruction::I32Const(0));
                            read_scalar(f, arr.0.element_type, |packed| match packed {
                                true => Instruction::ArrayGetU(index),
                                false => Instruction::ArrayGet(index),
                            });
                            f.instruction(&Instruction::Else);
                            f.instruction(&Instruction::I64Const(0));
                            f.instruction(&Instruction::End);
                            f.instruction(&Instruction::I64Const(32));
                            f.instruction(&Instruction::I64Rotl);
                            f.instruction(&Instruction::I64Xor);
                        }
                    }
                    _ => {
                        f.instruction(&Instruction::I64Const(1));
                    }
                }
            }
            wasmparser::HeapType::Exact(_) => {
                f.instruction(&Instruction::I64Const(1));
            }
            wasmparser::HeapType::Abstract { ty: A::Extern, .. }
                if self.avoid.iter().any(|r| r.forbids(&["LocalGet", "AnyConvertExtern", "RefTestNonNull"])) =>
            {
                // The kind test below is a known bug's trigger on this
                // engine: non-null is all this observation says.
                f.instruction(&Instruction::I64Const(1));
            }
            wasmparser::HeapType::Abstract { ty, .. } => {
                // The kind of object: struct or array.
                f.instruction(&Instruction::LocalGet(local));
                if ty == A::Extern {
                    f.instruction(&Instruction::AnyConvertExtern);
                }
                let kind_local = local; // re-read for each test
                f.instruction(&Instruction::RefTestNonNull(HeapType::Abstract {
                    shared: false,
                    ty: wasm_encoder::AbstractHeapType::Struct,
                }));
                f.instruction(&Instruction::LocalGet(kind_local));
                if ty == A::Extern {
                    f.instruction(&Instruction::AnyConvertExtern);
                }
                f.instruction(&Instruction::RefTestNonNull(HeapType::Abstract {
                    shared: false,
                    ty: wasm_encoder::AbstractHeapType::Array,
                }));
                f.instruction(&Instruction::I32Const(1));
                f.instruction(&Instruction::I32Shl);
                f.instruction(&Instruction::I32Or);
                f.instruction(&Instruction::I64ExtendI32U);
            }
        }
        f.instruction(&Instruction::End);
        // $obs = rotl($obs, 5) ^ value
        f.instruction(&Instruction::GlobalGet(self.observe_global));
        f.instruction(&Instruction::I64Const(5));
        f.instruction(&Instruction::I64Rotl);
        f.instruction(&Instruction::I64Xor);
        f.instruction(&Instruction::GlobalSet(self.observe_global));
    }

    /// `call $gc` while the collection budget lasts: stack-neutral, so the
    /// references around it stay live across it.
    fn collect(&self, f: &mut wasm_encoder::Function) {
        let budget = self.observe_global + 1;
        f.instruction(&Instruction::GlobalGet(budget));
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::GlobalGet(budget));
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::I32Sub);
        f.instruction(&Instruction::GlobalSet(budget));
        f.instruction(&Instruction::Call(self.gc));
        f.instruction(&Instruction::End);
    }

    fn emit_site(&mut self, f: &mut wasm_encoder::Function, site: &Site, t: u32, u_local: u32) {
        let ty = self.encode_val(site.ty);
        match site.template {
            Template::Local => {
                f.instruction(&Instruction::LocalTee(t));
                self.collect(f);
                self.observe(f, t, site.ty);
            }
            Template::BlockParam => {
                let bt = self.block_types.iter().find(|(r, _)| *r == site.ty).expect("planned").1;
                f.instruction(&Instruction::Block(BlockType::FunctionType(bt)));
                self.collect(f);
                f.instruction(&Instruction::End);
                f.instruction(&Instruction::LocalTee(t));
                self.observe(f, t, site.ty);
            }
            Template::Select => {
                let wasmparser::HeapType::Concrete(i) = site.ty.heap_type() else { unreachable!("planned") };
                let index = i.as_module_index().expect("by module index");
                f.instruction(&Instruction::LocalTee(t));
                match &self.a.sub_type(index).expect("known type").composite_type.inner {
                    CompositeInnerType::Struct(_) => f.instruction(&Instruction::StructNewDefault(index)),
                    _ => {
                        f.instruction(&Instruction::I32Const(3));
                        f.instruction(&Instruction::ArrayNewDefault(index))
                    }
                };
                // An opaque condition: the low bit of $obs.
                f.instruction(&Instruction::GlobalGet(self.observe_global));
                f.instruction(&Instruction::I32WrapI64);
                f.instruction(&Instruction::I32Const(1));
                f.instruction(&Instruction::I32And);
                f.instruction(&Instruction::TypedSelect(ty));
                f.instruction(&Instruction::LocalSet(u_local));
                self.collect(f);
                self.observe(f, u_local, site.ty);
                f.instruction(&Instruction::LocalGet(t));
            }
        }
    }
}

/// Reads a scalar with `get` (packed: the `_u` form) and leaves it as i64.
fn read_scalar(f: &mut wasm_encoder::Function, s: StorageType, get: impl Fn(bool) -> Instruction<'static>) {
    match s {
        StorageType::I8 | StorageType::I16 => {
            f.instruction(&get(true));
            f.instruction(&Instruction::I64ExtendI32U);
        }
        StorageType::Val(wasmparser::ValType::I32) => {
            f.instruction(&get(false));
            f.instruction(&Instruction::I64ExtendI32U);
        }
        StorageType::Val(wasmparser::ValType::I64) => {
            f.instruction(&get(false));
        }
        StorageType::Val(wasmparser::ValType::F32) => {
            f.instruction(&get(false));
            f.instruction(&Instruction::I32ReinterpretF32);
            f.instruction(&Instruction::I64ExtendI32U);
        }
        StorageType::Val(wasmparser::ValType::F64) => {
            f.instruction(&get(false));
            f.instruction(&Instruction::I64ReinterpretF64);
        }
        StorageType::Val(_) => unreachable!("callers pick scalar storage"),
    }
}

impl Reencode for Encoder<'_> {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError> {
        Ok(if self.add_import && func >= self.a.func_imports { func + 1 } else { func })
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_type_section(self, types, section)?;
        for (r, _) in self.block_types.clone() {
            let t = self.encode_val(r);
            types.ty().function([t], [t]);
        }
        types.ty().function([], []);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_import_section(self, imports, section)?;
        self.emit_import(imports)
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<wasm_encoder::SectionId>,
        before: Option<wasm_encoder::SectionId>,
    ) -> Result<(), ReencodeError> {
        use wasm_encoder::SectionId as S;
        // No import section in the input: add one before the first section
        // that must come after it.
        let after_imports = matches!(
            before,
            Some(
                S::Function
                    | S::Table
                    | S::Memory
                    | S::Tag
                    | S::Global
                    | S::Export
                    | S::Start
                    | S::Element
                    | S::DataCount
                    | S::Code
                    | S::Data
            ) | None
        );
        if !self.import_done && after_imports {
            let mut imports = wasm_encoder::ImportSection::new();
            self.emit_import(&mut imports)?;
            module.section(&imports);
        }
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_global_section(self, globals, section)?;
        globals.global(
            wasm_encoder::GlobalType { val_type: ValType::I64, mutable: true, shared: false },
            &wasm_encoder::ConstExpr::i64_const(0),
        );
        globals.global(
            wasm_encoder::GlobalType { val_type: ValType::I32, mutable: true, shared: false },
            &wasm_encoder::ConstExpr::i32_const(COLLECTION_BUDGET),
        );
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_export_section(self, exports, section)?;
        exports.export(OBSERVE_EXPORT, wasm_encoder::ExportKind::Global, self.observe_global);
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError> {
        let plan = &self.a.plans[self.next_function];
        self.next_function += 1;
        let mut locals = Vec::new();
        let mut count = 0u32;
        for pair in func.get_locals_reader()? {
            let (n, ty) = pair?;
            locals.push((n, self.val_type_of(ty)?));
            count += n;
        }
        // Parameters come first in the local index space.
        let first_new = plan.params + count;
        let sites = plan.sites.clone();
        for site in &sites {
            let t = self.encode_val(site.ty);
            locals.push((2, t));
        }
        let mut f = wasm_encoder::Function::new(locals);
        let gc_before = plan.gc_before.clone();
        let mut ops = func.get_operators_reader()?;
        let mut index = 0;
        while !ops.eof() {
            let op = ops.read()?;
            if gc_before.contains(&index) {
                self.collect(&mut f);
            }
            f.instruction(&self.instruction(op)?);
            for (k, site) in sites.iter().enumerate().filter(|(_, s)| s.after == index) {
                let t = first_new + 2 * k as u32;
                self.emit_site(&mut f, site, t, t + 1);
            }
            index += 1;
        }
        code.function(&f);
        Ok(())
    }
}

impl Encoder<'_> {
    fn val_type_of(&mut self, ty: wasmparser::ValType) -> Result<ValType, ReencodeError> {
        RoundtripReencoder.val_type(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Profile;
    use crate::case::seeded_input;
    use crate::generate::smith::module;

    #[test]
    fn rewritten_modules_stay_valid() {
        let mut errors = std::collections::BTreeMap::new();
        let mut rewritten = 0;
        for i in 0..2000 {
            let data = seeded_input(11, i);
            let mut u = Unstructured::new(&data[..data.len() - 200]);
            let wasm = module(Profile::Gc, &mut u).unwrap();
            match rewrite(&wasm, &mut Unstructured::new(&data[data.len() - 200..]), &[]) {
                Ok((_, stats)) => rewritten += (stats.sites + stats.gc_calls > 0) as usize,
                Err(e) => *errors.entry(format!("{e:#}").chars().take(120).collect::<String>()).or_insert(0) += 1,
            }
        }
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(rewritten > 1500, "only {rewritten} of 2000 modules got insertions");
    }

    #[test]
    fn an_avoid_rule_keeps_the_observation_out_of_rewritten_modules() {
        let rule = AvoidRule {
            signature: "crash-x".into(),
            sequence: vec!["AnyConvertExtern".into(), "RefTestNonNull".into()],
        };
        let (mut without, mut with) = (0, 0);
        for i in 0..300 {
            let data = seeded_input(12, i);
            let wasm = module(Profile::Gc, &mut Unstructured::new(&data[..data.len() - 200])).unwrap();
            let pass = || Unstructured::new(&data[data.len() - 200..]);
            if rule.matches(&wasm) {
                continue; // wasm-smith wrote it itself: skipped by campaigns
            }
            let Ok((plain, _)) = rewrite(&wasm, &mut pass(), &[]) else { continue };
            without += rule.matches(&plain) as u32;
            let (avoiding, _) = rewrite(&wasm, &mut pass(), std::slice::from_ref(&rule)).unwrap();
            with += rule.matches(&avoiding) as u32;
            Profile::Gc.validate(&avoiding).unwrap();
        }
        assert!(without >= 50, "the pass observes externrefs this way in only {without} of 300 modules");
        assert_eq!(with, 0);
    }
}
