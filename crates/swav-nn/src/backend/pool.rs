//! [`PoolOps`]: max pooling and global average pooling.

use swav_core::HeadOps;

use crate::shapes::{GlobalPoolShape, Pool2dShape};

/// Pooling over NHWC activations.
pub trait PoolOps: HeadOps<f32> {
    /// Max pooling; ties go to the first maximum in window order, NaN propagates.
    fn max_pool2d_forward(
        &mut self,
        x: &Self::Buf,
        shape: &Pool2dShape,
        y: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Max-pooling backward: each `dy` goes to its window's first maximum of `x`.
    fn max_pool2d_backward(
        &mut self,
        dy: &Self::Buf,
        x: &Self::Buf,
        shape: &Pool2dShape,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Global average pooling: `y[n, c] = Σ_p x[n, p, c] / pixels`.
    fn global_avg_pool_forward(
        &mut self,
        x: &Self::Buf,
        shape: &GlobalPoolShape,
        y: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Global average pooling backward: `dx[n, p, c] = dy[n, c] / pixels`.
    fn global_avg_pool_backward(
        &mut self,
        dy: &Self::Buf,
        shape: &GlobalPoolShape,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;
}
