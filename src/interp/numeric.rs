//! Numeric instructions whose specification differs from Rust's operators:
//! float min/max and rounding, and trapping float-to-int conversions.

use super::{Stop, trap};
use crate::outcome::TrapClass;

macro_rules! minmax {
    ($name:ident, $t:ty, $pick_neg_zero:expr) => {
        /// NaN if either operand is; of two zeros, the sign the spec picks.
        pub fn $name(a: $t, b: $t, min: bool) -> $t {
            if a.is_nan() || b.is_nan() {
                return a + b;
            }
            if a == b {
                // Equal values differ only in the sign of zero.
                return if min == $pick_neg_zero(a) { a } else { b };
            }
            if (a < b) == min { a } else { b }
        }
    };
}
minmax!(fminmax32, f32, |a: f32| a.is_sign_negative());
minmax!(fminmax64, f64, |a: f64| a.is_sign_negative());

/// Truncation of a float (given as f64, exact for f32 inputs) to an integer
/// in `[lo, hi)`; traps as Wasm does.
/// `x` with a NaN quieted: rounding instructions must return an arithmetic
/// NaN, and the host's `floor` (libm without SSE4.1) returns a signalling
/// NaN unchanged.
pub fn quiet32(x: f32) -> f32 {
    if x.is_nan() { f32::from_bits(x.to_bits() | 0x0040_0000) } else { x }
}

/// See [`quiet32`].
pub fn quiet64(x: f64) -> f64 {
    if x.is_nan() { f64::from_bits(x.to_bits() | 0x0008_0000_0000_0000) } else { x }
}

fn trunc_checked(x: f64, lo: f64, hi: f64) -> Result<f64, Stop> {
    if x.is_nan() {
        return trap(TrapClass::BadConversionToInteger);
    }
    let t = x.trunc();
    if t < lo || t >= hi {
        return trap(TrapClass::IntegerOverflow);
    }
    Ok(t)
}

pub fn i32_trunc_s(x: f64) -> Result<i32, Stop> {
    Ok(trunc_checked(x, -2147483648.0, 2147483648.0)? as i32)
}

pub fn i32_trunc_u(x: f64) -> Result<i32, Stop> {
    Ok(trunc_checked(x, 0.0, 4294967296.0)? as u32 as i32)
}

pub fn i64_trunc_s(x: f64) -> Result<i64, Stop> {
    Ok(trunc_checked(x, -9223372036854775808.0, 9223372036854775808.0)? as i64)
}

pub fn i64_trunc_u(x: f64) -> Result<i64, Stop> {
    Ok(trunc_checked(x, 0.0, 18446744073709551616.0)? as u64 as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_follow_the_spec() {
        assert!(fminmax32(-0.0, 0.0, true).is_sign_negative());
        assert!(fminmax32(0.0, -0.0, true).is_sign_negative());
        assert!(fminmax32(-0.0, 0.0, false).is_sign_positive());
        assert!(fminmax32(0.0, -0.0, false).is_sign_positive());
        assert!(fminmax64(f64::NAN, 1.0, true).is_nan());
        assert_eq!(fminmax64(1.0, 2.0, false), 2.0);
    }

    #[test]
    fn truncation_traps_at_the_edges() {
        assert_eq!(i32_trunc_s(-2147483648.9), Ok(-2147483648));
        assert_eq!(i32_trunc_s(2147483648.0), Err(Stop::Trap(TrapClass::IntegerOverflow)));
        assert_eq!(i32_trunc_u(-0.9), Ok(0));
        assert_eq!(i32_trunc_u(-1.0), Err(Stop::Trap(TrapClass::IntegerOverflow)));
        assert_eq!(i64_trunc_u(f64::NAN), Err(Stop::Trap(TrapClass::BadConversionToInteger)));
    }
}
