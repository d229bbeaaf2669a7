//! [`HostMatrixOps`] for [`CpuBackend`]: sgemm for the score product, and the divisions,
//! log-softmax and weighted exponentials over blocks of rows in parallel.

use rayon::prelude::*;
use swav_core::{HostMatrixOps, Real};

use super::rows_per_task;
use crate::CpuBackend;
use crate::gemm::{self, par_gemm};
use crate::profile::OpScope;

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

impl HostMatrixOps<f32> for CpuBackend {
    fn div_rows(&mut self, m: &mut [f32], rows: usize, cols: usize, d: &[f32], k: f32) {
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
    }

    fn div_cols(&mut self, m: &mut [f32], rows: usize, cols: usize, d: &[f32], k: f32) {
        let d = &d[..cols];
        m[..rows * cols]
            .par_chunks_mut(rows_per_task(cols) * cols)
            .for_each(|block| {
                for row in block.chunks_exact_mut(cols) {
                    row.iter_mut().zip(d).for_each(|(v, &dc)| *v = *v / dc / k);
                }
            });
    }

    fn matmul_nt(&mut self, a: &[f32], b: &[f32], m: usize, n: usize, k: usize, out: &mut [f32]) {
        let _op = OpScope::new(&mut self.profile, "matmul_nt", 2.0 * (m * n * k) as f64);
        par_gemm(
            1.0,
            &gemm::rows(a, m, k),
            &gemm::view(b, k, n, 1, k),
            0.0,
            gemm::rows_mut(out, m, n),
        );
    }

    fn log_softmax_rows(&mut self, x: &[f32], rows: usize, cols: usize, tau: f32, out: &mut [f32]) {
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
    }

    fn add_exp_weighted_rows(
        &mut self,
        logp: &[f32],
        rows: usize,
        cols: usize,
        w: &[f32],
        out: &mut [f32],
    ) {
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
    }
}
