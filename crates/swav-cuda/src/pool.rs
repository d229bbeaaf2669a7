//! Max pooling and global average pooling over NHWC activations (`pool.cu`).

use std::ffi::c_void;
use swav_nn::{GlobalPoolShape, PoolOps};

use crate::kernels::{KernelArg, len_arg};
use crate::profile::OpCategory;
use crate::{CudaBackend, CudaBuffer, CudaError, Pool2dShape};

/// The geometry argument of the pooling kernels (`PoolGeometry` in `pool.cu`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct PoolGeometry {
    batch: u64,
    in_h: u64,
    in_w: u64,
    channels: u64,
    out_h: u64,
    out_w: u64,
    kernel: i32,
    stride: i32,
    padding: i32,
}

impl KernelArg for PoolGeometry {
    fn param(&self) -> *mut c_void {
        (self as *const PoolGeometry).cast_mut().cast()
    }
}

// The kernels read the struct's bytes: keep it exactly the size of the CUDA struct.
const _: () = assert!(std::mem::size_of::<PoolGeometry>() == 64);

impl PoolGeometry {
    fn of(shape: &Pool2dShape) -> Self {
        let int = |v: usize| i32::try_from(v).expect("pooling window exceeds i32");
        Self {
            batch: shape.batch as u64,
            in_h: shape.in_height as u64,
            in_w: shape.in_width as u64,
            channels: shape.channels as u64,
            out_h: shape.out_height() as u64,
            out_w: shape.out_width() as u64,
            kernel: int(shape.kernel),
            stride: int(shape.stride),
            padding: int(shape.padding),
        }
    }
}

impl PoolOps for CudaBackend {
    /// Max pooling; ties go to the first maximum in window order, NaN propagates.
    fn max_pool2d_forward(
        &mut self,
        x: &CudaBuffer,
        shape: &Pool2dShape,
        y: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("max_pool2d_forward", OpCategory::NormPool);
        assert!(
            x.len() >= shape.input_len() && y.len() >= shape.output_len(),
            "max pool out of bounds"
        );
        let name = format!(
            "max_pool_forward_{}_{}",
            x.dtype().suffix(),
            y.dtype().suffix()
        );
        let geometry = PoolGeometry::of(shape);
        let y_ptr = y.ptr_mut();
        self.launch_1d(&name, shape.output_len(), &[&x.ptr(), &geometry, &y_ptr])
    }

    /// Max-pooling backward: each `dy` goes to its window's first maximum of `x`; `dx` is
    /// overwritten. Deterministic: the window maxima are located first (one byte each), then
    /// every input pixel gathers the gradients of the windows it wins, in window order.
    fn max_pool2d_backward(
        &mut self,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        shape: &Pool2dShape,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("max_pool2d_backward", OpCategory::NormPool);
        assert!(
            x.len() >= shape.input_len()
                && dx.len() >= shape.input_len()
                && dy.len() >= shape.output_len(),
            "max pool backward out of bounds"
        );
        assert!(
            shape.kernel * shape.kernel <= 255,
            "max pool windows above 255 pixels"
        );
        let geometry = PoolGeometry::of(shape);
        let stream = self.device.stream.clone();
        // SAFETY: every element is written by max_pool_argmax before the gather reads it.
        let argmax = unsafe { stream.alloc::<u8>(shape.output_len().max(1)) }?;
        let argmax_ptr = cudarc::driver::DevicePtr::device_ptr(&argmax, &stream).0;
        self.launch_1d(
            &format!("max_pool_argmax_{}", x.dtype().suffix()),
            shape.output_len(),
            &[&x.ptr(), &geometry, &argmax_ptr],
        )?;
        let dx_ptr = dx.ptr_mut();
        self.launch_1d(
            &format!(
                "max_pool_backward_{}_{}",
                dy.dtype().suffix(),
                dx.dtype().suffix()
            ),
            shape.input_len(),
            &[&dy.ptr(), &argmax_ptr, &geometry, &dx_ptr],
        )
    }

    /// Global average pooling: `y[n, c] = Σ_p x[n, p, c] / pixels`.
    fn global_avg_pool_forward(
        &mut self,
        x: &CudaBuffer,
        shape: &GlobalPoolShape,
        y: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("global_avg_pool_forward", OpCategory::NormPool);
        assert!(
            x.len() >= shape.input_len() && y.len() >= shape.output_len(),
            "average pool out of bounds"
        );
        let name = format!(
            "global_avg_pool_forward_{}_{}",
            x.dtype().suffix(),
            y.dtype().suffix()
        );
        let y_ptr = y.ptr_mut();
        self.launch_1d(
            &name,
            shape.output_len(),
            &[
                &x.ptr(),
                &len_arg(shape.batch),
                &len_arg(shape.pixels),
                &len_arg(shape.channels),
                &y_ptr,
            ],
        )
    }

    /// Global average pooling backward: `dx[n, p, c] = dy[n, c] / pixels`.
    fn global_avg_pool_backward(
        &mut self,
        dy: &CudaBuffer,
        shape: &GlobalPoolShape,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("global_avg_pool_backward", OpCategory::NormPool);
        assert!(
            dy.len() >= shape.output_len() && dx.len() >= shape.input_len(),
            "average pool backward out of bounds"
        );
        let name = format!(
            "global_avg_pool_backward_{}_{}",
            dy.dtype().suffix(),
            dx.dtype().suffix()
        );
        let dx_ptr = dx.ptr_mut();
        self.launch_1d(
            &name,
            shape.input_len(),
            &[
                &dy.ptr(),
                &len_arg(shape.batch),
                &len_arg(shape.pixels),
                &len_arg(shape.channels),
                &dx_ptr,
            ],
        )
    }
}
