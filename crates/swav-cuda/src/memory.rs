//! Device memory: the stream-ordered pool and the grow-only workspaces.
//!
//! Buffers come from the device's default memory pool through `cuMemAllocAsync` on the
//! compute stream (cudarc does this whenever the device supports pools, as every GPU since
//! Pascal does) and go back to it with `cuMemFreeAsync` on the same stream. Freeing is
//! therefore ordered with the work that used the memory, and a temporary can be dropped as
//! soon as the kernels that use it are enqueued.
//!
//! By default the driver hands pool memory back to the system at every synchronisation,
//! which makes the next step allocate from scratch. [`keep_freed_memory_in_pool`] raises the
//! pool's release threshold to "never", so after the first step every allocation is served
//! from memory the pool already holds. Workspaces that libraries need on every call (cuDNN's
//! convolution workspace, cuBLAS's) are allocated once and only ever grow.

use std::sync::Arc;

use cudarc::driver::sys::CUmemPool_attribute;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr};

use crate::CudaError;

/// Makes the device's default pool keep freed memory instead of releasing it at each
/// synchronisation (release threshold = `u64::MAX`). A no-op on devices without pools.
pub(crate) fn keep_freed_memory_in_pool(ctx: &Arc<CudaContext>) -> Result<(), CudaError> {
    if !ctx.has_async_alloc() {
        return Ok(());
    }
    // SAFETY: the device handle is valid while `ctx` lives; the attribute takes a u64.
    unsafe {
        let pool = cudarc::driver::result::device::get_default_mem_pool(ctx.cu_device())?;
        let mut threshold: u64 = u64::MAX;
        cudarc::driver::result::mem_pool::set_attribute(
            pool,
            CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut threshold as *mut u64).cast(),
        )?;
    }
    Ok(())
}

/// One u64 attribute of the device's default pool (0 on devices without pools).
fn pool_attribute(
    ctx: &Arc<CudaContext>,
    attribute: CUmemPool_attribute,
) -> Result<u64, CudaError> {
    if !ctx.has_async_alloc() {
        return Ok(0);
    }
    let mut value: u64 = 0;
    // SAFETY: the device handle is valid while `ctx` lives; these attributes are u64.
    unsafe {
        let pool = cudarc::driver::result::device::get_default_mem_pool(ctx.cu_device())?;
        cudarc::driver::result::mem_pool::get_attribute(
            pool,
            attribute,
            (&mut value as *mut u64).cast(),
        )?;
    }
    Ok(value)
}

/// What the default pool holds and hands out, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolUsage {
    /// Held by the pool (in use plus freed memory it keeps).
    pub reserved: u64,
    /// In use by live allocations.
    pub used: u64,
    /// The most in use at once since the pool was created or the peak was reset.
    pub peak_used: u64,
}

pub(crate) fn pool_usage(ctx: &Arc<CudaContext>) -> Result<PoolUsage, CudaError> {
    Ok(PoolUsage {
        reserved: pool_attribute(
            ctx,
            CUmemPool_attribute::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT,
        )?,
        used: pool_attribute(ctx, CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT)?,
        peak_used: pool_attribute(ctx, CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH)?,
    })
}

/// Restarts the pool's peak-use counter from the current use.
pub(crate) fn reset_pool_peak(ctx: &Arc<CudaContext>) -> Result<(), CudaError> {
    if !ctx.has_async_alloc() {
        return Ok(());
    }
    // SAFETY: as above; the high watermark may only be set to zero.
    unsafe {
        let pool = cudarc::driver::result::device::get_default_mem_pool(ctx.cu_device())?;
        let mut zero: u64 = 0;
        cudarc::driver::result::mem_pool::set_attribute(
            pool,
            CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
            (&mut zero as *mut u64).cast(),
        )?;
    }
    Ok(())
}

/// A device scratch area that only grows: one per library that needs a workspace.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    memory: Option<CudaSlice<u8>>,
}

impl Workspace {
    /// The workspace's address and size, grown to at least `bytes` first. The old memory is
    /// freed in stream order, so work already enqueued on `stream` still sees it.
    pub(crate) fn ensure(
        &mut self,
        stream: &Arc<CudaStream>,
        bytes: usize,
    ) -> Result<(u64, usize), CudaError> {
        let current = self.memory.as_ref().map_or(0, |m| m.len());
        if current < bytes || self.memory.is_none() {
            self.memory = None;
            // Round up to 1 MiB so that a sequence of slightly larger requests grows once.
            let rounded = bytes.max(1).div_ceil(1 << 20) << 20;
            // SAFETY: workspace contents are never read before the library writes them.
            self.memory = Some(unsafe { stream.alloc::<u8>(rounded) }?);
        }
        let memory = self.memory.as_ref().expect("allocated above");
        Ok((memory.device_ptr(stream).0, memory.len()))
    }

    /// The current size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.len())
    }
}
