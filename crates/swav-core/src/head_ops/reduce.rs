//! [`ReduceOps`]: whole-buffer reductions.

use super::BufferOps;
use crate::{BufAt, Real};

#[cfg(feature = "alloc")]
use {
    super::HostBufferOps,
    crate::slice_math::{dot_of, max_of, min_of, sum_of, sum_squares_of},
    alloc::vec::Vec,
    core::convert::Infallible,
};

/// Reductions of a whole buffer (or a stretch of two) to one value, left on the device or
/// returned to the host.
pub trait ReduceOps<T: Real>: BufferOps<T> {
    /// `out[0] = max(x)`.
    fn max_into(&mut self, x: &Self::Buf, out: &mut Self::Buf) -> Result<(), Self::Error>;

    /// `out[0] = min(x)`.
    fn min_into(&mut self, x: &Self::Buf, out: &mut Self::Buf) -> Result<(), Self::Error>;

    /// `out[0] = Σ x`.
    fn sum_into(&mut self, x: &Self::Buf, out: &mut Self::Buf) -> Result<(), Self::Error>;

    /// `Σ x²`, returned to the host (parameter and gradient norms for LARS).
    fn sum_squares(&mut self, x: &Self::Buf) -> Result<T, Self::Error>;

    /// The number of NaN or infinite elements, returned to the host.
    fn count_non_finite(&mut self, x: &Self::Buf) -> Result<usize, Self::Error>;

    /// `acc[0] += alpha · Σ_i a[a.offset + i] · b[b.offset + i]` for `i < len`.
    fn dot_accumulate(
        &mut self,
        a: BufAt<'_, Self::Buf>,
        b: BufAt<'_, Self::Buf>,
        len: usize,
        alpha: T,
        acc: &mut Self::Buf,
    ) -> Result<(), Self::Error>;
}

/// [`ReduceOps`] on host memory. Every method is the reference (sums over eight lanes,
/// NaN-propagating extremes); a host backend overrides those it does otherwise.
#[cfg(feature = "alloc")]
pub trait HostReduceOps<T: Real>: HostBufferOps<T> {
    /// [`ReduceOps::max_into`] on host memory.
    fn max_into(&mut self, x: &[T], out: &mut [T]) {
        out[0] = max_of(x);
    }

    /// [`ReduceOps::min_into`] on host memory.
    fn min_into(&mut self, x: &[T], out: &mut [T]) {
        out[0] = min_of(x);
    }

    /// [`ReduceOps::sum_into`] on host memory.
    fn sum_into(&mut self, x: &[T], out: &mut [T]) {
        out[0] = sum_of(x);
    }

    /// [`ReduceOps::sum_squares`] on host memory.
    fn sum_squares(&mut self, x: &[T]) -> T {
        sum_squares_of(x)
    }

    /// [`ReduceOps::count_non_finite`] on host memory.
    fn count_non_finite(&mut self, x: &[T]) -> usize {
        x.iter().filter(|v| !v.is_finite()).count()
    }

    /// [`ReduceOps::dot_accumulate`] on host memory.
    fn dot_accumulate(
        &mut self,
        a: BufAt<'_, [T]>,
        b: BufAt<'_, [T]>,
        len: usize,
        alpha: T,
        acc: &mut [T],
    ) {
        let dot = dot_of(
            &a.buf[a.offset..a.offset + len],
            &b.buf[b.offset..b.offset + len],
        );
        acc[0] = acc[0] + alpha * dot;
    }
}

#[cfg(feature = "alloc")]
impl<T: Real, H: HostReduceOps<T>> ReduceOps<T> for H {
    fn max_into(&mut self, x: &Vec<T>, out: &mut Vec<T>) -> Result<(), Infallible> {
        HostReduceOps::max_into(self, x, out);
        Ok(())
    }

    fn min_into(&mut self, x: &Vec<T>, out: &mut Vec<T>) -> Result<(), Infallible> {
        HostReduceOps::min_into(self, x, out);
        Ok(())
    }

    fn sum_into(&mut self, x: &Vec<T>, out: &mut Vec<T>) -> Result<(), Infallible> {
        HostReduceOps::sum_into(self, x, out);
        Ok(())
    }

    fn sum_squares(&mut self, x: &Vec<T>) -> Result<T, Infallible> {
        Ok(HostReduceOps::sum_squares(self, x))
    }

    fn count_non_finite(&mut self, x: &Vec<T>) -> Result<usize, Infallible> {
        Ok(HostReduceOps::count_non_finite(self, x))
    }

    fn dot_accumulate(
        &mut self,
        a: BufAt<'_, Vec<T>>,
        b: BufAt<'_, Vec<T>>,
        len: usize,
        alpha: T,
        acc: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostReduceOps::dot_accumulate(self, a.into_slice(), b.into_slice(), len, alpha, acc);
        Ok(())
    }
}
