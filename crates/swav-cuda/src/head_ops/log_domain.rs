//! [`LogDomainOps`] on the GPU: the log-domain Sinkhorn kernels of `head.cu` (f32).

use swav_core::{LogDomainOps, ScaledScores};

use super::launch::{Arg::*, Grid, HeadKernel};
use crate::{CudaBackend, CudaBuffer, CudaError};

impl LogDomainOps<f32> for CudaBackend {
    fn col_max_biased(
        &mut self,
        x: ScaledScores<'_, CudaBuffer, f32>,
        b: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let ScaledScores {
            scores,
            rows,
            cols,
            eps,
        } = x;
        let args = &mut [
            In(scores, rows * cols),
            Size(rows),
            Size(cols),
            F32(eps),
            In(b, rows),
            Out(out, cols),
            Scratch,
        ];
        self.head_kernel(
            HeadKernel::op("col_max_biased"),
            Grid::Columns { rows, cols },
            args,
        )
    }

    fn col_sum_exp_biased(
        &mut self,
        x: ScaledScores<'_, CudaBuffer, f32>,
        b: &CudaBuffer,
        m: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let ScaledScores {
            scores,
            rows,
            cols,
            eps,
        } = x;
        let args = &mut [
            In(scores, rows * cols),
            Size(rows),
            Size(cols),
            F32(eps),
            In(b, rows),
            In(m, cols),
            Out(out, cols),
            Scratch,
        ];
        let grid = Grid::Columns { rows, cols };
        self.head_kernel(HeadKernel::op("col_sum_exp_biased"), grid, args)
    }

    fn row_logsumexp_biased(
        &mut self,
        x: ScaledScores<'_, CudaBuffer, f32>,
        a: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let ScaledScores {
            scores,
            rows,
            cols,
            eps,
        } = x;
        let args = &mut [
            In(scores, rows * cols),
            Size(cols),
            F32(eps),
            In(a, cols),
            Out(out, rows),
        ];
        self.head_kernel(
            HeadKernel::op("row_logsumexp_biased"),
            Grid::Rows { rows, cols },
            args,
        )
    }

    fn exp_biased(
        &mut self,
        x: ScaledScores<'_, CudaBuffer, f32>,
        b: &CudaBuffer,
        a: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let ScaledScores {
            scores,
            rows,
            cols,
            eps,
        } = x;
        let n = rows * cols;
        let args = &mut [
            In(scores, n),
            Size(rows),
            Size(cols),
            F32(eps),
            In(b, rows),
            In(a, cols),
            Out(out, n),
        ];
        self.head_kernel(HeadKernel::op("exp_biased"), Grid::Elements(n), args)
    }

    fn neg_log_sum_shifted(
        &mut self,
        m: &CudaBuffer,
        s: &CudaBuffer,
        ln_k: f32,
        v: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let n = v.len().min(m.len()).min(s.len());
        let args = &mut [In(m, n), In(s, n), Size(n), F32(ln_k), Out(v, n)];
        self.head_kernel(
            HeadKernel::op("neg_log_sum_shifted"),
            Grid::Elements(n),
            args,
        )
    }

    fn negate_minus(&mut self, x: &mut CudaBuffer, c: f32) -> Result<(), CudaError> {
        let n = x.len();
        let args = &mut [Out(x, n), Size(n), F32(c)];
        self.head_kernel(HeadKernel::op("negate_minus"), Grid::Elements(n), args)
    }
}
