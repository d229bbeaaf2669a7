//! # swav-cpu: the SwAV model on the CPU
//!
//! [`CpuBackend`] implements swav-nn's [`Backend`](swav_nn::Backend) (and swav-core's
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
//! * the LARC + SGD step of every parameter in two parallel passes over all tensors (their
//!   norms, then the update), bit-identical to the per-tensor step;
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

mod activation;
mod batch_norm;
mod conv;
mod gemm;
mod head_ops;
mod l2_normalize;
mod lars;
mod linear;
mod partition;
mod pool;
mod profile;
mod scratch;

pub use profile::{OpStats, Profile};

use conv::ConvScratch;

/// swav-nn's [`Backend`](swav_nn::Backend) on the CPU: `f32` host vectors as buffers, sgemm
/// and rayon kernels. Each op family is implemented in its own module (`conv`,
/// `batch_norm`, `pool`, `linear`, `l2_normalize`, `activation`, `head_ops`). It keeps its
/// scratch buffers between calls (they grow to the largest layer once).
#[derive(Debug, Default)]
pub struct CpuBackend {
    /// The convolutions' scratch.
    conv: ConvScratch,
    /// Partial sums of the batch-norm reductions.
    sums: Vec<f64>,
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
}
