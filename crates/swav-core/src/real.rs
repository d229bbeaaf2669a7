//! The floating-point element type every algorithm is generic over.

use core::fmt::{Debug, Display};
use core::iter::Sum;
use num_traits::{Float, FromPrimitive, ToPrimitive};

/// A real number type the SwAV math runs in: `f32` (training) or `f64` (references, tests).
///
/// It is `num_traits::Float` (with `libm` under `no_std`) plus the few conversions the
/// algorithms need. Implemented for `f32` and `f64`.
pub trait Real:
    Float + FromPrimitive + ToPrimitive + Sum + Default + Debug + Display + Send + Sync + 'static
{
    /// Converts an `f64` constant (a hyper-parameter, a count) into this type, rounding.
    fn of(x: f64) -> Self;

    /// Converts a count into this type, rounding when it is not exactly representable.
    fn of_usize(n: usize) -> Self {
        Self::of(n as f64)
    }

    /// Widens to `f64` for reporting (losses, diagnostics).
    fn to_f64_lossless(self) -> f64;

    /// `e^self`, branch-free so that loops over slices vectorise.
    ///
    /// For `f32` this is a range reduction plus a degree-7 polynomial, within 2 ulp of the
    /// correctly rounded result over the whole range, including the subnormal results
    /// below `e^-87.3`, `inf` above `88.72` and NaN for NaN. For `f64` it is `exp`.
    fn fast_exp(self) -> Self;
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn to_f64_lossless(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn fast_exp(self) -> Self {
        exp_f32(self)
    }
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn to_f64_lossless(self) -> f64 {
        self
    }
    #[inline(always)]
    fn fast_exp(self) -> Self {
        Float::exp(self)
    }
}

/// Branch-free `e^x` for `f32` (see [`Real::fast_exp`]).
///
/// `x = n·ln2 + r` with `|r| ≤ ln2/2` (ln2 split in two parts for an exact reduction),
/// `e^r` by a minimax polynomial, and `2^n` applied as two factors `2^(n/2)·2^(n-n/2)` so that
/// results in the subnormal range round correctly and `n = 128` overflows to `inf`.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer (ties to even).
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-104.0, 89.0);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let r2 = r * r;
    let p = ((((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 0.5)
        * r2
        + r)
        + 1.0;
    let ni = n as i32;
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    p * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulp_distance(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn fast_exp_is_within_two_ulp_everywhere() {
        let mut worst = 0;
        let mut x = -103.0f32;
        while x < 88.7 {
            let exact = (x as f64).exp() as f32;
            let d = ulp_distance(exact, x.fast_exp());
            worst = worst.max(d);
            x += 0.000_37;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
    }

    #[test]
    fn fast_exp_handles_the_edges() {
        assert_eq!(89.0f32.fast_exp(), f32::INFINITY);
        assert_eq!(f32::INFINITY.fast_exp(), f32::INFINITY);
        assert_eq!(f32::NEG_INFINITY.fast_exp(), 0.0);
        assert_eq!((-200.0f32).fast_exp(), 0.0);
        assert!(f32::NAN.fast_exp().is_nan());
        assert_eq!(0.0f32.fast_exp(), 1.0);
        // The largest finite result and a subnormal one.
        assert!(88.72f32.fast_exp().is_finite());
        let sub = (-100.0f32).fast_exp();
        assert!(sub > 0.0 && sub < f32::MIN_POSITIVE);
        assert!(ulp_distance(sub, ((-100.0f64).exp()) as f32) <= 1);
    }
}
