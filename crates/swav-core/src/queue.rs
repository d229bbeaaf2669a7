//! The per-assignment-crop feature queue of small-batch SwAV (docs/algorithm.md §2.3).
//!
//! Each assignment crop has its own queue of past embeddings (`rows × dim` on this rank,
//! newest first). Official semantics, replicated exactly:
//! * the total length is rounded down to a multiple of the global batch, and each rank holds
//!   `total / world` rows ([`FeatureQueue::rows_per_rank`]);
//! * it is created filled with zeros (at the epoch `epoch_queue_starts`) and persists across
//!   epochs;
//! * it is *used* (its scores prepended to the batch's before Sinkhorn) once its last row is
//!   non-zero, i.e. once it has been filled completely, and from then on for the rest of the
//!   epoch ([`FeatureQueue::start_epoch`] re-arms that check);
//! * after its scores are used it shifts down by one batch (the oldest rows fall off) and
//!   the current batch's embeddings are written at the top.

use alloc::vec::Vec;

use crate::{HeadOps, Real};

/// Past embeddings of each assignment crop, on the device.
#[derive(Debug)]
pub struct FeatureQueue<B> {
    crops: Vec<B>,
    rows: usize,
    dim: usize,
    batch: usize,
    in_use: bool,
}

impl<B> FeatureQueue<B> {
    /// Rows each rank holds for a requested total length: SwAV's rounding
    /// `total -= total % (batch · world)`, then `total / world`. Zero means "no queue".
    pub fn rows_per_rank(requested_total: usize, batch: usize, world: usize) -> usize {
        let global_batch = batch * world;
        if global_batch == 0 {
            return 0;
        }
        (requested_total - requested_total % global_batch) / world
    }

    /// A zero-filled queue for `assignment_crops` crops of `rows` (per rank, a positive
    /// multiple of `batch`) embeddings of dimension `dim`.
    pub fn new<T: Real, O: HeadOps<T, Buf = B>>(
        ops: &mut O,
        assignment_crops: usize,
        rows: usize,
        dim: usize,
        batch: usize,
    ) -> Result<Self, O::Error> {
        assert!(
            batch > 0 && rows >= batch && rows.is_multiple_of(batch),
            "queue rows ({rows}) must be a positive multiple of the batch ({batch})"
        );
        let crops = (0..assignment_crops)
            .map(|_| ops.zeros(rows * dim))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            crops,
            rows,
            dim,
            batch,
            in_use: false,
        })
    }

    /// Restores a queue from host data laid out `[crop][row][dim]` (a checkpoint); the
    /// in-use flag starts cleared, as at any epoch start.
    pub fn from_host<T: Real, O: HeadOps<T, Buf = B>>(
        ops: &mut O,
        data: &[T],
        assignment_crops: usize,
        rows: usize,
        dim: usize,
        batch: usize,
    ) -> Result<Self, O::Error> {
        assert_eq!(data.len(), assignment_crops * rows * dim, "queue data size");
        let mut queue = Self::new(ops, assignment_crops, rows, dim, batch)?;
        for (buf, chunk) in queue.crops.iter_mut().zip(data.chunks_exact(rows * dim)) {
            ops.upload(chunk, buf, 0)?;
        }
        Ok(queue)
    }

    /// Copies the queue to the host, laid out `[crop][row][dim]` (for checkpoints).
    pub fn to_host<T: Real, O: HeadOps<T, Buf = B>>(
        &self,
        ops: &mut O,
    ) -> Result<Vec<T>, O::Error> {
        let mut out = alloc::vec![T::zero(); self.crops.len() * self.rows * self.dim];
        for (buf, chunk) in self
            .crops
            .iter()
            .zip(out.chunks_exact_mut(self.rows * self.dim))
        {
            ops.download(buf, 0, chunk)?;
        }
        Ok(out)
    }

    /// Re-arms the "use once full" check, as the official `use_the_queue = False` at the
    /// start of every epoch (a filled queue is used again from the first iteration).
    pub fn start_epoch(&mut self) {
        self.in_use = false;
    }

    /// Whether the queue's scores are being prepended (set once it has been full).
    pub fn in_use(&self) -> bool {
        self.in_use
    }

    /// Rows per assignment crop on this rank.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of assignment crops (one queue each).
    pub fn assignment_crops(&self) -> usize {
        self.crops.len()
    }

    /// The embeddings of assignment crop `i` (`rows × dim`, newest first).
    pub fn embeddings(&self, i: usize) -> &B {
        &self.crops[i]
    }

    /// The official decision for crop `i`: already in use, or its last row is non-zero
    /// (filled once). Sets the in-use flag, which is shared by all crops, when true.
    pub fn should_use<T: Real, O: HeadOps<T, Buf = B>>(
        &mut self,
        ops: &mut O,
        i: usize,
    ) -> Result<bool, O::Error> {
        if !self.in_use {
            let mut last = alloc::vec![T::zero(); self.dim];
            ops.download(&self.crops[i], (self.rows - 1) * self.dim, &mut last)?;
            self.in_use = last.iter().any(|v| *v != T::zero());
        }
        Ok(self.in_use)
    }

    /// Shifts crop `i`'s queue down by one batch and writes `batch` new embeddings, taken
    /// from `embeddings` starting at row `first_row`, at the top.
    pub fn push<T: Real, O: HeadOps<T, Buf = B>>(
        &mut self,
        ops: &mut O,
        i: usize,
        embeddings: &B,
        first_row: usize,
    ) -> Result<(), O::Error> {
        let (bs, d) = (self.batch, self.dim);
        let q = &mut self.crops[i];
        ops.copy_within(q, 0, bs * d, (self.rows - bs) * d)?;
        ops.copy(embeddings, first_row * d, q, 0, bs * d)
    }
}
