//! The sequences the rooting pass inserts (see the parent module): the
//! observation of a reference, the budgeted collection by each kind of
//! call, the fresh object at a function's entry and the allocations that
//! reuse a freed object's memory before the observation reads it.

use super::{
    Encoder, Entry, Fresh, Scratch, Site, Template, Via, array_field, fillable, filler_value, fresh_ref, type_index,
};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{BlockType, HeapType, Instruction, ValType};
use wasmparser::{CompositeInnerType, StorageType};

impl Encoder<'_> {
    /// `observe(local)`: leaves an i64 describing the reference in `local`.
    pub(super) fn observe(&mut self, f: &mut wasm_encoder::Function, local: u32, r: wasmparser::RefType) {
        use wasmparser::AbstractHeapType as A;
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::RefIsNull);
        f.instruction(&Instruction::If(BlockType::Result(ValType::I64)));
        f.instruction(&Instruction::I64Const(0x5a5a));
        f.instruction(&Instruction::Else);
        match r.heap_type() {
            wasmparser::HeapType::Concrete(i) if i.as_module_index() == Some(self.own_type) => {
                f.instruction(&Instruction::LocalGet(local));
                f.instruction(&Instruction::StructGet { struct_type_index: self.own_type, field_index: 0 });
            }
            wasmparser::HeapType::Concrete(i) => {
                let index = i.as_module_index().expect("by module index");
                match &self.a.sub_type(index).expect("known type").composite_type.inner {
                    CompositeInnerType::Struct(s) => {
                        match s
                            .fields
                            .iter()
                            .position(|f| !matches!(f.element_type, StorageType::Val(wasmparser::ValType::Ref(_))))
                        {
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
                        // Length, and the last element when there is one
                        // (the end of the object, where a stale or wrongly
                        // sized one differs first).
                        f.instruction(&Instruction::LocalGet(local));
                        f.instruction(&Instruction::ArrayLen);
                        f.instruction(&Instruction::I64ExtendI32U);
                        if !matches!(arr.0.element_type, StorageType::Val(wasmparser::ValType::Ref(_))) {
                            f.instruction(&Instruction::LocalGet(local));
                            f.instruction(&Instruction::ArrayLen);
                            f.instruction(&Instruction::If(BlockType::Result(ValType::I64)));
                            f.instruction(&Instruction::LocalGet(local));
                            f.instruction(&Instruction::LocalGet(local));
                            f.instruction(&Instruction::ArrayLen);
                            f.instruction(&Instruction::I32Const(1));
                            f.instruction(&Instruction::I32Sub);
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
                if let Some(&(_, twin)) = self.twins.iter().find(|(t, _)| *t == index) {
                    // Its twin is written alike but another type
                    // (`linked::twin_groups`): the test never passes.
                    f.instruction(&Instruction::LocalGet(local));
                    f.instruction(&Instruction::RefTestNonNull(HeapType::Concrete(twin)));
                    f.instruction(&Instruction::I64ExtendI32U);
                    f.instruction(&Instruction::I64Const(47));
                    f.instruction(&Instruction::I64Shl);
                    f.instruction(&Instruction::I64Xor);
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
        self.fold_into_observe(f);
    }

    /// `$obs = rotl($obs, 5) ^ value`, the i64 on the stack.
    fn fold_into_observe(&self, f: &mut wasm_encoder::Function) {
        f.instruction(&Instruction::GlobalGet(self.observe_global));
        f.instruction(&Instruction::I64Const(5));
        f.instruction(&Instruction::I64Rotl);
        f.instruction(&Instruction::I64Xor);
        f.instruction(&Instruction::GlobalSet(self.observe_global));
    }

    /// `if` the budget in global `budget` lasts, spending one of it: the
    /// caller emits the body and its `end`.
    fn open_budget(&self, f: &mut wasm_encoder::Function, budget: u32) {
        f.instruction(&Instruction::GlobalGet(budget));
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::GlobalGet(budget));
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::I32Sub);
        f.instruction(&Instruction::GlobalSet(budget));
    }

    /// `call $gc` (by `via`) while the collection budget lasts, setting the
    /// `i32` local `collected` to whether it ran: stack-neutral, so the
    /// references around it stay live across it.
    pub(super) fn collect(&self, f: &mut wasm_encoder::Function, via: Via, collected: u32) {
        if via == Via::Defined {
            f.instruction(&Instruction::Call(self.collect_fn));
            f.instruction(&Instruction::LocalSet(collected));
            return;
        }
        f.instruction(&Instruction::I32Const(0));
        f.instruction(&Instruction::LocalSet(collected));
        self.open_budget(f, self.collection_budget);
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::LocalSet(collected));
        match via {
            Via::Call => f.instruction(&Instruction::Call(self.gc)),
            Via::CallIndirect => {
                f.instruction(&Instruction::I32Const(0));
                f.instruction(&Instruction::CallIndirect { type_index: self.gc_type, table_index: self.gc_table })
            }
            Via::CallRef => {
                f.instruction(&Instruction::RefFunc(self.gc));
                f.instruction(&Instruction::CallRef(self.gc_type))
            }
            Via::Defined => unreachable!("handled above"),
        };
        f.instruction(&Instruction::End);
    }

    /// The body of `$collect`: `call $gc` while the collection budget
    /// lasts, returning whether it ran.
    pub(super) fn collect_function(&self) -> wasm_encoder::Function {
        let mut f = wasm_encoder::Function::new([(1, ValType::I32)]);
        self.collect(&mut f, Via::Call, 0);
        f.instruction(&Instruction::LocalGet(0));
        f.instruction(&Instruction::End);
        f
    }

    /// Allocates a module type `index` object of [`filler_value`]s (the
    /// `second` ones for a fresh object, which the reuse allocations must
    /// not repeat); an array's length is in local `len`.
    pub(super) fn new_filled(&self, f: &mut wasm_encoder::Function, index: u32, len: u32, second: bool) {
        match &self.a.sub_type(index).expect("known type").composite_type.inner {
            CompositeInnerType::Struct(s) => {
                for field in s.fields.iter() {
                    f.instruction(&filler_value(&field.element_type, second).expect("fillable"));
                }
                f.instruction(&Instruction::StructNew(index));
            }
            CompositeInnerType::Array(a) => {
                f.instruction(&filler_value(&a.0.element_type, second).expect("fillable"));
                f.instruction(&Instruction::LocalGet(len));
                f.instruction(&Instruction::ArrayNew(index));
            }
            _ => unreachable!("fillable types are structs and arrays"),
        }
    }

    /// After a collection, two objects of the type of the reference in
    /// `local` (arrays: of its length, up to 256), filled with values no
    /// default has, so a freed object's memory is reused before `observe`
    /// reads it: only when the collection before it ran
    /// (`scratch.collected`), so allocations in a hot loop stay within the
    /// collection budget.
    pub(super) fn reuse(&self, f: &mut wasm_encoder::Function, local: u32, r: wasmparser::RefType, scratch: Scratch) {
        let Scratch { len: scratch, collected } = scratch;
        let Some(index) = type_index(&r) else { return };
        if index != self.own_type && !fillable(index, &self.a.types) {
            return;
        }
        f.instruction(&Instruction::LocalGet(collected));
        f.instruction(&Instruction::If(BlockType::Empty));
        if index == self.own_type {
            for _ in 0..2 {
                f.instruction(&Instruction::I64Const(!0x5a5a));
                f.instruction(&Instruction::StructNew(self.own_type));
                f.instruction(&Instruction::Drop);
            }
            f.instruction(&Instruction::End);
            return;
        }
        if array_field(index, &self.a.types).is_some() {
            f.instruction(&Instruction::LocalGet(local));
            f.instruction(&Instruction::RefIsNull);
            f.instruction(&Instruction::If(BlockType::Result(ValType::I32)));
            f.instruction(&Instruction::I32Const(0));
            f.instruction(&Instruction::Else);
            f.instruction(&Instruction::LocalGet(local));
            f.instruction(&Instruction::ArrayLen);
            f.instruction(&Instruction::End);
            f.instruction(&Instruction::LocalTee(scratch));
            f.instruction(&Instruction::I32Const(256));
            f.instruction(&Instruction::I32GtU);
            f.instruction(&Instruction::If(BlockType::Empty));
            f.instruction(&Instruction::I32Const(256));
            f.instruction(&Instruction::LocalSet(scratch));
            f.instruction(&Instruction::End);
        }
        for _ in 0..2 {
            self.new_filled(f, index, scratch, false);
            f.instruction(&Instruction::Drop);
        }
        f.instruction(&Instruction::End);
    }

    /// Whether module type `index` is an array of numbers or vectors
    /// (what `array.new_data` makes).
    fn of_numbers(&self, index: u32) -> bool {
        array_field(index, &self.a.types)
            .is_some_and(|f| !matches!(f.element_type, StorageType::Val(wasmparser::ValType::Ref(_))))
    }

    /// The type of a fresh object.
    pub(super) fn fresh_type(&self, fresh: Fresh) -> u32 {
        match fresh {
            Fresh::Own(_) => self.own_type,
            Fresh::Module(index, _) => index,
        }
    }

    /// At entry, while the entry budget lasts: allocate the fresh object
    /// into `local`, collect (maybe inside a `try_table`), reuse, throw and
    /// catch a copy into `local + 1`, write to it and observe; then the
    /// chain's object into `chain` (`new_chain_object`,
    /// `check_chain_object`).
    pub(super) fn emit_entry(
        &mut self,
        f: &mut wasm_encoder::Function,
        entry: Entry,
        local: u32,
        chain: Option<u32>,
        scratch: Scratch,
    ) {
        let Entry { fresh, via, throw, in_try } = entry;
        self.open_budget(f, self.entry_budget);
        if let Some(chain) = chain {
            self.new_chain_object(f, chain);
        }
        let index = self.fresh_type(fresh);
        match fresh {
            Fresh::Own(value) => {
                f.instruction(&Instruction::I64Const(value));
                f.instruction(&Instruction::StructNew(self.own_type));
            }
            Fresh::Module(index, len) => {
                f.instruction(&Instruction::I32Const(len));
                f.instruction(&Instruction::LocalSet(scratch.len));
                match (len, self.own_elem(index)) {
                    // An array of nullable references comes from the
                    // pass's own segment of nulls (never dropped): the
                    // object `array.new` would make, by `array.new_elem`.
                    (_, Some((segment, items))) if len as u32 <= items => {
                        f.instruction(&Instruction::I32Const(0));
                        f.instruction(&Instruction::LocalGet(scratch.len));
                        f.instruction(&Instruction::ArrayNewElem {
                            array_type_index: index,
                            array_elem_index: segment,
                        });
                    }
                    // An empty array of numbers comes from data segment 0
                    // (empty at offset 0 even when dropped) by
                    // `array.new_data`, where the module declares a count.
                    (0, None) if self.a.data_count.is_some_and(|n| n > 0) && self.of_numbers(index) => {
                        f.instruction(&Instruction::I32Const(0));
                        f.instruction(&Instruction::I32Const(0));
                        f.instruction(&Instruction::ArrayNewData { array_type_index: index, array_data_index: 0 });
                    }
                    _ => self.new_filled(f, index, scratch.len, true),
                }
            }
        }
        f.instruction(&Instruction::LocalSet(local));
        if let Some(via) = via {
            if in_try {
                f.instruction(&Instruction::Block(BlockType::Empty));
                f.instruction(&Instruction::TryTable(
                    BlockType::Empty,
                    vec![wasm_encoder::Catch::All { label: 0 }].into(),
                ));
            }
            self.collect(f, via, scratch.collected);
            if in_try {
                f.instruction(&Instruction::End);
                f.instruction(&Instruction::End);
            }
        }
        let r = fresh_ref(index);
        if via.is_some() {
            self.reuse(f, local, r, scratch);
        }
        let observed = match throw {
            true => {
                self.throw_and_catch(f, local, r, local + 1);
                local + 1
            }
            false => local,
        };
        // After the reuse's allocations and the throw: the writes use a
        // reference that lived across all of them.
        if let Fresh::Module(index, len) = fresh {
            self.write_fresh_array(f, index, len, local);
        }
        self.observe(f, observed, r);
        if let Some(chain) = chain {
            self.check_chain_object(f, chain);
        }
        f.instruction(&Instruction::End);
    }

    /// An object of the chain's deepest type, held as the chain's root type
    /// in `chain` across the entry's collection (`check_chain_object`): at
    /// an instance's first entry only, so a hot function's entries add no
    /// allocation (and so no collection under a small zeal counter). Alone
    /// this bound measured no faster (46.7 against 46.5 cases/s, seed 27):
    /// the cost was the chain's code in every function (`Encoder::chain`).
    fn new_chain_object(&self, f: &mut wasm_encoder::Function, chain: u32) {
        let (first, depth) = self.chain;
        self.if_first_entry(f);
        for k in 0..depth {
            f.instruction(&Instruction::I64Const(k as i64 + 1));
        }
        f.instruction(&Instruction::StructNew(first + depth - 1));
        f.instruction(&Instruction::LocalSet(chain));
        f.instruction(&Instruction::End);
    }

    /// `if` this is the instance's first entry (the entry budget was spent
    /// once): the caller emits the body and its `end`.
    fn if_first_entry(&self, f: &mut wasm_encoder::Function) {
        f.instruction(&Instruction::GlobalGet(self.entry_budget));
        f.instruction(&Instruction::I32Const(super::ENTRY_BUDGET - 1));
        f.instruction(&Instruction::I32Eq);
        f.instruction(&Instruction::If(BlockType::Empty));
    }

    /// The chain's object tested against every type of the chain and cast
    /// down to the middle one and the deepest, each read into `$obs`: every
    /// test passes, whatever the depth (a subtype check that gives up past
    /// some depth, or reads a supertype list out of its bounds, shows).
    fn check_chain_object(&self, f: &mut wasm_encoder::Function, chain: u32) {
        let (first, depth) = self.chain;
        let at = |k: u32| HeapType::Concrete(first + k);
        self.if_first_entry(f);
        for k in 0..depth {
            f.instruction(&Instruction::LocalGet(chain));
            f.instruction(&Instruction::RefTestNonNull(at(k)));
            if k > 0 {
                f.instruction(&Instruction::I32Add);
            }
        }
        f.instruction(&Instruction::I64ExtendI32U);
        for k in [depth / 2, depth - 1] {
            f.instruction(&Instruction::LocalGet(chain));
            f.instruction(&Instruction::RefCastNonNull(at(k)));
            f.instruction(&Instruction::StructGet { struct_type_index: first + k, field_index: k });
            f.instruction(&Instruction::I64Const(8));
            f.instruction(&Instruction::I64Shl);
            f.instruction(&Instruction::I64Xor);
        }
        self.fold_into_observe(f);
        f.instruction(&Instruction::End);
    }

    /// Throws the reference in `from` as the pass's tag's `anyref` payload
    /// inside a `try_table`, catches it and casts it back to `r` into `to`.
    pub(super) fn throw_and_catch(&self, f: &mut wasm_encoder::Function, from: u32, r: wasmparser::RefType, to: u32) {
        let tag = self.tag.expect("only planned on lines with exceptions");
        f.instruction(&Instruction::Block(BlockType::Result(ValType::Ref(wasm_encoder::RefType::ANYREF))));
        f.instruction(&Instruction::TryTable(
            BlockType::Empty,
            vec![wasm_encoder::Catch::One { tag, label: 0 }].into(),
        ));
        f.instruction(&Instruction::LocalGet(from));
        f.instruction(&Instruction::Throw(tag));
        f.instruction(&Instruction::End);
        f.instruction(&Instruction::Unreachable);
        f.instruction(&Instruction::End);
        let heap = RoundtripReencoder.heap_type(r.heap_type()).expect("heap types re-encode");
        f.instruction(&match r.is_nullable() {
            true => Instruction::RefCastNullable(heap),
            false => Instruction::RefCastNonNull(heap),
        });
        f.instruction(&Instruction::LocalSet(to));
    }

    pub(super) fn emit_site(
        &mut self,
        f: &mut wasm_encoder::Function,
        site: &Site,
        t: u32,
        u_local: u32,
        scratch: Scratch,
    ) {
        let ty = self.encode_val(site.ty);
        match site.template {
            Template::Local => {
                f.instruction(&Instruction::LocalTee(t));
                self.collect(f, site.via, scratch.collected);
                self.reuse(f, t, site.ty, scratch);
                self.rewrite_in_place(f, t, site.ty, scratch.len);
                self.observe(f, t, site.ty);
            }
            Template::NonNull => {
                f.instruction(&Instruction::LocalTee(t));
                f.instruction(&Instruction::Block(BlockType::Empty));
                f.instruction(&Instruction::LocalGet(t));
                f.instruction(&Instruction::BrOnNull(0));
                f.instruction(&Instruction::LocalSet(u_local));
                self.collect(f, site.via, scratch.collected);
                self.reuse(f, t, site.ty, scratch);
                // Both locals hold the object across the collection: the
                // non-nullable one is read back, the other observed (so
                // the reach analysis credits the reference's producer).
                f.instruction(&Instruction::LocalGet(u_local));
                f.instruction(&Instruction::RefAsNonNull);
                f.instruction(&Instruction::Drop);
                self.rewrite_in_place(f, t, site.ty, scratch.len);
                self.observe(f, t, site.ty);
                f.instruction(&Instruction::End);
            }
            Template::BlockParam => {
                let bt = self.block_types.iter().find(|(r, _)| *r == site.ty).expect("planned").1;
                f.instruction(&Instruction::Block(BlockType::FunctionType(bt)));
                self.collect(f, site.via, scratch.collected);
                f.instruction(&Instruction::End);
                f.instruction(&Instruction::LocalTee(t));
                self.reuse(f, t, site.ty, scratch);
                self.rewrite_in_place(f, t, site.ty, scratch.len);
                self.observe(f, t, site.ty);
            }
            Template::Widened => {
                let up = self.widen_types.iter().find(|(r, _)| *r == site.ty).expect("planned").1;
                f.instruction(&Instruction::Block(BlockType::FunctionType(up)));
                self.collect(f, site.via, scratch.collected);
                f.instruction(&Instruction::End);
                f.instruction(&Instruction::Block(BlockType::FunctionType(up + 1)));
                let (from, to) = (self.encode_ref(super::widened(site.ty)), self.encode_ref(site.ty));
                f.instruction(&Instruction::BrOnCast { relative_depth: 0, from_ref_type: from, to_ref_type: to });
                f.instruction(&Instruction::Unreachable);
                f.instruction(&Instruction::End);
                f.instruction(&Instruction::LocalTee(t));
                self.reuse(f, t, site.ty, scratch);
                self.rewrite_in_place(f, t, site.ty, scratch.len);
                self.observe(f, t, site.ty);
            }
            Template::Throw => {
                // Throwing unwinds through the runtime: out of a hot loop's
                // reach, it spends the collection budget.
                f.instruction(&Instruction::LocalTee(t));
                self.open_budget(f, self.collection_budget);
                self.throw_and_catch(f, t, site.ty, u_local);
                self.rewrite_in_place(f, t, site.ty, scratch.len);
                self.observe(f, u_local, site.ty);
                f.instruction(&Instruction::End);
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
                self.collect(f, site.via, scratch.collected);
                self.reuse(f, u_local, site.ty, scratch);
                self.rewrite_in_place(f, u_local, site.ty, scratch.len);
                self.observe(f, u_local, site.ty);
                f.instruction(&Instruction::LocalGet(t));
            }
        }
    }
}

/// Reads a scalar with `get` (packed: the `_u` form) and leaves it as i64.
pub(super) fn read_scalar(f: &mut wasm_encoder::Function, s: StorageType, get: impl Fn(bool) -> Instruction<'static>) {
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
        // Sums of its 16-bit lanes by pairs, saturated to 16 bits, as the
        // i64: one read and no scratch local, and every lane counts.
        StorageType::Val(wasmparser::ValType::V128) => {
            f.instruction(&get(false));
            f.instruction(&Instruction::I32x4ExtAddPairwiseI16x8S);
            f.instruction(&Instruction::V128Const(0));
            f.instruction(&Instruction::I16x8NarrowI32x4S);
            f.instruction(&Instruction::I64x2ExtractLane(0));
        }
        StorageType::Val(_) => unreachable!("callers pick scalar storage"),
    }
}
