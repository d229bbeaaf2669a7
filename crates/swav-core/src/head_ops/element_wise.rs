//! [`ElementWiseOps`]: operations applied to every element of a buffer independently.

use super::BufferOps;
use crate::Real;

#[cfg(feature = "alloc")]
use {super::HostBufferOps, alloc::vec::Vec, core::convert::Infallible};

/// Scaling, division by a device scalar, Sinkhorn's exponentials and axpy.
pub trait ElementWiseOps<T: Real>: BufferOps<T> {
    /// `x *= s`.
    fn scale(&mut self, x: &mut Self::Buf, s: T) -> Result<(), Self::Error>;

    /// `x /= s[0]`, with `s` a one-element buffer.
    fn div_by_scalar(&mut self, x: &mut Self::Buf, s: &Self::Buf) -> Result<(), Self::Error>;

    /// `out = exp(x / eps - shift[0] / eps)`, or `exp(x / eps)` when `shift` is `None`.
    fn exp_div(
        &mut self,
        x: &Self::Buf,
        eps: T,
        shift: Option<&Self::Buf>,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `y[y_offset..][..len] += alpha · x[x_offset..][..len]`.
    fn axpy(
        &mut self,
        alpha: T,
        x: &Self::Buf,
        x_offset: usize,
        y: &mut Self::Buf,
        y_offset: usize,
        len: usize,
    ) -> Result<(), Self::Error>;
}

/// [`ElementWiseOps`] on host memory. Every method is the reference (`exp` is
/// [`Real::fast_exp`]); a host backend overrides those it does otherwise.
#[cfg(feature = "alloc")]
pub trait HostElementWiseOps<T: Real>: HostBufferOps<T> {
    /// [`ElementWiseOps::scale`] on host memory.
    fn scale(&mut self, x: &mut [T], s: T) {
        x.iter_mut().for_each(|v| *v = *v * s);
    }

    /// [`ElementWiseOps::div_by_scalar`] on host memory.
    fn div_by_scalar(&mut self, x: &mut [T], s: &[T]) {
        let s = s[0];
        x.iter_mut().for_each(|v| *v = *v / s);
    }

    /// [`ElementWiseOps::exp_div`] on host memory.
    fn exp_div(&mut self, x: &[T], eps: T, shift: Option<&[T]>, out: &mut [T]) {
        match shift {
            None => out
                .iter_mut()
                .zip(x)
                .for_each(|(o, &v)| *o = (v / eps).fast_exp()),
            Some(shift) => {
                let m = shift[0] / eps;
                out.iter_mut()
                    .zip(x)
                    .for_each(|(o, &v)| *o = (v / eps - m).fast_exp());
            }
        }
    }

    /// [`ElementWiseOps::axpy`] on host memory.
    fn axpy(
        &mut self,
        alpha: T,
        x: &[T],
        x_offset: usize,
        y: &mut [T],
        y_offset: usize,
        len: usize,
    ) {
        y[y_offset..y_offset + len]
            .iter_mut()
            .zip(&x[x_offset..x_offset + len])
            .for_each(|(y, &x)| *y = *y + alpha * x);
    }
}

#[cfg(feature = "alloc")]
impl<T: Real, H: HostElementWiseOps<T>> ElementWiseOps<T> for H {
    fn scale(&mut self, x: &mut Vec<T>, s: T) -> Result<(), Infallible> {
        HostElementWiseOps::scale(self, x, s);
        Ok(())
    }

    fn div_by_scalar(&mut self, x: &mut Vec<T>, s: &Vec<T>) -> Result<(), Infallible> {
        HostElementWiseOps::div_by_scalar(self, x, s);
        Ok(())
    }

    fn exp_div(
        &mut self,
        x: &Vec<T>,
        eps: T,
        shift: Option<&Vec<T>>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostElementWiseOps::exp_div(self, x, eps, shift.map(Vec::as_slice), out);
        Ok(())
    }

    fn axpy(
        &mut self,
        alpha: T,
        x: &Vec<T>,
        x_offset: usize,
        y: &mut Vec<T>,
        y_offset: usize,
        len: usize,
    ) -> Result<(), Infallible> {
        HostElementWiseOps::axpy(self, alpha, x, x_offset, y, y_offset, len);
        Ok(())
    }
}
