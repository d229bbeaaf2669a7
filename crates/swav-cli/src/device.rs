//! Running a piece of work on the backend the user chose, and which GPU a rank opens.

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

/// Opens the GPU of the rank `rank` with local rank `local_rank` ([`choose_gpu`] over the
/// GPUs this process sees), with one warning line when it must share that GPU.
pub fn open_cuda_for_rank(rank: usize, local_rank: usize) -> Result<swav_cuda::CudaBackend> {
    let visible = swav_cuda::device_count().map_err(|e| anyhow!("--device cuda: {e}"))?;
    let pinned = std::env::var_os("CUDA_VISIBLE_DEVICES").is_some();
    let choice = choose_gpu(rank, local_rank, visible, pinned);
    if let Some(note) = &choice.note {
        tracing::warn!("{note}");
    }
    open_cuda(choice.ordinal)
}

/// The GPU a rank opens, and what to tell the user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuChoice {
    /// The CUDA ordinal among the visible GPUs.
    pub ordinal: usize,
    /// Set when this rank shares its GPU with another rank on the node.
    pub note: Option<String>,
}

/// GPU `local_rank % visible` for the rank `rank`. Ranks past the visible GPUs wrap around
/// and share one, which the note says; except where the process sees a single GPU because
/// `CUDA_VISIBLE_DEVICES` is set (`pinned`), as launchers that give each rank its own GPU do
/// (Slurm's `--gpus-per-task=1`), where every rank uses GPU 0 and shares nothing. With no
/// GPU visible the choice is GPU 0, whose opening then fails with a clear error.
pub fn choose_gpu(rank: usize, local_rank: usize, visible: usize, pinned: bool) -> GpuChoice {
    if visible == 0 {
        return GpuChoice {
            ordinal: 0,
            note: None,
        };
    }
    let ordinal = local_rank % visible;
    let shares = local_rank >= visible && !(pinned && visible == 1);
    let plural = if visible == 1 { "" } else { "s" };
    GpuChoice {
        ordinal,
        note: shares.then(|| {
            format!(
                "rank {rank}: local rank {local_rank} but {visible} GPU{plural} visible; using GPU {ordinal}, so at least two ranks share a GPU"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_local_rank_gets_its_own_gpu_while_there_are_enough() {
        for local_rank in 0..4 {
            assert_eq!(
                choose_gpu(8 + local_rank, local_rank, 4, false),
                GpuChoice {
                    ordinal: local_rank,
                    note: None
                }
            );
        }
    }

    #[test]
    fn ranks_past_the_visible_gpus_wrap_around_and_say_so() {
        let choice = choose_gpu(5, 5, 4, false);
        assert_eq!(choice.ordinal, 1);
        assert_eq!(
            choice.note.as_deref(),
            Some(
                "rank 5: local rank 5 but 4 GPUs visible; using GPU 1, so at least two ranks share a GPU"
            )
        );
        let choice = choose_gpu(3, 3, 1, false);
        assert_eq!(choice.ordinal, 0);
        assert!(choice.note.unwrap().contains("but 1 GPU visible"));
        let choice = choose_gpu(6, 6, 2, true);
        assert_eq!(choice.ordinal, 0);
        assert!(choice.note.is_some(), "two pinned GPUs for more ranks");
    }

    #[test]
    fn a_rank_pinned_to_its_own_gpu_uses_gpu_0_quietly() {
        assert_eq!(
            choose_gpu(11, 3, 1, true),
            GpuChoice {
                ordinal: 0,
                note: None
            }
        );
    }

    #[test]
    fn without_a_visible_gpu_the_choice_is_gpu_0() {
        assert_eq!(choose_gpu(1, 1, 0, false).ordinal, 0);
    }
}
