//! The 128-bit SIMD instructions that compute on values only (everything
//! but loads and stores, which `exec` does with the other memory
//! instructions): lanes are read out of a `u128` (little-endian, lane 0 in
//! the low bits), computed lane by lane as the spec defines each operator,
//! and packed back. Floats follow the scalar rules of [`super::numeric`].

use super::numeric::{fminmax32, fminmax64, quiet32, quiet64};
use super::value::Val;
use wasmparser::Operator;

macro_rules! lanes {
    ($read:ident, $write:ident, $t:ty, $n:literal) => {
        fn $read(v: u128) -> [$t; $n] {
            const W: usize = 16 / $n;
            let b = v.to_le_bytes();
            std::array::from_fn(|i| <$t>::from_le_bytes(b[i * W..(i + 1) * W].try_into().unwrap()))
        }
        fn $write(l: [$t; $n]) -> u128 {
            const W: usize = 16 / $n;
            let mut b = [0u8; 16];
            for (i, x) in l.iter().enumerate() {
                b[i * W..(i + 1) * W].copy_from_slice(&x.to_le_bytes());
            }
            u128::from_le_bytes(b)
        }
    };
}
lanes!(i8s, from_i8s, i8, 16);
lanes!(u8s, from_u8s, u8, 16);
lanes!(i16s, from_i16s, i16, 8);
lanes!(u16s, from_u16s, u16, 8);
lanes!(i32s, from_i32s, i32, 4);
lanes!(u32s, from_u32s, u32, 4);
lanes!(i64s, from_i64s, i64, 2);
lanes!(u64s, from_u64s, u64, 2);
lanes!(f32s, from_f32s, f32, 4);
lanes!(f64s, from_f64s, f64, 2);

/// `v128.loadNxM_{s,u}`: eight bytes extended into lanes of twice the
/// width.
pub fn load_extend(op: &Operator, b: [u8; 8]) -> u128 {
    use Operator::*;
    match op {
        V128Load8x8S { .. } => from_i16s(b.map(|x| x as i8 as i16)),
        V128Load8x8U { .. } => from_i16s(b.map(|x| x as i16)),
        V128Load16x4S { .. } => from_i32s(std::array::from_fn(|i| i16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as i32)),
        V128Load16x4U { .. } => from_u32s(std::array::from_fn(|i| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as u32)),
        V128Load32x2S { .. } => {
            from_i64s(std::array::from_fn(|i| i32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as i64))
        }
        _ => from_u64s(std::array::from_fn(|i| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as u64)),
    }
}

/// `bytes` repeated into every lane of their width.
pub fn splat_bytes(bytes: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    for chunk in b.chunks_mut(bytes.len()) {
        chunk.copy_from_slice(bytes);
    }
    u128::from_le_bytes(b)
}

/// `v` with lane `lane` of `bytes.len()` bytes replaced by `bytes`.
pub fn with_lane(v: u128, lane: u8, bytes: &[u8]) -> u128 {
    let mut b = v.to_le_bytes();
    let w = bytes.len();
    b[lane as usize * w..(lane as usize + 1) * w].copy_from_slice(bytes);
    u128::from_le_bytes(b)
}

/// Lane `lane` of `w` bytes of `v`.
pub fn lane_bytes(v: u128, lane: u8, w: usize) -> Vec<u8> {
    v.to_le_bytes()[lane as usize * w..(lane as usize + 1) * w].to_vec()
}

/// How many operands `op` takes, when it is a value-only SIMD instruction.
pub fn operands(op: &Operator) -> Option<usize> {
    use Operator::*;
    Some(match op {
        V128Const { .. } => 0,
        I8x16Splat | I16x8Splat | I32x4Splat | I64x2Splat | F32x4Splat | F64x2Splat => 1,
        I8x16ExtractLaneS { .. }
        | I8x16ExtractLaneU { .. }
        | I16x8ExtractLaneS { .. }
        | I16x8ExtractLaneU { .. }
        | I32x4ExtractLane { .. }
        | I64x2ExtractLane { .. }
        | F32x4ExtractLane { .. }
        | F64x2ExtractLane { .. } => 1,
        I8x16ReplaceLane { .. }
        | I16x8ReplaceLane { .. }
        | I32x4ReplaceLane { .. }
        | I64x2ReplaceLane { .. }
        | F32x4ReplaceLane { .. }
        | F64x2ReplaceLane { .. } => 2,
        I8x16Shuffle { .. } | I8x16Swizzle => 2,
        V128Bitselect => 3,
        V128Not | V128AnyTrue => 1,
        V128And | V128AndNot | V128Or | V128Xor => 2,
        I8x16Shl | I8x16ShrS | I8x16ShrU | I16x8Shl | I16x8ShrS | I16x8ShrU | I32x4Shl | I32x4ShrS | I32x4ShrU
        | I64x2Shl | I64x2ShrS | I64x2ShrU => 2,
        _ if unary(op, 0).is_some() => 1,
        _ if binary(op, 0, 0).is_some() => 2,
        _ => return None,
    })
}

/// Runs value-only SIMD instruction `op` on `args` (in push order).
pub fn eval(op: &Operator, args: &[Val]) -> Val {
    use Operator::*;
    let v = |i: usize| args[i].v128();
    let r = match op {
        V128Const { value } => u128::from_le_bytes(*value.bytes()),
        I8x16Splat => from_i8s([args[0].i32() as i8; 16]),
        I16x8Splat => from_i16s([args[0].i32() as i16; 8]),
        I32x4Splat => from_i32s([args[0].i32(); 4]),
        I64x2Splat => from_i64s([args[0].i64(); 2]),
        F32x4Splat => from_u32s([args[0].f32().to_bits(); 4]),
        F64x2Splat => from_u64s([args[0].f64().to_bits(); 2]),
        I8x16ExtractLaneS { lane } => return Val::I32(i8s(v(0))[*lane as usize] as i32),
        I8x16ExtractLaneU { lane } => return Val::I32(u8s(v(0))[*lane as usize] as i32),
        I16x8ExtractLaneS { lane } => return Val::I32(i16s(v(0))[*lane as usize] as i32),
        I16x8ExtractLaneU { lane } => return Val::I32(u16s(v(0))[*lane as usize] as i32),
        I32x4ExtractLane { lane } => return Val::I32(i32s(v(0))[*lane as usize]),
        I64x2ExtractLane { lane } => return Val::I64(i64s(v(0))[*lane as usize]),
        F32x4ExtractLane { lane } => return Val::F32(u32s(v(0))[*lane as usize]),
        F64x2ExtractLane { lane } => return Val::F64(u64s(v(0))[*lane as usize]),
        I8x16ReplaceLane { lane } => {
            let mut l = i8s(v(0));
            l[*lane as usize] = args[1].i32() as i8;
            from_i8s(l)
        }
        I16x8ReplaceLane { lane } => {
            let mut l = i16s(v(0));
            l[*lane as usize] = args[1].i32() as i16;
            from_i16s(l)
        }
        I32x4ReplaceLane { lane } => {
            let mut l = i32s(v(0));
            l[*lane as usize] = args[1].i32();
            from_i32s(l)
        }
        I64x2ReplaceLane { lane } => {
            let mut l = i64s(v(0));
            l[*lane as usize] = args[1].i64();
            from_i64s(l)
        }
        F32x4ReplaceLane { lane } => {
            let mut l = u32s(v(0));
            l[*lane as usize] = args[1].f32().to_bits();
            from_u32s(l)
        }
        F64x2ReplaceLane { lane } => {
            let mut l = u64s(v(0));
            l[*lane as usize] = args[1].f64().to_bits();
            from_u64s(l)
        }
        I8x16Shuffle { lanes } => {
            let (a, b) = (u8s(v(0)), u8s(v(1)));
            from_u8s(std::array::from_fn(|i| {
                let k = lanes[i] as usize;
                if k < 16 { a[k] } else { b[k - 16] }
            }))
        }
        I8x16Swizzle => {
            let (a, s) = (u8s(v(0)), u8s(v(1)));
            from_u8s(std::array::from_fn(|i| a.get(s[i] as usize).copied().unwrap_or(0)))
        }
        V128Bitselect => (v(0) & v(2)) | (v(1) & !v(2)),
        V128Not => !v(0),
        V128AnyTrue => return Val::I32((v(0) != 0) as i32),
        V128And => v(0) & v(1),
        V128AndNot => v(0) & !v(1),
        V128Or => v(0) | v(1),
        V128Xor => v(0) ^ v(1),
        I8x16Shl | I8x16ShrS | I8x16ShrU | I16x8Shl | I16x8ShrS | I16x8ShrU | I32x4Shl | I32x4ShrS | I32x4ShrU
        | I64x2Shl | I64x2ShrS | I64x2ShrU => shift(op, v(0), args[1].i32() as u32),
        _ => match (args.len(), args.first().map(|a| a.v128())) {
            (1, Some(a)) => return unary(op, a).expect("a unary SIMD instruction"),
            (2, Some(a)) => binary(op, a, v(1)).expect("a binary SIMD instruction"),
            _ => unreachable!("{op:?} is no SIMD instruction with these operands"),
        },
    };
    Val::V128(r)
}

/// Shifts every lane by `n` modulo the lane width.
fn shift(op: &Operator, a: u128, n: u32) -> u128 {
    use Operator::*;
    match op {
        I8x16Shl => from_i8s(i8s(a).map(|x| x.wrapping_shl(n))),
        I8x16ShrS => from_i8s(i8s(a).map(|x| x.wrapping_shr(n))),
        I8x16ShrU => from_u8s(u8s(a).map(|x| x.wrapping_shr(n))),
        I16x8Shl => from_i16s(i16s(a).map(|x| x.wrapping_shl(n))),
        I16x8ShrS => from_i16s(i16s(a).map(|x| x.wrapping_shr(n))),
        I16x8ShrU => from_u16s(u16s(a).map(|x| x.wrapping_shr(n))),
        I32x4Shl => from_i32s(i32s(a).map(|x| x.wrapping_shl(n))),
        I32x4ShrS => from_i32s(i32s(a).map(|x| x.wrapping_shr(n))),
        I32x4ShrU => from_u32s(u32s(a).map(|x| x.wrapping_shr(n))),
        I64x2Shl => from_i64s(i64s(a).map(|x| x.wrapping_shl(n))),
        I64x2ShrS => from_i64s(i64s(a).map(|x| x.wrapping_shr(n))),
        _ => from_u64s(u64s(a).map(|x| x.wrapping_shr(n))),
    }
}

/// All ones where `f` holds, lane by lane, as lanes of `$t`.
macro_rules! cmp {
    ($read:ident, $write:ident, $t:ty, $n:literal, $a:expr, $b:expr, $f:expr) => {{
        let (x, y) = ($read($a), $read($b));
        let f = $f;
        $write(std::array::from_fn::<$t, $n, _>(|i| if f(x[i], y[i]) { -1 } else { 0 }))
    }};
}

macro_rules! map2 {
    ($read:ident, $write:ident, $a:expr, $b:expr, $f:expr) => {{
        let (x, y) = ($read($a), $read($b));
        let f = $f;
        $write(std::array::from_fn(|i| f(x[i], y[i])))
    }};
}

/// Narrows two vectors' lanes into one of half-width lanes, saturating.
macro_rules! narrow {
    ($read:ident, $write:ident, $t:ty, $a:expr, $b:expr) => {{
        let (x, y) = ($read($a), $read($b));
        let n = x.len();
        $write(std::array::from_fn(|i| {
            let w = if i < n { x[i] } else { y[i - n] };
            w.clamp(<$t>::MIN.into(), <$t>::MAX.into()) as $t
        }))
    }};
}

fn binary(op: &Operator, a: u128, b: u128) -> Option<u128> {
    use Operator::*;
    Some(match op {
        I8x16Eq => cmp!(i8s, from_i8s, i8, 16, a, b, |x, y| x == y),
        I8x16Ne => cmp!(i8s, from_i8s, i8, 16, a, b, |x, y| x != y),
        I8x16LtS => cmp!(i8s, from_i8s, i8, 16, a, b, |x, y| x < y),
        I8x16LtU => cmp!(u8s, from_i8s, i8, 16, a, b, |x, y| x < y),
        I8x16GtS => cmp!(i8s, from_i8s, i8, 16, a, b, |x, y| x > y),
        I8x16GtU => cmp!(u8s, from_i8s, i8, 16, a, b, |x, y| x > y),
        I8x16LeS => cmp!(i8s, from_i8s, i8, 16, a, b, |x, y| x <= y),
        I8x16LeU => cmp!(u8s, from_i8s, i8, 16, a, b, |x, y| x <= y),
        I8x16GeS => cmp!(i8s, from_i8s, i8, 16, a, b, |x, y| x >= y),
        I8x16GeU => cmp!(u8s, from_i8s, i8, 16, a, b, |x, y| x >= y),
        I16x8Eq => cmp!(i16s, from_i16s, i16, 8, a, b, |x, y| x == y),
        I16x8Ne => cmp!(i16s, from_i16s, i16, 8, a, b, |x, y| x != y),
        I16x8LtS => cmp!(i16s, from_i16s, i16, 8, a, b, |x, y| x < y),
        I16x8LtU => cmp!(u16s, from_i16s, i16, 8, a, b, |x, y| x < y),
        I16x8GtS => cmp!(i16s, from_i16s, i16, 8, a, b, |x, y| x > y),
        I16x8GtU => cmp!(u16s, from_i16s, i16, 8, a, b, |x, y| x > y),
        I16x8LeS => cmp!(i16s, from_i16s, i16, 8, a, b, |x, y| x <= y),
        I16x8LeU => cmp!(u16s, from_i16s, i16, 8, a, b, |x, y| x <= y),
        I16x8GeS => cmp!(i16s, from_i16s, i16, 8, a, b, |x, y| x >= y),
        I16x8GeU => cmp!(u16s, from_i16s, i16, 8, a, b, |x, y| x >= y),
        I32x4Eq => cmp!(i32s, from_i32s, i32, 4, a, b, |x, y| x == y),
        I32x4Ne => cmp!(i32s, from_i32s, i32, 4, a, b, |x, y| x != y),
        I32x4LtS => cmp!(i32s, from_i32s, i32, 4, a, b, |x, y| x < y),
        I32x4LtU => cmp!(u32s, from_i32s, i32, 4, a, b, |x, y| x < y),
        I32x4GtS => cmp!(i32s, from_i32s, i32, 4, a, b, |x, y| x > y),
        I32x4GtU => cmp!(u32s, from_i32s, i32, 4, a, b, |x, y| x > y),
        I32x4LeS => cmp!(i32s, from_i32s, i32, 4, a, b, |x, y| x <= y),
        I32x4LeU => cmp!(u32s, from_i32s, i32, 4, a, b, |x, y| x <= y),
        I32x4GeS => cmp!(i32s, from_i32s, i32, 4, a, b, |x, y| x >= y),
        I32x4GeU => cmp!(u32s, from_i32s, i32, 4, a, b, |x, y| x >= y),
        I64x2Eq => cmp!(i64s, from_i64s, i64, 2, a, b, |x, y| x == y),
        I64x2Ne => cmp!(i64s, from_i64s, i64, 2, a, b, |x, y| x != y),
        I64x2LtS => cmp!(i64s, from_i64s, i64, 2, a, b, |x, y| x < y),
        I64x2GtS => cmp!(i64s, from_i64s, i64, 2, a, b, |x, y| x > y),
        I64x2LeS => cmp!(i64s, from_i64s, i64, 2, a, b, |x, y| x <= y),
        I64x2GeS => cmp!(i64s, from_i64s, i64, 2, a, b, |x, y| x >= y),
        F32x4Eq => cmp!(f32s, from_i32s, i32, 4, a, b, |x, y| x == y),
        F32x4Ne => cmp!(f32s, from_i32s, i32, 4, a, b, |x, y| x != y),
        F32x4Lt => cmp!(f32s, from_i32s, i32, 4, a, b, |x, y| x < y),
        F32x4Gt => cmp!(f32s, from_i32s, i32, 4, a, b, |x, y| x > y),
        F32x4Le => cmp!(f32s, from_i32s, i32, 4, a, b, |x, y| x <= y),
        F32x4Ge => cmp!(f32s, from_i32s, i32, 4, a, b, |x, y| x >= y),
        F64x2Eq => cmp!(f64s, from_i64s, i64, 2, a, b, |x: f64, y: f64| x == y),
        F64x2Ne => cmp!(f64s, from_i64s, i64, 2, a, b, |x: f64, y: f64| x != y),
        F64x2Lt => cmp!(f64s, from_i64s, i64, 2, a, b, |x: f64, y: f64| x < y),
        F64x2Gt => cmp!(f64s, from_i64s, i64, 2, a, b, |x: f64, y: f64| x > y),
        F64x2Le => cmp!(f64s, from_i64s, i64, 2, a, b, |x: f64, y: f64| x <= y),
        F64x2Ge => cmp!(f64s, from_i64s, i64, 2, a, b, |x: f64, y: f64| x >= y),

        I8x16Add => map2!(i8s, from_i8s, a, b, |x: i8, y: i8| x.wrapping_add(y)),
        I8x16Sub => map2!(i8s, from_i8s, a, b, |x: i8, y: i8| x.wrapping_sub(y)),
        I8x16AddSatS => map2!(i8s, from_i8s, a, b, |x: i8, y: i8| x.saturating_add(y)),
        I8x16AddSatU => map2!(u8s, from_u8s, a, b, |x: u8, y: u8| x.saturating_add(y)),
        I8x16SubSatS => map2!(i8s, from_i8s, a, b, |x: i8, y: i8| x.saturating_sub(y)),
        I8x16SubSatU => map2!(u8s, from_u8s, a, b, |x: u8, y: u8| x.saturating_sub(y)),
        I8x16MinS => map2!(i8s, from_i8s, a, b, |x: i8, y: i8| x.min(y)),
        I8x16MinU => map2!(u8s, from_u8s, a, b, |x: u8, y: u8| x.min(y)),
        I8x16MaxS => map2!(i8s, from_i8s, a, b, |x: i8, y: i8| x.max(y)),
        I8x16MaxU => map2!(u8s, from_u8s, a, b, |x: u8, y: u8| x.max(y)),
        I8x16AvgrU => map2!(u8s, from_u8s, a, b, |x: u8, y: u8| ((x as u16 + y as u16).div_ceil(2)) as u8),
        I8x16NarrowI16x8S => narrow!(i16s, from_i8s, i8, a, b),
        I8x16NarrowI16x8U => narrow!(i16s, from_u8s, u8, a, b),
        I16x8Add => map2!(i16s, from_i16s, a, b, |x: i16, y: i16| x.wrapping_add(y)),
        I16x8Sub => map2!(i16s, from_i16s, a, b, |x: i16, y: i16| x.wrapping_sub(y)),
        I16x8Mul => map2!(i16s, from_i16s, a, b, |x: i16, y: i16| x.wrapping_mul(y)),
        I16x8AddSatS => map2!(i16s, from_i16s, a, b, |x: i16, y: i16| x.saturating_add(y)),
        I16x8AddSatU => map2!(u16s, from_u16s, a, b, |x: u16, y: u16| x.saturating_add(y)),
        I16x8SubSatS => map2!(i16s, from_i16s, a, b, |x: i16, y: i16| x.saturating_sub(y)),
        I16x8SubSatU => map2!(u16s, from_u16s, a, b, |x: u16, y: u16| x.saturating_sub(y)),
        I16x8MinS => map2!(i16s, from_i16s, a, b, |x: i16, y: i16| x.min(y)),
        I16x8MinU => map2!(u16s, from_u16s, a, b, |x: u16, y: u16| x.min(y)),
        I16x8MaxS => map2!(i16s, from_i16s, a, b, |x: i16, y: i16| x.max(y)),
        I16x8MaxU => map2!(u16s, from_u16s, a, b, |x: u16, y: u16| x.max(y)),
        I16x8AvgrU => map2!(u16s, from_u16s, a, b, |x: u16, y: u16| ((x as u32 + y as u32).div_ceil(2)) as u16),
        I16x8Q15MulrSatS => map2!(i16s, from_i16s, a, b, |x: i16, y: i16| {
            ((x as i32 * y as i32 + 0x4000) >> 15).clamp(i16::MIN as i32, i16::MAX as i32) as i16
        }),
        I16x8NarrowI32x4S => narrow!(i32s, from_i16s, i16, a, b),
        I16x8NarrowI32x4U => narrow!(i32s, from_u16s, u16, a, b),
        I16x8ExtMulLowI8x16S => ext_mul(a, b, false, true, 16),
        I16x8ExtMulHighI8x16S => ext_mul(a, b, true, true, 16),
        I16x8ExtMulLowI8x16U => ext_mul(a, b, false, false, 16),
        I16x8ExtMulHighI8x16U => ext_mul(a, b, true, false, 16),
        I32x4Add => map2!(i32s, from_i32s, a, b, |x: i32, y: i32| x.wrapping_add(y)),
        I32x4Sub => map2!(i32s, from_i32s, a, b, |x: i32, y: i32| x.wrapping_sub(y)),
        I32x4Mul => map2!(i32s, from_i32s, a, b, |x: i32, y: i32| x.wrapping_mul(y)),
        I32x4MinS => map2!(i32s, from_i32s, a, b, |x: i32, y: i32| x.min(y)),
        I32x4MinU => map2!(u32s, from_u32s, a, b, |x: u32, y: u32| x.min(y)),
        I32x4MaxS => map2!(i32s, from_i32s, a, b, |x: i32, y: i32| x.max(y)),
        I32x4MaxU => map2!(u32s, from_u32s, a, b, |x: u32, y: u32| x.max(y)),
        I32x4DotI16x8S => {
            let (x, y) = (i16s(a), i16s(b));
            from_i32s(std::array::from_fn(|i| {
                (x[2 * i] as i32 * y[2 * i] as i32).wrapping_add(x[2 * i + 1] as i32 * y[2 * i + 1] as i32)
            }))
        }
        I32x4ExtMulLowI16x8S => ext_mul(a, b, false, true, 8),
        I32x4ExtMulHighI16x8S => ext_mul(a, b, true, true, 8),
        I32x4ExtMulLowI16x8U => ext_mul(a, b, false, false, 8),
        I32x4ExtMulHighI16x8U => ext_mul(a, b, true, false, 8),
        I64x2Add => map2!(i64s, from_i64s, a, b, |x: i64, y: i64| x.wrapping_add(y)),
        I64x2Sub => map2!(i64s, from_i64s, a, b, |x: i64, y: i64| x.wrapping_sub(y)),
        I64x2Mul => map2!(i64s, from_i64s, a, b, |x: i64, y: i64| x.wrapping_mul(y)),
        I64x2ExtMulLowI32x4S => ext_mul(a, b, false, true, 4),
        I64x2ExtMulHighI32x4S => ext_mul(a, b, true, true, 4),
        I64x2ExtMulLowI32x4U => ext_mul(a, b, false, false, 4),
        I64x2ExtMulHighI32x4U => ext_mul(a, b, true, false, 4),

        F32x4Add => map2!(f32s, from_f32s, a, b, |x: f32, y: f32| x + y),
        F32x4Sub => map2!(f32s, from_f32s, a, b, |x: f32, y: f32| x - y),
        F32x4Mul => map2!(f32s, from_f32s, a, b, |x: f32, y: f32| x * y),
        F32x4Div => map2!(f32s, from_f32s, a, b, |x: f32, y: f32| x / y),
        F32x4Min => map2!(f32s, from_f32s, a, b, |x, y| fminmax32(x, y, true)),
        F32x4Max => map2!(f32s, from_f32s, a, b, |x, y| fminmax32(x, y, false)),
        F32x4PMin => map2!(f32s, from_f32s, a, b, |x: f32, y: f32| if y < x { y } else { x }),
        F32x4PMax => map2!(f32s, from_f32s, a, b, |x: f32, y: f32| if x < y { y } else { x }),
        F64x2Add => map2!(f64s, from_f64s, a, b, |x: f64, y: f64| x + y),
        F64x2Sub => map2!(f64s, from_f64s, a, b, |x: f64, y: f64| x - y),
        F64x2Mul => map2!(f64s, from_f64s, a, b, |x: f64, y: f64| x * y),
        F64x2Div => map2!(f64s, from_f64s, a, b, |x: f64, y: f64| x / y),
        F64x2Min => map2!(f64s, from_f64s, a, b, |x, y| fminmax64(x, y, true)),
        F64x2Max => map2!(f64s, from_f64s, a, b, |x, y| fminmax64(x, y, false)),
        F64x2PMin => map2!(f64s, from_f64s, a, b, |x: f64, y: f64| if y < x { y } else { x }),
        F64x2PMax => map2!(f64s, from_f64s, a, b, |x: f64, y: f64| if x < y { y } else { x }),
        _ => return None,
    })
}

/// Extended multiply of the low or high half of `lanes`-lane vectors into
/// lanes twice as wide.
fn ext_mul(a: u128, b: u128, high: bool, signed: bool, lanes: usize) -> u128 {
    let half = lanes / 2;
    let off = if high { half } else { 0 };
    match (lanes, signed) {
        (16, true) => {
            let (x, y) = (i8s(a), i8s(b));
            from_i16s(std::array::from_fn(|i| x[off + i] as i16 * y[off + i] as i16))
        }
        (16, false) => {
            let (x, y) = (u8s(a), u8s(b));
            from_u16s(std::array::from_fn(|i| x[off + i] as u16 * y[off + i] as u16))
        }
        (8, true) => {
            let (x, y) = (i16s(a), i16s(b));
            from_i32s(std::array::from_fn(|i| x[off + i] as i32 * y[off + i] as i32))
        }
        (8, false) => {
            let (x, y) = (u16s(a), u16s(b));
            from_u32s(std::array::from_fn(|i| x[off + i] as u32 * y[off + i] as u32))
        }
        (_, true) => {
            let (x, y) = (i32s(a), i32s(b));
            from_i64s(std::array::from_fn(|i| x[off + i] as i64 * y[off + i] as i64))
        }
        (_, false) => {
            let (x, y) = (u32s(a), u32s(b));
            from_u64s(std::array::from_fn(|i| x[off + i] as u64 * y[off + i] as u64))
        }
    }
}

/// Saturating float-to-int truncation (NaN to 0), as `trunc_sat`.
fn sat_i32(x: f64) -> i32 {
    x as i32
}

fn sat_u32(x: f64) -> u32 {
    x as u32
}

fn unary(op: &Operator, a: u128) -> Option<Val> {
    use Operator::*;
    let v = |r: u128| Some(Val::V128(r));
    match op {
        I8x16AllTrue => Some(Val::I32(i8s(a).iter().all(|x| *x != 0) as i32)),
        I16x8AllTrue => Some(Val::I32(i16s(a).iter().all(|x| *x != 0) as i32)),
        I32x4AllTrue => Some(Val::I32(i32s(a).iter().all(|x| *x != 0) as i32)),
        I64x2AllTrue => Some(Val::I32(i64s(a).iter().all(|x| *x != 0) as i32)),
        I8x16Bitmask => Some(Val::I32(i8s(a).iter().enumerate().map(|(i, x)| ((*x < 0) as i32) << i).sum())),
        I16x8Bitmask => Some(Val::I32(i16s(a).iter().enumerate().map(|(i, x)| ((*x < 0) as i32) << i).sum())),
        I32x4Bitmask => Some(Val::I32(i32s(a).iter().enumerate().map(|(i, x)| ((*x < 0) as i32) << i).sum())),
        I64x2Bitmask => Some(Val::I32(i64s(a).iter().enumerate().map(|(i, x)| ((*x < 0) as i32) << i).sum())),
        I8x16Abs => v(from_i8s(i8s(a).map(|x| x.wrapping_abs()))),
        I8x16Neg => v(from_i8s(i8s(a).map(|x| x.wrapping_neg()))),
        I8x16Popcnt => v(from_u8s(u8s(a).map(|x| x.count_ones() as u8))),
        I16x8Abs => v(from_i16s(i16s(a).map(|x| x.wrapping_abs()))),
        I16x8Neg => v(from_i16s(i16s(a).map(|x| x.wrapping_neg()))),
        I32x4Abs => v(from_i32s(i32s(a).map(|x| x.wrapping_abs()))),
        I32x4Neg => v(from_i32s(i32s(a).map(|x| x.wrapping_neg()))),
        I64x2Abs => v(from_i64s(i64s(a).map(|x| x.wrapping_abs()))),
        I64x2Neg => v(from_i64s(i64s(a).map(|x| x.wrapping_neg()))),
        I16x8ExtendLowI8x16S => v(from_i16s(std::array::from_fn(|i| i8s(a)[i] as i16))),
        I16x8ExtendHighI8x16S => v(from_i16s(std::array::from_fn(|i| i8s(a)[i + 8] as i16))),
        I16x8ExtendLowI8x16U => v(from_u16s(std::array::from_fn(|i| u8s(a)[i] as u16))),
        I16x8ExtendHighI8x16U => v(from_u16s(std::array::from_fn(|i| u8s(a)[i + 8] as u16))),
        I32x4ExtendLowI16x8S => v(from_i32s(std::array::from_fn(|i| i16s(a)[i] as i32))),
        I32x4ExtendHighI16x8S => v(from_i32s(std::array::from_fn(|i| i16s(a)[i + 4] as i32))),
        I32x4ExtendLowI16x8U => v(from_u32s(std::array::from_fn(|i| u16s(a)[i] as u32))),
        I32x4ExtendHighI16x8U => v(from_u32s(std::array::from_fn(|i| u16s(a)[i + 4] as u32))),
        I64x2ExtendLowI32x4S => v(from_i64s(std::array::from_fn(|i| i32s(a)[i] as i64))),
        I64x2ExtendHighI32x4S => v(from_i64s(std::array::from_fn(|i| i32s(a)[i + 2] as i64))),
        I64x2ExtendLowI32x4U => v(from_u64s(std::array::from_fn(|i| u32s(a)[i] as u64))),
        I64x2ExtendHighI32x4U => v(from_u64s(std::array::from_fn(|i| u32s(a)[i + 2] as u64))),
        I16x8ExtAddPairwiseI8x16S => {
            let x = i8s(a);
            v(from_i16s(std::array::from_fn(|i| x[2 * i] as i16 + x[2 * i + 1] as i16)))
        }
        I16x8ExtAddPairwiseI8x16U => {
            let x = u8s(a);
            v(from_u16s(std::array::from_fn(|i| x[2 * i] as u16 + x[2 * i + 1] as u16)))
        }
        I32x4ExtAddPairwiseI16x8S => {
            let x = i16s(a);
            v(from_i32s(std::array::from_fn(|i| x[2 * i] as i32 + x[2 * i + 1] as i32)))
        }
        I32x4ExtAddPairwiseI16x8U => {
            let x = u16s(a);
            v(from_u32s(std::array::from_fn(|i| x[2 * i] as u32 + x[2 * i + 1] as u32)))
        }
        F32x4Abs => v(from_u32s(u32s(a).map(|x| x & 0x7fff_ffff))),
        F32x4Neg => v(from_u32s(u32s(a).map(|x| x ^ 0x8000_0000))),
        F32x4Sqrt => v(from_f32s(f32s(a).map(|x| x.sqrt()))),
        F32x4Ceil => v(from_f32s(f32s(a).map(|x| quiet32(x).ceil()))),
        F32x4Floor => v(from_f32s(f32s(a).map(|x| quiet32(x).floor()))),
        F32x4Trunc => v(from_f32s(f32s(a).map(|x| quiet32(x).trunc()))),
        F32x4Nearest => v(from_f32s(f32s(a).map(|x| quiet32(x).round_ties_even()))),
        F64x2Abs => v(from_u64s(u64s(a).map(|x| x & 0x7fff_ffff_ffff_ffff))),
        F64x2Neg => v(from_u64s(u64s(a).map(|x| x ^ 0x8000_0000_0000_0000))),
        F64x2Sqrt => v(from_f64s(f64s(a).map(|x| x.sqrt()))),
        F64x2Ceil => v(from_f64s(f64s(a).map(|x| quiet64(x).ceil()))),
        F64x2Floor => v(from_f64s(f64s(a).map(|x| quiet64(x).floor()))),
        F64x2Trunc => v(from_f64s(f64s(a).map(|x| quiet64(x).trunc()))),
        F64x2Nearest => v(from_f64s(f64s(a).map(|x| quiet64(x).round_ties_even()))),
        I32x4TruncSatF32x4S => v(from_i32s(f32s(a).map(|x| sat_i32(x as f64)))),
        I32x4TruncSatF32x4U => v(from_u32s(f32s(a).map(|x| sat_u32(x as f64)))),
        I32x4TruncSatF64x2SZero => {
            let x = f64s(a);
            v(from_i32s([sat_i32(x[0]), sat_i32(x[1]), 0, 0]))
        }
        I32x4TruncSatF64x2UZero => {
            let x = f64s(a);
            v(from_u32s([sat_u32(x[0]), sat_u32(x[1]), 0, 0]))
        }
        F32x4ConvertI32x4S => v(from_f32s(i32s(a).map(|x| x as f32))),
        F32x4ConvertI32x4U => v(from_f32s(u32s(a).map(|x| x as f32))),
        F64x2ConvertLowI32x4S => v(from_f64s(std::array::from_fn(|i| i32s(a)[i] as f64))),
        F64x2ConvertLowI32x4U => v(from_f64s(std::array::from_fn(|i| u32s(a)[i] as f64))),
        F32x4DemoteF64x2Zero => {
            let x = f64s(a);
            v(from_f32s([x[0] as f32, x[1] as f32, 0.0, 0.0]))
        }
        F64x2PromoteLowF32x4 => v(from_f64s(std::array::from_fn(|i| f32s(a)[i] as f64))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_little_endian_and_round_trip() {
        let v = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
        assert_eq!(u8s(v)[0], 0);
        assert_eq!(u8s(v)[15], 15);
        assert_eq!(i32s(v)[1], 0x0706_0504);
        assert_eq!(from_i16s(i16s(v)), v);
        assert_eq!(from_u64s(u64s(v)), v);
    }

    #[test]
    fn narrowing_saturates_and_shifts_wrap() {
        let a = from_i16s([300, -300, 5, 0, 0, 0, 0, 0]);
        assert_eq!(&u8s(binary(&Operator::I8x16NarrowI16x8U, a, 0).unwrap())[..3], &[255, 0, 5]);
        assert_eq!(&i8s(binary(&Operator::I8x16NarrowI16x8S, a, 0).unwrap())[..3], &[127, -128, 5]);
        assert_eq!(i32s(shift(&Operator::I32x4Shl, from_i32s([1; 4]), 33)), [2; 4]);
    }
}
