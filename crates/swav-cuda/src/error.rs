//! [`CudaError`]: every way the CUDA backend can fail, as one typed error.

use cudarc::cublas::result::CublasError;
use cudarc::cudnn::result::CudnnError;
use cudarc::driver::DriverError;
use cudarc::nccl::result::NcclError;

/// A failure of the CUDA backend. Its `Display` is one line a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// The CUDA driver library (`libcuda.so.1`) cannot be loaded: no NVIDIA driver on this
    /// machine, or it is not on the loader's search path.
    #[error(
        "no CUDA driver: libcuda.so could not be loaded (is an NVIDIA driver installed? see scripts/gpu-env.sh)"
    )]
    NoDriver,

    /// The driver loaded but there is no usable GPU with this ordinal.
    #[error("no CUDA device {ordinal}: {found} device(s) visible")]
    NoDevice {
        /// The ordinal that was asked for.
        ordinal: usize,
        /// How many devices the driver reports.
        found: usize,
    },

    /// A CUDA library other than the driver is missing (cuBLAS, cuDNN, NVRTC, NCCL).
    #[error(
        "the CUDA library {library} could not be loaded: put its folder on LD_LIBRARY_PATH (source scripts/gpu-env.sh)"
    )]
    MissingLibrary {
        /// The library's short name, e.g. `"cudnn"`.
        library: &'static str,
    },

    /// No folder holding `cuda_bf16.h` was found for NVRTC.
    #[error(
        "cuda_bf16.h not found for NVRTC (searched: {searched}); set SWAV_CUDA_INCLUDE to the CUDA include folder, e.g. <site-packages>/nvidia/cu13/include"
    )]
    MissingCudaHeaders {
        /// The folders that were tried, separated by commas.
        searched: String,
    },

    /// A CUDA driver call failed (out of memory, a failed launch, a lost device...).
    #[error("CUDA driver error: {0}")]
    Driver(#[from] DriverError),

    /// NVRTC failed to compile one of the kernel modules (a bug in a kernel source, or an
    /// NVRTC that does not know the target architecture).
    #[error("NVRTC failed to compile kernel module {module}: {message}")]
    Compile {
        /// The kernel module, e.g. `"batch_norm"`.
        module: &'static str,
        /// NVRTC's error and log.
        message: String,
    },

    /// A cuBLAS call failed.
    #[error("cuBLAS error: {0}")]
    Cublas(#[from] CublasError),

    /// A cuDNN call failed.
    #[error("cuDNN error in {operation}: {error}")]
    Cudnn {
        /// What was being done, e.g. `"convolution forward"`.
        operation: &'static str,
        /// cuDNN's status.
        error: CudnnError,
    },

    /// cuDNN found no algorithm for a convolution under the backend's constraints.
    #[error("cuDNN has no {operation} algorithm for {shape} within the constraints ({constraint})")]
    NoConvolutionAlgorithm {
        /// Forward, backward-data or backward-filter.
        operation: &'static str,
        /// The convolution, as text.
        shape: String,
        /// Why candidates were rejected (determinism, workspace limit).
        constraint: &'static str,
    },

    /// An NCCL call failed. (NCCL's error type is not a `std::error::Error`; it is kept as
    /// its debug text.)
    #[error("NCCL error in {operation}: {detail}")]
    Nccl {
        /// What was being done, e.g. `"all-reduce"`.
        operation: &'static str,
        /// NCCL's status.
        detail: String,
    },

    /// An environment variable of this crate has a value it does not know.
    #[error("{variable}={value} is not a known value (expected one of: {expected})")]
    Setting {
        /// The variable, e.g. `"SWAV_CUDNN_ALGOS"`.
        variable: &'static str,
        /// Its value.
        value: String,
        /// The values it takes, separated by commas.
        expected: &'static str,
    },

    /// A kernel name that the compiled modules do not define: a bug in this crate.
    #[error("kernel {0} is not defined by any compiled module")]
    MissingKernel(String),
}

impl CudaError {
    /// Wraps a cuDNN status with the operation it came from.
    pub(crate) fn cudnn(operation: &'static str) -> impl FnOnce(CudnnError) -> CudaError {
        move |error| CudaError::Cudnn { operation, error }
    }

    /// Wraps an NCCL status with the operation it came from.
    pub(crate) fn nccl(operation: &'static str) -> impl FnOnce(NcclError) -> CudaError {
        move |error| CudaError::Nccl {
            operation,
            detail: format!("{:?}", error.0),
        }
    }
}
