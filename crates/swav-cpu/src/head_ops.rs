//! [`HeadOps`] for [`CpuBackend`]: swav-core's reference [`SliceOps`] for the small
//! operations, sgemm for the score product, and row- or element-parallel versions of the
//! operations that touch every score (with the reference's per-element arithmetic, so their
//! results are bit-identical to it).

use core::convert::Infallible;

use rayon::prelude::*;
use swav_core::{BufAt, HeadOps, Real, ScaledScores, SgdStep, SliceOps};

use crate::CpuBackend;
use crate::gemm::{self, par_gemm};
use crate::profile::OpScope;

/// Elements per task of the element-wise operations.
const CHUNK: usize = 1 << 14;

/// Rows per task of the row-wise operations: at least one, about [`CHUNK`] elements.
fn rows_per_task(cols: usize) -> usize {
    (CHUNK / cols.max(1)).max(1)
}

/// The maximum of a row, NaN-propagating (as the reference and `torch.max`).
fn max_of(x: &[f32]) -> f32 {
    let mut m = f32::NEG_INFINITY;
    for &v in x {
        if v.is_nan() {
            return v;
        }
        m = m.max(v);
    }
    m
}

impl HeadOps<f32> for CpuBackend {
    type Buf = Vec<f32>;
    type Error = Infallible;

    fn zeros(&mut self, len: usize) -> Result<Vec<f32>, Infallible> {
        Ok(vec![0.0; len])
    }

    fn buf_len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }

    fn upload(&mut self, src: &[f32], dst: &mut Vec<f32>, offset: usize) -> Result<(), Infallible> {
        SliceOps.upload(src, dst, offset)
    }

    fn download(
        &mut self,
        src: &Vec<f32>,
        offset: usize,
        dst: &mut [f32],
    ) -> Result<(), Infallible> {
        SliceOps.download(src, offset, dst)
    }

    fn copy(
        &mut self,
        src: &Vec<f32>,
        src_offset: usize,
        dst: &mut Vec<f32>,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "copy", 0.0);
        SliceOps.copy(src, src_offset, dst, dst_offset, len)
    }

    fn copy_within(
        &mut self,
        buf: &mut Vec<f32>,
        src_offset: usize,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Infallible> {
        SliceOps.copy_within(buf, src_offset, dst_offset, len)
    }

    fn fill(&mut self, buf: &mut Vec<f32>, value: f32) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "fill", 0.0);
        buf.par_chunks_mut(CHUNK).for_each(|c| c.fill(value));
        Ok(())
    }

    fn max_into(&mut self, x: &Vec<f32>, out: &mut Vec<f32>) -> Result<(), Infallible> {
        SliceOps.max_into(x, out)
    }

    fn min_into(&mut self, x: &Vec<f32>, out: &mut Vec<f32>) -> Result<(), Infallible> {
        SliceOps.min_into(x, out)
    }

    fn sum_into(&mut self, x: &Vec<f32>, out: &mut Vec<f32>) -> Result<(), Infallible> {
        SliceOps.sum_into(x, out)
    }

    fn sum_squares(&mut self, x: &Vec<f32>) -> Result<f32, Infallible> {
        // Fixed chunks summed in f64, combined in chunk order.
        let parts: Vec<f64> = x
            .par_chunks(CHUNK)
            .map(|c| c.iter().map(|&v| v as f64 * v as f64).sum::<f64>())
            .collect();
        Ok(parts.iter().sum::<f64>() as f32)
    }

    fn count_non_finite(&mut self, x: &Vec<f32>) -> Result<usize, Infallible> {
        Ok(x.par_chunks(CHUNK)
            .map(|c| c.iter().filter(|v| !v.is_finite()).count())
            .sum())
    }

    fn scale(&mut self, x: &mut Vec<f32>, s: f32) -> Result<(), Infallible> {
        x.par_chunks_mut(CHUNK)
            .for_each(|c| c.iter_mut().for_each(|v| *v *= s));
        Ok(())
    }

    fn div_by_scalar(&mut self, x: &mut Vec<f32>, s: &Vec<f32>) -> Result<(), Infallible> {
        let s = s[0];
        x.par_chunks_mut(CHUNK)
            .for_each(|c| c.iter_mut().for_each(|v| *v /= s));
        Ok(())
    }

    fn exp_div(
        &mut self,
        x: &Vec<f32>,
        eps: f32,
        shift: Option<&Vec<f32>>,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let m = shift.map(|s| s[0] / eps);
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| match m {
                None => o
                    .iter_mut()
                    .zip(x)
                    .for_each(|(o, &v)| *o = (v / eps).fast_exp()),
                Some(m) => o
                    .iter_mut()
                    .zip(x)
                    .for_each(|(o, &v)| *o = (v / eps - m).fast_exp()),
            });
        Ok(())
    }

    fn axpy(
        &mut self,
        alpha: f32,
        x: &Vec<f32>,
        x_offset: usize,
        y: &mut Vec<f32>,
        y_offset: usize,
        len: usize,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "axpy", 0.0);
        y[y_offset..y_offset + len]
            .par_chunks_mut(CHUNK)
            .zip(x[x_offset..x_offset + len].par_chunks(CHUNK))
            .for_each(|(y, x)| y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x));
        Ok(())
    }

    fn dot_accumulate(
        &mut self,
        a: BufAt<'_, Vec<f32>>,
        b: BufAt<'_, Vec<f32>>,
        len: usize,
        alpha: f32,
        acc: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        SliceOps.dot_accumulate(a, b, len, alpha, acc)
    }

    fn row_sums(
        &mut self,
        m: &Vec<f32>,
        rows: usize,
        cols: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        SliceOps.row_sums(m, rows, cols, out)
    }

    fn col_sums(
        &mut self,
        m: &Vec<f32>,
        rows: usize,
        cols: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        SliceOps.col_sums(m, rows, cols, out)
    }

    fn div_rows(
        &mut self,
        m: &mut Vec<f32>,
        rows: usize,
        cols: usize,
        d: &Vec<f32>,
        k: f32,
    ) -> Result<(), Infallible> {
        let per = rows_per_task(cols);
        m[..rows * cols]
            .par_chunks_mut(per * cols)
            .enumerate()
            .for_each(|(i, block)| {
                for (r, row) in block.chunks_exact_mut(cols).enumerate() {
                    let dr = d[i * per + r];
                    row.iter_mut().for_each(|v| *v = *v / dr / k);
                }
            });
        Ok(())
    }

    fn div_cols(
        &mut self,
        m: &mut Vec<f32>,
        rows: usize,
        cols: usize,
        d: &Vec<f32>,
        k: f32,
    ) -> Result<(), Infallible> {
        let d = &d[..cols];
        m[..rows * cols]
            .par_chunks_mut(rows_per_task(cols) * cols)
            .for_each(|block| {
                for row in block.chunks_exact_mut(cols) {
                    row.iter_mut().zip(d).for_each(|(v, &dc)| *v = *v / dc / k);
                }
            });
        Ok(())
    }

    fn normalize_rows(
        &mut self,
        m: &mut Vec<f32>,
        rows: usize,
        cols: usize,
        eps: f32,
    ) -> Result<(), Infallible> {
        SliceOps.normalize_rows(m, rows, cols, eps)
    }

    fn matmul_nt(
        &mut self,
        a: &Vec<f32>,
        b: &Vec<f32>,
        m: usize,
        n: usize,
        k: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "matmul_nt", 2.0 * (m * n * k) as f64);
        par_gemm(
            1.0,
            &gemm::rows(a, m, k),
            &gemm::view(b, k, n, 1, k),
            0.0,
            gemm::rows_mut(out, m, n),
        );
        Ok(())
    }

    fn log_softmax_rows(
        &mut self,
        x: &Vec<f32>,
        rows: usize,
        cols: usize,
        tau: f32,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let per = rows_per_task(cols) * cols;
        out[..rows * cols]
            .par_chunks_mut(per)
            .zip(x[..rows * cols].par_chunks(per))
            .for_each(|(o, x)| {
                for (o, row) in o.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
                    o.iter_mut().zip(row).for_each(|(o, &v)| *o = v / tau);
                    let m = max_of(o);
                    let mut s = 0.0f32;
                    for &v in o.iter() {
                        s += (v - m).fast_exp();
                    }
                    let lse = m + s.ln();
                    o.iter_mut().for_each(|v| *v -= lse);
                }
            });
        Ok(())
    }

    fn add_exp_weighted_rows(
        &mut self,
        logp: &Vec<f32>,
        rows: usize,
        cols: usize,
        w: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let per = rows_per_task(cols);
        out[..rows * cols]
            .par_chunks_mut(per * cols)
            .zip(logp[..rows * cols].par_chunks(per * cols))
            .enumerate()
            .for_each(|(i, (o, l))| {
                for (r, (o, l)) in o
                    .chunks_exact_mut(cols)
                    .zip(l.chunks_exact(cols))
                    .enumerate()
                {
                    let wr = w[i * per + r];
                    o.iter_mut()
                        .zip(l)
                        .for_each(|(o, &l)| *o += l.fast_exp() * wr);
                }
            });
        Ok(())
    }

    fn col_max_biased(
        &mut self,
        x: ScaledScores<'_, Vec<f32>, f32>,
        b: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        SliceOps.col_max_biased(x, b, out)
    }

    fn col_sum_exp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<f32>, f32>,
        b: &Vec<f32>,
        m: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        SliceOps.col_sum_exp_biased(x, b, m, out)
    }

    fn row_logsumexp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<f32>, f32>,
        a: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        SliceOps.row_logsumexp_biased(x, a, out)
    }

    fn exp_biased(
        &mut self,
        x: ScaledScores<'_, Vec<f32>, f32>,
        b: &Vec<f32>,
        a: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let (rows, cols, eps) = (x.rows, x.cols, x.eps);
        let a = &a[..cols];
        let per = rows_per_task(cols);
        out[..rows * cols]
            .par_chunks_mut(per * cols)
            .zip(x.scores[..rows * cols].par_chunks(per * cols))
            .enumerate()
            .for_each(|(i, (o, x))| {
                for (r, (o, row)) in o
                    .chunks_exact_mut(cols)
                    .zip(x.chunks_exact(cols))
                    .enumerate()
                {
                    let br = b[i * per + r];
                    for ((o, &v), &ac) in o.iter_mut().zip(row).zip(a) {
                        *o = (v / eps + br + ac).fast_exp();
                    }
                }
            });
        Ok(())
    }

    fn neg_log_sum_shifted(
        &mut self,
        m: &Vec<f32>,
        s: &Vec<f32>,
        ln_k: f32,
        v: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        SliceOps.neg_log_sum_shifted(m, s, ln_k, v)
    }

    fn negate_minus(&mut self, x: &mut Vec<f32>, c: f32) -> Result<(), Infallible> {
        SliceOps.negate_minus(x, c)
    }

    fn sgd_momentum_step(
        &mut self,
        p: &mut Vec<f32>,
        g: &Vec<f32>,
        buf: &mut Vec<f32>,
        step: SgdStep<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "sgd_momentum_step", 0.0);
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(buf.par_chunks_mut(CHUNK))
            .for_each(|((p, g), b)| {
                for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                    step.update(p, g, b);
                }
            });
        Ok(())
    }
}
