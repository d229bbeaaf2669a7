//! [`ActivationOps`] on the CPU: activations are plain host vectors, so staging an input
//! batch is the default synchronous copy.

use core::convert::Infallible;

use swav_nn::ActivationOps;

use crate::CpuBackend;

impl ActivationOps for CpuBackend {
    fn alloc_activation(&mut self, len: usize) -> Result<Vec<f32>, Infallible> {
        Ok(vec![0.0; len])
    }
}
