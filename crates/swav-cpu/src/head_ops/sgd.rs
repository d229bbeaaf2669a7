//! [`HostSgdOps`] for [`CpuBackend`]: the update in parallel chunks.

use rayon::prelude::*;
use swav_core::{HostSgdOps, SgdStep};

use super::CHUNK;
use crate::CpuBackend;
use crate::profile::OpScope;

impl HostSgdOps<f32> for CpuBackend {
    fn sgd_momentum_step(&mut self, p: &mut [f32], g: &[f32], buf: &mut [f32], step: SgdStep<f32>) {
        let _op = OpScope::new(&mut self.profile, "sgd_momentum_step", 0.0);
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(buf.par_chunks_mut(CHUNK))
            .for_each(|((p, g), b)| {
                for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                    step.update(p, g, b);
                }
            });
    }
}
