//! [`HostLogDomainOps`] for [`CpuBackend`]: the full-matrix exponential over blocks of rows
//! in parallel; the column and row reductions are the reference's.

use rayon::prelude::*;
use swav_core::{HostLogDomainOps, Real, ScaledScores};

use super::rows_per_task;
use crate::CpuBackend;

impl HostLogDomainOps<f32> for CpuBackend {
    fn exp_biased(
        &mut self,
        x: ScaledScores<'_, [f32], f32>,
        b: &[f32],
        a: &[f32],
        out: &mut [f32],
    ) {
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
    }
}
