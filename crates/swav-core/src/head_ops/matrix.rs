//! [`MatrixOps`]: operations on row-major matrices.

use super::BufferOps;
use crate::Real;

#[cfg(feature = "alloc")]
use {
    super::HostBufferOps,
    crate::slice_math::{dot_of, max_of, sum_of, sum_squares_of},
    alloc::vec::Vec,
    core::convert::Infallible,
};

/// Row and column sums and divisions (Sinkhorn's normalisations), row L2 normalisation, the
/// score product and the loss's log-softmax.
pub trait MatrixOps<T: Real>: BufferOps<T> {
    /// `out[r] = Σ_c m[r, c]`.
    fn row_sums(
        &mut self,
        m: &Self::Buf,
        rows: usize,
        cols: usize,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[c] = Σ_r m[r, c]`.
    fn col_sums(
        &mut self,
        m: &Self::Buf,
        rows: usize,
        cols: usize,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `m[r, c] = m[r, c] / d[r] / k`: two divisions, in that order, as the official code.
    fn div_rows(
        &mut self,
        m: &mut Self::Buf,
        rows: usize,
        cols: usize,
        d: &Self::Buf,
        k: T,
    ) -> Result<(), Self::Error>;

    /// `m[r, c] = m[r, c] / d[c] / k`: two divisions, in that order, as the official code.
    fn div_cols(
        &mut self,
        m: &mut Self::Buf,
        rows: usize,
        cols: usize,
        d: &Self::Buf,
        k: T,
    ) -> Result<(), Self::Error>;

    /// Row-wise L2 normalisation in place: `m[r, :] /= max(‖m[r, :]‖₂, eps)`.
    fn normalize_rows(
        &mut self,
        m: &mut Self::Buf,
        rows: usize,
        cols: usize,
        eps: T,
    ) -> Result<(), Self::Error>;

    /// `out[..m·n] (m × n) = a (m × k) · b (n × k)ᵀ`: embeddings times prototypes. Only the
    /// first `m·n` elements of `out` are written, so a larger buffer can receive the product
    /// at its top.
    fn matmul_nt(
        &mut self,
        a: &Self::Buf,
        b: &Self::Buf,
        m: usize,
        n: usize,
        k: usize,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[r, :] = log_softmax(x[r, :] / tau)`, computed stably (max-shifted log-sum-exp).
    fn log_softmax_rows(
        &mut self,
        x: &Self::Buf,
        rows: usize,
        cols: usize,
        tau: T,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[r, c] += exp(logp[r, c]) · w[r]`: adds row-weighted probabilities.
    fn add_exp_weighted_rows(
        &mut self,
        logp: &Self::Buf,
        rows: usize,
        cols: usize,
        w: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;
}

/// [`MatrixOps`] on host memory. Every method is the reference; a host backend overrides
/// those it does otherwise.
#[cfg(feature = "alloc")]
pub trait HostMatrixOps<T: Real>: HostBufferOps<T> {
    /// [`MatrixOps::row_sums`] on host memory.
    fn row_sums(&mut self, m: &[T], rows: usize, cols: usize, out: &mut [T]) {
        for (o, row) in out[..rows].iter_mut().zip(m.chunks_exact(cols)) {
            *o = sum_of(row);
        }
    }

    /// [`MatrixOps::col_sums`] on host memory.
    fn col_sums(&mut self, m: &[T], rows: usize, cols: usize, out: &mut [T]) {
        let out = &mut out[..cols];
        out.fill(T::zero());
        for row in m[..rows * cols].chunks_exact(cols) {
            out.iter_mut().zip(row).for_each(|(o, &v)| *o = *o + v);
        }
    }

    /// [`MatrixOps::div_rows`] on host memory.
    fn div_rows(&mut self, m: &mut [T], rows: usize, cols: usize, d: &[T], k: T) {
        for (row, &dr) in m[..rows * cols].chunks_exact_mut(cols).zip(d) {
            row.iter_mut().for_each(|v| *v = *v / dr / k);
        }
    }

    /// [`MatrixOps::div_cols`] on host memory.
    fn div_cols(&mut self, m: &mut [T], rows: usize, cols: usize, d: &[T], k: T) {
        let d = &d[..cols];
        for row in m[..rows * cols].chunks_exact_mut(cols) {
            row.iter_mut().zip(d).for_each(|(v, &dc)| *v = *v / dc / k);
        }
    }

    /// [`MatrixOps::normalize_rows`] on host memory.
    fn normalize_rows(&mut self, m: &mut [T], rows: usize, cols: usize, eps: T) {
        for row in m[..rows * cols].chunks_exact_mut(cols) {
            let norm = sum_squares_of(row).sqrt().max(eps);
            row.iter_mut().for_each(|v| *v = *v / norm);
        }
    }

    /// [`MatrixOps::matmul_nt`] on host memory.
    fn matmul_nt(&mut self, a: &[T], b: &[T], m: usize, n: usize, k: usize, out: &mut [T]) {
        for (out_row, a_row) in out[..m * n].chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (o, b_row) in out_row.iter_mut().zip(b.chunks_exact(k)) {
                *o = dot_of(a_row, b_row);
            }
        }
    }

    /// [`MatrixOps::log_softmax_rows`] on host memory.
    fn log_softmax_rows(&mut self, x: &[T], rows: usize, cols: usize, tau: T, out: &mut [T]) {
        for (o, row) in out[..rows * cols]
            .chunks_exact_mut(cols)
            .zip(x.chunks_exact(cols))
        {
            o.iter_mut().zip(row).for_each(|(o, &v)| *o = v / tau);
            let m = max_of(o);
            let mut s = T::zero();
            for &v in o.iter() {
                s = s + (v - m).fast_exp();
            }
            let lse = m + s.ln();
            o.iter_mut().for_each(|v| *v = *v - lse);
        }
    }

    /// [`MatrixOps::add_exp_weighted_rows`] on host memory.
    fn add_exp_weighted_rows(
        &mut self,
        logp: &[T],
        rows: usize,
        cols: usize,
        w: &[T],
        out: &mut [T],
    ) {
        for ((o, row), &wr) in out[..rows * cols]
            .chunks_exact_mut(cols)
            .zip(logp.chunks_exact(cols))
            .zip(w)
        {
            o.iter_mut()
                .zip(row)
                .for_each(|(o, &l)| *o = *o + l.fast_exp() * wr);
        }
    }
}

#[cfg(feature = "alloc")]
impl<T: Real, H: HostMatrixOps<T>> MatrixOps<T> for H {
    fn row_sums(
        &mut self,
        m: &Vec<T>,
        rows: usize,
        cols: usize,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostMatrixOps::row_sums(self, m, rows, cols, out);
        Ok(())
    }

    fn col_sums(
        &mut self,
        m: &Vec<T>,
        rows: usize,
        cols: usize,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostMatrixOps::col_sums(self, m, rows, cols, out);
        Ok(())
    }

    fn div_rows(
        &mut self,
        m: &mut Vec<T>,
        rows: usize,
        cols: usize,
        d: &Vec<T>,
        k: T,
    ) -> Result<(), Infallible> {
        HostMatrixOps::div_rows(self, m, rows, cols, d, k);
        Ok(())
    }

    fn div_cols(
        &mut self,
        m: &mut Vec<T>,
        rows: usize,
        cols: usize,
        d: &Vec<T>,
        k: T,
    ) -> Result<(), Infallible> {
        HostMatrixOps::div_cols(self, m, rows, cols, d, k);
        Ok(())
    }

    fn normalize_rows(
        &mut self,
        m: &mut Vec<T>,
        rows: usize,
        cols: usize,
        eps: T,
    ) -> Result<(), Infallible> {
        HostMatrixOps::normalize_rows(self, m, rows, cols, eps);
        Ok(())
    }

    fn matmul_nt(
        &mut self,
        a: &Vec<T>,
        b: &Vec<T>,
        m: usize,
        n: usize,
        k: usize,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostMatrixOps::matmul_nt(self, a, b, m, n, k, out);
        Ok(())
    }

    fn log_softmax_rows(
        &mut self,
        x: &Vec<T>,
        rows: usize,
        cols: usize,
        tau: T,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostMatrixOps::log_softmax_rows(self, x, rows, cols, tau, out);
        Ok(())
    }

    fn add_exp_weighted_rows(
        &mut self,
        logp: &Vec<T>,
        rows: usize,
        cols: usize,
        w: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostMatrixOps::add_exp_weighted_rows(self, logp, rows, cols, w, out);
        Ok(())
    }
}
