//! [`ElementWiseOps`] on the GPU: grid-stride kernels (`elementwise.cu` for those of either
//! element type, `head.cu` for the f32 ones).

use swav_core::ElementWiseOps;

use super::launch::{Arg::*, Grid, HeadKernel};
use crate::{CudaBackend, CudaBuffer, CudaError};

impl ElementWiseOps<f32> for CudaBackend {
    fn scale(&mut self, x: &mut CudaBuffer, s: f32) -> Result<(), CudaError> {
        let n = x.len();
        let args = &mut [AnyOut(x, n), Size(n), F32(s)];
        self.head_kernel(HeadKernel::op("scale"), Grid::Elements(n), args)
    }

    fn div_by_scalar(&mut self, x: &mut CudaBuffer, s: &CudaBuffer) -> Result<(), CudaError> {
        let n = x.len();
        let args = &mut [Out(x, n), Size(n), In(s, 1)];
        self.head_kernel(HeadKernel::op("div_by_scalar"), Grid::Elements(n), args)
    }

    fn exp_div(
        &mut self,
        x: &CudaBuffer,
        eps: f32,
        shift: Option<&CudaBuffer>,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let n = x.len().min(out.len());
        let args = &mut [In(x, n), Size(n), F32(eps), Maybe(shift), Out(out, n)];
        self.head_kernel(HeadKernel::op("exp_div"), Grid::Elements(n), args)
    }

    fn axpy(
        &mut self,
        alpha: f32,
        x: &CudaBuffer,
        x_offset: usize,
        y: &mut CudaBuffer,
        y_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let args = &mut [
            F32(alpha),
            AnyIn(x, x_offset + len),
            Size(x_offset),
            AnyOut(y, y_offset + len),
            Size(y_offset),
            Size(len),
        ];
        self.head_kernel(HeadKernel::op("axpy"), Grid::Elements(len), args)
    }
}
