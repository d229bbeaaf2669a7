//! [`MatrixOps`] on the GPU: the score product through cuBLAS, and the row, column and
//! element kernels of `head.cu` (f32 matrices).

use swav_core::MatrixOps;

use super::launch::{Arg::*, Grid, HeadKernel, expect_f32};
use crate::blas::{Operand as GemmOperand, RowMajorGemm};
use crate::kernels::len_arg;
use crate::profile::OpCategory;
use crate::{CudaBackend, CudaBuffer, CudaError, DType};

impl MatrixOps<f32> for CudaBackend {
    fn row_sums(
        &mut self,
        m: &CudaBuffer,
        rows: usize,
        cols: usize,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let args = &mut [In(m, rows * cols), Size(cols), Out(out, rows)];
        self.head_kernel(HeadKernel::op("row_sums"), Grid::Rows { rows, cols }, args)
    }

    fn col_sums(
        &mut self,
        m: &CudaBuffer,
        rows: usize,
        cols: usize,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let args = &mut [
            In(m, rows * cols),
            Size(rows),
            Size(cols),
            Out(out, cols),
            Scratch,
        ];
        self.head_kernel(
            HeadKernel::op("col_sums"),
            Grid::Columns { rows, cols },
            args,
        )
    }

    fn div_rows(
        &mut self,
        m: &mut CudaBuffer,
        rows: usize,
        cols: usize,
        d: &CudaBuffer,
        k: f32,
    ) -> Result<(), CudaError> {
        let n = rows * cols;
        let args = &mut [Out(m, n), Size(rows), Size(cols), In(d, rows), F32(k)];
        self.head_kernel(HeadKernel::op("div_rows"), Grid::Elements(n), args)
    }

    fn div_cols(
        &mut self,
        m: &mut CudaBuffer,
        rows: usize,
        cols: usize,
        d: &CudaBuffer,
        k: f32,
    ) -> Result<(), CudaError> {
        let n = rows * cols;
        let args = &mut [Out(m, n), Size(rows), Size(cols), In(d, cols), F32(k)];
        self.head_kernel(HeadKernel::op("div_cols"), Grid::Elements(n), args)
    }

    fn normalize_rows(
        &mut self,
        m: &mut CudaBuffer,
        rows: usize,
        cols: usize,
        eps: f32,
    ) -> Result<(), CudaError> {
        let args = &mut [Out(m, rows * cols), Size(cols), F32(eps)];
        self.head_kernel(
            HeadKernel::op("normalize_rows"),
            Grid::Rows { rows, cols },
            args,
        )
    }

    fn matmul_nt(
        &mut self,
        a: &CudaBuffer,
        b: &CudaBuffer,
        m: usize,
        n: usize,
        k: usize,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("matmul_nt", OpCategory::Head);
        expect_f32(out, "matmul_nt");
        assert!(out.len() >= m * n, "matmul_nt output too small");
        if m == 0 || n == 0 {
            return Ok(());
        }
        // Scores are f32 products of f32 operands (bf16 operands are widened exactly).
        let a_op = self.operand(a, DType::F32, m * k)?;
        let b_op = self.operand(b, DType::F32, n * k)?;
        let c = out.ptr_mut();
        if k == 0 {
            return self.launch_1d("fill_f32", m * n, &[&c, &len_arg(m * n), &0.0f32]);
        }
        let gemm = RowMajorGemm {
            m,
            n,
            k,
            a: GemmOperand {
                ptr: a_op.ptr,
                dtype: DType::F32,
            },
            lda: k,
            transpose_a: false,
            b: GemmOperand {
                ptr: b_op.ptr,
                dtype: DType::F32,
            },
            ldb: k,
            transpose_b: true,
            c: GemmOperand {
                ptr: c,
                dtype: DType::F32,
            },
            ldc: n,
            alpha: 1.0,
            beta: 0.0,
        };
        self.blas()?.gemm(&gemm)
    }

    fn log_softmax_rows(
        &mut self,
        x: &CudaBuffer,
        rows: usize,
        cols: usize,
        tau: f32,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let n = rows * cols;
        let args = &mut [In(x, n), Size(cols), F32(tau), Out(out, n)];
        self.head_kernel(
            HeadKernel::op("log_softmax_rows"),
            Grid::Rows { rows, cols },
            args,
        )
    }

    fn add_exp_weighted_rows(
        &mut self,
        logp: &CudaBuffer,
        rows: usize,
        cols: usize,
        w: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let n = rows * cols;
        let args = &mut [
            In(logp, n),
            Size(rows),
            Size(cols),
            In(w, rows),
            Out(out, n),
        ];
        self.head_kernel(
            HeadKernel::op("add_exp_weighted_rows"),
            Grid::Elements(n),
            args,
        )
    }
}
