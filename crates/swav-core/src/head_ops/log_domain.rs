//! [`LogDomainOps`]: the primitives of the log-domain Sinkhorn, the exact fallback when the
//! linear domain underflows.

use super::BufferOps;
use crate::{Real, ScaledScores};

#[cfg(feature = "alloc")]
use {super::HostBufferOps, alloc::vec::Vec, core::convert::Infallible};

/// Max-shifted sums of exponentials of the scaled scores plus row or column biases.
///
/// `x` is the scaled score matrix: `x[r, c]` below stands for `x.scores[r, c] / x.eps`,
/// computed as that division.
pub trait LogDomainOps<T: Real>: BufferOps<T> {
    /// `out[c] = max_r (x[r, c] + b[r])`.
    fn col_max_biased(
        &mut self,
        x: ScaledScores<'_, Self::Buf, T>,
        b: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[c] = Σ_r exp(x[r, c] + b[r] - m[c])`.
    fn col_sum_exp_biased(
        &mut self,
        x: ScaledScores<'_, Self::Buf, T>,
        b: &Self::Buf,
        m: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[r] = log Σ_c exp(x[r, c] + a[c])`, computed stably.
    fn row_logsumexp_biased(
        &mut self,
        x: ScaledScores<'_, Self::Buf, T>,
        a: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[r, c] = exp(x[r, c] + b[r] + a[c])`.
    fn exp_biased(
        &mut self,
        x: ScaledScores<'_, Self::Buf, T>,
        b: &Self::Buf,
        a: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `v[i] = -(m[i] + ln s[i]) - ln_k`: turns a max-shifted column sum of exponentials into
    /// a log-domain scaling (`s` and `m` from [`col_sum_exp_biased`](Self::col_sum_exp_biased)
    /// and [`col_max_biased`](Self::col_max_biased)).
    fn neg_log_sum_shifted(
        &mut self,
        m: &Self::Buf,
        s: &Self::Buf,
        ln_k: T,
        v: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `x[i] = -x[i] - c`.
    fn negate_minus(&mut self, x: &mut Self::Buf, c: T) -> Result<(), Self::Error>;
}

/// [`LogDomainOps`] on host memory. Every method is the reference; a host backend overrides
/// those it does otherwise.
#[cfg(feature = "alloc")]
pub trait HostLogDomainOps<T: Real>: HostBufferOps<T> {
    /// [`LogDomainOps::col_max_biased`] on host memory.
    fn col_max_biased(&mut self, x: ScaledScores<'_, [T], T>, b: &[T], out: &mut [T]) {
        let (cols, eps) = (x.cols, x.eps);
        let out = &mut out[..cols];
        out.fill(T::neg_infinity());
        for (row, &br) in x.scores[..x.rows * cols].chunks_exact(cols).zip(b) {
            out.iter_mut()
                .zip(row)
                .for_each(|(o, &v)| *o = o.max(v / eps + br));
        }
    }

    /// [`LogDomainOps::col_sum_exp_biased`] on host memory.
    fn col_sum_exp_biased(&mut self, x: ScaledScores<'_, [T], T>, b: &[T], m: &[T], out: &mut [T]) {
        let (cols, eps) = (x.cols, x.eps);
        let out = &mut out[..cols];
        let m = &m[..cols];
        out.fill(T::zero());
        for (row, &br) in x.scores[..x.rows * cols].chunks_exact(cols).zip(b) {
            for ((o, &v), &mc) in out.iter_mut().zip(row).zip(m) {
                *o = *o + (v / eps + br - mc).fast_exp();
            }
        }
    }

    /// [`LogDomainOps::row_logsumexp_biased`] on host memory.
    fn row_logsumexp_biased(&mut self, x: ScaledScores<'_, [T], T>, a: &[T], out: &mut [T]) {
        let (cols, eps) = (x.cols, x.eps);
        let a = &a[..cols];
        for (o, row) in out[..x.rows].iter_mut().zip(x.scores.chunks_exact(cols)) {
            let mut m = T::neg_infinity();
            for (&v, &ac) in row.iter().zip(a) {
                m = m.max(v / eps + ac);
            }
            let mut s = T::zero();
            for (&v, &ac) in row.iter().zip(a) {
                s = s + (v / eps + ac - m).fast_exp();
            }
            *o = m + s.ln();
        }
    }

    /// [`LogDomainOps::exp_biased`] on host memory.
    fn exp_biased(&mut self, x: ScaledScores<'_, [T], T>, b: &[T], a: &[T], out: &mut [T]) {
        let (cols, eps) = (x.cols, x.eps);
        let a = &a[..cols];
        for ((o, row), &br) in out[..x.rows * cols]
            .chunks_exact_mut(cols)
            .zip(x.scores.chunks_exact(cols))
            .zip(b)
        {
            for ((o, &v), &ac) in o.iter_mut().zip(row).zip(a) {
                *o = (v / eps + br + ac).fast_exp();
            }
        }
    }

    /// [`LogDomainOps::neg_log_sum_shifted`] on host memory.
    fn neg_log_sum_shifted(&mut self, m: &[T], s: &[T], ln_k: T, v: &mut [T]) {
        for ((v, &m), &s) in v.iter_mut().zip(m).zip(s) {
            *v = -(m + s.ln()) - ln_k;
        }
    }

    /// [`LogDomainOps::negate_minus`] on host memory.
    fn negate_minus(&mut self, x: &mut [T], c: T) {
        x.iter_mut().for_each(|v| *v = -*v - c);
    }
}

#[cfg(feature = "alloc")]
impl<T: Real, H: HostLogDomainOps<T>> LogDomainOps<T> for H {
    fn col_max_biased(
        &mut self,
        x: ScaledScores<'_, Vec<T>, T>,
        b: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostLogDomainOps::col_max_biased(self, x.into_slice(), b, out);
        Ok(())
    }

    fn col_sum_exp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<T>, T>,
        b: &Vec<T>,
        m: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostLogDomainOps::col_sum_exp_biased(self, x.into_slice(), b, m, out);
        Ok(())
    }

    fn row_logsumexp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<T>, T>,
        a: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostLogDomainOps::row_logsumexp_biased(self, x.into_slice(), a, out);
        Ok(())
    }

    fn exp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<T>, T>,
        b: &Vec<T>,
        a: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostLogDomainOps::exp_biased(self, x.into_slice(), b, a, out);
        Ok(())
    }

    fn neg_log_sum_shifted(
        &mut self,
        m: &Vec<T>,
        s: &Vec<T>,
        ln_k: T,
        v: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        HostLogDomainOps::neg_log_sum_shifted(self, m, s, ln_k, v);
        Ok(())
    }

    fn negate_minus(&mut self, x: &mut Vec<T>, c: T) -> Result<(), Infallible> {
        HostLogDomainOps::negate_minus(self, x, c);
        Ok(())
    }
}
