//! [`SliceOps`]: the reference implementation of [`HeadOps`] on host memory.

use alloc::vec;
use alloc::vec::Vec;
use core::convert::Infallible;

use crate::{BufAt, HeadOps, Real, ScaledScores, SgdStep};

/// [`HeadOps`] on plain host vectors, single-threaded.
///
/// It is the reference every other backend is checked against, and what a library user
/// runs Sinkhorn or the loss with when their embeddings live in ordinary memory. Loops are
/// written so that the compiler vectorises them (`exp` is [`Real::fast_exp`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SliceOps;

impl<T: Real> HeadOps<T> for SliceOps {
    type Buf = Vec<T>;
    type Error = Infallible;

    fn zeros(&mut self, len: usize) -> Result<Vec<T>, Infallible> {
        Ok(vec![T::zero(); len])
    }

    fn buf_len(&self, buf: &Vec<T>) -> usize {
        buf.len()
    }

    fn upload(&mut self, src: &[T], dst: &mut Vec<T>, offset: usize) -> Result<(), Infallible> {
        dst[offset..offset + src.len()].copy_from_slice(src);
        Ok(())
    }

    fn download(&mut self, src: &Vec<T>, offset: usize, dst: &mut [T]) -> Result<(), Infallible> {
        dst.copy_from_slice(&src[offset..offset + dst.len()]);
        Ok(())
    }

    fn copy(
        &mut self,
        src: &Vec<T>,
        src_offset: usize,
        dst: &mut Vec<T>,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Infallible> {
        dst[dst_offset..dst_offset + len].copy_from_slice(&src[src_offset..src_offset + len]);
        Ok(())
    }

    fn copy_within(
        &mut self,
        buf: &mut Vec<T>,
        src_offset: usize,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Infallible> {
        buf.copy_within(src_offset..src_offset + len, dst_offset);
        Ok(())
    }

    fn fill(&mut self, buf: &mut Vec<T>, value: T) -> Result<(), Infallible> {
        buf.fill(value);
        Ok(())
    }

    fn max_into(&mut self, x: &Vec<T>, out: &mut Vec<T>) -> Result<(), Infallible> {
        out[0] = max_of(x);
        Ok(())
    }

    fn min_into(&mut self, x: &Vec<T>, out: &mut Vec<T>) -> Result<(), Infallible> {
        out[0] = min_of(x);
        Ok(())
    }

    fn sum_into(&mut self, x: &Vec<T>, out: &mut Vec<T>) -> Result<(), Infallible> {
        out[0] = sum_of(x);
        Ok(())
    }

    fn sum_squares(&mut self, x: &Vec<T>) -> Result<T, Infallible> {
        Ok(sum_squares_of(x))
    }

    fn count_non_finite(&mut self, x: &Vec<T>) -> Result<usize, Infallible> {
        Ok(x.iter().filter(|v| !v.is_finite()).count())
    }

    fn scale(&mut self, x: &mut Vec<T>, s: T) -> Result<(), Infallible> {
        x.iter_mut().for_each(|v| *v = *v * s);
        Ok(())
    }

    fn div_by_scalar(&mut self, x: &mut Vec<T>, s: &Vec<T>) -> Result<(), Infallible> {
        let s = s[0];
        x.iter_mut().for_each(|v| *v = *v / s);
        Ok(())
    }

    fn exp_div(
        &mut self,
        x: &Vec<T>,
        eps: T,
        shift: Option<&Vec<T>>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
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
        y[y_offset..y_offset + len]
            .iter_mut()
            .zip(&x[x_offset..x_offset + len])
            .for_each(|(y, &x)| *y = *y + alpha * x);
        Ok(())
    }

    fn dot_accumulate(
        &mut self,
        a: BufAt<'_, Vec<T>>,
        b: BufAt<'_, Vec<T>>,
        len: usize,
        alpha: T,
        acc: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        let dot = dot_of(
            &a.buf[a.offset..a.offset + len],
            &b.buf[b.offset..b.offset + len],
        );
        acc[0] = acc[0] + alpha * dot;
        Ok(())
    }

    fn row_sums(
        &mut self,
        m: &Vec<T>,
        rows: usize,
        cols: usize,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        for (o, row) in out[..rows].iter_mut().zip(m.chunks_exact(cols)) {
            *o = sum_of(row);
        }
        Ok(())
    }

    fn col_sums(
        &mut self,
        m: &Vec<T>,
        rows: usize,
        cols: usize,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        let out = &mut out[..cols];
        out.fill(T::zero());
        for row in m[..rows * cols].chunks_exact(cols) {
            out.iter_mut().zip(row).for_each(|(o, &v)| *o = *o + v);
        }
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
        for (row, &dr) in m[..rows * cols].chunks_exact_mut(cols).zip(d) {
            row.iter_mut().for_each(|v| *v = *v / dr / k);
        }
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
        let d = &d[..cols];
        for row in m[..rows * cols].chunks_exact_mut(cols) {
            row.iter_mut().zip(d).for_each(|(v, &dc)| *v = *v / dc / k);
        }
        Ok(())
    }

    fn normalize_rows(
        &mut self,
        m: &mut Vec<T>,
        rows: usize,
        cols: usize,
        eps: T,
    ) -> Result<(), Infallible> {
        for row in m[..rows * cols].chunks_exact_mut(cols) {
            let norm = sum_squares_of(row).sqrt().max(eps);
            row.iter_mut().for_each(|v| *v = *v / norm);
        }
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
        for (out_row, a_row) in out[..m * n].chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (o, b_row) in out_row.iter_mut().zip(b.chunks_exact(k)) {
                *o = dot_of(a_row, b_row);
            }
        }
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
        for ((o, row), &wr) in out[..rows * cols]
            .chunks_exact_mut(cols)
            .zip(logp.chunks_exact(cols))
            .zip(w)
        {
            o.iter_mut()
                .zip(row)
                .for_each(|(o, &l)| *o = *o + l.fast_exp() * wr);
        }
        Ok(())
    }

    fn col_max_biased(
        &mut self,
        x: ScaledScores<'_, Vec<T>, T>,
        b: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        let (cols, eps) = (x.cols, x.eps);
        let out = &mut out[..cols];
        out.fill(T::neg_infinity());
        for (row, &br) in x.scores[..x.rows * cols].chunks_exact(cols).zip(b) {
            out.iter_mut()
                .zip(row)
                .for_each(|(o, &v)| *o = o.max(v / eps + br));
        }
        Ok(())
    }

    fn col_sum_exp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<T>, T>,
        b: &Vec<T>,
        m: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        let (cols, eps) = (x.cols, x.eps);
        let out = &mut out[..cols];
        let m = &m[..cols];
        out.fill(T::zero());
        for (row, &br) in x.scores[..x.rows * cols].chunks_exact(cols).zip(b) {
            for ((o, &v), &mc) in out.iter_mut().zip(row).zip(m) {
                *o = *o + (v / eps + br - mc).fast_exp();
            }
        }
        Ok(())
    }

    fn row_logsumexp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<T>, T>,
        a: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
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
        Ok(())
    }

    fn exp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<T>, T>,
        b: &Vec<T>,
        a: &Vec<T>,
        out: &mut Vec<T>,
    ) -> Result<(), Infallible> {
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
        Ok(())
    }

    fn neg_log_sum_shifted(
        &mut self,
        m: &Vec<T>,
        s: &Vec<T>,
        ln_k: T,
        v: &mut Vec<T>,
    ) -> Result<(), Infallible> {
        for ((v, &m), &s) in v.iter_mut().zip(m).zip(s) {
            *v = -(m + s.ln()) - ln_k;
        }
        Ok(())
    }

    fn negate_minus(&mut self, x: &mut Vec<T>, c: T) -> Result<(), Infallible> {
        x.iter_mut().for_each(|v| *v = -*v - c);
        Ok(())
    }

    fn sgd_momentum_step(
        &mut self,
        p: &mut Vec<T>,
        g: &Vec<T>,
        buf: &mut Vec<T>,
        step: SgdStep<T>,
    ) -> Result<(), Infallible> {
        for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
            step.update(p, g, b);
        }
        Ok(())
    }
}

/// The maximum of a slice (`-inf` when empty; NaN when any element is NaN, like
/// `torch.max`). Eight independent lanes and a separate NaN flag keep it vectorisable.
fn max_of<T: Real>(x: &[T]) -> T {
    extreme_of(x, T::neg_infinity(), |m, v| if v > m { v } else { m })
}

/// The minimum of a slice (`inf` when empty; NaN when any element is NaN, like `torch.min`).
fn min_of<T: Real>(x: &[T]) -> T {
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
fn sum_of<T: Real>(x: &[T]) -> T {
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
fn dot_of<T: Real>(a: &[T], b: &[T]) -> T {
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
fn sum_squares_of<T: Real>(x: &[T]) -> T {
    dot_of(x, x)
}
