//! [`LinearOps`]: fully connected layers.

use swav_core::HeadOps;

use crate::shapes::LinearShape;

/// Linear layers with `[out_features, in_features]` weights.
pub trait LinearOps: HeadOps<f32> {
    /// `y = x · weightᵀ (+ bias)`.
    fn linear_forward(
        &mut self,
        x: &Self::Buf,
        weight: &Self::Buf,
        bias: Option<&Self::Buf>,
        shape: &LinearShape,
        y: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `dx = dy · weight`.
    fn linear_backward_data(
        &mut self,
        dy: &Self::Buf,
        weight: &Self::Buf,
        shape: &LinearShape,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `dweight += dyᵀ · x` and, when given, `dbias += Σ_rows dy`.
    fn linear_backward_weight(
        &mut self,
        dy: &Self::Buf,
        x: &Self::Buf,
        shape: &LinearShape,
        dweight: &mut Self::Buf,
        dbias: Option<&mut Self::Buf>,
    ) -> Result<(), Self::Error>;
}
