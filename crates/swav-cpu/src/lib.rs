//! # swav-cpu: the SwAV model on the CPU
//!
//! [`CpuBackend`] implements swav-nn's [`Backend`] (and swav-core's
//! [`HeadOps`](swav_core::HeadOps)) on host memory, in `f32`, with ndarray views over
//! matrixmultiply's sgemm and rayon:
//!
//! * forward convolutions, on CPUs with AVX-512, by a direct kernel that keeps a tile of
//!   output pixels × up to 64 output channels in registers and reads the NHWC input in place
//!   (only the weights are repacked); elsewhere as products of NHWC patch matrices with the
//!   OHWI weights (the patches of a tile of output pixels gathered, one contiguous copy per
//!   kernel row; 1×1 stride-1 convolutions read the activations directly); input gradients
//!   of stride-1 convolutions are forward convolutions with flipped weights, strided ones
//!   scatter per image; weight gradients cut their output by kernel row and their reduction
//!   into fixed slots, each task a register kernel reading `dy` and the input in place
//!   (AVX-512, stride 1, 16 input channels or more) or patch tiles into an sgemm;
//! * batch norm's statistics gathered in the convolution's epilogue while the tile is in
//!   cache; normalisation, affine, residual addition and ReLU in one pass;
//! * every sgemm single-threaded (matrixmultiply's AVX-512 kernel where the CPU has it),
//!   rayon over tiles; per-thread scratch reused between calls.
//!
//! **Determinism.** Work is split by shape only, never by thread count, and every reduction
//! combines fixed partial sums in a fixed order, so a training step is bit-identical on any
//! number of threads and from run to run (the trainer's exact resume relies on it).
//!
//! [`CpuBackend::enable_profiling`] times every operation kind (see the `train_step`
//! example).
//!
//! ## Example: a training step of a small SwAV network
//!
//! ```
//! use swav_core::SingleProcess;
//! use swav_cpu::CpuBackend;
//! use swav_nn::{Arch, CropGroup, SwavConfig, SwavModel, TrunkConfig};
//!
//! let mut b = CpuBackend::new();
//! let config = SwavConfig {
//!     trunk: TrunkConfig { arch: Arch::ResNet18, width: 1, base_width: 16, small_stem: true },
//!     hidden_dim: 64,
//!     output_dim: 16,
//!     prototypes: 10,
//! };
//! let mut model = SwavModel::new(&mut b, config, 0).unwrap();
//! let k = config.prototypes;
//! swav_core::normalize_prototypes(&mut b, model.prototypes_mut().unwrap(), k, 16).unwrap();
//!
//! // Two 16 px crops of 2 images, crop-major NHWC.
//! let images = vec![0.5f32; 2 * 2 * 16 * 16 * 3];
//! let groups = [CropGroup { images: &images, crops: 2, height: 16, width: 16 }];
//! model.forward_train(&mut b, &groups, 2, &SingleProcess).unwrap();
//! assert_eq!(model.scores().unwrap().len(), 4 * k);
//!
//! let d_scores = vec![0.01f32; 4 * k];
//! model.backward(&mut b, &d_scores, &SingleProcess).unwrap();
//! assert!(model.params().iter().any(|p| p.grad.iter().any(|g| *g != 0.0)));
//! ```

mod batch_norm;
mod conv;
mod gemm;
mod head_ops;
mod l2_norm;
mod linear;
mod partition;
mod pool;
mod profile;
mod scratch;

use core::convert::Infallible;
use std::time::Instant;

pub use profile::{OpStats, Profile};

use swav_nn::{Backend, Conv2dShape, Pool2dShape, StatsOutput};

/// swav-nn's [`Backend`] on the CPU: `f32` host vectors as buffers, sgemm + rayon kernels.
/// It keeps its scratch buffers between calls (they grow to the largest layer once).
#[derive(Debug, Default)]
pub struct CpuBackend {
    /// Flipped weights for stride-1 input gradients, patch gradients for strided ones.
    flipped: Vec<f32>,
    /// Partial weight gradients of the slots of a weight-gradient product.
    partials: Vec<f32>,
    /// Partial sums of reductions.
    sums: Vec<f64>,
    /// Weights repacked for the direct convolution kernel.
    packed: Vec<f32>,
    /// Per-operation timing, when enabled.
    profile: Option<Profile>,
}

impl CpuBackend {
    /// A backend with empty scratch buffers (they grow to the largest layer and are kept).
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts (or restarts) timing every operation; see [`CpuBackend::take_profile`].
    pub fn enable_profiling(&mut self) {
        self.profile = Some(Profile::default());
    }

    /// The timings recorded since profiling was enabled, resetting them (`None` when
    /// profiling is off).
    pub fn take_profile(&mut self) -> Option<Profile> {
        self.profile.as_mut().map(core::mem::take)
    }

    /// The start time of a timed operation, when profiling.
    pub(crate) fn start(&self) -> Option<Instant> {
        self.profile.as_ref().map(|_| Instant::now())
    }

    /// Records an operation started at `start`.
    pub(crate) fn record(&mut self, op: &'static str, start: Option<Instant>, flops: f64) {
        if let (Some(profile), Some(start)) = (self.profile.as_mut(), start) {
            profile.record(op, start, flops);
        }
    }
}

impl Backend for CpuBackend {
    fn alloc_activation(&mut self, len: usize) -> Result<Vec<f32>, Infallible> {
        Ok(vec![0.0; len])
    }

    fn conv2d_forward(
        &mut self,
        x: &Vec<f32>,
        weight: &Vec<f32>,
        shape: &Conv2dShape,
        y: &mut Vec<f32>,
        stats: Option<StatsOutput<'_, Vec<f32>>>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        let (k, oc) = (shape.patch_len(), shape.out_channels);
        let b = gemm::view(weight, k, oc, 1, k);
        let stats = stats.map(|s| (&s.shift[..], &mut s.stats[..]));
        conv::conv_forward(
            x,
            shape,
            &b,
            0.0,
            y,
            stats,
            &mut self.sums,
            &mut self.packed,
        );
        self.record("conv_forward", start, 2.0 * shape.macs() as f64);
        Ok(())
    }

    fn conv2d_backward_data(
        &mut self,
        dy: &Vec<f32>,
        weight: &Vec<f32>,
        shape: &Conv2dShape,
        dx: &mut Vec<f32>,
        accumulate: bool,
    ) -> Result<(), Infallible> {
        let start = self.start();
        conv::conv_backward_data(
            dy,
            weight,
            shape,
            dx,
            accumulate,
            &mut self.flipped,
            &mut self.sums,
            &mut self.packed,
        );
        self.record("conv_backward_data", start, 2.0 * shape.macs() as f64);
        Ok(())
    }

    fn conv2d_backward_filter(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        shape: &Conv2dShape,
        dweight: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        conv::conv_backward_filter(dy, x, shape, dweight, &mut self.partials);
        self.record("conv_backward_filter", start, 2.0 * shape.macs() as f64);
        Ok(())
    }

    fn batch_norm_stats(
        &mut self,
        x: &Vec<f32>,
        rows: usize,
        channels: usize,
        shift: &Vec<f32>,
        stats: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        batch_norm::stats(x, rows, channels, shift, stats, &mut self.sums);
        self.record("batch_norm_stats", start, 0.0);
        Ok(())
    }

    fn batch_norm_finalize(
        &mut self,
        stats: &Vec<f32>,
        channels: usize,
        eps: f32,
        momentum: f32,
        running_mean: &mut Vec<f32>,
        running_var: &mut Vec<f32>,
        saved: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        batch_norm::finalize(
            stats,
            channels,
            eps,
            momentum,
            running_mean,
            running_var,
            saved,
        );
        self.record("batch_norm_finalize", start, 0.0);
        Ok(())
    }

    fn batch_norm_frozen(
        &mut self,
        running_mean: &Vec<f32>,
        running_var: &Vec<f32>,
        channels: usize,
        eps: f32,
        saved: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        batch_norm::frozen(running_mean, running_var, channels, eps, saved);
        self.record("batch_norm_frozen", start, 0.0);
        Ok(())
    }

    fn batch_norm_apply(
        &mut self,
        x: &Vec<f32>,
        rows: usize,
        channels: usize,
        saved: &Vec<f32>,
        weight: &Vec<f32>,
        bias: &Vec<f32>,
        residual: Option<&Vec<f32>>,
        relu: bool,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        batch_norm::apply(
            x,
            rows,
            channels,
            saved,
            weight,
            bias,
            residual.map(|r| &r[..]),
            relu,
            y,
        );
        self.record("batch_norm_apply", start, 0.0);
        Ok(())
    }

    fn batch_norm_backward_reduce(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        relu_output: Option<&Vec<f32>>,
        rows: usize,
        channels: usize,
        saved: &Vec<f32>,
        sums: &mut Vec<f32>,
        dweight: &mut Vec<f32>,
        dbias: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        batch_norm::backward_reduce(
            dy,
            x,
            relu_output.map(|r| &r[..]),
            rows,
            channels,
            saved,
            sums,
            dweight,
            dbias,
            &mut self.sums,
        );
        self.record("batch_norm_backward_reduce", start, 0.0);
        Ok(())
    }

    fn batch_norm_backward_apply(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        relu_output: Option<&Vec<f32>>,
        rows: usize,
        channels: usize,
        saved: &Vec<f32>,
        weight: &Vec<f32>,
        sums: Option<&Vec<f32>>,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        batch_norm::backward_apply(
            dy,
            x,
            relu_output.map(|r| &r[..]),
            rows,
            channels,
            saved,
            weight,
            sums.map(|s| &s[..]),
            dx,
        );
        self.record("batch_norm_backward_apply", start, 0.0);
        Ok(())
    }

    fn relu_backward(
        &mut self,
        dy: &mut Vec<f32>,
        relu_output: &Vec<f32>,
        len: usize,
    ) -> Result<(), Infallible> {
        let start = self.start();
        batch_norm::relu_backward(&mut dy[..len], &relu_output[..len]);
        self.record("relu_backward", start, 0.0);
        Ok(())
    }

    fn max_pool2d_forward(
        &mut self,
        x: &Vec<f32>,
        shape: &Pool2dShape,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        pool::max_forward(x, shape, y);
        self.record("max_pool_forward", start, 0.0);
        Ok(())
    }

    fn max_pool2d_backward(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        shape: &Pool2dShape,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        pool::max_backward(dy, x, shape, dx);
        self.record("max_pool_backward", start, 0.0);
        Ok(())
    }

    fn global_avg_pool_forward(
        &mut self,
        x: &Vec<f32>,
        batch: usize,
        pixels: usize,
        channels: usize,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        pool::avg_forward(x, batch, pixels, channels, y);
        self.record("avg_pool_forward", start, 0.0);
        Ok(())
    }

    fn global_avg_pool_backward(
        &mut self,
        dy: &Vec<f32>,
        batch: usize,
        pixels: usize,
        channels: usize,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        pool::avg_backward(dy, batch, pixels, channels, dx);
        self.record("avg_pool_backward", start, 0.0);
        Ok(())
    }

    fn linear_forward(
        &mut self,
        x: &Vec<f32>,
        weight: &Vec<f32>,
        bias: Option<&Vec<f32>>,
        rows: usize,
        in_features: usize,
        out_features: usize,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        linear::forward(
            x,
            weight,
            bias.map(|b| &b[..]),
            rows,
            in_features,
            out_features,
            y,
        );
        self.record(
            "linear_forward",
            start,
            2.0 * (rows * in_features * out_features) as f64,
        );
        Ok(())
    }

    fn linear_backward_data(
        &mut self,
        dy: &Vec<f32>,
        weight: &Vec<f32>,
        rows: usize,
        in_features: usize,
        out_features: usize,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        linear::backward_data(dy, weight, rows, in_features, out_features, dx);
        self.record(
            "linear_backward_data",
            start,
            2.0 * (rows * in_features * out_features) as f64,
        );
        Ok(())
    }

    fn linear_backward_weight(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        rows: usize,
        in_features: usize,
        out_features: usize,
        dweight: &mut Vec<f32>,
        dbias: Option<&mut Vec<f32>>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        linear::backward_weight(
            dy,
            x,
            rows,
            in_features,
            out_features,
            dweight,
            dbias.map(|b| &mut b[..]),
        );
        self.record(
            "linear_backward_weight",
            start,
            2.0 * (rows * in_features * out_features) as f64,
        );
        Ok(())
    }

    fn l2_normalize_rows_forward(
        &mut self,
        x: &Vec<f32>,
        rows: usize,
        cols: usize,
        eps: f32,
        z: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        l2_norm::forward(x, rows, cols, eps, z);
        self.record("l2_normalize", start, 0.0);
        Ok(())
    }

    fn l2_normalize_rows_backward(
        &mut self,
        dz: &Vec<f32>,
        x: &Vec<f32>,
        z: &Vec<f32>,
        rows: usize,
        cols: usize,
        eps: f32,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let start = self.start();
        l2_norm::backward(dz, x, z, rows, cols, eps, dx);
        self.record("l2_normalize_backward", start, 0.0);
        Ok(())
    }
}
