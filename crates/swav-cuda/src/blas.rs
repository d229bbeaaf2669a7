//! cuBLAS for the linear layers and the prototype scores, on the compute stream.
//!
//! Products go through `cublasGemmEx`, which takes the element type of each operand: bf16
//! operands with f32 accumulation (and an f32 or bf16 result) under mixed precision, f32
//! throughout otherwise. The handle's math mode is cuBLAS's default, which does **not** use
//! TF32, so f32 products are true f32 products (the prototype scores, and every product in
//! [`Precision::F32`](crate::Precision::F32)). The handle gets a fixed 32 MiB workspace
//! (NVIDIA's recommendation for Hopper), so cuBLAS never allocates during a step.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::cublas::sys::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasMath_t, cublasOperation_t, cudaDataType,
};
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};

use crate::libraries::require_cublas;
use crate::{CudaError, DType};

/// cuBLAS's workspace size.
const CUBLAS_WORKSPACE_BYTES: usize = 32 << 20;

/// One operand of a product: a device address and its element type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operand {
    pub ptr: u64,
    pub dtype: DType,
}

/// A row-major product `C (m × n) = alpha · op(A) · op(B) + beta · C`, with `op(A)` `m × k`
/// and `op(B)` `k × n`; `transpose_a` means A is stored `k × m` (leading dimension `lda`
/// counts elements per stored row), likewise for B.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowMajorGemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Operand,
    pub lda: usize,
    pub transpose_a: bool,
    pub b: Operand,
    pub ldb: usize,
    pub transpose_b: bool,
    pub c: Operand,
    pub ldc: usize,
    pub alpha: f32,
    pub beta: f32,
}

/// The cuBLAS handle of a backend.
#[derive(Debug)]
pub(crate) struct Blas {
    blas: CudaBlas,
    _workspace: CudaSlice<u8>,
}

impl Blas {
    pub(crate) fn new(stream: &Arc<CudaStream>) -> Result<Self, CudaError> {
        require_cublas()?;
        let blas = CudaBlas::new(stream.clone())?;
        // SAFETY: workspace contents are cuBLAS's; it is never read by us.
        let workspace = unsafe { stream.alloc::<u8>(CUBLAS_WORKSPACE_BYTES) }?;
        let (ptr, _) = workspace.device_ptr(stream);
        // SAFETY: the handle is live; the workspace lives as long as the handle (same struct,
        // and the handle is declared first so it is destroyed first).
        unsafe {
            cudarc::cublas::sys::cublasSetWorkspace_v2(
                *blas.handle(),
                ptr as *mut c_void,
                CUBLAS_WORKSPACE_BYTES,
            )
            .result()?;
            cudarc::cublas::sys::cublasSetMathMode(
                *blas.handle(),
                cublasMath_t::CUBLAS_DEFAULT_MATH,
            )
            .result()?;
        }
        Ok(Self {
            blas,
            _workspace: workspace,
        })
    }

    /// Runs a row-major product. bf16 × bf16 accumulates in f32 and may write f32 or bf16;
    /// f32 × f32 writes f32. Mixed operand types are the caller's to avoid (it converts).
    pub(crate) fn gemm(&self, g: &RowMajorGemm) -> Result<(), CudaError> {
        assert_eq!(
            g.a.dtype, g.b.dtype,
            "gemm operands must share an element type"
        );
        assert!(
            g.a.dtype == DType::Bf16 || g.c.dtype == DType::F32,
            "an f32 product writes f32"
        );
        let op = |t: bool| {
            if t {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        let int = |v: usize| i32::try_from(v).expect("gemm dimension exceeds i32");
        // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands.
        // SAFETY: addresses are live device buffers of at least the sizes the dimensions
        // imply (checked by the callers); alpha and beta are host f32, matching
        // CUBLAS_COMPUTE_32F in host pointer mode.
        unsafe {
            cudarc::cublas::result::gemm_ex(
                *self.blas.handle(),
                op(g.transpose_b),
                op(g.transpose_a),
                int(g.n),
                int(g.m),
                int(g.k),
                (&g.alpha as *const f32).cast(),
                g.b.ptr as *const c_void,
                data_type(g.b.dtype),
                int(g.ldb),
                g.a.ptr as *const c_void,
                data_type(g.a.dtype),
                int(g.lda),
                (&g.beta as *const f32).cast(),
                g.c.ptr as *mut c_void,
                data_type(g.c.dtype),
                int(g.ldc),
                cublasComputeType_t::CUBLAS_COMPUTE_32F,
                cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
            )?;
        }
        Ok(())
    }
}

fn data_type(dtype: DType) -> cudaDataType {
    match dtype {
        DType::F32 => cudaDataType::CUDA_R_32F,
        DType::Bf16 => cudaDataType::CUDA_R_16BF,
    }
}
