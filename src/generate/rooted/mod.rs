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
//! - **widened**: `block (param T) (result W) call $gc end; block (param W)
//!   (result T) br_on_cast 0 W T; unreachable end; local.tee $t;
//!   observe($t)`, `W` the top of `T`'s hierarchy (`anyref`, non-null if `T`
//!   is): a block whose parameter and result are related by subtyping rather
//!   than equal, carried across the collection at the supertype, then cast
//!   back by a `br_on_cast` between related types;
//! - **throw** (lines with exceptions): `local.tee $t; block (result anyref)
//!   try_table (catch $tag 0) local.get $t; throw $tag end; unreachable end;
//!   ref.cast T; local.set $u; observe($u)`: the original live on the stack
//!   across the throw's allocation, the copy carried as an exception payload;
//!
//! and before existing calls and allocations it may insert `call $gc`;
//! before some GC and table instructions it may put an index or length at
//! the edge of its range in place of the operand ([`edges`]); at a
//! function's entry it may allocate a fresh object (of one of the module's
//! types, or of an `i64` struct type of its own), hold it in a local across
//! a collection, write to it, throw and catch it, and observe it, so that
//! most GC modules allocate.
//!
//! Each collection goes to `$gc` by one of four paths, drawn per insertion:
//! a direct `call`, `call_indirect` through a two-slot table the pass adds,
//! `call_ref` of `ref.func $gc`, or a direct call of `$collect`, a function
//! the pass appends that calls `$gc`: the stack maps of every kind of call,
//! host and Wasm callees alike, are put to work. A site on an object that
//! holds references may carry one of them (a field, an array's last
//! element) across the collection instead ([`Load`]); after the
//! collection the module's own mutable arrays are written in place with
//! what they hold (`accesses`). After a collection that ran and before the observation
//! the pass allocates two objects of the observed type filled with values no
//! default has: a DRC object freed by a lost root is then reused, so the loss
//! shows as a wrong value rather than only under `gc_zeal`'s poisoning.
//! `observe` reads what a stale or moved object would get wrong (a field, an
//! array's length, the reference's kind), null-guarded so it never traps, and
//! folds it into `$obs`: `$obs = rotl($obs, 5) ^ value`. Apart from the
//! edge operands (which may make an instruction trap, alike on every
//! correct engine, and are left out with `edges = false`), the original
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
use wasm_encoder::{Instruction, ValType};
use wasmparser::{CompositeInnerType, Operator, Parser, Payload, StorageType, SubType, ValidPayload, Validator};

mod accesses;
mod edges;
mod probe;
mod sequences;

use edges::EdgeOperand;

type ReencodeError = wasm_encoder::reencode::Error<std::convert::Infallible>;

/// Name of the observation global's export.
pub const OBSERVE_EXPORT: &str = "gcfuzz:observe";
/// Name of the edge probe's export (`probe`).
pub const PROBE_EXPORT: &str = "gcfuzz:probe";

/// At most this many insertions per function, of each kind. Each inserted
/// collection costs (a full DRC collection with gc_zeal's heap checks); these
/// limits and the budgets below bound the pass's throughput cost (README).
const MAX_SITES: usize = 3;
const MAX_GC_BEFORE: usize = 2;
const MAX_EDGES: usize = 4;

/// Inserted collections per instance: each inserted `call $gc` runs only
/// while this budget (a new global) lasts, so inserted calls in hot loops
/// cannot dominate a run.
const COLLECTION_BUDGET: i32 = 24;

/// Fresh objects at function entries per instance, likewise (a third
/// global): allocating at every call of a hot function, with a collection
/// at each allocation under the zeal counter, cost 44% of throughput.
const ENTRY_BUDGET: i32 = 16;

/// Items (nulls) of the pass's own element segments: as many as the
/// longest fresh array, so every fresh array of nullable references can
/// come from one.
const OWN_ELEM_ITEMS: u32 = 8;

/// How an inserted collection reaches `$gc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Call,
    CallIndirect,
    CallRef,
    /// A direct call of the pass's own function `$collect`, which calls
    /// `$gc`: a Wasm-to-Wasm call whose callee collects, the stack map of
    /// a call between two Wasm frames.
    Defined,
}

impl Via {
    fn draw(u: &mut Unstructured) -> Via {
        match u.int_in_range(0..=3).unwrap_or(0) {
            0 => Via::CallIndirect,
            1 => Via::CallRef,
            2 => Via::Defined,
            _ => Via::Call,
        }
    }
}

/// What the pass does at a function's entry.
#[derive(Clone, Copy, Debug)]
struct Entry {
    fresh: Fresh,
    /// How its collection reaches `$gc`, if it has one.
    via: Option<Via>,
    /// Whether the object then travels as an exception payload: thrown (an
    /// allocation of the exception) inside a `try_table` and caught again.
    throw: bool,
    /// Whether the collection runs inside a `try_table` with a `catch_all`
    /// (a call with exception handlers: its own stack map).
    in_try: bool,
}

/// The fresh object allocated at a function's entry.
#[derive(Clone, Copy, Debug)]
enum Fresh {
    /// The pass's own `(struct (field (mut i64)))`, holding this value.
    Own(i64),
    /// One of the module's types whose fields all have a filler value
    /// (arrays: this many elements).
    Module(u32, i32),
}

/// A reference a site reads out of the object the instruction left (a
/// struct's reference field, an array's last element) and carries in its
/// place: `struct.get` and `array.get` results live across collections.
#[derive(Clone, Copy, Debug)]
struct Load {
    /// The object's type (the instruction's result).
    holder: wasmparser::RefType,
    /// Its module type index, and the field (`None`: an array element).
    index: u32,
    field: Option<u32>,
}

/// The first reference field of struct or array type `r` (arrays: the
/// element) whose values the pass can observe: the load and the nullable
/// type of what it reads (null when the object is or its array is empty).
fn loadable(r: wasmparser::RefType, types: &[SubType]) -> Option<(wasmparser::RefType, Load)> {
    let index = type_index(&r)?;
    let ref_of = |s: &StorageType| match s {
        StorageType::Val(wasmparser::ValType::Ref(f)) => {
            Some(wasmparser::RefType::new(true, f.heap_type()).expect("the same heap type fits"))
        }
        _ => None,
    };
    let (field, ty) =
        match &types.get(index as usize)?.composite_type.inner {
            CompositeInnerType::Struct(s) => s.fields.iter().enumerate().find_map(|(k, f)| {
                ref_of(&f.element_type).filter(|t| eligible(t, types)).map(|t| (Some(k as u32), t))
            })?,
            CompositeInnerType::Array(a) => (None, ref_of(&a.0.element_type).filter(|t| eligible(t, types))?),
            _ => return None,
        };
    Some((ty, Load { holder: r, index, field }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Template {
    Local,
    BlockParam,
    Select,
    /// Thrown as the pass's tag's `anyref` payload inside a `try_table`
    /// (the throw allocates: a safepoint under the zeal counter), caught,
    /// cast back and observed, while the original stays on the stack.
    Throw,
    /// Carried across the collection as a block parameter of its own type
    /// and a result of its hierarchy's top type, then `br_on_cast` back.
    Widened,
    /// Past `br_on_null`, held across the collection in a non-nullable
    /// local too (set inside a block, as the initialization rule asks),
    /// read back through `ref.as_non_null`.
    NonNull,
}

/// One insertion after an instruction.
#[derive(Clone, Debug)]
struct Site {
    /// Index of the instruction the sequence follows.
    after: usize,
    /// The type of the reference the template carries: the instruction's
    /// result, or what `load` reads from it.
    ty: wasmparser::RefType,
    load: Option<Load>,
    template: Template,
    via: Via,
}

/// What the pass does to one defined function.
#[derive(Default)]
struct FuncPlan {
    /// The function's parameter count (locals are numbered after them).
    params: u32,
    sites: Vec<Site>,
    /// Instruction indices to precede with `call $gc`.
    gc_before: Vec<(usize, Via)>,
    /// Instruction indices whose top operand is put at an edge.
    edges: Vec<(usize, EdgeOperand)>,
    entry: Option<Entry>,
}

/// How many insertions were made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rewritten {
    pub sites: usize,
    pub gc_calls: usize,
    /// Functions given a fresh object at entry.
    pub entries: usize,
    /// Operands put at an edge.
    pub edges: usize,
    /// Sites held in a non-nullable local ([`Template::NonNull`]).
    pub non_null: usize,
    /// The depth of the subtype chain the entries cast along (0: none).
    pub chain_depth: u32,
}

/// Rewrites `wasm`, drawing choices from `u`, emitting no observation that
/// an `avoid` rule forbids, and edge operands only with `edges` (they may
/// change what the module computes; nothing else does). Returns the new
/// module, or an error when the module cannot be rewritten (it is then used
/// as it is).
pub fn rewrite(wasm: &[u8], u: &mut Unstructured, avoid: &[AvoidRule], edges: bool) -> Result<(Vec<u8>, Rewritten)> {
    let module = Analysis::run(wasm, u, edges)?;
    let stats = Rewritten {
        sites: module.plans.iter().map(|p| p.sites.len()).sum(),
        gc_calls: module.plans.iter().map(|p| p.gc_before.len()).sum(),
        entries: module.plans.iter().filter(|p| p.entry.is_some()).count(),
        edges: module.plans.iter().map(|p| p.edges.len()).sum(),
        non_null: module.plans.iter().flat_map(|p| &p.sites).filter(|s| s.template == Template::NonNull).count(),
        chain_depth: chain_depth(&module),
    };
    let mut encoder = Encoder::new(&module, avoid, super::linked::twins(wasm));
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
    /// Function index and type of an existing `host.gc` import.
    gc_import: Option<(u32, u32)>,
    globals: u32,
    /// Tables, imported and defined: the index of the one the pass adds.
    tables: u32,
    /// Tags likewise.
    tags: u32,
    /// Data segments, when the module declares their count (what
    /// `array.init_data` needs to validate).
    data_count: Option<u32>,
    /// Element segments: the pass's own come after them.
    elems: u32,
    plans: Vec<FuncPlan>,
}

impl Analysis {
    fn run(wasm: &[u8], u: &mut Unstructured, edges: bool) -> Result<Analysis> {
        let mut validator = Validator::new_with_features(crate::case::Profile::Gc.features());
        let mut a = Analysis {
            types: Vec::new(),
            func_imports: 0,
            gc_import: None,
            globals: 0,
            tables: 0,
            tags: 0,
            data_count: None,
            elems: 0,
            plans: Vec::new(),
        };
        let mut id_to_index: HashMap<wasmparser::types::CoreTypeId, u32> = HashMap::new();
        // Fresh objects at entry in three modules of five: enough for most
        // cases to allocate, at a throughput cost the README gives.
        let mut with_entries = None;
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
                            wasmparser::TypeRef::Func(ty) => {
                                if HostFunc::import(import.module, import.name) == Some(HostFunc::Gc) {
                                    a.gc_import = Some((a.func_imports, ty));
                                }
                                a.func_imports += 1;
                            }
                            wasmparser::TypeRef::Global(_) => a.globals += 1,
                            wasmparser::TypeRef::Table(_) => a.tables += 1,
                            wasmparser::TypeRef::Tag(_) => a.tags += 1,
                            _ => {}
                        }
                    }
                }
                Payload::GlobalSection(reader) => a.globals += reader.count(),
                Payload::TableSection(reader) => a.tables += reader.count(),
                Payload::TagSection(reader) => a.tags += reader.count(),
                Payload::DataCountSection { count, .. } => a.data_count = Some(*count),
                Payload::ElementSection(reader) => a.elems += reader.count(),
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
                let with_entries = *with_entries.get_or_insert_with(|| u.ratio(3, 5).unwrap_or(false));
                a.plans.push(plan_function(&mut v, &body, &id_to_index, &a.types, with_entries, edges, u)?);
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
    with_entries: bool,
    edges: bool,
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
    if with_entries && u.ratio(2, 3).unwrap_or(false) {
        let fillable: Vec<u32> = (0..types.len() as u32).filter(|&i| fillable(i, types)).collect();
        // A quarter of the entries with a module type prefer arrays of
        // nullable references (made by `array.new_elem`, which wasm-smith
        // rarely writes), where the module has one.
        let of_refs: Vec<u32> = fillable.iter().copied().filter(|&i| of_nullable_refs(i, types)).collect();
        let pool = if !of_refs.is_empty() && u.ratio(1, 4).unwrap_or(false) { &of_refs } else { &fillable };
        let fresh = match u.choose(pool) {
            Ok(&i) if u.ratio(1, 2).unwrap_or(false) => Fresh::Module(i, u.int_in_range(0..=8).unwrap_or(1)),
            _ => Fresh::Own(u.arbitrary().unwrap_or(0x5eed)),
        };
        let throw = crate::line::has(crate::line::Cap::Exceptions) && u.ratio(1, 2).unwrap_or(false);
        // A collection at every entry would spend the instance's collection
        // budget on entries: a quarter of them collect.
        let via = if u.ratio(1, 4).unwrap_or(false) { Some(Via::draw(u)) } else { None };
        let in_try = crate::line::has(crate::line::Cap::Exceptions) && via.is_some() && u.ratio(1, 2).unwrap_or(false);
        plan.entry = Some(Entry { fresh, via, throw, in_try });
    }
    let mut ops = body.get_operators_reader()?;
    let mut index = 0;
    while !ops.eof() {
        let offset = ops.original_position();
        let op = ops.read()?;
        let is_safepoint = matches!(
            op,
            Operator::Call { .. } | Operator::CallRef { .. } | Operator::CallIndirect { .. } | Operator::Throw { .. }
        ) || crate::case::is_allocation(&op);
        let reachable = v.get_control_frame(0).is_some_and(|f| !f.unreachable);
        if is_safepoint && reachable && plan.gc_before.len() < MAX_GC_BEFORE && u.ratio(1, 8).unwrap_or(false) {
            plan.gc_before.push((index, Via::draw(u)));
        }
        if edges
            && reachable
            && plan.edges.len() < MAX_EDGES
            && let Some(edge) = EdgeOperand::draw(&op, 3, u)
        {
            plan.edges.push((index, edge));
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
            // Sites on arrays of references (wasm-smith writes few), and a
            // third of those on structs that hold references, carry the
            // array's last element or the struct's field instead.
            let (r, load) = match loadable(r, types) {
                Some((field, load)) if load.field.is_none() || u.ratio(1, 3).unwrap_or(false) => (field, Some(load)),
                _ => (r, None),
            };
            let template = match u.int_in_range(0..=4).unwrap_or(0) {
                // Half the local sites hold it in a non-nullable local
                // (chosen by position: no input bytes drawn for it).
                0 if index % 2 == 1 => Template::NonNull,
                0 => Template::Local,
                1 => Template::BlockParam,
                2 if defaultable(&r, types) => Template::Select,
                3 if crate::line::has(crate::line::Cap::Exceptions) && !is_extern(&r) => Template::Throw,
                4 if matches!(r.heap_type(), wasmparser::HeapType::Concrete(_)) => Template::Widened,
                _ => Template::Local,
            };
            plan.sites.push(Site { after: index, ty: r, load, template, via: Via::draw(u) });
        }
        index += 1;
    }
    Ok(plan)
}

/// How deep a subtype chain the module's entries allocate at and cast
/// along (`Encoder::new_chain_object`): 2 to 47 types, picked from the module's
/// shape so no input byte moves; none without entries. wasm-smith makes a
/// type a subtype one time in 32, so its chains are rarely deeper than two.
fn chain_depth(a: &Analysis) -> u32 {
    match a.plans.iter().any(|p| p.entry.is_some()) {
        true => 2 + ((a.types.len() * 7 + a.plans.len() * 3) % 46) as u32,
        false => 0,
    }
}

/// `r` without its null.
fn non_null(r: wasmparser::RefType) -> wasmparser::RefType {
    wasmparser::RefType::new(false, r.heap_type()).expect("the same heap type fits")
}

/// Whether `r` is an `externref` (not an `anyref` payload).
fn is_extern(r: &wasmparser::RefType) -> bool {
    matches!(r.heap_type(), wasmparser::HeapType::Abstract { ty: wasmparser::AbstractHeapType::Extern, .. })
}

/// Whether `struct.new_default` / `array.new_default` can make a `T`.
fn defaultable(r: &wasmparser::RefType, types: &[SubType]) -> bool {
    let Some(t) = type_index(r).and_then(|i| types.get(i as usize)) else { return false };
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

/// A value of storage `s` that no default has (scalars non-zero, nullable
/// references null), or `None` for a non-nullable reference. `second`
/// gives another value, which a write to the pass's own object stores so a
/// reused object's first values tell the two apart.
fn filler_value(s: &StorageType, second: bool) -> Option<Instruction<'static>> {
    let k = if second { 0x1337 } else { 0x5a5a };
    Some(match s {
        StorageType::I8 | StorageType::I16 | StorageType::Val(wasmparser::ValType::I32) => Instruction::I32Const(k),
        StorageType::Val(wasmparser::ValType::I64) => Instruction::I64Const(k as i64 * 0x1_0001),
        StorageType::Val(wasmparser::ValType::F32) => Instruction::F32Const((k as f32).into()),
        StorageType::Val(wasmparser::ValType::F64) => Instruction::F64Const((k as f64).into()),
        StorageType::Val(wasmparser::ValType::V128) => Instruction::V128Const(k as i128),
        StorageType::Val(wasmparser::ValType::Ref(r)) if r.is_nullable() => {
            Instruction::RefNull(RoundtripReencoder.heap_type(r.heap_type()).ok()?)
        }
        StorageType::Val(wasmparser::ValType::Ref(_)) => return None,
    })
}

/// Whether module type `index` is a struct or array the pass can allocate
/// with [`filler_value`]s.
fn fillable(index: u32, types: &[SubType]) -> bool {
    let Some(t) = types.get(index as usize) else { return false };
    !t.composite_type.shared
        && match &t.composite_type.inner {
            CompositeInnerType::Struct(s) => s.fields.iter().all(|f| filler_value(&f.element_type, false).is_some()),
            CompositeInnerType::Array(a) => filler_value(&a.0.element_type, false).is_some(),
            _ => false,
        }
}

/// The top of `r`'s hierarchy (`any`: the pass widens only struct and array
/// types), as nullable as `r`.
fn widened(r: wasmparser::RefType) -> wasmparser::RefType {
    let any = wasmparser::HeapType::Abstract { shared: false, ty: wasmparser::AbstractHeapType::Any };
    wasmparser::RefType::new(r.is_nullable(), any).expect("an abstract type fits")
}

/// The module type index a reference to a concrete type names.
fn type_index(r: &wasmparser::RefType) -> Option<u32> {
    match r.heap_type() {
        wasmparser::HeapType::Concrete(i) => i.as_module_index(),
        _ => None,
    }
}

/// The element field of module type `index`, when it is an array type.
fn array_field(index: u32, types: &[SubType]) -> Option<&wasmparser::FieldType> {
    match &types.get(index as usize)?.composite_type.inner {
        CompositeInnerType::Array(a) => Some(&a.0),
        _ => None,
    }
}

/// The reference type of a mutable array's elements (what the pass's own
/// segments are made for: `Encoder::own_elems`).
fn mutable_ref_elements(index: u32, types: &[SubType]) -> Option<wasmparser::RefType> {
    match array_field(index, types)? {
        wasmparser::FieldType { mutable: true, element_type: StorageType::Val(wasmparser::ValType::Ref(r)) } => {
            Some(*r)
        }
        _ => None,
    }
}

/// Whether module type `index` is a mutable array of nullable references
/// (what the pass's own segments can make: `Encoder::own_elem`).
fn of_nullable_refs(index: u32, types: &[SubType]) -> bool {
    mutable_ref_elements(index, types).is_some_and(|r| r.is_nullable())
}

/// A non-null reference to type `index`.
fn fresh_ref(index: u32) -> wasmparser::RefType {
    wasmparser::RefType::new(false, wasmparser::HeapType::Concrete(wasmparser::UnpackedIndex::Module(index)))
        .expect("a small type index fits")
}

/// Where a section goes in a module's binary order (custom sections, which
/// may go anywhere, come first: nothing is placed before them).
fn order(id: wasm_encoder::SectionId) -> u8 {
    use wasm_encoder::SectionId as S;
    match id {
        S::Custom => 0,
        S::Type => 1,
        S::Import => 2,
        S::Function => 3,
        S::Table => 4,
        S::Memory => 5,
        S::Tag => 6,
        S::Global => 7,
        S::Export => 8,
        S::Start => 9,
        S::Element => 10,
        S::DataCount => 11,
        S::Code => 12,
        S::Data => 13,
    }
}

/// The two `i32` locals the pass adds to each function it rewrites.
#[derive(Clone, Copy)]
struct Scratch {
    /// An array length.
    len: u32,
    /// Whether the last inserted collection ran (its budget lasted).
    collected: u32,
}

/// Phase two: re-encode with the plan applied.
struct Encoder<'a> {
    a: &'a Analysis,
    avoid: &'a [AvoidRule],
    /// Index of the `host.gc` import after rewriting, and its type.
    gc: u32,
    gc_type: u32,
    /// The added table holding `$gc`, for `call_indirect`.
    gc_table: u32,
    /// The pass's own struct type (see [`Fresh::Own`]), and the type of
    /// its tag, whose payload is one `anyref`.
    own_type: u32,
    tag_type: u32,
    /// The pass's tag, when the line has exceptions.
    tag: Option<u32>,
    add_import: bool,
    import_done: bool,
    table_done: bool,
    tag_done: bool,
    observe_global: u32,
    /// The globals appended after it: the collection budget (collections
    /// and throws) and the entry budget.
    collection_budget: u32,
    entry_budget: u32,
    /// Types appended for block-parameter sequences, by reference type.
    block_types: Vec<(wasmparser::RefType, u32)>,
    /// The first of the two types appended for widened sequences, by
    /// reference type.
    widen_types: Vec<(wasmparser::RefType, u32)>,
    /// (original, twin) type pairs of a linked module (`linked::twins`):
    /// an observed object of the original type is tested against its twin.
    twins: Vec<(u32, u32)>,
    /// The appended subtype chain: its first type and its depth, and the
    /// one function whose entry allocates on it (its code in every function
    /// with an entry cost a third of the campaign's throughput, 46.5 against
    /// 60.2 cases/s without the chain, seed 27; in one function, 53.3 and
    /// 50.7).
    chain: (u32, u32),
    chain_function: Option<usize>,
    /// The pass's own function `$collect` ([`Via::Defined`]), appended
    /// after the module's functions, and its type `(func (result i32))`,
    /// appended after the chain.
    collect_fn: u32,
    collect_type: u32,
    next_function: usize,
    /// Passive element segments appended for `array.new_elem` and
    /// `array.init_elem` on the pass's fresh arrays: one per array type of
    /// a mutable reference element, of that element type, after the
    /// module's own segments; [`OWN_ELEM_ITEMS`] nulls where the type is
    /// nullable, empty where not.
    own_elems: Vec<(u32, wasmparser::RefType)>,
    elems_done: bool,
}

impl<'a> Encoder<'a> {
    fn new(a: &'a Analysis, avoid: &'a [AvoidRule], twins: Vec<(u32, u32)>) -> Encoder<'a> {
        let mut block_types: Vec<(wasmparser::RefType, u32)> = Vec::new();
        for site in a.plans.iter().flat_map(|p| &p.sites) {
            if site.template == Template::BlockParam && !block_types.iter().any(|(t, _)| *t == site.ty) {
                block_types.push((site.ty, (a.types.len() + block_types.len()) as u32));
            }
        }
        // Two types per widened reference type: (T) -> (W), then (W) -> (T).
        let mut widen_types: Vec<(wasmparser::RefType, u32)> = Vec::new();
        for site in a.plans.iter().flat_map(|p| &p.sites) {
            if site.template == Template::Widened && !widen_types.iter().any(|(t, _)| *t == site.ty) {
                widen_types.push((site.ty, (a.types.len() + block_types.len() + 2 * widen_types.len()) as u32));
            }
        }
        let empty_func_type = (a.types.len() + block_types.len() + 2 * widen_types.len()) as u32;
        Encoder {
            a,
            avoid,
            gc: a.gc_import.map_or(a.func_imports, |(f, _)| f),
            gc_type: a.gc_import.map_or(empty_func_type, |(_, t)| t),
            gc_table: a.tables,
            own_type: empty_func_type + 1,
            tag_type: empty_func_type + 2,
            tag: crate::line::has(crate::line::Cap::Exceptions).then_some(a.tags),
            add_import: a.gc_import.is_none(),
            import_done: false,
            table_done: false,
            tag_done: false,
            observe_global: a.globals,
            collection_budget: a.globals + 1,
            entry_budget: a.globals + 2,
            block_types,
            widen_types,
            twins,
            chain: (empty_func_type + 3, chain_depth(a)),
            collect_fn: a.func_imports + a.gc_import.is_none() as u32 + a.plans.len() as u32,
            collect_type: empty_func_type + 3 + chain_depth(a),
            chain_function: a.plans.iter().position(|p| p.entry.is_some()),
            next_function: 0,
            own_elems: (0..a.types.len() as u32)
                .filter_map(|i| mutable_ref_elements(i, &a.types).map(|r| (i, r)))
                .collect(),
            elems_done: false,
        }
    }

    /// The element segment `array.new_elem` and `array.init_elem` on a
    /// fresh array of type `index` read from (see `own_elems`), and how
    /// many items it has.
    fn own_elem(&self, index: u32) -> Option<(u32, u32)> {
        let k = self.own_elems.iter().position(|(t, _)| *t == index)?;
        let items = if self.own_elems[k].1.is_nullable() { OWN_ELEM_ITEMS } else { 0 };
        Some((self.a.elems + k as u32, items))
    }

    fn emit_elems(&mut self, elems: &mut wasm_encoder::ElementSection) {
        for (_, r) in self.own_elems.clone() {
            let ty = self.encode_ref(r);
            let items = match r.is_nullable() {
                true => vec![wasm_encoder::ConstExpr::ref_null(ty.heap_type); OWN_ELEM_ITEMS as usize],
                false => vec![],
            };
            elems.passive(wasm_encoder::Elements::Expressions(ty, std::borrow::Cow::Owned(items)));
        }
        // The probe's: `[ref.func $gc]` and `[ref.null any]`.
        elems.passive(wasm_encoder::Elements::Functions(std::borrow::Cow::Owned(vec![self.gc])));
        elems.passive(wasm_encoder::Elements::Expressions(
            wasm_encoder::RefType::ANYREF,
            std::borrow::Cow::Owned(vec![wasm_encoder::ConstExpr::ref_null(wasm_encoder::HeapType::Abstract {
                shared: false,
                ty: wasm_encoder::AbstractHeapType::Any,
            })]),
        ));
        self.elems_done = true;
    }

    /// The two-slot table holding `$gc` (a second slot and a maximum of two
    /// give the probe's table edges: a last index, a failing grow).
    fn emit_table(&mut self, tables: &mut wasm_encoder::TableSection) {
        let ty = wasm_encoder::TableType {
            element_type: wasm_encoder::RefType::FUNCREF,
            table64: false,
            minimum: 2,
            maximum: Some(2),
            shared: false,
        };
        tables.table_with_init(ty, &wasm_encoder::ConstExpr::ref_func(self.gc));
        self.table_done = true;
    }

    /// The pass's tag, `(tag (param anyref))`.
    fn emit_tag(&mut self, tags: &mut wasm_encoder::TagSection) {
        if self.tag.is_some() {
            tags.tag(wasm_encoder::TagType { kind: wasm_encoder::TagKind::Exception, func_type_idx: self.tag_type });
        }
        self.tag_done = true;
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
        (self.a.types.len() + self.block_types.len() + 2 * self.widen_types.len()) as u32
    }

    fn encode_ref(&mut self, r: wasmparser::RefType) -> wasm_encoder::RefType {
        RoundtripReencoder.ref_type(r).expect("reference types re-encode")
    }

    fn encode_val(&mut self, r: wasmparser::RefType) -> ValType {
        ValType::Ref(self.encode_ref(r))
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
        for (r, _) in self.widen_types.clone() {
            let (t, w) = (self.encode_val(r), self.encode_val(widened(r)));
            types.ty().function([t], [w]);
            types.ty().function([w], [t]);
        }
        types.ty().function([], []);
        types.ty().struct_([wasm_encoder::FieldType {
            element_type: wasm_encoder::StorageType::Val(ValType::I64),
            mutable: true,
        }]);
        types.ty().function([ValType::Ref(wasm_encoder::RefType::ANYREF)], []);
        // The chain: type k has k + 1 `(mut i64)` fields and type k - 1 as
        // its supertype; the deepest is final.
        let (first, depth) = self.chain;
        for k in 0..depth {
            let field =
                wasm_encoder::FieldType { element_type: wasm_encoder::StorageType::Val(ValType::I64), mutable: true };
            types.ty().subtype(&wasm_encoder::SubType {
                is_final: k + 1 == depth,
                supertype_idxs: if k == 0 { vec![] } else { vec![first + k - 1] },
                composite_type: wasm_encoder::CompositeType {
                    inner: wasm_encoder::CompositeInnerType::Struct(wasm_encoder::StructType {
                        fields: vec![field; k as usize + 1].into(),
                    }),
                    shared: false,
                    descriptor: None,
                    describes: None,
                },
            });
        }
        types.ty().function([], [ValType::I32]);
        // The probe's arrays: `(array (mut i64))`, `(array (mut anyref))`.
        for element in [ValType::I64, ValType::Ref(wasm_encoder::RefType::ANYREF)] {
            types.ty().array(&wasm_encoder::StorageType::Val(element), true);
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_function_section(self, functions, section)?;
        if !self.a.plans.is_empty() {
            functions.function(self.collect_type);
            functions.function(self.empty_func_type());
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_code_section(self, code, section)?;
        if !self.a.plans.is_empty() {
            code.function(&self.collect_function());
            code.function(&self.probe_function());
        }
        Ok(())
    }

    fn parse_table_section(
        &mut self,
        tables: &mut wasm_encoder::TableSection,
        section: wasmparser::TableSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_table_section(self, tables, section)?;
        self.emit_table(tables);
        Ok(())
    }

    fn parse_tag_section(
        &mut self,
        tags: &mut wasm_encoder::TagSection,
        section: wasmparser::TagSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_tag_section(self, tags, section)?;
        self.emit_tag(tags);
        Ok(())
    }

    fn parse_element_section(
        &mut self,
        elems: &mut wasm_encoder::ElementSection,
        section: wasmparser::ElementSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_element_section(self, elems, section)?;
        self.emit_elems(elems);
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
        // A section the input lacks goes before the first section that
        // must come after it.
        let later = |than: wasm_encoder::SectionId| before.is_none_or(|b| order(b) > order(than));
        if !self.import_done && later(wasm_encoder::SectionId::Import) {
            let mut imports = wasm_encoder::ImportSection::new();
            self.emit_import(&mut imports)?;
            module.section(&imports);
        }
        if !self.table_done && later(wasm_encoder::SectionId::Table) {
            let mut tables = wasm_encoder::TableSection::new();
            self.emit_table(&mut tables);
            module.section(&tables);
        }
        if !self.tag_done && self.tag.is_some() && later(wasm_encoder::SectionId::Tag) {
            let mut tags = wasm_encoder::TagSection::new();
            self.emit_tag(&mut tags);
            module.section(&tags);
        }
        if !self.elems_done && later(wasm_encoder::SectionId::Element) {
            let mut elems = wasm_encoder::ElementSection::new();
            self.emit_elems(&mut elems);
            module.section(&elems);
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
        globals.global(
            wasm_encoder::GlobalType { val_type: ValType::I32, mutable: true, shared: false },
            &wasm_encoder::ConstExpr::i32_const(ENTRY_BUDGET),
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
        if !self.a.plans.is_empty() {
            exports.export(PROBE_EXPORT, wasm_encoder::ExportKind::Func, self.collect_fn + 1);
        }
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
            let u = match site.template {
                Template::NonNull => self.encode_val(non_null(site.ty)),
                _ => t,
            };
            // The third holds the object a load reads from.
            let holder = site.load.map_or(t, |l| self.encode_val(l.holder));
            locals.push((1, t));
            locals.push((1, u));
            locals.push((1, holder));
        }
        // Then the two i32 scratch locals and the entry object's local.
        let len = first_new + 3 * sites.len() as u32;
        let scratch = Scratch { len, collected: len + 1 };
        locals.push((2, ValType::I32));
        // Then the entry object's local, and its caught copy's when it is
        // thrown.
        let entry = plan.entry;
        if let Some(Entry { fresh, throw, .. }) = entry {
            let r = self.encode_val(fresh_ref(self.fresh_type(fresh)));
            locals.push((1 + throw as u32, r));
        }
        // Then one `(ref null $array)` local per edge that measures an array.
        let mut next_local = len + 2 + entry.map_or(0, |e| 1 + e.throw as u32);
        let mut edge_locals = Vec::new();
        for (_, edge) in &plan.edges {
            edge_locals.push(edge.local_type().map(|array| {
                let nullable = wasmparser::RefType::new(
                    true,
                    wasmparser::HeapType::Concrete(wasmparser::UnpackedIndex::Module(array)),
                )
                .expect("a small type index fits");
                locals.push((1, self.encode_val(nullable)));
                next_local += 1;
                next_local - 1
            }));
        }
        // Then the chain's local, `(ref null $c0)`, where there is an entry.
        let chain_here = self.chain.1 > 0 && self.chain_function == Some(self.next_function - 1);
        let chain = entry.filter(|_| chain_here).map(|_| {
            let c0 = wasmparser::HeapType::Concrete(wasmparser::UnpackedIndex::Module(self.chain.0));
            locals.push((1, self.encode_val(wasmparser::RefType::new(true, c0).expect("a small type index fits"))));
            next_local
        });
        let edges = plan.edges.clone();
        let mut f = wasm_encoder::Function::new(locals);
        if let Some(entry) = entry {
            self.emit_entry(&mut f, entry, len + 2, chain, scratch);
        }
        let gc_before = plan.gc_before.clone();
        let mut ops = func.get_operators_reader()?;
        let mut index = 0;
        while !ops.eof() {
            let op = ops.read()?;
            if let Some((_, via)) = gc_before.iter().find(|(i, _)| *i == index) {
                self.collect(&mut f, *via, scratch.collected);
            }
            for (k, (_, edge)) in edges.iter().enumerate().filter(|(_, (i, _))| *i == index) {
                edge.emit(&mut f, edge_locals[k]);
            }
            f.instruction(&self.instruction(op)?);
            for (k, site) in sites.iter().enumerate().filter(|(_, s)| s.after == index) {
                let t = first_new + 3 * k as u32;
                match site.load {
                    Some(load) => {
                        f.instruction(&Instruction::LocalTee(t + 2));
                        self.load(&mut f, t + 2, load, site.ty);
                        self.emit_site(&mut f, site, t, t + 1, scratch);
                        f.instruction(&Instruction::Drop);
                    }
                    None => self.emit_site(&mut f, site, t, t + 1, scratch),
                }
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
        let (mut rewritten, mut non_null, mut deep) = (0, 0, 0);
        for i in 0..2000 {
            let data = seeded_input(11, i);
            let mut u = Unstructured::new(&data[..data.len() - 200]);
            let wasm = module(Profile::Gc, &mut u).unwrap();
            match rewrite(&wasm, &mut Unstructured::new(&data[data.len() - 200..]), &[], true) {
                Ok((_, stats)) => {
                    rewritten += (stats.sites + stats.gc_calls > 0) as usize;
                    non_null += (stats.non_null > 0) as usize;
                    deep += (stats.chain_depth >= 16) as usize;
                }
                Err(e) => *errors.entry(format!("{e:#}").chars().take(120).collect::<String>()).or_insert(0) += 1,
            }
        }
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(rewritten > 1500, "only {rewritten} of 2000 modules got insertions");
        eprintln!("{non_null} of 2000 modules hold a reference in a non-nullable local");
        eprintln!("{deep} of 2000 modules cast along a subtype chain 16 or more deep");
        assert!(deep > 200, "only {deep} of 2000 modules cast along a deep subtype chain");
        assert!(non_null > 200, "only {non_null} of 2000 modules hold a reference in a non-nullable local");
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
            let Ok((plain, _)) = rewrite(&wasm, &mut pass(), &[], true) else { continue };
            without += rule.matches(&plain) as u32;
            let (avoiding, _) = rewrite(&wasm, &mut pass(), std::slice::from_ref(&rule), true).unwrap();
            with += rule.matches(&avoiding) as u32;
            Profile::Gc.validate(&avoiding).unwrap();
        }
        assert!(without >= 50, "the pass observes externrefs this way in only {without} of 300 modules");
        assert_eq!(with, 0);
    }
}
