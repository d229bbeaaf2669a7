//! The slice reductions of the host reference: extremes, sums and dot products over eight
//! independent lanes, so that the compiler vectorises them and long sums stay accurate.

use crate::Real;

/// The maximum of a slice (`-inf` when empty; NaN when any element is NaN, like
/// `torch.max`). Eight independent lanes and a separate NaN flag keep it vectorisable.
pub(crate) fn max_of<T: Real>(x: &[T]) -> T {
    extreme_of(x, T::neg_infinity(), |m, v| if v > m { v } else { m })
}

/// The minimum of a slice (`inf` when empty; NaN when any element is NaN, like `torch.min`).
pub(crate) fn min_of<T: Real>(x: &[T]) -> T {
    extreme_of(x, T::infinity(), |m, v| if v < m { v } else { m })
}

/// A NaN-propagating reduction by `pick` (which ignores NaN) over eight lanes.
#[inline(always)]
fn extreme_of<T: Real>(x: &[T], start: T, pick: impl Fn(T, T) -> T) -> T {
    let mut lanes = [start; 8];
    let mut nan = false;
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            lanes[i] = pick(lanes[i], c[i]);
            nan |= c[i].is_nan();
        }
    }
    let mut m = start;
    for &v in lanes.iter().chain(tail) {
        m = pick(m, v);
        nan |= v.is_nan();
    }
    if nan { T::nan() } else { m }
}

/// Sum with eight independent accumulators: vectorisable, and more accurate than a
/// single running sum on long rows.
pub(crate) fn sum_of<T: Real>(x: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = acc[i] + c[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in tail {
        s = s + v;
    }
    s
}

/// Dot product with eight independent accumulators (see [`sum_of`]).
pub(crate) fn dot_of<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] = acc[i] + x[i] * y[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (&x, &y) in ta.iter().zip(tb) {
        s = s + x * y;
    }
    s
}

/// `Σ x²` (see [`sum_of`]).
pub(crate) fn sum_squares_of<T: Real>(x: &[T]) -> T {
    dot_of(x, x)
}
