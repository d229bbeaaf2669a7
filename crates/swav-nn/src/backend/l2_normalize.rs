//! [`L2NormalizeOps`]: row-wise L2 normalisation, PyTorch's `F.normalize(dim=1)`.

use swav_core::HeadOps;

use crate::shapes::L2NormalizeShape;

/// Row-wise L2 normalisation and its backward.
pub trait L2NormalizeOps: HeadOps<f32> {
    /// `z[r, :] = x[r, :] / max(‖x[r, :]‖₂, eps)`.
    fn l2_normalize_rows_forward(
        &mut self,
        x: &Self::Buf,
        shape: &L2NormalizeShape,
        z: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Backward of [`L2NormalizeOps::l2_normalize_rows_forward`]: with `n = ‖x[r, :]‖`,
    /// `dx = (dz - z·⟨z, dz⟩)/n` when `n > eps`, else `dx = dz/eps`.
    fn l2_normalize_rows_backward(
        &mut self,
        dz: &Self::Buf,
        x: &Self::Buf,
        z: &Self::Buf,
        shape: &L2NormalizeShape,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;
}
