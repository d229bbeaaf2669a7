//! [`HostElementWiseOps`] for [`CpuBackend`]: every operation in parallel chunks.

use rayon::prelude::*;
use swav_core::{HostElementWiseOps, Real};

use super::CHUNK;
use crate::CpuBackend;
use crate::profile::OpScope;

impl HostElementWiseOps<f32> for CpuBackend {
    fn scale(&mut self, x: &mut [f32], s: f32) {
        x.par_chunks_mut(CHUNK)
            .for_each(|c| c.iter_mut().for_each(|v| *v *= s));
    }

    fn div_by_scalar(&mut self, x: &mut [f32], s: &[f32]) {
        let s = s[0];
        x.par_chunks_mut(CHUNK)
            .for_each(|c| c.iter_mut().for_each(|v| *v /= s));
    }

    fn exp_div(&mut self, x: &[f32], eps: f32, shift: Option<&[f32]>, out: &mut [f32]) {
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
    }

    fn axpy(
        &mut self,
        alpha: f32,
        x: &[f32],
        x_offset: usize,
        y: &mut [f32],
        y_offset: usize,
        len: usize,
    ) {
        let _op = OpScope::new(&mut self.profile, "axpy", 0.0);
        y[y_offset..y_offset + len]
            .par_chunks_mut(CHUNK)
            .zip(x[x_offset..x_offset + len].par_chunks(CHUNK))
            .for_each(|(y, x)| y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x));
    }
}
