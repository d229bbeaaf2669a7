//! Batches and their recycled buffers.
//!
//! Layout (what the model relies on): one NHWC `f32` buffer per resolution group. Within a
//! group, crops are crop-major: crop `c` (local to the group) of image `n` is image number
//! `c * batch + n` of the buffer, i.e. all `batch` images of the group's first crop, then
//! all of its second crop, and so on. Each image is `size * size * 3` values, HWC.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::transform::multi_crop::ResolutionGroup;

/// The memory of one batch: one buffer per group plus the sample bookkeeping.
#[derive(Debug)]
pub(crate) struct BatchStorage {
    pub(crate) groups: Vec<Vec<f32>>,
    pub(crate) indices: Vec<usize>,
    pub(crate) labels: Vec<usize>,
}

/// Recycled batch buffers. A batch dropped by the consumer returns its storage here; a
/// new storage is allocated only when none is free. At most `spares` free storages are
/// kept, so memory follows what is in flight plus what the consumer holds.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: (Sender<BatchStorage>, Receiver<BatchStorage>),
    allocated: AtomicUsize,
    group_lens: Vec<usize>,
    batch_size: usize,
}

impl BufferPool {
    pub(crate) fn new(groups: &[ResolutionGroup], batch_size: usize, spares: usize) -> Self {
        Self {
            free: crossbeam_channel::bounded(spares),
            allocated: AtomicUsize::new(0),
            group_lens: groups
                .iter()
                .map(|g| g.crops * batch_size * g.crop_len())
                .collect(),
            batch_size,
        }
    }

    /// A free storage, or a new one.
    pub(crate) fn acquire(&self) -> BatchStorage {
        self.free.1.try_recv().unwrap_or_else(|_| {
            self.allocated.fetch_add(1, Ordering::Relaxed);
            BatchStorage {
                groups: self.group_lens.iter().map(|&len| vec![0.0; len]).collect(),
                indices: Vec::with_capacity(self.batch_size),
                labels: Vec::with_capacity(self.batch_size),
            }
        })
    }

    /// Storages allocated so far.
    pub(crate) fn allocated(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Where dropped batches send their storage.
    pub(crate) fn recycler(&self) -> Sender<BatchStorage> {
        self.free.0.clone()
    }
}

/// One batch of augmented images. Dropping it returns its buffers to the loader.
#[derive(Debug)]
pub struct Batch {
    epoch: u64,
    iteration: usize,
    len: usize,
    groups: Arc<[ResolutionGroup]>,
    labelled: bool,
    storage: Option<BatchStorage>,
    recycle: Sender<BatchStorage>,
}

impl Batch {
    pub(crate) fn new(
        epoch: u64,
        iteration: usize,
        groups: Arc<[ResolutionGroup]>,
        labelled: bool,
        storage: BatchStorage,
        recycle: Sender<BatchStorage>,
    ) -> Self {
        Self {
            epoch,
            iteration,
            len: 0,
            groups,
            labelled,
            storage: Some(storage),
            recycle,
        }
    }

    pub(crate) fn storage_mut(&mut self) -> Option<&mut BatchStorage> {
        self.storage.as_mut()
    }

    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len;
    }

    /// The epoch this batch belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The batch's position within its epoch.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    /// Images in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of resolution groups.
    pub fn num_groups(&self) -> usize {
        self.groups.len()
    }

    /// Resolution group `group` (see the module docs for the layout).
    pub fn group(&self, group: usize) -> Option<GroupBatch<'_>> {
        let layout = *self.groups.get(group)?;
        let buffer = self.storage.as_ref()?.groups.get(group)?;
        Some(GroupBatch {
            layout,
            batch: self.len,
            data: &buffer[..layout.crops * self.len * layout.crop_len()],
        })
    }

    /// All resolution groups, in crop order.
    pub fn groups(&self) -> impl Iterator<Item = GroupBatch<'_>> {
        (0..self.groups.len()).filter_map(|g| self.group(g))
    }

    /// The dataset index of each image (after any bad-input substitution).
    pub fn indices(&self) -> &[usize] {
        self.storage.as_ref().map_or(&[], |s| &s.indices[..])
    }

    /// The label of each image; `None` for an unlabelled dataset.
    pub fn labels(&self) -> Option<&[usize]> {
        self.storage
            .as_ref()
            .filter(|_| self.labelled)
            .map(|s| &s.labels[..])
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(storage) = self.storage.take() {
            // With the spares full or the loader gone, the memory is simply freed.
            let _ = self.recycle.try_send(storage);
        }
    }
}

/// One resolution group of a batch: `crops * batch` images of `size x size x 3`, NHWC,
/// crop-major.
#[derive(Debug, Clone, Copy)]
pub struct GroupBatch<'a> {
    layout: ResolutionGroup,
    batch: usize,
    data: &'a [f32],
}

impl<'a> GroupBatch<'a> {
    /// Image side in pixels.
    pub fn size(&self) -> u32 {
        self.layout.size
    }

    /// Crops in the group.
    pub fn crops(&self) -> usize {
        self.layout.crops
    }

    /// Global index of the group's first crop.
    pub fn first_crop(&self) -> usize {
        self.layout.first_crop
    }

    /// Images per crop (the batch size).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// NHWC shape: `[crops * batch, size, size, 3]`.
    pub fn shape(&self) -> [usize; 4] {
        let size = self.layout.size as usize;
        [self.layout.crops * self.batch, size, size, 3]
    }

    /// The whole buffer.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Crop `crop` (local to the group) of image `image`: `size * size * 3` values, HWC.
    pub fn image(&self, crop: usize, image: usize) -> Option<&'a [f32]> {
        if crop >= self.layout.crops || image >= self.batch {
            return None;
        }
        let len = self.layout.crop_len();
        let at = (crop * self.batch + image) * len;
        self.data.get(at..at + len)
    }
}
