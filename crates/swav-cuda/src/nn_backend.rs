//! [`swav_nn::Backend`] for [`CudaBackend`]: the model's operations, forwarded to the
//! backend's kernels, the fused multi-tensor LARC step, and input batches staged through
//! the copy stream.

use swav_core::{Lars, LarsParam};
use swav_nn::{Backend, Conv2dShape, Pool2dShape, StatsOutput};

use crate::{CudaBackend, CudaBuffer, CudaError};

impl Backend for CudaBackend {
    fn alloc_activation(&mut self, len: usize) -> Result<CudaBuffer, CudaError> {
        CudaBackend::alloc_activation(self, len)
    }

    fn conv2d_forward(
        &mut self,
        x: &CudaBuffer,
        weight: &CudaBuffer,
        shape: &Conv2dShape,
        y: &mut CudaBuffer,
        stats: Option<StatsOutput<'_, CudaBuffer>>,
    ) -> Result<(), CudaError> {
        CudaBackend::conv2d_forward(self, x, weight, shape, y, stats)
    }

    fn conv2d_backward_data(
        &mut self,
        dy: &CudaBuffer,
        weight: &CudaBuffer,
        shape: &Conv2dShape,
        dx: &mut CudaBuffer,
        accumulate: bool,
    ) -> Result<(), CudaError> {
        CudaBackend::conv2d_backward_data(self, dy, weight, shape, dx, accumulate)
    }

    fn conv2d_backward_filter(
        &mut self,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        shape: &Conv2dShape,
        dweight: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::conv2d_backward_filter(self, dy, x, shape, dweight)
    }

    fn batch_norm_stats(
        &mut self,
        x: &CudaBuffer,
        rows: usize,
        channels: usize,
        shift: &CudaBuffer,
        stats: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::batch_norm_stats(self, x, rows, channels, shift, stats)
    }

    fn batch_norm_finalize(
        &mut self,
        stats: &CudaBuffer,
        channels: usize,
        eps: f32,
        momentum: f32,
        running_mean: &mut CudaBuffer,
        running_var: &mut CudaBuffer,
        saved: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::batch_norm_finalize(
            self,
            stats,
            channels,
            eps,
            momentum,
            running_mean,
            running_var,
            saved,
        )
    }

    fn batch_norm_frozen(
        &mut self,
        running_mean: &CudaBuffer,
        running_var: &CudaBuffer,
        channels: usize,
        eps: f32,
        saved: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::batch_norm_frozen(self, running_mean, running_var, channels, eps, saved)
    }

    fn batch_norm_apply(
        &mut self,
        x: &CudaBuffer,
        rows: usize,
        channels: usize,
        saved: &CudaBuffer,
        weight: &CudaBuffer,
        bias: &CudaBuffer,
        residual: Option<&CudaBuffer>,
        relu: bool,
        y: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::batch_norm_apply(
            self, x, rows, channels, saved, weight, bias, residual, relu, y,
        )
    }

    fn batch_norm_backward_reduce(
        &mut self,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        relu_output: Option<&CudaBuffer>,
        rows: usize,
        channels: usize,
        saved: &CudaBuffer,
        sums: &mut CudaBuffer,
        dweight: &mut CudaBuffer,
        dbias: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::batch_norm_backward_reduce(
            self,
            dy,
            x,
            relu_output,
            rows,
            channels,
            saved,
            sums,
            dweight,
            dbias,
        )
    }

    fn batch_norm_backward_apply(
        &mut self,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        relu_output: Option<&CudaBuffer>,
        rows: usize,
        channels: usize,
        saved: &CudaBuffer,
        weight: &CudaBuffer,
        sums: Option<&CudaBuffer>,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::batch_norm_backward_apply(
            self,
            dy,
            x,
            relu_output,
            rows,
            channels,
            saved,
            weight,
            sums,
            dx,
        )
    }

    fn relu_backward(
        &mut self,
        dy: &mut CudaBuffer,
        relu_output: &CudaBuffer,
        len: usize,
    ) -> Result<(), CudaError> {
        CudaBackend::relu_backward(self, dy, relu_output, len)
    }

    fn max_pool2d_forward(
        &mut self,
        x: &CudaBuffer,
        shape: &Pool2dShape,
        y: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::max_pool2d_forward(self, x, shape, y)
    }

    fn max_pool2d_backward(
        &mut self,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        shape: &Pool2dShape,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::max_pool2d_backward(self, dy, x, shape, dx)
    }

    fn global_avg_pool_forward(
        &mut self,
        x: &CudaBuffer,
        batch: usize,
        pixels: usize,
        channels: usize,
        y: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::global_avg_pool_forward(self, x, batch, pixels, channels, y)
    }

    fn global_avg_pool_backward(
        &mut self,
        dy: &CudaBuffer,
        batch: usize,
        pixels: usize,
        channels: usize,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::global_avg_pool_backward(self, dy, batch, pixels, channels, dx)
    }

    fn linear_forward(
        &mut self,
        x: &CudaBuffer,
        weight: &CudaBuffer,
        bias: Option<&CudaBuffer>,
        rows: usize,
        in_features: usize,
        out_features: usize,
        y: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::linear_forward(self, x, weight, bias, rows, in_features, out_features, y)
    }

    fn linear_backward_data(
        &mut self,
        dy: &CudaBuffer,
        weight: &CudaBuffer,
        rows: usize,
        in_features: usize,
        out_features: usize,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::linear_backward_data(self, dy, weight, rows, in_features, out_features, dx)
    }

    fn linear_backward_weight(
        &mut self,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        rows: usize,
        in_features: usize,
        out_features: usize,
        dweight: &mut CudaBuffer,
        dbias: Option<&mut CudaBuffer>,
    ) -> Result<(), CudaError> {
        CudaBackend::linear_backward_weight(
            self,
            dy,
            x,
            rows,
            in_features,
            out_features,
            dweight,
            dbias,
        )
    }

    fn l2_normalize_rows_forward(
        &mut self,
        x: &CudaBuffer,
        rows: usize,
        cols: usize,
        eps: f32,
        z: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::l2_normalize_rows_forward(self, x, rows, cols, eps, z)
    }

    fn l2_normalize_rows_backward(
        &mut self,
        dz: &CudaBuffer,
        x: &CudaBuffer,
        z: &CudaBuffer,
        rows: usize,
        cols: usize,
        eps: f32,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        CudaBackend::l2_normalize_rows_backward(self, dz, x, z, rows, cols, eps, dx)
    }

    fn stage_inputs(
        &mut self,
        groups: &[&[f32]],
        inputs: &mut [CudaBuffer],
    ) -> Result<(), CudaError> {
        CudaBackend::stage_inputs(self, groups, inputs)
    }

    fn await_staged_inputs(&mut self) -> Result<(), CudaError> {
        CudaBackend::await_staged_inputs(self)
    }

    fn lars_step(
        &mut self,
        lars: &Lars<f32>,
        params: &mut [LarsParam<'_, CudaBuffer>],
        lr: f32,
    ) -> Result<(), CudaError> {
        CudaBackend::lars_step(self, lars, params, lr)
    }
}
