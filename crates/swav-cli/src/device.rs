//! Running a piece of work on the backend the user chose.

use anyhow::{Result, anyhow};
use swav_nn::Backend;

use crate::config::Device;

/// Work that runs on any backend.
pub trait BackendJob {
    /// What the work returns.
    type Output;
    /// Runs it on `b`.
    fn run<B: Backend>(self, b: &mut B) -> Result<Self::Output>;
}

/// Creates the backend for `device` (GPU `ordinal` for CUDA) and runs `job` on it.
pub fn on_device<J: BackendJob>(device: Device, ordinal: usize, job: J) -> Result<J::Output> {
    match device {
        Device::Cpu => job.run(&mut swav_cpu::CpuBackend::new()),
        Device::Cuda => job.run(&mut open_cuda(ordinal)?),
    }
}

/// Opens GPU `ordinal` for `--device cuda`; without a usable GPU, one clear line.
pub fn open_cuda(ordinal: usize) -> Result<swav_cuda::CudaBackend> {
    swav_cuda::CudaBackend::new(ordinal).map_err(|e| anyhow!("--device cuda: {e}"))
}
