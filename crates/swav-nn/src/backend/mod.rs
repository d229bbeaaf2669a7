//! The [`Backend`] trait: every device operation the SwAV model needs, as one super-trait
//! over the op families, each family declared in its own file.

mod activation;
mod batch_norm;
mod conv;
mod l2_normalize;
mod linear;
mod optimizer;
mod pool;

pub use activation::ActivationOps;
pub use batch_norm::{
    Affine, AffineGrads, BatchNormBackward, BatchNormOps, BatchNormSettings, Epilogue,
    RunningStats, batch_norm_saved_len, batch_norm_stats_len,
};
pub use conv::{ConvOps, StatsOutput};
pub use l2_normalize::L2NormalizeOps;
pub use linear::LinearOps;
pub use optimizer::OptimizerOps;
pub use pool::PoolOps;

/// Device operations for a ResNet trunk, the SwAV projection head and the prototypes: every
/// op family together. It is implemented for every type that implements all the families,
/// so a backend implements each family (in that family's own file) and never this trait.
///
/// Conventions (on top of [`HeadOps`](swav_core::HeadOps)'s, which every family extends):
/// * activations are NHWC (`[batch, height, width, channels]`, channels fastest), so a
///   tensor is also a `rows × channels` matrix with `rows = batch·height·width`; matrices
///   are row-major; convolution weights are OHWI and linear weights `[out, in]`;
/// * shapes are passed explicitly, as shape values ([`Conv2dShape`](crate::Conv2dShape), …). Buffers may be
///   longer than an operation needs: only their prefix is read or written, so a pool of
///   large buffers can serve every layer;
/// * an output "overwrites" its buffer unless the method says it accumulates (`+=`); all
///   gradients of *parameters* accumulate, so multi-crop groups add up naturally;
/// * results must be deterministic: the same inputs give bit-identical outputs whatever
///   the number of threads or streams;
/// * batch norm is split into local reductions, a caller-side all-reduce through a
///   [`Collective`](swav_core::Collective) and element-wise application, so that
///   synchronised batch norm is a matter of the collective passed in;
/// * a device failure is an `Err`; a shape mistake is a programming error and may panic.
///
/// Parameters, gradients, optimiser state, batch-norm statistics and head scores live in
/// [`BufferOps::zeros`](swav_core::BufferOps::zeros) buffers (always `f32`). Activations and
/// their gradients come from [`ActivationOps::alloc_activation`], which a GPU backend may
/// store in a narrower type; an operation may then receive both kinds (the pooled features
/// the trunk writes, for one, are `f32` head inputs), so such a backend tags its buffers
/// with their element type.
pub trait Backend:
    ActivationOps + ConvOps + BatchNormOps + PoolOps + LinearOps + L2NormalizeOps + OptimizerOps
{
}

impl<B> Backend for B where
    B: ActivationOps + ConvOps + BatchNormOps + PoolOps + LinearOps + L2NormalizeOps + OptimizerOps
{
}
