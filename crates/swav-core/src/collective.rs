//! Collective communication between data-parallel ranks.
//!
//! The official SwAV code all-reduces at exactly three kinds of points: the global sum (and,
//! in the stable variant, the global max) of the Sinkhorn matrix, the per-prototype row sums
//! in every Sinkhorn iteration, and the gradients. [`Collective`] is the seam where a
//! backend plugs in its transport (NCCL, MPI, threads); [`SingleProcess`] is the identity.

/// All-reduce operations over the ranks of one data-parallel job, on buffers of type `B`.
///
/// `B` is the buffer type of the backend the collective serves: `[f32]` for host memory,
/// a device slice type for a GPU backend. Every rank must call the same operations in the
/// same order with buffers of the same length; the result is left in place on every rank.
pub trait Collective<B: ?Sized> {
    /// The transport's failure (a peer that died or timed out, a library error).
    type Error: core::fmt::Debug + core::fmt::Display;

    /// This process's rank, in `0..world_size()`.
    fn rank(&self) -> usize;

    /// The number of ranks taking part.
    fn world_size(&self) -> usize;

    /// Replaces every element of `data` by its sum over all ranks.
    fn all_reduce_sum(&self, data: &mut B) -> Result<(), Self::Error>;

    /// Replaces every element of `data` by its maximum over all ranks.
    fn all_reduce_max(&self, data: &mut B) -> Result<(), Self::Error>;
}

/// The collective of a job with a single rank: every reduction is the identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleProcess;

impl<B: ?Sized> Collective<B> for SingleProcess {
    type Error = core::convert::Infallible;

    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _data: &mut B) -> Result<(), Self::Error> {
        Ok(())
    }
    fn all_reduce_max(&self, _data: &mut B) -> Result<(), Self::Error> {
        Ok(())
    }
}
