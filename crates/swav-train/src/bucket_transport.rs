//! [`BucketTransport`]: where a step's gradient buckets are summed over ranks.

use swav_core::Collective;
use swav_nn::Backend;

use crate::step_failure::StepFailure;

/// Sums gradient buckets over all ranks for a [`SwavStep`](crate::SwavStep).
///
/// Per step: [`begin`](Self::begin) before backward, [`launch`](Self::launch) of buckets
/// 0, 1, 2, … in order while backward runs (each as soon as its gradients are final), then
/// [`wait_all`](Self::wait_all) after backward. Every rank launches the same buckets in the
/// same order, so a transport may reduce them one after another on a communicator of its
/// own, on another thread or stream, while backward goes on. What it must not change is the
/// arithmetic: the sum of one bucket is the sum its collective computes, whatever the
/// timing.
pub trait BucketTransport<B: Backend> {
    /// A backward pass is about to start.
    fn begin(&mut self) -> Result<(), StepFailure>;

    /// Starts summing bucket `index` over all ranks. The transport may take the buffer's
    /// contents away until [`wait_all`](Self::wait_all) puts the sum back.
    fn launch(&mut self, b: &mut B, index: usize, bucket: &mut B::Buf) -> Result<(), StepFailure>;

    /// Backward has ended: waits for every launched bucket, leaving bucket `k`'s sum over
    /// all ranks in `buckets[k]`.
    fn wait_all(&mut self, b: &mut B, buckets: &mut [B::Buf]) -> Result<(), StepFailure>;
}

/// Reduces each bucket at launch, on the calling thread (or the collective's own stream),
/// through the step's all-ranks collective: fewer collectives than one per tensor, but no
/// overlap with backward on a blocking transport such as MPI.
pub(crate) struct InlineTransport<'a, C> {
    /// The all-ranks collective.
    pub(crate) comm: &'a C,
}

impl<B: Backend, C: Collective<B::Buf>> BucketTransport<B> for InlineTransport<'_, C> {
    fn begin(&mut self) -> Result<(), StepFailure> {
        Ok(())
    }

    fn launch(&mut self, _: &mut B, _: usize, bucket: &mut B::Buf) -> Result<(), StepFailure> {
        self.comm
            .all_reduce_sum(bucket)
            .map_err(|e| StepFailure::Collective(e.to_string()))
    }

    fn wait_all(&mut self, _: &mut B, _: &mut [B::Buf]) -> Result<(), StepFailure> {
        Ok(())
    }
}
