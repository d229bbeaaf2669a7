//! The GPU ranks' gradient buckets: summed by NCCL on a communication stream of their own
//! ([`NcclBucketStream`]) while backward goes on, or with `SWAV_OVERLAP_GRADIENTS=0` on the
//! compute stream through the all-ranks communicator.

use anyhow::{Result, anyhow};
use swav_cuda::{CudaBackend, NcclBucketStream, NcclCollective};
use swav_train::{BucketTransport, GradientCommunication, StepFailure};

use super::overlap::overlap_requested;

/// [`NcclBucketStream`] as the step's bucket transport.
struct NcclGradientStream(NcclBucketStream);

fn failed(e: swav_cuda::CudaError) -> StepFailure {
    StepFailure::Collective(e.to_string())
}

impl BucketTransport<CudaBackend> for NcclGradientStream {
    fn begin(&mut self) -> Result<(), StepFailure> {
        Ok(())
    }

    fn launch(
        &mut self,
        b: &mut CudaBackend,
        _: usize,
        bucket: &mut swav_cuda::CudaBuffer,
    ) -> Result<(), StepFailure> {
        self.0.launch(b, bucket).map_err(failed)
    }

    fn wait_all(
        &mut self,
        b: &mut CudaBackend,
        _: &mut [swav_cuda::CudaBuffer],
    ) -> Result<(), StepFailure> {
        self.0.join(b).map_err(failed)
    }
}

/// How the GPU ranks of `world` average gradients: buckets of `bucket_cap_mb` MiB, on the
/// communication stream unless `SWAV_OVERLAP_GRADIENTS=0`. Every rank calls it (it makes a
/// communicator).
pub fn cuda_gradient_communication(
    b: &mut CudaBackend,
    world: &NcclCollective,
    bucket_cap_mb: usize,
) -> Result<GradientCommunication<CudaBackend>> {
    let transport: Option<Box<dyn BucketTransport<CudaBackend>>> = if overlap_requested(true)? {
        let stream = NcclBucketStream::new(b, world)
            .map_err(|e| anyhow!("the gradient communication stream: {e}"))?;
        Some(Box::new(NcclGradientStream(stream)))
    } else {
        None
    };
    Ok(GradientCommunication {
        bucket_cap_mb,
        transport,
    })
}
