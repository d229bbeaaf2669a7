//! [`HostBufferOps`] for [`CpuBackend`]: parallel fills and timed copies.

use rayon::prelude::*;
use swav_core::HostBufferOps;

use super::CHUNK;
use crate::CpuBackend;
use crate::profile::OpScope;

impl HostBufferOps<f32> for CpuBackend {
    fn copy(
        &mut self,
        src: &[f32],
        src_offset: usize,
        dst: &mut [f32],
        dst_offset: usize,
        len: usize,
    ) {
        let _op = OpScope::new(&mut self.profile, "copy", 0.0);
        dst[dst_offset..dst_offset + len].copy_from_slice(&src[src_offset..src_offset + len]);
    }

    fn fill(&mut self, buf: &mut [f32], value: f32) {
        let _op = OpScope::new(&mut self.profile, "fill", 0.0);
        buf.par_chunks_mut(CHUNK).for_each(|c| c.fill(value));
    }
}
