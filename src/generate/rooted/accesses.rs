//! The accesses the rooting pass adds (see the parent module) to objects
//! that lived across a collection: writes to its fresh arrays, writes that
//! leave the module's own arrays as they were, and loads of a reference
//! out of a field or an array element, to carry across a collection in
//! the object's place.

use super::{Encoder, Load, array_field, filler_value, type_index};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{BlockType, Instruction};
use wasmparser::StorageType;

impl Encoder<'_> {
    /// After the collection, writes to a fresh array of a mutable element
    /// type (nobody else holds it, so the module's computation is
    /// unchanged): `array.set` of its first and last elements, `array.fill`
    /// to its end, an overlapping `array.copy` onto itself, and an
    /// `array.init_elem` of the whole array from the pass's own segment of
    /// the element type (`Encoder::own_elems`; empty for non-nullable
    /// elements) or, where the module declares a data count, an empty
    /// `array.init_data` (empty: a segment may have been dropped, and an
    /// empty one never traps), each a use of a reference that lived across
    /// the collection and the entry's throw.
    pub(super) fn write_fresh_array(&self, f: &mut wasm_encoder::Function, index: u32, len: i32, local: u32) {
        let Some(field) = array_field(index, &self.a.types).filter(|f| f.mutable) else { return };
        let value = filler_value(&field.element_type, true).expect("fillable");
        let ends = match len {
            0 => vec![],
            1 => vec![0],
            _ => vec![0, len - 1],
        };
        for at in ends {
            f.instruction(&Instruction::LocalGet(local));
            f.instruction(&Instruction::I32Const(at));
            f.instruction(&value);
            f.instruction(&Instruction::ArraySet(index));
        }
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::I32Const(len.min(1)));
        f.instruction(&value);
        f.instruction(&Instruction::I32Const((len - 1).max(0)));
        f.instruction(&Instruction::ArrayFill(index));
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::I32Const(0));
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::I32Const(len.min(1)));
        f.instruction(&Instruction::I32Const((len - 1).max(0)));
        f.instruction(&Instruction::ArrayCopy { array_type_index_dst: index, array_type_index_src: index });
        // Elements the init copies: all the array holds where the pass's
        // segment has them, none from a module's data (it may be dropped).
        if let Some((init, items)) = self.array_init(index, field.element_type) {
            let n = (len as u32).min(items) as i32;
            f.instruction(&Instruction::LocalGet(local));
            f.instruction(&Instruction::I32Const(0));
            f.instruction(&Instruction::I32Const(0));
            f.instruction(&Instruction::I32Const(n));
            f.instruction(&init);
        }
    }

    /// After the collection, writes to an array the module holds (a
    /// mutable one, in `local`) that leave it as it was: its last element
    /// set to itself by `array.set` and by a one-element `array.fill`, a
    /// whole-array `array.copy` onto itself, and empty `array.init_elem`
    /// / `array.init_data` (from the pass's own segment, or data segment 0
    /// where the module declares a data count); null-guarded, so nothing
    /// traps. Each is a use of a reference that lived across the
    /// collection, on the module's own arrays of every element type.
    pub(super) fn rewrite_in_place(
        &self,
        f: &mut wasm_encoder::Function,
        local: u32,
        r: wasmparser::RefType,
        len: u32,
    ) {
        let Some(index) = type_index(&r) else { return };
        let Some(field) = array_field(index, &self.a.types).filter(|f| f.mutable) else { return };
        let packed = matches!(field.element_type, StorageType::I8 | StorageType::I16);
        let get = if packed { Instruction::ArrayGetU(index) } else { Instruction::ArrayGet(index) };
        let last = |f: &mut wasm_encoder::Function| {
            f.instruction(&Instruction::LocalGet(len));
            f.instruction(&Instruction::I32Const(1));
            f.instruction(&Instruction::I32Sub);
        };
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::RefIsNull);
        f.instruction(&Instruction::I32Eqz);
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::ArrayLen);
        f.instruction(&Instruction::LocalTee(len));
        f.instruction(&Instruction::If(BlockType::Empty));
        for fill in [false, true] {
            f.instruction(&Instruction::LocalGet(local));
            last(f);
            f.instruction(&Instruction::LocalGet(local));
            last(f);
            f.instruction(&get);
            if fill {
                f.instruction(&Instruction::I32Const(1));
                f.instruction(&Instruction::ArrayFill(index));
            } else {
                f.instruction(&Instruction::ArraySet(index));
            }
        }
        f.instruction(&Instruction::End);
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::I32Const(0));
        f.instruction(&Instruction::LocalGet(local));
        f.instruction(&Instruction::I32Const(0));
        f.instruction(&Instruction::LocalGet(len));
        f.instruction(&Instruction::ArrayCopy { array_type_index_dst: index, array_type_index_src: index });
        if let Some((init, _)) = self.array_init(index, field.element_type) {
            f.instruction(&Instruction::LocalGet(local));
            for _ in 0..3 {
                f.instruction(&Instruction::I32Const(0));
            }
            f.instruction(&init);
        }
        f.instruction(&Instruction::End);
    }

    /// The `array.init_*` that fills array type `index` (of `element`s)
    /// from a segment that is there whatever the module did: the pass's
    /// own element segment (and how many items it has), or data segment 0
    /// where the module declares a data count (none counted: the module may
    /// have dropped it).
    fn array_init(&self, index: u32, element: StorageType) -> Option<(Instruction<'static>, u32)> {
        match element {
            StorageType::Val(wasmparser::ValType::Ref(_)) => self.own_elem(index).map(|(segment, items)| {
                (Instruction::ArrayInitElem { array_type_index: index, array_elem_index: segment }, items)
            }),
            _ => self
                .a
                .data_count
                .filter(|n| *n > 0)
                .map(|_| (Instruction::ArrayInitData { array_type_index: index, array_data_index: 0 }, 0)),
        }
    }

    /// Pushes what `load` reads from the object in `holder`, as the
    /// nullable `ty`: a struct's field, an array's last element, or null
    /// (a null object, an empty array), so it never traps.
    pub(super) fn load(&mut self, f: &mut wasm_encoder::Function, holder: u32, load: Load, ty: wasmparser::RefType) {
        let bt = BlockType::Result(self.encode_val(ty));
        let null = Instruction::RefNull(RoundtripReencoder.heap_type(ty.heap_type()).expect("heap types re-encode"));
        f.instruction(&Instruction::LocalGet(holder));
        f.instruction(&Instruction::RefIsNull);
        f.instruction(&Instruction::If(bt));
        f.instruction(&null);
        f.instruction(&Instruction::Else);
        match load.field {
            Some(field) => {
                f.instruction(&Instruction::LocalGet(holder));
                f.instruction(&Instruction::StructGet { struct_type_index: load.index, field_index: field });
            }
            None => {
                f.instruction(&Instruction::LocalGet(holder));
                f.instruction(&Instruction::ArrayLen);
                f.instruction(&Instruction::I32Eqz);
                f.instruction(&Instruction::If(bt));
                f.instruction(&null);
                f.instruction(&Instruction::Else);
                f.instruction(&Instruction::LocalGet(holder));
                f.instruction(&Instruction::LocalGet(holder));
                f.instruction(&Instruction::ArrayLen);
                f.instruction(&Instruction::I32Const(1));
                f.instruction(&Instruction::I32Sub);
                f.instruction(&Instruction::ArrayGet(load.index));
                f.instruction(&Instruction::End);
            }
        }
        f.instruction(&Instruction::End);
    }
}
