//! [`HeadOps<f32>`] on the GPU: what Sinkhorn, the swapped-prediction loss, the queue,
//! prototype normalisation and the single-tensor LARS step of `swav-core` run on.
//!
//! Semantics are those of `swav_core::SliceOps`, operation for operation (`head.cu` mirrors
//! its expressions and is compiled without fused multiply-adds); only the order of
//! floating-point sums and the last ulp of `exp`/`log` differ. Memory operations, fills,
//! scaling, axpy and the whole-buffer reductions accept buffers of either element type; the
//! Sinkhorn, loss and optimiser operations work on f32 buffers (scores, codes and parameters
//! are always f32) and panic, as for any shape mistake, when given a bf16 one.

use cudarc::driver::DevicePtr;
use swav_core::{
    BufAt, BufferOps, ElementWiseOps, LogDomainOps, MatrixOps, ReduceOps, ScaledScores, SgdOps,
    SgdStep,
};

use crate::blas::{Operand as GemmOperand, RowMajorGemm};
use crate::buffer::Storage;
use crate::kernels::{len_arg, threads_per_row};
use crate::profile::OpCategory;
use crate::raw_view::RawView;
use crate::reduction::{ColumnPlan, REDUCE_THREADS, reduce_blocks};
use crate::{CudaBackend, CudaBuffer, CudaError, DType};

/// Panics unless `buf` holds f32 (the head operations' contract).
fn expect_f32(buf: &CudaBuffer, operation: &str) {
    assert_eq!(
        buf.dtype(),
        DType::F32,
        "{operation} works on f32 buffers (allocate them with zeros())"
    );
}

impl CudaBackend {
    /// A whole-buffer reduction kernel (`reduction.cu`) of `x` into the f32 scalar at `out`.
    fn reduce_into(&mut self, kind: &str, x: &CudaBuffer, out: u64) -> Result<(), CudaError> {
        let blocks = reduce_blocks(x.len());
        let (partials, counters) =
            self.reduction
                .ensure(&self.device.stream, blocks as usize, 1)?;
        let name = format!("{kind}_{}", x.dtype().suffix());
        self.launch(
            &name,
            (blocks, 1, 1),
            (REDUCE_THREADS, 1, 1),
            &[&x.ptr(), &len_arg(x.len()), &partials, &counters, &out],
        )
    }

    /// Scratch for a column reduction of `rows × cols` with `quantities` f32 sums per column.
    pub(crate) fn column_scratch(
        &mut self,
        rows: usize,
        cols: usize,
        quantities: usize,
    ) -> Result<(ColumnPlan, u64, u64), CudaError> {
        self.column_scratch_of(rows, cols, quantities, 1)
    }

    /// Scratch for a column reduction with `quantities` f64 sums per column.
    pub(crate) fn column_scratch_f64(
        &mut self,
        rows: usize,
        cols: usize,
        quantities: usize,
    ) -> Result<(ColumnPlan, u64, u64), CudaError> {
        self.column_scratch_of(rows, cols, quantities, 2)
    }

    fn column_scratch_of(
        &mut self,
        rows: usize,
        cols: usize,
        quantities: usize,
        floats_per_partial: usize,
    ) -> Result<(ColumnPlan, u64, u64), CudaError> {
        let plan = ColumnPlan::new(rows, cols);
        let (partials, counters) = self.reduction.ensure(
            &self.device.stream,
            plan.partials(cols, quantities) * floats_per_partial,
            plan.col_blocks as usize,
        )?;
        Ok((plan, partials, counters))
    }

    /// A device-to-device copy of `bytes` bytes between raw addresses, in stream order.
    fn copy_raw(&self, src: u64, dst: u64, bytes: usize) -> Result<(), CudaError> {
        if bytes == 0 {
            return Ok(());
        }
        // SAFETY: both ranges lie inside live buffers (checked by the callers) and do not
        // overlap.
        unsafe {
            cudarc::driver::result::memcpy_dtod_async(
                dst,
                src,
                bytes,
                self.device.stream.cu_stream(),
            )?;
        }
        Ok(())
    }
}

impl BufferOps<f32> for CudaBackend {
    type Buf = CudaBuffer;
    type Error = CudaError;

    fn zeros(&mut self, len: usize) -> Result<CudaBuffer, CudaError> {
        let _op = self.profile_op("zeros", OpCategory::Memory);
        self.alloc(len, DType::F32)
    }

    fn buf_len(&self, buf: &CudaBuffer) -> usize {
        buf.len()
    }

    fn upload(
        &mut self,
        src: &[f32],
        dst: &mut CudaBuffer,
        offset: usize,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("upload", OpCategory::Data);
        assert!(
            offset + src.len() <= dst.len(),
            "upload past the end of the buffer"
        );
        if src.is_empty() {
            return Ok(());
        }
        let stream = self.device.stream.clone();
        if dst.dtype() == DType::Bf16 {
            let staged = stream.clone_htod(src)?;
            let staged_ptr = staged.device_ptr(&stream).0;
            let dst_ptr = dst.ptr_mut();
            return self.convert_raw(
                RawView::new(staged_ptr, DType::F32, 0),
                RawView::new(dst_ptr, DType::Bf16, offset),
                src.len(),
            );
        }
        if let Storage::F32(slice) = dst.storage_mut() {
            let mut view = slice.slice_mut(offset..offset + src.len());
            stream.memcpy_htod(src, &mut view)?;
        }
        Ok(())
    }

    fn download(
        &mut self,
        src: &CudaBuffer,
        offset: usize,
        dst: &mut [f32],
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("download", OpCategory::Data);
        assert!(
            offset + dst.len() <= src.len(),
            "download past the end of the buffer"
        );
        if dst.is_empty() {
            return Ok(());
        }
        let stream = self.device.stream.clone();
        match src.storage() {
            Storage::F32(slice) => {
                stream.memcpy_dtoh(&slice.slice(offset..offset + dst.len()), dst)?;
            }
            Storage::Bf16(_) => {
                let mut widened = self.alloc_uninit(dst.len(), DType::F32)?;
                let widened_ptr = widened.ptr_mut();
                self.convert_raw(
                    RawView::new(src.ptr(), DType::Bf16, offset),
                    RawView::new(widened_ptr, DType::F32, 0),
                    dst.len(),
                )?;
                if let Storage::F32(slice) = widened.storage() {
                    stream.memcpy_dtoh(&slice.slice(..dst.len()), dst)?;
                }
            }
        }
        self.synchronize()
    }

    fn copy(
        &mut self,
        src: &CudaBuffer,
        src_offset: usize,
        dst: &mut CudaBuffer,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("copy", OpCategory::Memory);
        assert!(
            src_offset + len <= src.len() && dst_offset + len <= dst.len(),
            "copy out of bounds"
        );
        if src.dtype() == dst.dtype() {
            let dst_ptr = dst.ptr_mut_at(dst_offset);
            self.copy_raw(src.ptr_at(src_offset), dst_ptr, len * src.dtype().size())
        } else {
            let (src_dtype, dst_dtype) = (src.dtype(), dst.dtype());
            let dst_ptr = dst.ptr_mut();
            self.convert_raw(
                RawView::new(src.ptr(), src_dtype, src_offset),
                RawView::new(dst_ptr, dst_dtype, dst_offset),
                len,
            )
        }
    }

    fn copy_within(
        &mut self,
        buf: &mut CudaBuffer,
        src_offset: usize,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("copy_within", OpCategory::Memory);
        assert!(
            src_offset + len <= buf.len() && dst_offset + len <= buf.len(),
            "copy_within out of bounds"
        );
        let size = buf.dtype().size();
        let overlap = src_offset < dst_offset + len && dst_offset < src_offset + len;
        let src = buf.ptr_at(src_offset);
        let dst = buf.ptr_mut_at(dst_offset);
        if !overlap {
            return self.copy_raw(src, dst, len * size);
        }
        // Overlapping ranges: go through a temporary (memmove semantics).
        let mut staging = self.alloc_uninit(len, buf.dtype())?;
        let staging_ptr = staging.ptr_mut();
        self.copy_raw(src, staging_ptr, len * size)?;
        self.copy_raw(staging_ptr, dst, len * size)
    }

    fn fill(&mut self, buf: &mut CudaBuffer, value: f32) -> Result<(), CudaError> {
        let _op = self.profile_op("fill", OpCategory::Memory);
        let name = format!("fill_{}", buf.dtype().suffix());
        let n = buf.len();
        let ptr = buf.ptr_mut();
        self.launch_1d(&name, n, &[&ptr, &len_arg(n), &value])
    }
}

impl ReduceOps<f32> for CudaBackend {
    fn max_into(&mut self, x: &CudaBuffer, out: &mut CudaBuffer) -> Result<(), CudaError> {
        let _op = self.profile_op("max_into", OpCategory::Head);
        expect_f32(out, "max_into");
        let out = out.ptr_mut();
        self.reduce_into("reduce_max", x, out)
    }

    fn min_into(&mut self, x: &CudaBuffer, out: &mut CudaBuffer) -> Result<(), CudaError> {
        let _op = self.profile_op("min_into", OpCategory::Head);
        expect_f32(out, "min_into");
        let out = out.ptr_mut();
        self.reduce_into("reduce_min", x, out)
    }

    fn sum_into(&mut self, x: &CudaBuffer, out: &mut CudaBuffer) -> Result<(), CudaError> {
        let _op = self.profile_op("sum_into", OpCategory::Head);
        expect_f32(out, "sum_into");
        let out = out.ptr_mut();
        self.reduce_into("reduce_sum", x, out)
    }

    fn sum_squares(&mut self, x: &CudaBuffer) -> Result<f32, CudaError> {
        let _op = self.profile_op("sum_squares", OpCategory::Head);
        let mut scalar = self.alloc_uninit(1, DType::F32)?;
        let out = scalar.ptr_mut();
        self.reduce_into("reduce_sum_squares", x, out)?;
        let mut host = [0.0f32];
        self.download(&scalar, 0, &mut host)?;
        Ok(host[0])
    }

    fn count_non_finite(&mut self, x: &CudaBuffer) -> Result<usize, CudaError> {
        let _op = self.profile_op("count_non_finite", OpCategory::Head);
        let stream = self.device.stream.clone();
        let count = stream.alloc_zeros::<u64>(1)?;
        let blocks = reduce_blocks(x.len());
        let (partials, counters) = self.reduction.ensure(&stream, blocks as usize, 1)?;
        let name = format!("count_non_finite_{}", x.dtype().suffix());
        let out = count.device_ptr(&stream).0;
        self.launch(
            &name,
            (blocks, 1, 1),
            (REDUCE_THREADS, 1, 1),
            &[&x.ptr(), &len_arg(x.len()), &partials, &counters, &out],
        )?;
        let host = stream.clone_dtoh(&count)?;
        stream.synchronize()?;
        Ok(host[0] as usize)
    }

    fn dot_accumulate(
        &mut self,
        a: BufAt<'_, CudaBuffer>,
        b: BufAt<'_, CudaBuffer>,
        len: usize,
        alpha: f32,
        acc: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("dot_accumulate", OpCategory::Head);
        assert!(
            a.offset + len <= a.buf.len() && b.offset + len <= b.buf.len(),
            "dot out of bounds"
        );
        expect_f32(acc, "dot_accumulate");
        let blocks = reduce_blocks(len);
        let (partials, counters) =
            self.reduction
                .ensure(&self.device.stream, blocks as usize, 1)?;
        let name = format!(
            "dot_accumulate_{}_{}",
            a.buf.dtype().suffix(),
            b.buf.dtype().suffix()
        );
        let acc_ptr = acc.ptr_mut();
        self.launch(
            &name,
            (blocks, 1, 1),
            (REDUCE_THREADS, 1, 1),
            &[
                &a.buf.ptr(),
                &len_arg(a.offset),
                &b.buf.ptr(),
                &len_arg(b.offset),
                &len_arg(len),
                &alpha,
                &partials,
                &counters,
                &acc_ptr,
            ],
        )
    }
}

impl ElementWiseOps<f32> for CudaBackend {
    fn scale(&mut self, x: &mut CudaBuffer, s: f32) -> Result<(), CudaError> {
        let _op = self.profile_op("scale", OpCategory::Head);
        let name = format!("scale_{}", x.dtype().suffix());
        let n = x.len();
        let ptr = x.ptr_mut();
        self.launch_1d(&name, n, &[&ptr, &len_arg(n), &s])
    }

    fn div_by_scalar(&mut self, x: &mut CudaBuffer, s: &CudaBuffer) -> Result<(), CudaError> {
        let _op = self.profile_op("div_by_scalar", OpCategory::Head);
        expect_f32(x, "div_by_scalar");
        expect_f32(s, "div_by_scalar");
        let n = x.len();
        let ptr = x.ptr_mut();
        self.launch_1d("div_by_scalar", n, &[&ptr, &len_arg(n), &s.ptr()])
    }

    fn exp_div(
        &mut self,
        x: &CudaBuffer,
        eps: f32,
        shift: Option<&CudaBuffer>,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("exp_div", OpCategory::Head);
        expect_f32(x, "exp_div");
        expect_f32(out, "exp_div");
        let n = x.len().min(out.len());
        let shift_ptr: u64 = shift.map_or(0, |s| {
            expect_f32(s, "exp_div");
            s.ptr()
        });
        let out_ptr = out.ptr_mut();
        self.launch_1d(
            "exp_div",
            n,
            &[&x.ptr(), &len_arg(n), &eps, &shift_ptr, &out_ptr],
        )
    }

    fn axpy(
        &mut self,
        alpha: f32,
        x: &CudaBuffer,
        x_offset: usize,
        y: &mut CudaBuffer,
        y_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("axpy", OpCategory::Head);
        assert!(
            x_offset + len <= x.len() && y_offset + len <= y.len(),
            "axpy out of bounds"
        );
        let name = format!("axpy_{}_{}", x.dtype().suffix(), y.dtype().suffix());
        let y_ptr = y.ptr_mut();
        self.launch_1d(
            &name,
            len,
            &[
                &alpha,
                &x.ptr(),
                &len_arg(x_offset),
                &y_ptr,
                &len_arg(y_offset),
                &len_arg(len),
            ],
        )
    }
}

impl MatrixOps<f32> for CudaBackend {
    fn row_sums(
        &mut self,
        m: &CudaBuffer,
        rows: usize,
        cols: usize,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("row_sums", OpCategory::Head);
        expect_f32(m, "row_sums");
        expect_f32(out, "row_sums");
        assert!(
            m.len() >= rows * cols && out.len() >= rows,
            "row_sums out of bounds"
        );
        if rows == 0 {
            return Ok(());
        }
        let out_ptr = out.ptr_mut();
        self.launch(
            "row_sums",
            (rows as u32, 1, 1),
            (threads_per_row(cols), 1, 1),
            &[&m.ptr(), &len_arg(cols), &out_ptr],
        )
    }

    fn col_sums(
        &mut self,
        m: &CudaBuffer,
        rows: usize,
        cols: usize,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("col_sums", OpCategory::Head);
        expect_f32(m, "col_sums");
        expect_f32(out, "col_sums");
        assert!(
            m.len() >= rows * cols && out.len() >= cols,
            "col_sums out of bounds"
        );
        let (plan, partials, counters) = self.column_scratch(rows, cols, 1)?;
        let (grid, block) = plan.grid();
        let out_ptr = out.ptr_mut();
        self.launch(
            "col_sums",
            grid,
            block,
            &[
                &m.ptr(),
                &len_arg(rows),
                &len_arg(cols),
                &out_ptr,
                &partials,
                &counters,
                &plan.chunks,
                &plan.rows_per_chunk,
            ],
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
        let _op = self.profile_op("div_rows", OpCategory::Head);
        expect_f32(m, "div_rows");
        expect_f32(d, "div_rows");
        assert!(
            m.len() >= rows * cols && d.len() >= rows,
            "div_rows out of bounds"
        );
        let m_ptr = m.ptr_mut();
        self.launch_1d(
            "div_rows",
            rows * cols,
            &[&m_ptr, &len_arg(rows), &len_arg(cols), &d.ptr(), &k],
        )
    }

    fn div_cols(
        &mut self,
        m: &mut CudaBuffer,
        rows: usize,
        cols: usize,
        d: &CudaBuffer,
        k: f32,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("div_cols", OpCategory::Head);
        expect_f32(m, "div_cols");
        expect_f32(d, "div_cols");
        assert!(
            m.len() >= rows * cols && d.len() >= cols,
            "div_cols out of bounds"
        );
        let m_ptr = m.ptr_mut();
        self.launch_1d(
            "div_cols",
            rows * cols,
            &[&m_ptr, &len_arg(rows), &len_arg(cols), &d.ptr(), &k],
        )
    }

    fn normalize_rows(
        &mut self,
        m: &mut CudaBuffer,
        rows: usize,
        cols: usize,
        eps: f32,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("normalize_rows", OpCategory::Head);
        expect_f32(m, "normalize_rows");
        assert!(m.len() >= rows * cols, "normalize_rows out of bounds");
        if rows == 0 {
            return Ok(());
        }
        let m_ptr = m.ptr_mut();
        self.launch(
            "normalize_rows",
            (rows as u32, 1, 1),
            (threads_per_row(cols), 1, 1),
            &[&m_ptr, &len_arg(cols), &eps],
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
        let _op = self.profile_op("log_softmax_rows", OpCategory::Head);
        expect_f32(x, "log_softmax_rows");
        expect_f32(out, "log_softmax_rows");
        assert!(
            x.len() >= rows * cols && out.len() >= rows * cols,
            "log_softmax_rows out of bounds"
        );
        if rows == 0 {
            return Ok(());
        }
        let out_ptr = out.ptr_mut();
        self.launch(
            "log_softmax_rows",
            (rows as u32, 1, 1),
            (threads_per_row(cols), 1, 1),
            &[&x.ptr(), &len_arg(cols), &tau, &out_ptr],
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
        let _op = self.profile_op("add_exp_weighted_rows", OpCategory::Head);
        expect_f32(logp, "add_exp_weighted_rows");
        expect_f32(w, "add_exp_weighted_rows");
        expect_f32(out, "add_exp_weighted_rows");
        assert!(
            logp.len() >= rows * cols && out.len() >= rows * cols && w.len() >= rows,
            "add_exp_weighted_rows out of bounds"
        );
        let out_ptr = out.ptr_mut();
        self.launch_1d(
            "add_exp_weighted_rows",
            rows * cols,
            &[
                &logp.ptr(),
                &len_arg(rows),
                &len_arg(cols),
                &w.ptr(),
                &out_ptr,
            ],
        )
    }
}

impl LogDomainOps<f32> for CudaBackend {
    fn col_max_biased(
        &mut self,
        x: ScaledScores<'_, CudaBuffer, f32>,
        b: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("col_max_biased", OpCategory::Head);
        let (x, rows, cols, eps) = (x.scores, x.rows, x.cols, x.eps);
        expect_f32(x, "col_max_biased");
        expect_f32(b, "col_max_biased");
        expect_f32(out, "col_max_biased");
        assert!(
            x.len() >= rows * cols && b.len() >= rows && out.len() >= cols,
            "col_max_biased out of bounds"
        );
        let (plan, partials, counters) = self.column_scratch(rows, cols, 1)?;
        let (grid, block) = plan.grid();
        let out_ptr = out.ptr_mut();
        self.launch(
            "col_max_biased",
            grid,
            block,
            &[
                &x.ptr(),
                &len_arg(rows),
                &len_arg(cols),
                &eps,
                &b.ptr(),
                &out_ptr,
                &partials,
                &counters,
                &plan.chunks,
                &plan.rows_per_chunk,
            ],
        )
    }

    fn col_sum_exp_biased(
        &mut self,
        x: ScaledScores<'_, CudaBuffer, f32>,
        b: &CudaBuffer,
        m: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("col_sum_exp_biased", OpCategory::Head);
        let (x, rows, cols, eps) = (x.scores, x.rows, x.cols, x.eps);
        for buf in [x, b, m, &*out] {
            expect_f32(buf, "col_sum_exp_biased");
        }
        assert!(
            x.len() >= rows * cols && b.len() >= rows && m.len() >= cols && out.len() >= cols,
            "col_sum_exp_biased out of bounds"
        );
        let (plan, partials, counters) = self.column_scratch(rows, cols, 1)?;
        let (grid, block) = plan.grid();
        let out_ptr = out.ptr_mut();
        self.launch(
            "col_sum_exp_biased",
            grid,
            block,
            &[
                &x.ptr(),
                &len_arg(rows),
                &len_arg(cols),
                &eps,
                &b.ptr(),
                &m.ptr(),
                &out_ptr,
                &partials,
                &counters,
                &plan.chunks,
                &plan.rows_per_chunk,
            ],
        )
    }

    fn row_logsumexp_biased(
        &mut self,
        x: ScaledScores<'_, CudaBuffer, f32>,
        a: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("row_logsumexp_biased", OpCategory::Head);
        let (x, rows, cols, eps) = (x.scores, x.rows, x.cols, x.eps);
        for buf in [x, a, &*out] {
            expect_f32(buf, "row_logsumexp_biased");
        }
        assert!(
            x.len() >= rows * cols && a.len() >= cols && out.len() >= rows,
            "row_logsumexp_biased out of bounds"
        );
        if rows == 0 {
            return Ok(());
        }
        let out_ptr = out.ptr_mut();
        self.launch(
            "row_logsumexp_biased",
            (rows as u32, 1, 1),
            (threads_per_row(cols), 1, 1),
            &[&x.ptr(), &len_arg(cols), &eps, &a.ptr(), &out_ptr],
        )
    }

    fn exp_biased(
        &mut self,
        x: ScaledScores<'_, CudaBuffer, f32>,
        b: &CudaBuffer,
        a: &CudaBuffer,
        out: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("exp_biased", OpCategory::Head);
        let (x, rows, cols, eps) = (x.scores, x.rows, x.cols, x.eps);
        for buf in [x, b, a, &*out] {
            expect_f32(buf, "exp_biased");
        }
        assert!(
            x.len() >= rows * cols
                && b.len() >= rows
                && a.len() >= cols
                && out.len() >= rows * cols,
            "exp_biased out of bounds"
        );
        let out_ptr = out.ptr_mut();
        self.launch_1d(
            "exp_biased",
            rows * cols,
            &[
                &x.ptr(),
                &len_arg(rows),
                &len_arg(cols),
                &eps,
                &b.ptr(),
                &a.ptr(),
                &out_ptr,
            ],
        )
    }

    fn neg_log_sum_shifted(
        &mut self,
        m: &CudaBuffer,
        s: &CudaBuffer,
        ln_k: f32,
        v: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("neg_log_sum_shifted", OpCategory::Head);
        for buf in [m, s, &*v] {
            expect_f32(buf, "neg_log_sum_shifted");
        }
        let n = v.len().min(m.len()).min(s.len());
        let v_ptr = v.ptr_mut();
        self.launch_1d(
            "neg_log_sum_shifted",
            n,
            &[&m.ptr(), &s.ptr(), &len_arg(n), &ln_k, &v_ptr],
        )
    }

    fn negate_minus(&mut self, x: &mut CudaBuffer, c: f32) -> Result<(), CudaError> {
        let _op = self.profile_op("negate_minus", OpCategory::Head);
        expect_f32(x, "negate_minus");
        let n = x.len();
        let ptr = x.ptr_mut();
        self.launch_1d("negate_minus", n, &[&ptr, &len_arg(n), &c])
    }
}

impl SgdOps<f32> for CudaBackend {
    fn sgd_momentum_step(
        &mut self,
        p: &mut CudaBuffer,
        g: &CudaBuffer,
        buf: &mut CudaBuffer,
        step: SgdStep<f32>,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("sgd_momentum_step", OpCategory::Optimizer);
        for b in [&*p, g, &*buf] {
            expect_f32(b, "sgd_momentum_step");
        }
        let n = p.len().min(g.len()).min(buf.len());
        let (p_ptr, copy) = p.ptr_mut_with_copy();
        let copy_ptr: u64 = copy.unwrap_or(0);
        let buf_ptr = buf.ptr_mut();
        self.launch_1d(
            "sgd_momentum_step",
            n,
            &[
                &p_ptr,
                &g.ptr(),
                &buf_ptr,
                &copy_ptr,
                &len_arg(n),
                &step.scaling.grad_scale,
                &step.scaling.weight_decay,
                &step.lr,
                &step.momentum,
                &i32::from(step.first),
            ],
        )
    }
}
