//! Opening a GPU: the driver context, the compute stream, and what the device is.
//!
//! Every path into the driver starts with the non-panicking library probe, so a machine
//! without a driver gets [`CudaError::NoDriver`] and one without a GPU
//! [`CudaError::NoDevice`], never a panic.

use std::sync::Arc;

use cudarc::driver::sys::{CUdevice_attribute, cudaError_enum};
use cudarc::driver::{CudaContext, CudaStream};

use crate::CudaError;
use crate::libraries::require_driver;
use crate::memory::keep_freed_memory_in_pool;

/// The number of CUDA devices visible to this process (0 when the driver sees none).
pub fn device_count() -> Result<usize, CudaError> {
    require_driver()?;
    match CudaContext::device_count() {
        Ok(n) => Ok(n.max(0) as usize),
        Err(e) if e.0 == cudaError_enum::CUDA_ERROR_NO_DEVICE => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// What a device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The CUDA ordinal.
    pub ordinal: usize,
    /// The marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// (major, minor), e.g. (9, 0) for Hopper.
    pub compute_capability: (i32, i32),
    /// Device memory in bytes.
    pub total_memory: usize,
    /// Streaming multiprocessors.
    pub multiprocessors: i32,
}

impl DeviceInfo {
    /// The NVRTC architecture of this device, e.g. `"sm_90"`.
    pub fn arch(&self) -> String {
        format!(
            "sm_{}{}",
            self.compute_capability.0, self.compute_capability.1
        )
    }
}

/// An open device: its primary context (with cudarc's per-buffer event tracking turned off,
/// since the backend orders its streams itself) and the stream all compute runs on.
#[derive(Debug)]
pub(crate) struct Device {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) info: DeviceInfo,
}

impl Device {
    /// Opens device `ordinal`, creates its compute stream and configures its memory pool.
    pub(crate) fn open(ordinal: usize) -> Result<Self, CudaError> {
        let found = device_count()?;
        if ordinal >= found {
            return Err(CudaError::NoDevice { ordinal, found });
        }
        let ctx = CudaContext::new(ordinal)?;
        // SAFETY: no buffer exists yet in this context object; from here on the backend
        // orders every cross-stream use with explicit events (see `activation.rs`), and frees
        // are stream-ordered on the compute stream that allocated them.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream()?;
        keep_freed_memory_in_pool(&ctx)?;
        let info = DeviceInfo {
            ordinal,
            name: ctx.name()?,
            compute_capability: ctx.compute_capability()?,
            total_memory: ctx.total_mem()?,
            multiprocessors: ctx
                .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        };
        Ok(Self { ctx, stream, info })
    }
}
