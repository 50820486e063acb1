//! Edge operands: before some GC and table instructions, the pass replaces
//! an index or length operand with one at the edge of its range (index 0,
//! the last index, one past the end, far out of bounds; a zero or huge
//! length; an `i31` value at either end of its range or past it), where
//! bounds checks and their trap paths are written and wasm-smith's operands
//! rarely land (`gcfuzz stats --edges` measures which edges the cases meet).
//! The operand is dropped and the edge value pushed in its place, so the
//! stack's types are unchanged; a trap it causes is the same trap on every
//! correct engine.

use arbitrary::Unstructured;
use wasm_encoder::{Function, Instruction};
use wasmparser::Operator;

/// An array length past what a small GC heap holds (`interp::edges` calls
/// 65,536 elements and more huge).
const HUGE: i32 = 70_000;

/// What replaces an instruction's top `i32` operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EdgeOperand {
    Const(i32),
    /// An `array.get`'s index becomes the array's length plus `plus` (-1:
    /// the last element, 0: one past the end); the array passes through a
    /// local of type `(ref null $array)` to be measured.
    FromLength {
        array: u32,
        plus: i32,
    },
    /// A `table.get`'s index becomes the table's size plus `plus`.
    FromSize {
        table: u32,
        plus: i32,
    },
}

use EdgeOperand::*;

impl EdgeOperand {
    /// An edge for `op`'s top operand, in one of `one_in` of the
    /// instructions that have one (`u` is read only for those).
    pub(super) fn draw(op: &Operator, one_in: u32, u: &mut Unstructured) -> Option<EdgeOperand> {
        use Operator as O;
        enum Kind {
            ArrayIndex(u32),
            TableIndex(u32),
            Length,
            NewLength,
            I31,
        }
        let kind = match *op {
            O::ArrayGet { array_type_index }
            | O::ArrayGetS { array_type_index }
            | O::ArrayGetU { array_type_index } => Kind::ArrayIndex(array_type_index),
            O::TableGet { table } => Kind::TableIndex(table),
            O::ArrayFill { .. }
            | O::ArrayCopy { .. }
            | O::ArrayInitData { .. }
            | O::ArrayInitElem { .. }
            | O::TableFill { .. }
            | O::TableCopy { .. }
            | O::TableInit { .. }
            | O::TableGrow { .. } => Kind::Length,
            O::ArrayNew { .. } | O::ArrayNewDefault { .. } | O::ArrayNewData { .. } | O::ArrayNewElem { .. } => {
                Kind::NewLength
            }
            O::RefI31 => Kind::I31,
            _ => return None,
        };
        if !u.ratio(1, one_in).unwrap_or(false) {
            return None;
        }
        let pick = u.int_in_range(0..=3u8).unwrap_or(0);
        Some(match kind {
            Kind::ArrayIndex(array) => match pick {
                0 => Const(0),
                1 => Const(-1),
                2 => FromLength { array, plus: -1 },
                _ => FromLength { array, plus: 0 },
            },
            Kind::TableIndex(table) => match pick {
                0 => Const(0),
                1 => Const(-1),
                2 => FromSize { table, plus: -1 },
                _ => FromSize { table, plus: 0 },
            },
            Kind::Length => Const(0),
            Kind::NewLength => Const(if pick == 0 { HUGE } else { 0 }),
            Kind::I31 => Const([0x3fff_ffff, -0x4000_0000, i32::MAX, i32::MIN][pick as usize]),
        })
    }

    /// The array type whose `(ref null $t)` local this edge needs.
    pub(super) fn local_type(self) -> Option<u32> {
        match self {
            FromLength { array, .. } => Some(array),
            _ => None,
        }
    }

    /// Replaces the top operand; `local` is the one [`Self::local_type`]
    /// asked for.
    pub(super) fn emit(self, f: &mut Function, local: Option<u32>) {
        f.instruction(&Instruction::Drop);
        let plus = match self {
            Const(k) => {
                f.instruction(&Instruction::I32Const(k));
                0
            }
            FromLength { plus, .. } => {
                let l = local.expect("a local for the array");
                f.instruction(&Instruction::LocalTee(l));
                f.instruction(&Instruction::LocalGet(l));
                f.instruction(&Instruction::ArrayLen);
                plus
            }
            FromSize { table, plus } => {
                f.instruction(&Instruction::TableSize(table));
                plus
            }
        };
        if plus != 0 {
            f.instruction(&Instruction::I32Const(plus));
            f.instruction(&Instruction::I32Add);
        }
    }
}
