//! Row-wise L2 normalisation of the projection head's output (`l2_normalize.cu`).

use crate::kernels::{len_arg, threads_per_row};
use crate::profile::OpCategory;
use crate::{CudaBackend, CudaBuffer, CudaError};
use swav_nn::{L2NormalizeOps, L2NormalizeShape};

impl L2NormalizeOps for CudaBackend {
    /// `z[r, :] = x[r, :] / max(‖x[r, :]‖₂, eps)`, PyTorch's `F.normalize(dim=1)`.
    fn l2_normalize_rows_forward(
        &mut self,
        x: &CudaBuffer,
        shape: &L2NormalizeShape,
        z: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let L2NormalizeShape { rows, cols, eps } = *shape;
        let _op = self.profile_op("l2_normalize_rows_forward", OpCategory::Head);
        assert!(
            x.len() >= rows * cols && z.len() >= rows * cols,
            "l2 normalize out of bounds"
        );
        if rows == 0 {
            return Ok(());
        }
        let name = format!(
            "l2_normalize_forward_{}_{}",
            x.dtype().suffix(),
            z.dtype().suffix()
        );
        let z_ptr = z.ptr_mut();
        self.launch(
            &name,
            (rows as u32, 1, 1),
            (threads_per_row(cols), 1, 1),
            &[&x.ptr(), &len_arg(cols), &eps, &z_ptr],
        )
    }

    /// Backward of [`Self::l2_normalize_rows_forward`]: with `n = ‖x[r, :]‖`,
    /// `dx = (dz - z·⟨z, dz⟩)/n` when `n > eps`, else `dx = dz/eps`.
    fn l2_normalize_rows_backward(
        &mut self,
        dz: &CudaBuffer,
        x: &CudaBuffer,
        z: &CudaBuffer,
        shape: &L2NormalizeShape,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let L2NormalizeShape { rows, cols, eps } = *shape;
        let _op = self.profile_op("l2_normalize_rows_backward", OpCategory::Head);
        let n = rows * cols;
        assert!(
            dz.len() >= n && x.len() >= n && z.len() >= n && dx.len() >= n,
            "l2 normalize backward out of bounds"
        );
        if rows == 0 {
            return Ok(());
        }
        let name = format!(
            "l2_normalize_backward_{}_{}_{}_{}",
            dz.dtype().suffix(),
            x.dtype().suffix(),
            z.dtype().suffix(),
            dx.dtype().suffix()
        );
        let dx_ptr = dx.ptr_mut();
        self.launch(
            &name,
            (rows as u32, 1, 1),
            (threads_per_row(cols), 1, 1),
            &[&dz.ptr(), &x.ptr(), &z.ptr(), &len_arg(cols), &eps, &dx_ptr],
        )
    }
}
