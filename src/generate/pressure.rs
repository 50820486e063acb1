//! Rooting-pressure analysis: how many GC references a module keeps live
//! across safepoints, and at how many of those safepoints a collection is
//! actually forced. A rooting bug needs exactly that combination.
//!
//! One linear pass per function, driven by wasmparser's function validator
//! (which knows every operand's type and the stack height): a shadow stack
//! records, for each GC reference, how many safepoints had passed when it was
//! defined. When the reference is used after more safepoints have passed, it
//! was live across each of them. Safepoints are calls of every kind and
//! allocations. Loop back edges and branch joins are not followed (values
//! carried around a loop are missed): the counts are a lower bound.
//!
//! The same pass fills the reach matrix ([`Pressure::cells`], vocabulary in
//! [`super::reach`]): which instruction made a reference (its row; conversions and casts count as
//! makers, since each is a new value a stack map must hold), how it was
//! carried (`Select`, `block`), what used it, and the kind of safepoint
//! where a collection really ran while it was live (its column); a cell is
//! *observed* when the use after the collection reads the object.

use super::reach::{Cell, Column, observes, row_of, use_row};
use crate::case::host::HostFunc;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeSet;
use wasmparser::{
    AbstractHeapType, FrameKind, FuncValidatorAllocations, HeapType, Operator, Parser, Payload, TypeRef, ValType,
    ValidPayload, Validator, WasmFeatures,
};

/// How a reference reached the instruction that used it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carrier {
    Stack,
    Local,
    BlockParam,
    Select,
}

/// A shadow operand: for GC references, the safepoint count at definition
/// of the object (`def`) and of this value (`since`: a cast or conversion
/// is a new value), and the matrix row of what made the value.
#[derive(Clone, Copy, Debug)]
struct Shadow {
    def: Option<u32>,
    carrier: Carrier,
    since: u32,
    row: &'static str,
}

const NOT_A_REF: Shadow = Shadow { def: None, carrier: Carrier::Stack, since: 0, row: "" };

/// A use of a reference made `since` safepoints into its function and used
/// at safepoint count `now`: the rows it counts under.
struct Use {
    rows: Vec<&'static str>,
    since: u32,
    now: u32,
    observed: bool,
}

/// What may make a safepoint collect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SafepointKind {
    /// A host import that collects (`gc`, `gc_any`, `gc_extern`).
    HostGc,
    /// Some other import.
    Import,
    Call(u32),
    Indirect,
    CallRef,
    Allocation,
    Throw,
}

/// Counts for one module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pressure {
    pub functions: usize,
    pub allocation_sites: usize,
    pub safepoints: usize,
    /// Calls of the host's collecting imports.
    pub gc_calls: usize,
    /// Safepoints with at least one GC reference live across them.
    pub live_safepoints: usize,
    /// ... of which a collection is forced at (see [`analyze`]).
    pub forced_live_safepoints: usize,
    /// Uses of references that were live across a safepoint, by how the
    /// reference was carried to the use.
    pub on_stack: usize,
    pub in_locals: usize,
    pub through_block_params: usize,
    pub through_select: usize,
    /// Of all such uses, those inside a `try_table`.
    pub inside_try_table: usize,
    /// The reach matrix cells this module hits.
    #[serde(skip)]
    pub cells: BTreeSet<Cell>,
}

impl Pressure {
    /// Adds another module's figures: a linked case's pressure is that of
    /// all its modules.
    pub fn merge(&mut self, other: Pressure) {
        self.functions += other.functions;
        self.allocation_sites += other.allocation_sites;
        self.safepoints += other.safepoints;
        self.gc_calls += other.gc_calls;
        self.live_safepoints += other.live_safepoints;
        self.forced_live_safepoints += other.forced_live_safepoints;
        self.on_stack += other.on_stack;
        self.in_locals += other.in_locals;
        self.through_block_params += other.through_block_params;
        self.through_select += other.through_select;
        self.inside_try_table += other.inside_try_table;
        self.cells.extend(other.cells);
    }
}

type FuncValidator = wasmparser::FuncValidator<wasmparser::ValidatorResources>;

/// Whether values of this type can point into the GC heap (i31 and
/// function references cannot; `externref`s are GC objects in Wasmtime).
/// Types from the module are by index, types from the validator by id.
fn is_gc_ref(ty: &ValType, func_types: &[bool], v: &FuncValidator) -> bool {
    use AbstractHeapType as A;
    use wasmparser::WasmModuleResources;
    let ValType::Ref(r) = ty else { return false };
    let is_func =
        |sub: &wasmparser::SubType| matches!(sub.composite_type.inner, wasmparser::CompositeInnerType::Func(_));
    match r.heap_type() {
        HeapType::Abstract { ty, .. } => matches!(ty, A::Any | A::Eq | A::Struct | A::Array | A::Extern | A::Exn),
        HeapType::Concrete(i) | HeapType::Exact(i) => match (i.as_module_index(), i.as_core_type_id()) {
            (Some(i), _) => !func_types.get(i as usize).copied().unwrap_or(true),
            (None, Some(id)) => !is_func(v.resources().sub_type_at_id(id)),
            _ => false,
        },
    }
}

/// Analyzes `wasm`. `zeal_forces` says whether allocations force a
/// collection (a small `gc_zeal_alloc_counter`); host `gc` imports always
/// do, and calls do when the callee may reach either.
pub fn analyze(wasm: &[u8], zeal_forces: bool) -> Result<Pressure> {
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut func_types: Vec<bool> = Vec::new();
    let mut imported: Vec<bool> = Vec::new(); // per function index: is a collecting host import
    let mut num_imported = 0u32;
    let mut allocs = FuncValidatorAllocations::default();
    let mut p = Pressure::default();
    // Per defined function: its safepoints and the uses of references.
    let mut functions: Vec<Body> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::TypeSection(reader) => {
                for group in reader.clone() {
                    for sub in group?.into_types() {
                        func_types.push(matches!(sub.composite_type.inner, wasmparser::CompositeInnerType::Func(_)));
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    let import = import?;
                    if let TypeRef::Func(_) = import.ty {
                        num_imported += 1;
                        imported.push(HostFunc::import(import.module, import.name).is_some_and(HostFunc::collects));
                    }
                }
            }
            _ => {}
        }
        if let ValidPayload::Func(func, body) = validator.payload(&payload)? {
            let mut v = func.into_validator(std::mem::take(&mut allocs));
            functions.push(analyze_body(&mut v, &body, &func_types, &imported, &mut p)?);
            allocs = v.into_allocations();
        }
    }
    // Which defined functions may collect: a fixpoint over direct calls.
    let direct = |sp: &Safepoint| match sp.kind {
        SafepointKind::HostGc => true,
        SafepointKind::Allocation | SafepointKind::Throw => zeal_forces,
        _ => false,
    };
    let mut may_gc: Vec<bool> = functions.iter().map(|f| f.safepoints.iter().any(direct)).collect();
    loop {
        let any = may_gc.iter().any(|b| *b);
        let next: Vec<bool> = functions
            .iter()
            .enumerate()
            .map(|(f, body)| {
                may_gc[f]
                    || body.safepoints.iter().any(|sp| match sp.kind {
                        SafepointKind::Call(callee) => {
                            callee >= num_imported && may_gc[(callee - num_imported) as usize]
                        }
                        SafepointKind::Indirect | SafepointKind::CallRef => any,
                        _ => false,
                    })
            })
            .collect();
        if next == may_gc {
            break;
        }
        may_gc = next;
    }
    let any_may_gc = may_gc.iter().any(|b| *b);
    // The column of a safepoint where a collection really runs.
    let column = |sp: &Safepoint| match sp.kind {
        SafepointKind::HostGc => Some(Column::HostGc),
        SafepointKind::Import => None,
        SafepointKind::Allocation => zeal_forces.then_some(Column::Allocation),
        SafepointKind::Throw => zeal_forces.then_some(Column::Throw),
        SafepointKind::Call(callee) => {
            (callee >= num_imported && may_gc[(callee - num_imported) as usize]).then_some(Column::Call)
        }
        SafepointKind::Indirect => any_may_gc.then_some(Column::CallIndirect),
        SafepointKind::CallRef => any_may_gc.then_some(Column::CallRef),
    };
    for body in &functions {
        for sp in &body.safepoints {
            p.live_safepoints += sp.live as usize;
            p.forced_live_safepoints += (sp.live && column(sp).is_some()) as usize;
        }
        for u in &body.uses {
            for sp in &body.safepoints[u.since as usize..u.now as usize] {
                let Some(col) = column(sp) else { continue };
                for row in &u.rows {
                    p.cells.insert((row, col, u.observed));
                    if sp.in_try {
                        p.cells.insert((row, Column::InTryTable, u.observed));
                    }
                }
            }
        }
    }
    p.functions = functions.len();
    Ok(p)
}

/// One safepoint of a function body.
struct Safepoint {
    kind: SafepointKind,
    /// A reference was live across it.
    live: bool,
    in_try: bool,
}

/// What the pass finds in one function body.
struct Body {
    safepoints: Vec<Safepoint>,
    uses: Vec<Use>,
}

fn analyze_body(
    v: &mut FuncValidator,
    body: &wasmparser::FunctionBody,
    func_types: &[bool],
    imported: &[bool],
    p: &mut Pressure,
) -> Result<Body> {
    let mut locals_reader = body.get_locals_reader()?;
    let mut declared = 0;
    for _ in 0..locals_reader.get_count() {
        let offset = locals_reader.original_position();
        let (count, ty) = locals_reader.read()?;
        v.define_locals(offset, count, ty)?;
        declared += count as usize;
    }
    // Parameters hold the caller's references from entry on; declared
    // locals hold nothing (null) until set.
    let num_locals = (0..).take_while(|i| v.get_local_type(*i).is_some()).count();
    let params = num_locals - declared;
    let mut locals: Vec<Shadow> = (0..num_locals)
        .map(|i| {
            let is_ref = i < params && v.get_local_type(i as u32).is_some_and(|t| is_gc_ref(&t, func_types, v));
            Shadow { def: is_ref.then_some(0), carrier: Carrier::Local, since: 0, row: "param" }
        })
        .collect();
    let mut stack: Vec<Shadow> = Vec::new();
    let mut safepoints: Vec<Safepoint> = Vec::new();
    let mut uses: Vec<Use> = Vec::new();
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        let offset = ops.original_position();
        let op = ops.read()?;
        let Some(frame) = v.get_control_frame(0) else { break };
        let frame_height = frame.height;
        let in_try = (0..v.control_stack_height() as usize)
            .any(|d| v.get_control_frame(d).is_some_and(|f| f.kind == FrameKind::TryTable));
        let (pops, _) = wasmparser::Operator::operator_arity(&op, &*v).unwrap_or((0, 0));
        let available = stack.len().saturating_sub(frame_height);
        let popped: Vec<Shadow> = stack.split_off(stack.len() - (pops as usize).min(available));
        // Uses: every popped reference defined before the latest safepoint
        // was live across the safepoints in between.
        let now = safepoints.len() as u32;
        for s in &popped {
            if s.def.is_some() && s.since < now {
                let mut rows = vec![s.row];
                rows.extend(match s.carrier {
                    Carrier::Select => Some("Select"),
                    Carrier::BlockParam => Some("block param/result"),
                    _ => None,
                });
                rows.extend(use_row(&op));
                uses.push(Use { rows, since: s.since, now, observed: observes(&op) });
            }
            if let Some(def) = s.def
                && def < now
            {
                for sp in &mut safepoints[def as usize..] {
                    sp.live = true;
                }
                match s.carrier {
                    Carrier::Stack => p.on_stack += 1,
                    Carrier::Local => p.in_locals += 1,
                    Carrier::BlockParam => p.through_block_params += 1,
                    Carrier::Select => p.through_select += 1,
                }
                p.inside_try_table += in_try as usize;
            }
        }
        let safepoint = match &op {
            Operator::Call { function_index } => Some(match imported.get(*function_index as usize) {
                Some(true) => SafepointKind::HostGc,
                Some(false) => SafepointKind::Import,
                None => SafepointKind::Call(*function_index),
            }),
            Operator::CallIndirect { .. } => Some(SafepointKind::Indirect),
            Operator::CallRef { .. } => Some(SafepointKind::CallRef),
            // Throwing allocates the exception object.
            Operator::Throw { .. } => Some(SafepointKind::Throw),
            op if crate::case::is_allocation(op) => Some(SafepointKind::Allocation),
            _ => None,
        };
        if let Some(kind) = safepoint {
            p.safepoints += 1;
            p.gc_calls += (kind == SafepointKind::HostGc) as usize;
            p.allocation_sites += matches!(kind, SafepointKind::Allocation | SafepointKind::Throw) as usize;
            safepoints.push(Safepoint { kind, live: false, in_try });
        }
        // Locals.
        match &op {
            Operator::LocalSet { local_index } | Operator::LocalTee { local_index } => {
                if let (Some(s), Some(l)) = (popped.last(), locals.get_mut(*local_index as usize)) {
                    *l = Shadow { carrier: Carrier::Local, ..*s };
                }
            }
            _ => {}
        }
        v.op(offset, &op)?;
        let height = v.operand_stack_height() as usize;
        stack.truncate(height);
        let pushes = height - stack.len();
        let now = safepoints.len() as u32;
        let row = row_of(&op);
        let fresh = |depth: usize| -> Shadow {
            let is_ref = v.get_operand_type(depth).flatten().is_some_and(|t| is_gc_ref(&t, func_types, v));
            Shadow { def: is_ref.then_some(now), carrier: Carrier::Stack, since: now, row }
        };
        let kept = |carrier| popped.iter().map(move |s| Shadow { carrier, ..*s });
        let pushed: Vec<Shadow> = match &op {
            Operator::LocalGet { local_index } => vec![locals.get(*local_index as usize).copied().unwrap_or(NOT_A_REF)],
            Operator::LocalTee { .. } => popped.clone(),
            // Block parameters and results keep their identity.
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::TryTable { .. }
            | Operator::End
            | Operator::Else => kept(Carrier::BlockParam).collect(),
            Operator::If { .. } => kept(Carrier::BlockParam).take(popped.len().saturating_sub(1)).collect(),
            Operator::BrIf { .. } => kept(Carrier::BlockParam).take(popped.len().saturating_sub(1)).collect(),
            Operator::Select | Operator::TypedSelect { .. } | Operator::TypedSelectMulti { .. }
                if popped.len() == 3 =>
            {
                let def = match (popped[0].def, popped[1].def) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let older = if popped[0].since <= popped[1].since { popped[0] } else { popped[1] };
                vec![Shadow { def, carrier: Carrier::Select, ..older }]
            }
            // The same object under another type: a new value (what the
            // matrix counts), the same object (what liveness counts).
            Operator::RefAsNonNull
            | Operator::RefCastNonNull { .. }
            | Operator::RefCastNullable { .. }
            | Operator::AnyConvertExtern
            | Operator::ExternConvertAny
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
            | Operator::BrOnCast { .. }
            | Operator::BrOnCastFail { .. } => popped.iter().map(|s| Shadow { since: now, row, ..*s }).collect(),
            _ => Vec::new(),
        };
        let pushed: Vec<Shadow> =
            if pushed.len() == pushes { pushed } else { (0..pushes).map(|i| fresh(pushes - 1 - i)).collect() };
        stack.extend(pushed);
    }
    Ok(Body { safepoints, uses })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze_wat(wat: &str, zeal: bool) -> Pressure {
        analyze(&wat::parse_str(wat).unwrap(), zeal).unwrap()
    }

    #[test]
    fn a_ref_in_a_local_across_a_gc_call() {
        let p = analyze_wat(
            r#"(module (type $s (struct (field i32))) (import "host" "gc" (func $gc))
                (func (result i32) (local $x (ref null $s))
                  (local.set $x (struct.new $s (i32.const 1)))
                  (call $gc)
                  (struct.get $s 0 (local.get $x))))"#,
            false,
        );
        assert_eq!((p.allocation_sites, p.gc_calls, p.safepoints), (1, 1, 2));
        // Live across the gc call only: it was defined by the allocation.
        assert_eq!((p.live_safepoints, p.forced_live_safepoints), (1, 1));
        assert_eq!((p.in_locals, p.on_stack), (1, 0));
    }

    #[test]
    fn a_ref_on_the_operand_stack_across_an_allocation() {
        let wat = r#"(module (type $s (struct (field i32)))
            (func (result (ref $s) (ref $s))
              (struct.new $s (i32.const 1))
              (struct.new $s (i32.const 2))))"#;
        // The first struct sits on the stack across the second allocation;
        // it is forced only when allocations collect (zeal).
        let p = analyze_wat(wat, true);
        assert_eq!((p.on_stack, p.live_safepoints, p.forced_live_safepoints), (1, 1, 1));
        let p = analyze_wat(wat, false);
        assert_eq!((p.live_safepoints, p.forced_live_safepoints), (1, 0));
    }

    #[test]
    fn block_params_select_and_try_table() {
        // A struct passed into a block as its parameter, across a call to a
        // function that collects, used at the end of the block.
        let p = analyze_wat(
            r#"(module (type $s (struct (field i32))) (import "host" "gc" (func $gc))
                (func $g (call $gc))
                (func (result i32)
                  (struct.new $s (i32.const 1))
                  (block (param (ref $s)) (result i32) (call $g) (struct.get $s 0))))"#,
            false,
        );
        assert_eq!((p.through_block_params, p.forced_live_safepoints), (1, 1));

        // A select between an older struct and null, used after a gc call.
        let p = analyze_wat(
            r#"(module (type $s (struct (field i32))) (import "host" "gc" (func $gc))
                (func (param i32) (result anyref)
                  (select (result anyref) (struct.new $s (i32.const 2)) (ref.null any) (local.get 0))
                  (call $gc)))"#,
            false,
        );
        assert_eq!((p.through_select, p.forced_live_safepoints), (1, 1));

        // A local read inside a try_table after a gc call.
        let p = analyze_wat(
            r#"(module (type $s (struct (field i32))) (import "host" "gc" (func $gc)) (tag $t)
                (func (result i32) (local $x (ref null $s))
                  (local.set $x (struct.new $s (i32.const 1)))
                  (block $h
                    (try_table (catch $t $h)
                      (call $gc)
                      (drop (struct.get $s 0 (local.get $x)))))
                  (i32.const 0)))"#,
            false,
        );
        assert_eq!((p.in_locals, p.inside_try_table, p.forced_live_safepoints), (1, 1, 1));
    }

    #[test]
    fn nothing_live_without_refs() {
        let p = analyze_wat(
            r#"(module (import "host" "gc" (func $gc)) (func (result i32) (call $gc) (i32.const 1)))"#,
            true,
        );
        assert_eq!((p.gc_calls, p.live_safepoints), (1, 0));
    }

    #[test]
    fn matrix_cells_name_the_maker_the_safepoint_and_whether_it_was_read() {
        let p = analyze_wat(
            r#"(module (type $s (struct (field i32))) (type $a (array (mut i32)))
                (import "host" "gc" (func $gc)) (tag $t)
                (func $g (call $gc))
                (func (param externref) (result i32) (local $x (ref null $s)) (local $y anyref)
                  (local.set $x (struct.new $s (i32.const 1)))
                  (local.set $y (any.convert_extern (local.get 0)))
                  (call $gc)
                  (drop (ref.test (ref $s) (local.get $y)))
                  (block $h
                    (array.new $a (i32.const 0) (i32.const 4))
                    (try_table (param (ref $a)) (catch $t $h)
                      (call $g)
                      (array.fill $a (i32.const 0) (i32.const 7) (i32.const 2))))
                  (struct.get $s 0 (local.get $x))))"#,
            true,
        );
        let has = |row, col, observed| p.cells.contains(&(row, col, observed));
        // The struct is read after both collections.
        assert!(has("StructNew", Column::HostGc, true) && has("StructNew", Column::Call, true));
        // The conversion is a maker of its own; `ref.test` reads it.
        assert!(has("AnyConvertExtern", Column::HostGc, true), "{:?}", p.cells);
        // The externref parameter itself is live across the allocation
        // only: it is converted before the gc call.
        assert!(has("param", Column::Allocation, true) && !has("param", Column::HostGc, true), "{:?}", p.cells);
        // The array crosses a call inside a try_table as a block parameter,
        // then `array.fill` uses it.
        for row in ["ArrayNew", "block param/result", "use: ArrayFill"] {
            assert!(has(row, Column::InTryTable, true) && has(row, Column::Call, true), "{row}: {:?}", p.cells);
        }
        // Allocations collect only under zeal: the struct is live across
        // the array's allocation too.
        assert!(has("StructNew", Column::Allocation, true));
        let p = analyze(
            &wat::parse_str(
                r#"(module (type $s (struct (field i32)))
                    (func (result i32) (local $x (ref null $s))
                      (local.set $x (struct.new $s (i32.const 1)))
                      (drop (struct.new $s (i32.const 2)))
                      (struct.get $s 0 (local.get $x))))"#,
            )
            .unwrap(),
            false,
        )
        .unwrap();
        assert!(p.cells.is_empty(), "{:?}", p.cells);
    }
}
