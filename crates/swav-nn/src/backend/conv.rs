//! [`ConvOps`]: 2-d convolutions (forward, input gradient, weight gradient).

use swav_core::HeadOps;

use crate::shapes::Conv2dShape;

/// Where a convolution writes the batch-norm statistics of its output (see
/// [`BatchNormOps::batch_norm_stats`](super::BatchNormOps::batch_norm_stats)).
#[derive(Debug)]
pub struct StatsOutput<'a, Buf> {
    /// The per-channel shift `k` (the batch norm's running mean).
    pub shift: &'a Buf,
    /// The statistics, `[Σ(y-k), Σ(y-k)², rows]`.
    pub stats: &'a mut Buf,
}

/// Convolutions without bias over NHWC activations and OHWI weights.
pub trait ConvOps: HeadOps<f32> {
    /// `y = conv(x, weight)`. When `stats` is given, it also receives the per-channel
    /// statistics of `y` as
    /// [`BatchNormOps::batch_norm_stats`](super::BatchNormOps::batch_norm_stats) computes
    /// them, so that a following batch norm can skip its reduction pass.
    fn conv2d_forward(
        &mut self,
        x: &Self::Buf,
        weight: &Self::Buf,
        shape: &Conv2dShape,
        y: &mut Self::Buf,
        stats: Option<StatsOutput<'_, Self::Buf>>,
    ) -> Result<(), Self::Error>;

    /// The input gradient: `dx = convᵀ(dy, weight)`, added to `dx` when `accumulate`.
    fn conv2d_backward_data(
        &mut self,
        dy: &Self::Buf,
        weight: &Self::Buf,
        shape: &Conv2dShape,
        dx: &mut Self::Buf,
        accumulate: bool,
    ) -> Result<(), Self::Error>;

    /// The weight gradient, accumulated: `dweight += Σ dyᵀ · patches(x)`.
    fn conv2d_backward_filter(
        &mut self,
        dy: &Self::Buf,
        x: &Self::Buf,
        shape: &Conv2dShape,
        dweight: &mut Self::Buf,
    ) -> Result<(), Self::Error>;
}
