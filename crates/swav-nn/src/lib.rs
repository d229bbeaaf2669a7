//! # swav-nn: the SwAV network, generic over a device backend
//!
//! The model of SwAV (Caron et al., NeurIPS 2020) as the official code builds it
//! (`facebookresearch/swav`, `src/resnet50.py`), with explicit forward and backward passes
//! written against the [`Backend`] trait, so the same model runs on the CPU reference
//! (`swav-cpu`) and on CUDA:
//!
//! * the trunk: torchvision ResNet-18, -34 and -50 (v1.5: the stride of a downsampling
//!   bottleneck sits on its 3×3 convolution), with SwAV's width multiplier (`resnet50w2`,
//!   `w4`) and an optional small-image stem (3×3 stride-1 convolution, no max pooling) for
//!   32-96 px data ([`TrunkConfig`]);
//! * the projection head (`Linear → BatchNorm1d → ReLU → Linear`, or one `Linear`), row L2
//!   normalisation and bias-free prototypes ([`SwavConfig`]);
//! * the multi-crop training forward: consecutive crops of one size go through the trunk
//!   together (batch-norm statistics per resolution group), the head runs once on all rows
//!   ([`SwavModel::forward_train`]); the backward pass from the score gradient
//!   ([`SwavModel::backward`]); evaluation passes with the running statistics;
//! * synchronised batch norm by construction: every batch norm reduces locally, all-reduces
//!   through the [`Collective`](swav_core::Collective) the caller passes, then applies;
//! * parameters, gradients and buffers named and ordered as in the official `state_dict`
//!   (torchvision names for the trunk), and safetensors import / export in PyTorch layout
//!   ([`import_safetensors`], [`export_safetensors`]);
//! * deterministic initialisation from a seed (the official recipe, see
//!   [`SwavModel::new`]).
//!
//! Activations are NHWC and convolution weights OHWI on the device; PyTorch's NCHW / OIHW
//! appear only at the safetensors boundary.
//!
//! ## Features
//! * `std` (default): `std::error::Error` for swav-core's errors, file helpers for weights.
//! * `conformance`: the `conformance` module, the test suite every backend runs (per-op
//!   checks, whole-model finite differences, PyTorch goldens).
//!
//! Without features the crate is `#![no_std]` + `alloc` (it builds for
//! `thumbv7em-none-eabihf`).
//!
//! ## Example: one SwAV training step on any backend
//!
//! ```
//! use swav_core::Collective;
//! use swav_nn::{Backend, CropGroup, StepError, SwavModel};
//!
//! /// Forward two 224 px and six 96 px crops of `batch` images, then backward from the
//! /// gradient of the loss with respect to the scores (computed by swav-core).
//! fn step<B: Backend, C: Collective<B::Buf>>(
//!     b: &mut B,
//!     model: &mut SwavModel<B>,
//!     large: &B::Buf,
//!     small: &B::Buf,
//!     batch: usize,
//!     bn_comm: &C,
//!     loss_gradient: impl FnOnce(&mut B, &B::Buf, &B::Buf) -> B::Buf,
//! ) -> Result<(), StepError<B::Error, C::Error>> {
//!     let groups = [
//!         CropGroup { images: large, crops: 2, height: 224, width: 224 },
//!         CropGroup { images: small, crops: 6, height: 96, width: 96 },
//!     ];
//!     model.zero_grad(b).map_err(StepError::Device)?;
//!     model.forward_train(b, &groups, batch, bn_comm)?;
//!     let d_scores = loss_gradient(b, model.embeddings().unwrap(), model.scores().unwrap());
//!     model.backward(b, &d_scores, bn_comm)
//! }
//! ```
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
mod atomic_file;
mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod init;
mod layout;
mod model;
pub mod prelude;
mod shapes;
mod weights;

#[cfg(feature = "std")]
pub use atomic_file::write_atomic;
pub use backend::{
    ActivationOps, Affine, AffineGrads, Backend, BatchNormBackward, BatchNormOps,
    BatchNormSettings, ConvOps, Epilogue, L2NormalizeOps, LinearOps, OptimizerOps, PoolOps,
    RunningStats, StatsOutput, batch_norm_saved_len, batch_norm_stats_len,
};
pub use error::{BuildError, ConfigError, StepError};
pub use layout::{ohwi_from_oihw, oihw_from_ohwi};
pub use model::{
    Arch, BN_EPS, BN_MOMENTUM, BufferMut, BufferView, CropGroup, GradReady, Layout, ParamMut,
    ParamView, SwavConfig, SwavModel, TrunkConfig,
};
pub use shapes::{
    BatchNormShape, Conv2dShape, GlobalPoolShape, L2NormalizeShape, LinearShape, Pool2dShape,
};
pub use swav_core::{SplitMix64, hashed_uniform, mix64};
pub use weights::{
    ExportOptions, ImportOptions, ImportReport, WeightsError, export_safetensors,
    import_safetensors,
};
#[cfg(feature = "std")]
pub use weights::{load_safetensors_file, save_safetensors_file};
