//! [`HostReduceOps`] for [`CpuBackend`]: the long reductions that return to the host, in
//! fixed parallel chunks.

use rayon::prelude::*;
use swav_core::HostReduceOps;

use super::CHUNK;
use crate::CpuBackend;

/// The sum of squares of one chunk, in `f64`, in element order.
pub(crate) fn chunk_sum_squares(chunk: &[f32]) -> f64 {
    chunk.iter().map(|&v| v as f64 * v as f64).sum::<f64>()
}

impl HostReduceOps<f32> for CpuBackend {
    fn sum_squares(&mut self, x: &[f32]) -> f32 {
        // Fixed chunks summed in f64, combined in chunk order.
        let parts: Vec<f64> = x.par_chunks(CHUNK).map(chunk_sum_squares).collect();
        parts.iter().sum::<f64>() as f32
    }

    fn count_non_finite(&mut self, x: &[f32]) -> usize {
        x.par_chunks(CHUNK)
            .map(|c| c.iter().filter(|v| !v.is_finite()).count())
            .sum()
    }
}
