//! [`ReduceOps`] on the GPU: deterministic whole-buffer reductions (`reduction.cu`), on
//! buffers of either element type, into f32 scalars.

use cudarc::driver::DevicePtr;
use swav_core::{BufAt, BufferOps, ReduceOps};

use super::launch::{Arg, Arg::*, Grid, HeadKernel};
use crate::profile::OpCategory;
use crate::{CudaBackend, CudaBuffer, CudaError, DType};

/// The parameters of a whole-buffer reduction of `x` into the f32 scalar `out[0]`.
fn whole_buffer<'a>(x: &'a CudaBuffer, out: &'a mut CudaBuffer) -> [Arg<'a>; 4] {
    let n = x.len();
    [AnyIn(x, n), Size(n), Scratch, Out(out, 1)]
}

impl ReduceOps<f32> for CudaBackend {
    fn max_into(&mut self, x: &CudaBuffer, out: &mut CudaBuffer) -> Result<(), CudaError> {
        let kernel = HeadKernel::op("max_into").kernel("reduce_max");
        self.head_kernel(kernel, Grid::Reduce(x.len()), &mut whole_buffer(x, out))
    }

    fn min_into(&mut self, x: &CudaBuffer, out: &mut CudaBuffer) -> Result<(), CudaError> {
        let kernel = HeadKernel::op("min_into").kernel("reduce_min");
        self.head_kernel(kernel, Grid::Reduce(x.len()), &mut whole_buffer(x, out))
    }

    fn sum_into(&mut self, x: &CudaBuffer, out: &mut CudaBuffer) -> Result<(), CudaError> {
        let kernel = HeadKernel::op("sum_into").kernel("reduce_sum");
        self.head_kernel(kernel, Grid::Reduce(x.len()), &mut whole_buffer(x, out))
    }

    fn sum_squares(&mut self, x: &CudaBuffer) -> Result<f32, CudaError> {
        let _op = self.profile_op("sum_squares", OpCategory::Head);
        let mut scalar = self.alloc_uninit(1, DType::F32)?;
        let kernel = HeadKernel::op("sum_squares").kernel("reduce_sum_squares");
        self.launch_checked(
            kernel,
            Grid::Reduce(x.len()),
            &mut whole_buffer(x, &mut scalar),
        )?;
        let mut host = [0.0f32];
        self.download(&scalar, 0, &mut host)?;
        Ok(host[0])
    }

    fn count_non_finite(&mut self, x: &CudaBuffer) -> Result<usize, CudaError> {
        let _op = self.profile_op("count_non_finite", OpCategory::Head);
        let stream = self.device.stream.clone();
        let count = stream.alloc_zeros::<u64>(1)?;
        let n = x.len();
        let args = &mut [
            AnyIn(x, n),
            Size(n),
            Scratch,
            Ptr(count.device_ptr(&stream).0),
        ];
        self.launch_checked(HeadKernel::op("count_non_finite"), Grid::Reduce(n), args)?;
        let host = stream.clone_dtoh(&count)?;
        stream.synchronize()?;
        Ok(host[0] as usize)
    }

    fn dot_accumulate(
        &mut self,
        a: BufAt<'_, CudaBuffer>,
        b: BufAt<'_, CudaBuffer>,
        len: usize,
        alpha: f32,
        acc: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let args = &mut [
            AnyIn(a.buf, a.offset + len),
            Size(a.offset),
            AnyIn(b.buf, b.offset + len),
            Size(b.offset),
            Size(len),
            F32(alpha),
            Scratch,
            Out(acc, 1),
        ];
        self.head_kernel(HeadKernel::op("dot_accumulate"), Grid::Reduce(len), args)
    }
}
