//! [`OptimizerOps`]: the LARC + SGD step over every parameter.

use swav_core::{HeadOps, Lars, LarsParam};

/// The optimiser step. Every method has a default built on [`HeadOps`], so a backend
/// without a fused step implements this family with an empty block.
pub trait OptimizerOps: HeadOps<f32> {
    /// One LARC + SGD step of every parameter in `params` (those without a gradient are
    /// skipped). The default runs [`Lars::step_all`], one tensor after the other; a backend
    /// may fuse it, reproducing the same arithmetic.
    fn lars_step(
        &mut self,
        lars: &Lars<f32>,
        params: &mut [LarsParam<'_, Self::Buf>],
        lr: f32,
    ) -> Result<(), Self::Error> {
        lars.step_all(self, params, lr)
    }
}
