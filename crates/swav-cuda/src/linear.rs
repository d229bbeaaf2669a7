//! The linear layers of the projection head: products in cuBLAS (`blas.rs`), bias epilogue
//! and bias gradient in `linear.cu`.
//!
//! Products run in the backend's precision: under mixed precision the activations and the
//! weight's bf16 copy are multiplied with f32 accumulation (as PyTorch's bf16 autocast does
//! for `F.linear`), and the bias is added to the f32 product before the result is rounded
//! to the output's element type. Weight gradients accumulate into the f32 gradient buffer
//! straight from the f32 accumulator.

use crate::blas::{Operand as GemmOperand, RowMajorGemm};
use crate::kernels::len_arg;
use crate::profile::OpCategory;
use crate::raw_view::RawView;
use crate::{CudaBackend, CudaBuffer, CudaError, DType};
use swav_nn::{LinearOps, LinearShape};

impl LinearOps for CudaBackend {
    /// `y = x · weightᵀ (+ bias)`, with `x` `rows × in_features` and `weight`
    /// `out_features × in_features`.
    fn linear_forward(
        &mut self,
        x: &CudaBuffer,
        weight: &CudaBuffer,
        bias: Option<&CudaBuffer>,
        shape: &LinearShape,
        y: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let LinearShape {
            rows,
            in_features,
            out_features,
        } = *shape;
        let _op = self.profile_op("linear_forward", OpCategory::Head);
        assert!(y.len() >= rows * out_features, "linear: output too short");
        if let Some(b) = bias {
            assert!(
                b.dtype() == DType::F32 && b.len() >= out_features,
                "linear: bias must be f32 of out_features"
            );
        }
        if rows == 0 || out_features == 0 {
            return Ok(());
        }
        let precision = self.activation_dtype();
        let x_op = self.operand(x, precision, rows * in_features)?;
        let w_op = self.weight(weight, precision, out_features * in_features)?;
        let y_dtype = y.dtype();
        let y_ptr = y.ptr_mut();
        // A bf16 product can write either type; an f32 product writes f32. A bias is added
        // to the f32 product, so it needs an f32 destination first.
        let direct = bias.is_none() && (y_dtype == DType::F32 || precision == DType::Bf16);
        let product_buffer = if direct || y_dtype == DType::F32 {
            None
        } else {
            Some(self.alloc_uninit(rows * out_features, DType::F32)?)
        };
        let (product_ptr, product_dtype) = match &product_buffer {
            Some(buf) => (buf.ptr(), DType::F32),
            None => (y_ptr, y_dtype),
        };
        let gemm = RowMajorGemm {
            m: rows,
            n: out_features,
            k: in_features,
            a: GemmOperand {
                ptr: x_op.ptr,
                dtype: precision,
            },
            lda: in_features,
            transpose_a: false,
            b: GemmOperand {
                ptr: w_op.ptr,
                dtype: precision,
            },
            ldb: in_features,
            transpose_b: true,
            c: GemmOperand {
                ptr: product_ptr,
                dtype: product_dtype,
            },
            ldc: out_features,
            alpha: 1.0,
            beta: 0.0,
        };
        self.blas()?.gemm(&gemm)?;
        match bias {
            Some(b) => self.launch_1d(
                &format!("add_bias_rows_{}", y_dtype.suffix()),
                rows * out_features,
                &[
                    &product_ptr,
                    &len_arg(rows),
                    &len_arg(out_features),
                    &b.ptr(),
                    &y_ptr,
                ],
            ),
            None if product_buffer.is_some() => self.convert_raw(
                RawView::new(product_ptr, DType::F32, 0),
                RawView::new(y_ptr, y_dtype, 0),
                rows * out_features,
            ),
            None => Ok(()),
        }
    }

    /// `dx = dy · weight`.
    fn linear_backward_data(
        &mut self,
        dy: &CudaBuffer,
        weight: &CudaBuffer,
        shape: &LinearShape,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let LinearShape {
            rows,
            in_features,
            out_features,
        } = *shape;
        let _op = self.profile_op("linear_backward_data", OpCategory::Head);
        assert!(
            dx.len() >= rows * in_features,
            "linear: input gradient too short"
        );
        if rows == 0 || in_features == 0 {
            return Ok(());
        }
        let precision = self.activation_dtype();
        let dy_op = self.operand(dy, precision, rows * out_features)?;
        let w_op = self.weight(weight, precision, out_features * in_features)?;
        let dx_dtype = dx.dtype();
        let dx_ptr = dx.ptr_mut();
        let direct = dx_dtype == DType::F32 || precision == DType::Bf16;
        let product_buffer = if direct {
            None
        } else {
            Some(self.alloc_uninit(rows * in_features, DType::F32)?)
        };
        let (product_ptr, product_dtype) = match &product_buffer {
            Some(buf) => (buf.ptr(), DType::F32),
            None => (dx_ptr, dx_dtype),
        };
        let gemm = RowMajorGemm {
            m: rows,
            n: in_features,
            k: out_features,
            a: GemmOperand {
                ptr: dy_op.ptr,
                dtype: precision,
            },
            lda: out_features,
            transpose_a: false,
            b: GemmOperand {
                ptr: w_op.ptr,
                dtype: precision,
            },
            ldb: in_features,
            transpose_b: false,
            c: GemmOperand {
                ptr: product_ptr,
                dtype: product_dtype,
            },
            ldc: in_features,
            alpha: 1.0,
            beta: 0.0,
        };
        self.blas()?.gemm(&gemm)?;
        if product_buffer.is_some() {
            self.convert_raw(
                RawView::new(product_ptr, DType::F32, 0),
                RawView::new(dx_ptr, dx_dtype, 0),
                rows * in_features,
            )?;
        }
        Ok(())
    }

    /// `dweight += dyᵀ · x` and, when given, `dbias += Σ_rows dy`.
    fn linear_backward_weight(
        &mut self,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        shape: &LinearShape,
        dweight: &mut CudaBuffer,
        dbias: Option<&mut CudaBuffer>,
    ) -> Result<(), CudaError> {
        let LinearShape {
            rows,
            in_features,
            out_features,
        } = *shape;
        let _op = self.profile_op("linear_backward_weight", OpCategory::Head);
        assert!(
            dweight.dtype() == DType::F32 && dweight.len() >= out_features * in_features,
            "linear: the weight gradient must be f32 of out_features × in_features"
        );
        if rows == 0 {
            return Ok(());
        }
        let precision = self.activation_dtype();
        let dy_op = self.operand(dy, precision, rows * out_features)?;
        let x_op = self.operand(x, precision, rows * in_features)?;
        let dw_ptr = dweight.ptr_mut();
        let gemm = RowMajorGemm {
            m: out_features,
            n: in_features,
            k: rows,
            a: GemmOperand {
                ptr: dy_op.ptr,
                dtype: precision,
            },
            lda: out_features,
            transpose_a: true,
            b: GemmOperand {
                ptr: x_op.ptr,
                dtype: precision,
            },
            ldb: in_features,
            transpose_b: false,
            c: GemmOperand {
                ptr: dw_ptr,
                dtype: DType::F32,
            },
            ldc: in_features,
            alpha: 1.0,
            beta: 1.0,
        };
        self.blas()?.gemm(&gemm)?;
        if let Some(db) = dbias {
            assert!(
                db.dtype() == DType::F32 && db.len() >= out_features,
                "linear: the bias gradient must be f32 of out_features"
            );
            let (plan, partials, counters) = self.column_scratch(rows, out_features, 1)?;
            let (grid, block) = plan.grid();
            let db_ptr = db.ptr_mut();
            self.launch(
                &format!("column_sums_accumulate_{}", dy.dtype().suffix()),
                grid,
                block,
                &[
                    &dy.ptr(),
                    &len_arg(rows),
                    &len_arg(out_features),
                    &db_ptr,
                    &partials,
                    &counters,
                    &plan.chunks,
                    &plan.rows_per_chunk,
                ],
            )?;
        }
        Ok(())
    }
}
