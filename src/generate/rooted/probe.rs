//! The edge probe: an exported function (`gcfuzz:probe`, no parameters,
//! called once by every plan that calls the module's exports) that puts the
//! operands of GC and table instructions at the edges of their ranges on
//! objects and a table of the pass's own, where wasm-smith's code rarely
//! goes (`gcfuzz stats --edges`): the edges that do not trap (a table's
//! last slot, a failing grow, zero and whole-table ranges, an overlapping
//! copy, `ref.eq` of one object) in every probe, then one that traps (a
//! null operand, one past the end, far out, past a segment, a huge length),
//! picked from the module's shape so that modules spread over all of them.
//! A trap ends only the probe's call, the same trap on every correct
//! engine; nothing the module computes changes.

use super::{Analysis, Encoder};
use wasm_encoder::{AbstractHeapType, Function, HeapType, Instruction, ValType};

/// The traps a probe ends with: those needing data segment 0 come last,
/// drawn only where the module declares a data count.
const TRAPS: u32 = 25;
const DATA_TRAPS: u32 = 6;

/// Which trap this module's probe ends with (from its shape, so no input
/// byte moves): half the modules that declare a data count (few do) take
/// one of the data segment's.
fn trap_kind(a: &Analysis) -> u32 {
    let h = (a.types.len() * 13 + a.plans.len() * 5 + a.globals as usize * 3 + a.elems as usize) as u32;
    match a.data_count.is_some_and(|n| n > 0) {
        true if h.is_multiple_of(2) => TRAPS + (h / 2) % DATA_TRAPS,
        _ => h % TRAPS,
    }
}

impl Encoder<'_> {
    /// The probe's body. Its arrays are `(array (mut i64))` (`$p`, four
    /// elements) and `(array (mut anyref))` (`$r`, four), its table the
    /// pass's two-slot table of `$gc`, its segments `[ref.func $gc]` and
    /// `[ref.null any]`.
    pub(super) fn probe_function(&self) -> Function {
        let (p, r) = (self.collect_type + 1, self.collect_type + 2);
        let (funcs, anys) =
            (self.a.elems + self.own_elems.len() as u32, self.a.elems + self.own_elems.len() as u32 + 1);
        let t = self.gc_table;
        let nullable =
            |index: u32| ValType::Ref(wasm_encoder::RefType { nullable: true, heap_type: HeapType::Concrete(index) });
        let mut f = Function::new([(1, nullable(p)), (1, nullable(r))]);
        let (a, refs) = (0, 1);
        let i = |f: &mut Function, k: i32| {
            f.instruction(&Instruction::I32Const(k));
        };
        let gc = |f: &mut Function| {
            f.instruction(&Instruction::RefFunc(self.gc));
        };
        f.instruction(&Instruction::I64Const(7));
        i(&mut f, 4);
        f.instruction(&Instruction::ArrayNew(p));
        f.instruction(&Instruction::LocalSet(a));
        f.instruction(&Instruction::RefNull(HeapType::Abstract { shared: false, ty: AbstractHeapType::Any }));
        i(&mut f, 4);
        f.instruction(&Instruction::ArrayNew(r));
        f.instruction(&Instruction::LocalSet(refs));
        // Edges that do not trap; every table write stores `$gc` again.
        i(&mut f, 1);
        gc(&mut f);
        f.instruction(&Instruction::TableSet(t)); // the last slot
        gc(&mut f);
        i(&mut f, 1);
        f.instruction(&Instruction::TableGrow(t)); // past the maximum: fails
        f.instruction(&Instruction::Drop);
        for n in [0, 2] {
            i(&mut f, 0);
            gc(&mut f);
            i(&mut f, n);
            f.instruction(&Instruction::TableFill(t)); // empty, to the end
            for k in [0, 0, n] {
                i(&mut f, k);
            }
            f.instruction(&Instruction::TableCopy { dst_table: t, src_table: t }); // empty; whole, overlapping
        }
        for n in [0, 1] {
            for k in [n, 0, n] {
                i(&mut f, k);
            }
            f.instruction(&Instruction::TableInit { elem_index: funcs, table: t }); // empty, to the end
        }
        f.instruction(&Instruction::LocalGet(a));
        f.instruction(&Instruction::LocalGet(a));
        f.instruction(&Instruction::RefEq); // the same object
        f.instruction(&Instruction::Drop);
        // Then one that traps. (No huge `array.new`: one that fits made
        // collectors with a small heap hit 48.0.8's known zeal-retry leak
        // in one case in twenty.)
        let null = |f: &mut Function, index: u32| {
            f.instruction(&Instruction::RefNull(HeapType::Concrete(index)));
        };
        let get = |f: &mut Function, local: u32| {
            f.instruction(&Instruction::LocalGet(local));
        };
        // An array in a local, or null.
        let array = |f: &mut Function, local: Option<u32>, ty: u32| match local {
            Some(local) => get(f, local),
            None => null(f, ty),
        };
        let ints = |f: &mut Function, ks: &[i32]| {
            for k in ks {
                f.instruction(&Instruction::I32Const(*k));
            }
        };
        let set = |f: &mut Function, target: Option<u32>, index: i32| {
            array(f, target, p);
            i(f, index);
            f.instruction(&Instruction::I64Const(0));
            f.instruction(&Instruction::ArraySet(p));
        };
        let fill = |f: &mut Function, target: Option<u32>, at: i32, n: i32| {
            array(f, target, p);
            i(f, at);
            f.instruction(&Instruction::I64Const(0));
            i(f, n);
            f.instruction(&Instruction::ArrayFill(p));
        };
        let copy = |f: &mut Function, dst: Option<u32>, at: i32, n: i32| {
            array(f, dst, p);
            i(f, at);
            get(f, a);
            ints(f, &[0, n]);
            f.instruction(&Instruction::ArrayCopy { array_type_index_dst: p, array_type_index_src: p });
        };
        let init_elem = |f: &mut Function, target: Option<u32>, ks: &[i32]| {
            array(f, target, r);
            ints(f, ks);
            f.instruction(&Instruction::ArrayInitElem { array_type_index: r, array_elem_index: anys });
        };
        let init_data = |f: &mut Function, target: Option<u32>, ks: &[i32]| {
            array(f, target, p);
            ints(f, ks);
            f.instruction(&Instruction::ArrayInitData { array_type_index: p, array_data_index: 0 });
        };
        let table = |f: &mut Function, ks: &[i32], op: Instruction| {
            ints(f, ks);
            f.instruction(&op);
        };
        const FAR: i32 = 1000;
        const HUGE: i32 = 70_000;
        match trap_kind(self.a) {
            0 => {
                get(&mut f, a);
                i(&mut f, 4);
                f.instruction(&Instruction::ArrayGet(p));
                f.instruction(&Instruction::Drop);
            }
            1 => set(&mut f, None, 0),
            2 => set(&mut f, Some(a), 4),
            3 => set(&mut f, Some(a), FAR),
            4 => fill(&mut f, None, 0, 1),
            5 => fill(&mut f, Some(a), 1, 4),
            6 => fill(&mut f, Some(a), 0, FAR),
            7 => copy(&mut f, None, 0, 1),
            8 => copy(&mut f, Some(a), 1, 4),
            9 => copy(&mut f, Some(a), 0, FAR),
            10 => {
                null(&mut f, self.own_type);
                f.instruction(&Instruction::I64Const(0));
                f.instruction(&Instruction::StructSet { struct_type_index: self.own_type, field_index: 0 });
            }
            11 => {
                i(&mut f, 2);
                gc(&mut f);
                f.instruction(&Instruction::TableSet(t));
            }
            k @ (12 | 13) => {
                i(&mut f, if k == 12 { 1 } else { 0 });
                gc(&mut f);
                i(&mut f, if k == 12 { 2 } else { FAR });
                f.instruction(&Instruction::TableFill(t));
            }
            14 => table(&mut f, &[1, 0, 2], Instruction::TableCopy { dst_table: t, src_table: t }),
            15 => table(&mut f, &[2, 0, 1], Instruction::TableInit { elem_index: funcs, table: t }),
            16 => table(&mut f, &[0, 0, FAR], Instruction::TableInit { elem_index: funcs, table: t }),
            17 => init_elem(&mut f, None, &[0, 0, 1]),
            18 => init_elem(&mut f, Some(refs), &[1, 0, 4]),
            19 => init_elem(&mut f, Some(refs), &[0, 0, FAR]),
            20 => init_elem(&mut f, Some(refs), &[0, 1, 1]),
            k @ (21 | 22) => {
                ints(&mut f, if k == 21 { &[0, HUGE] } else { &[0, 2] });
                f.instruction(&Instruction::ArrayNewElem { array_type_index: r, array_elem_index: anys });
                f.instruction(&Instruction::Drop);
            }
            k @ (23 | 24) => {
                match k {
                    23 => null(&mut f, p),
                    _ => get(&mut f, a),
                }
                i(&mut f, if k == 23 { 0 } else { FAR });
                f.instruction(&Instruction::ArrayGet(p));
                f.instruction(&Instruction::Drop);
            }
            25 => init_data(&mut f, None, &[0, 0, 1]),
            26 => init_data(&mut f, Some(a), &[0, 0, 4]),
            27 => init_data(&mut f, Some(a), &[1, 0, 4]),
            28 => init_data(&mut f, Some(a), &[0, 0, FAR]),
            29 => init_data(&mut f, Some(a), &[0, i32::MAX, 0]),
            _ => {
                ints(&mut f, &[0, HUGE]);
                f.instruction(&Instruction::ArrayNewData { array_type_index: p, array_data_index: 0 });
                f.instruction(&Instruction::Drop);
            }
        }
        f.instruction(&Instruction::End);
        f
    }
}
