//! The step's input batches on the device, double-buffered so that the next batch is staged
//! ([`ActivationOps::stage_inputs`](swav_nn::ActivationOps::stage_inputs)) while the current step computes.
//!
//! Each iteration awaits the batch staged during the previous step
//! ([`ActivationOps::await_staged_inputs`](swav_nn::ActivationOps::await_staged_inputs)), takes the next batch from the loader and stages it into
//! the other set of input buffers, and hands the current batch's crop groups to the step. On
//! the GPU the copy of batch `i + 1` thus runs during step `i`, whose loss download is the
//! first point where the host waits. On a backend that uploads synchronously (the CPU) this
//! is an upload one batch ahead of the same values: runs stay bit-for-bit reproducible.

use anyhow::{Result, anyhow};
use swav_augment::LoaderError;
use swav_augment::loader::Batch;
use swav_nn::{Backend, CropGroup};

/// Two sets of input buffers, one activation buffer per resolution group each.
pub struct InputFeed<B: Backend> {
    /// `(crops, side)` of each resolution group.
    groups: Vec<(usize, usize)>,
    buffers: [Vec<B::Buf>; 2],
}

impl<B: Backend> InputFeed<B> {
    /// Buffers for batches of `batch` images in resolution groups of `(crops, side)` square
    /// RGB crops.
    pub fn new(b: &mut B, groups: &[(usize, usize)], batch: usize) -> Result<Self, B::Error> {
        let mut buffers: [Vec<B::Buf>; 2] = [Vec::new(), Vec::new()];
        for set in &mut buffers {
            for &(crops, side) in groups {
                set.push(b.alloc_activation(crops * batch * side * side * 3)?);
            }
        }
        Ok(Self {
            groups: groups.to_vec(),
            buffers,
        })
    }

    /// Feeds the batches of one epoch.
    pub fn epoch<I>(&mut self, batches: I) -> EpochFeed<'_, B, I>
    where
        I: Iterator<Item = Result<Batch, LoaderError>>,
    {
        EpochFeed {
            feed: self,
            batches,
            started: false,
            staged: None,
        }
    }
}

/// The batches of one epoch, one staged ahead.
pub struct EpochFeed<'a, B: Backend, I> {
    feed: &'a mut InputFeed<B>,
    batches: I,
    started: bool,
    /// The buffer set holding the staged, not yet awaited batch.
    staged: Option<usize>,
}

impl<B: Backend, I> EpochFeed<'_, B, I>
where
    I: Iterator<Item = Result<Batch, LoaderError>>,
{
    /// The crop groups of the next batch, ready for the step (with the batch after it
    /// already on its way), or `None` at the end of the epoch.
    pub fn next_groups(&mut self, b: &mut B) -> Result<Option<Vec<CropGroup<'_, B::Buf>>>> {
        if !self.started {
            self.started = true;
            self.stage_next(b, 0)?;
        }
        let Some(current) = self.staged.take() else {
            return Ok(None);
        };
        b.await_staged_inputs().map_err(device)?;
        self.stage_next(b, 1 - current)?;
        let feed = &*self.feed;
        Ok(Some(crop_groups(&feed.buffers[current], &feed.groups)))
    }

    /// Stages the loader's next batch, if any, into buffer set `set`.
    fn stage_next(&mut self, b: &mut B, set: usize) -> Result<()> {
        let Some(batch) = self.batches.next() else {
            return Ok(());
        };
        let batch = batch?;
        let groups: Vec<&[f32]> = batch.groups().map(|g| g.data()).collect();
        b.stage_inputs(&groups, &mut self.feed.buffers[set])
            .map_err(device)?;
        self.staged = Some(set);
        Ok(())
    }
}

/// The step's view of input buffers holding one batch: buffer `i` is resolution group `i`
/// of `(crops, side)` square crops.
pub fn crop_groups<'a, Buf>(
    buffers: &'a [Buf],
    groups: &[(usize, usize)],
) -> Vec<CropGroup<'a, Buf>> {
    buffers
        .iter()
        .zip(groups)
        .map(|(images, &(crops, side))| CropGroup {
            images,
            crops,
            height: side,
            width: side,
        })
        .collect()
}

fn device<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("device error: {e}")
}
