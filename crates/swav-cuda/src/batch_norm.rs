//! Batch normalisation over NHWC activations (`batch_norm.cu`), in the swav-nn `Backend`
//! split: local statistics → (caller's all-reduce) → finalise → fused apply; backward reduce
//! → (all-reduce) → apply. Synchronised batch norm is the same calls with an NCCL collective
//! between them.

use crate::kernels::len_arg;
use crate::profile::OpCategory;
use crate::{CudaBackend, CudaBuffer, CudaError, DType};
use swav_nn::{
    Affine, AffineGrads, BatchNormBackward, BatchNormOps, BatchNormSettings, BatchNormShape,
    Epilogue, RunningStats,
};
use swav_nn::{batch_norm_saved_len, batch_norm_stats_len};

/// Threads per block of the per-channel kernels.
const CHANNEL_THREADS: u32 = 256;

fn check_params(buffers: &[(&CudaBuffer, usize, &str)]) {
    for (buf, len, what) in buffers {
        assert_eq!(buf.dtype(), DType::F32, "batch norm: {what} must be f32");
        assert!(
            buf.len() >= *len,
            "batch norm: {what} holds {} < {len} values",
            buf.len()
        );
    }
}

impl BatchNormOps for CudaBackend {
    /// The local per-channel statistics of `x` (`rows × channels`), shifted by `shift` (`C`
    /// values, the running mean, which every rank holds identically):
    /// `stats = [Σ(x-k), Σ(x-k)², rows]`, summed in f64. The shift keeps the variance free of
    /// cancellation once the running mean tracks the batch mean. Sum the statistics over
    /// ranks with the collective before [`Self::batch_norm_finalize`].
    fn batch_norm_stats(
        &mut self,
        x: &CudaBuffer,
        &BatchNormShape { rows, channels }: &BatchNormShape,
        shift: &CudaBuffer,
        stats: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("batch_norm_stats", OpCategory::NormPool);
        check_params(&[
            (shift, channels, "shift"),
            (stats, batch_norm_stats_len(channels), "stats"),
        ]);
        assert!(x.len() >= rows * channels, "batch norm: input too short");
        let (plan, partials, counters) = self.column_scratch_f64(rows, channels, 2)?;
        let (grid, block) = plan.grid();
        let name = format!("bn_stats_{}", x.dtype().suffix());
        let stats_ptr = stats.ptr_mut();
        self.launch(
            &name,
            grid,
            block,
            &[
                &x.ptr(),
                &len_arg(rows),
                &len_arg(channels),
                &shift.ptr(),
                &stats_ptr,
                &partials,
                &counters,
                &plan.chunks,
                &plan.rows_per_chunk,
            ],
        )
    }

    /// Turns globally summed `stats` (shifted by `running_mean`) into
    /// `saved = [mean, 1/√(var + eps), count]` (biased variance, clamped at 0), then updates
    /// the running statistics with the unbiased variance: `r = (1 - momentum)·r + momentum·v`.
    fn batch_norm_finalize(
        &mut self,
        stats: &CudaBuffer,
        channels: usize,
        BatchNormSettings { eps, momentum }: BatchNormSettings,
        running: RunningStats<'_, CudaBuffer>,
        saved: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let (running_mean, running_var) = (running.mean, running.var);
        let _op = self.profile_op("batch_norm_finalize", OpCategory::NormPool);
        check_params(&[
            (stats, batch_norm_stats_len(channels), "stats"),
            (running_mean, channels, "running mean"),
            (running_var, channels, "running variance"),
            (saved, batch_norm_saved_len(channels), "saved"),
        ]);
        let (mean_ptr, var_ptr, saved_ptr) = (
            running_mean.ptr_mut(),
            running_var.ptr_mut(),
            saved.ptr_mut(),
        );
        self.launch(
            "bn_finalize",
            (channel_blocks(channels), 1, 1),
            (CHANNEL_THREADS, 1, 1),
            &[
                &stats.ptr(),
                &len_arg(channels),
                &eps,
                &momentum,
                &mean_ptr,
                &var_ptr,
                &saved_ptr,
            ],
        )
    }

    /// Evaluation mode: `saved = [running mean, 1/√(running var + eps), 0]`.
    fn batch_norm_frozen(
        &mut self,
        running_mean: &CudaBuffer,
        running_var: &CudaBuffer,
        channels: usize,
        eps: f32,
        saved: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("batch_norm_frozen", OpCategory::NormPool);
        check_params(&[
            (running_mean, channels, "running mean"),
            (running_var, channels, "running variance"),
            (saved, batch_norm_saved_len(channels), "saved"),
        ]);
        let saved_ptr = saved.ptr_mut();
        self.launch(
            "bn_frozen",
            (channel_blocks(channels), 1, 1),
            (CHANNEL_THREADS, 1, 1),
            &[
                &running_mean.ptr(),
                &running_var.ptr(),
                &len_arg(channels),
                &eps,
                &saved_ptr,
            ],
        )
    }

    /// `y = (x - mean)·invstd·weight + bias`, then `+ residual`, then ReLU, in one pass.
    fn batch_norm_apply(
        &mut self,
        x: &CudaBuffer,
        &BatchNormShape { rows, channels }: &BatchNormShape,
        saved: &CudaBuffer,
        Affine { weight, bias }: Affine<'_, CudaBuffer>,
        Epilogue { residual, relu }: Epilogue<'_, CudaBuffer>,
        y: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("batch_norm_apply", OpCategory::NormPool);
        check_params(&[
            (saved, batch_norm_saved_len(channels), "saved"),
            (weight, channels, "weight"),
            (bias, channels, "bias"),
        ]);
        let n = rows * channels;
        assert!(
            x.len() >= n && y.len() >= n,
            "batch norm: activation too short"
        );
        if let Some(r) = residual {
            assert!(r.len() >= n, "batch norm: residual too short");
        }
        let residual_dtype = residual.map_or(x.dtype(), CudaBuffer::dtype);
        let residual_ptr: u64 = residual.map_or(0, CudaBuffer::ptr);
        let uniform = x.dtype() == y.dtype() && residual_dtype == x.dtype();
        let vectorised = uniform && channels.is_multiple_of(8);
        let name = if vectorised {
            format!("bn_apply_v8_{}", x.dtype().suffix())
        } else {
            format!(
                "bn_apply_{}_{}_{}",
                x.dtype().suffix(),
                residual_dtype.suffix(),
                y.dtype().suffix()
            )
        };
        let y_ptr = y.ptr_mut();
        self.launch_1d(
            &name,
            if vectorised { n / 8 } else { n },
            &[
                &x.ptr(),
                &len_arg(rows),
                &len_arg(channels),
                &saved.ptr(),
                &weight.ptr(),
                &bias.ptr(),
                &residual_ptr,
                &i32::from(relu),
                &y_ptr,
            ],
        )
    }

    /// The local reductions of the backward pass: with `g = dy` masked by `relu_output > 0`
    /// (when the forward applied a ReLU) and `x̂ = (x - mean)·invstd`,
    /// `sums = [Σg, Σg·x̂, 0]`, `dbias += Σg`, `dweight += Σg·x̂` (local sums).
    fn batch_norm_backward_reduce(
        &mut self,
        inputs: &BatchNormBackward<'_, CudaBuffer>,
        &BatchNormShape { rows, channels }: &BatchNormShape,
        sums: &mut CudaBuffer,
        grads: AffineGrads<'_, CudaBuffer>,
    ) -> Result<(), CudaError> {
        let BatchNormBackward {
            dy,
            x,
            relu_output,
            saved,
        } = *inputs;
        let (dweight, dbias) = (grads.weight, grads.bias);
        let _op = self.profile_op("batch_norm_backward_reduce", OpCategory::NormPool);
        check_params(&[
            (saved, batch_norm_saved_len(channels), "saved"),
            (sums, batch_norm_stats_len(channels), "sums"),
            (dweight, channels, "weight gradient"),
            (dbias, channels, "bias gradient"),
        ]);
        let n = rows * channels;
        assert!(
            dy.len() >= n && x.len() >= n,
            "batch norm: activation too short"
        );
        let mask_dtype = relu_output.map_or(x.dtype(), CudaBuffer::dtype);
        let mask_ptr: u64 = relu_output.map_or(0, CudaBuffer::ptr);
        let (plan, partials, counters) = self.column_scratch_f64(rows, channels, 2)?;
        let (grid, block) = plan.grid();
        let name = format!(
            "bn_backward_reduce_{}_{}_{}",
            dy.dtype().suffix(),
            x.dtype().suffix(),
            mask_dtype.suffix()
        );
        let (sums_ptr, dw_ptr, db_ptr) = (sums.ptr_mut(), dweight.ptr_mut(), dbias.ptr_mut());
        self.launch(
            &name,
            grid,
            block,
            &[
                &dy.ptr(),
                &x.ptr(),
                &mask_ptr,
                &len_arg(rows),
                &len_arg(channels),
                &saved.ptr(),
                &sums_ptr,
                &dw_ptr,
                &db_ptr,
                &partials,
                &counters,
                &plan.chunks,
                &plan.rows_per_chunk,
            ],
        )
    }

    /// The input gradient. With batch statistics (`sums` = globally summed backward
    /// reductions, `N` = the global count in `saved`):
    /// `dx = weight·invstd·(g - Σg/N - x̂·Σg·x̂/N)`; with frozen statistics (`sums` = `None`):
    /// `dx = weight·invstd·g`.
    fn batch_norm_backward_apply(
        &mut self,
        inputs: &BatchNormBackward<'_, CudaBuffer>,
        &BatchNormShape { rows, channels }: &BatchNormShape,
        weight: &CudaBuffer,
        sums: Option<&CudaBuffer>,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let BatchNormBackward {
            dy,
            x,
            relu_output,
            saved,
        } = *inputs;
        let _op = self.profile_op("batch_norm_backward_apply", OpCategory::NormPool);
        check_params(&[
            (saved, batch_norm_saved_len(channels), "saved"),
            (weight, channels, "weight"),
        ]);
        if let Some(s) = sums {
            check_params(&[(s, batch_norm_stats_len(channels), "sums")]);
        }
        let n = rows * channels;
        assert!(
            dy.len() >= n && x.len() >= n && dx.len() >= n,
            "batch norm: activation too short"
        );
        let mask_dtype = relu_output.map_or(x.dtype(), CudaBuffer::dtype);
        let mask_ptr: u64 = relu_output.map_or(0, CudaBuffer::ptr);
        let sums_ptr: u64 = sums.map_or(0, CudaBuffer::ptr);
        let uniform = [x.dtype(), mask_dtype, dx.dtype()]
            .iter()
            .all(|&d| d == dy.dtype());
        let vectorised = uniform && channels.is_multiple_of(8);
        let name = if vectorised {
            format!("bn_backward_apply_v8_{}", dy.dtype().suffix())
        } else {
            format!(
                "bn_backward_apply_{}_{}_{}_{}",
                dy.dtype().suffix(),
                x.dtype().suffix(),
                mask_dtype.suffix(),
                dx.dtype().suffix()
            )
        };
        let dx_ptr = dx.ptr_mut();
        self.launch_1d(
            &name,
            if vectorised { n / 8 } else { n },
            &[
                &dy.ptr(),
                &x.ptr(),
                &mask_ptr,
                &len_arg(rows),
                &len_arg(channels),
                &saved.ptr(),
                &weight.ptr(),
                &sums_ptr,
                &dx_ptr,
            ],
        )
    }

    /// ReLU backward in place: `dy[i] = 0` where `relu_output[i] <= 0`.
    fn relu_backward(
        &mut self,
        dy: &mut CudaBuffer,
        relu_output: &CudaBuffer,
        len: usize,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("relu_backward", OpCategory::NormPool);
        assert!(
            dy.len() >= len && relu_output.len() >= len,
            "relu_backward out of bounds"
        );
        let name = format!(
            "relu_backward_{}_{}",
            dy.dtype().suffix(),
            relu_output.dtype().suffix()
        );
        let dy_ptr = dy.ptr_mut();
        self.launch_1d(&name, len, &[&dy_ptr, &relu_output.ptr(), &len_arg(len)])
    }
}

fn channel_blocks(channels: usize) -> u32 {
    channels.div_ceil(CHANNEL_THREADS as usize).max(1) as u32
}
