//! [`SgdOps`] on the GPU: the update of `lars.cu`, which also refreshes the parameter's
//! bf16 copy when it has one.

use swav_core::{SgdOps, SgdStep};

use super::launch::{Arg::*, Grid, HeadKernel, expect_f32};
use crate::profile::OpCategory;
use crate::{CudaBackend, CudaBuffer, CudaError};

impl SgdOps<f32> for CudaBackend {
    fn sgd_momentum_step(
        &mut self,
        p: &mut CudaBuffer,
        g: &CudaBuffer,
        buf: &mut CudaBuffer,
        step: SgdStep<f32>,
    ) -> Result<(), CudaError> {
        let n = p.len().min(g.len()).min(buf.len());
        expect_f32(p, "sgd_momentum_step");
        let (p_ptr, copy) = p.ptr_mut_with_copy();
        let args = &mut [
            Ptr(p_ptr),
            In(g, n),
            Out(buf, n),
            Ptr(copy.unwrap_or(0)),
            Size(n),
            F32(step.scaling.grad_scale),
            F32(step.scaling.weight_decay),
            F32(step.lr),
            F32(step.momentum),
            I32(i32::from(step.first)),
        ];
        let kernel = HeadKernel::op("sgd_momentum_step").category(OpCategory::Optimizer);
        self.head_kernel(kernel, Grid::Elements(n), args)
    }
}
