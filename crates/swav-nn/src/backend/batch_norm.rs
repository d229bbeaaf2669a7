//! [`BatchNormOps`]: batch norm split into local reductions, finalisation and element-wise
//! application (so that synchronised batch norm is an all-reduce between them), plus the
//! ReLU backward that a batch norm's fused ReLU needs where no batch norm follows.

use swav_core::HeadOps;

use crate::shapes::BatchNormShape;

/// The length of a batch-norm statistics buffer for `channels` channels: `[Σ(x-k) (C),
/// Σ(x-k)² (C), count (1)]` with `k` the per-channel shift (the running mean), or in
/// backward `[Σg (C), Σg·x̂ (C), unused (1)]`.
pub const fn batch_norm_stats_len(channels: usize) -> usize {
    2 * channels + 1
}

/// The length of a batch-norm "saved" buffer for `channels` channels: `[mean (C),
/// 1/√(var + eps) (C), count (1)]`, the statistics a normalisation used.
pub const fn batch_norm_saved_len(channels: usize) -> usize {
    2 * channels + 1
}

/// The two constants of a training-mode batch norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormSettings {
    /// Added to the variance before the square root.
    pub eps: f32,
    /// The running statistics' update weight: `r = (1 - momentum)·r + momentum·batch`.
    pub momentum: f32,
}

/// A batch norm's running statistics, updated in training mode.
#[derive(Debug)]
pub struct RunningStats<'a, Buf> {
    /// Running mean (`C` values).
    pub mean: &'a mut Buf,
    /// Running (unbiased) variance (`C` values).
    pub var: &'a mut Buf,
}

/// A batch norm's affine parameters, `y = x̂·weight + bias`.
#[derive(Debug, Clone, Copy)]
pub struct Affine<'a, Buf> {
    /// γ (`C` values).
    pub weight: &'a Buf,
    /// β (`C` values).
    pub bias: &'a Buf,
}

/// The gradients of a batch norm's affine parameters, accumulated.
#[derive(Debug)]
pub struct AffineGrads<'a, Buf> {
    /// `dγ` (`C` values).
    pub weight: &'a mut Buf,
    /// `dβ` (`C` values).
    pub bias: &'a mut Buf,
}

/// What follows the affine map in [`BatchNormOps::batch_norm_apply`]: a residual addition,
/// then a ReLU.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a, Buf> {
    /// Added after the affine map when given (a residual block's shortcut).
    pub residual: Option<&'a Buf>,
    /// Whether a ReLU ends the operation.
    pub relu: bool,
}

impl<Buf> Epilogue<'_, Buf> {
    /// A ReLU and no residual.
    pub fn relu() -> Self {
        Self {
            residual: None,
            relu: true,
        }
    }
}

/// The inputs both backward operations of a batch norm read.
#[derive(Debug, Clone, Copy)]
pub struct BatchNormBackward<'a, Buf> {
    /// The output gradient.
    pub dy: &'a Buf,
    /// The forward input.
    pub x: &'a Buf,
    /// The forward output when the forward applied a ReLU: `dy` counts only where it is
    /// positive.
    pub relu_output: Option<&'a Buf>,
    /// The statistics the forward normalised with ([`batch_norm_saved_len`] values).
    pub saved: &'a Buf,
}

/// Batch norm over `rows × channels` matrices, with `f32` statistics.
pub trait BatchNormOps: HeadOps<f32> {
    /// The local per-channel statistics of `x`, shifted by `shift` (`C` values, the running
    /// mean, which every rank holds identically): `stats = [Σ(x-k), Σ(x-k)², rows]` (see
    /// [`batch_norm_stats_len`]). The shift keeps the variance free of cancellation once
    /// the running mean tracks the batch mean. Sum the statistics over ranks with the
    /// collective before [`BatchNormOps::batch_norm_finalize`].
    fn batch_norm_stats(
        &mut self,
        x: &Self::Buf,
        shape: &BatchNormShape,
        shift: &Self::Buf,
        stats: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Turns globally summed `stats` (shifted by the running mean) into the batch mean and
    /// `1/√(var + eps)` (biased variance) in `saved`, then updates the running statistics
    /// with the unbiased variance over the global count: `r = (1 - momentum)·r +
    /// momentum·v`.
    fn batch_norm_finalize(
        &mut self,
        stats: &Self::Buf,
        channels: usize,
        settings: BatchNormSettings,
        running: RunningStats<'_, Self::Buf>,
        saved: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Evaluation mode: fills `saved` from the running statistics (count 0).
    fn batch_norm_frozen(
        &mut self,
        running_mean: &Self::Buf,
        running_var: &Self::Buf,
        channels: usize,
        eps: f32,
        saved: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `y = (x - mean)·invstd·weight + bias`, then `+ residual` if given, then ReLU if
    /// asked; `mean` and `invstd` come from `saved`.
    fn batch_norm_apply(
        &mut self,
        x: &Self::Buf,
        shape: &BatchNormShape,
        saved: &Self::Buf,
        affine: Affine<'_, Self::Buf>,
        epilogue: Epilogue<'_, Self::Buf>,
        y: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// The local reductions of the backward pass. With `g = dy` masked by
    /// `relu_output > 0` when the forward applied a ReLU, and `x̂ = (x - mean)·invstd`:
    /// `sums = [Σg, Σg·x̂, 0]` (local; all-reduce them for synchronised batch norm), and
    /// the parameter gradients accumulate the local sums: `dbias += Σg`, `dweight += Σg·x̂`.
    fn batch_norm_backward_reduce(
        &mut self,
        inputs: &BatchNormBackward<'_, Self::Buf>,
        shape: &BatchNormShape,
        sums: &mut Self::Buf,
        grads: AffineGrads<'_, Self::Buf>,
    ) -> Result<(), Self::Error>;

    /// The input gradient. With batch statistics (`sums` = the globally summed
    /// [`BatchNormOps::batch_norm_backward_reduce`] output, `N` = the global count in
    /// `saved`): `dx = weight·invstd·(g - Σg/N - x̂·Σg·x̂/N)`. With frozen statistics
    /// (`sums` is `None`): `dx = weight·invstd·g`.
    fn batch_norm_backward_apply(
        &mut self,
        inputs: &BatchNormBackward<'_, Self::Buf>,
        shape: &BatchNormShape,
        weight: &Self::Buf,
        sums: Option<&Self::Buf>,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// ReLU backward in place: `dy[i] = 0` where `relu_output[i] <= 0`.
    fn relu_backward(
        &mut self,
        dy: &mut Self::Buf,
        relu_output: &Self::Buf,
        len: usize,
    ) -> Result<(), Self::Error>;
}
