//! The machinery shared by the loaders: a feeder thread that schedules batches onto a rayon
//! pool, workers that fill each batch's images in parallel, and the consumer-side iterator
//! that hands batches out in order.
//!
//! Prefetch is bounded by credits: the feeder needs one to start a batch, and the consumer
//! returns one each time it takes a batch. At most `prefetch` batches are therefore being
//! filled or waiting, however long the consumer keeps the batches it took.
//!
//! Every image is written to a slot fixed by its position in the batch and every random
//! draw is keyed by (seed, epoch, sample, crop), so the output is bit-identical whatever
//! the number of workers and however the work is scheduled. Several batches are in flight
//! at once (up to the prefetch depth), so workers never idle at batch boundaries.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rayon::prelude::*;

use crate::error::LoaderError;
use crate::loader::batch::{Batch, BufferPool};
use crate::loader::stats::{LoaderStats, StatsCollector};
use crate::transform::crop::CropScratch;
use crate::transform::multi_crop::ResolutionGroup;

thread_local! {
    /// Each worker thread's crop buffers, reused across images.
    static SCRATCH: RefCell<CropScratch> = RefCell::new(CropScratch::new());
}

/// The sample an image slot was filled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Filled {
    /// Its index (a dataset index, or a shard sample's id), kept in [`Batch::indices`].
    pub(crate) index: usize,
    /// Its class (0 when unlabelled).
    pub(crate) label: usize,
}

/// Fills the output slots of one image. `T` is what a batch is scheduled as: dataset
/// indices, or samples read from shards.
pub(crate) trait ImageFiller<T>: Send + Sync + 'static {
    /// Loads sample `position` of the scheduled `batch` of `epoch` and writes its crops to
    /// `outputs` (one slot per crop, in crop order). Returns the sample actually used (a
    /// bad one may be replaced by another), or `None` when the sample is left out.
    fn fill(
        &self,
        epoch: u64,
        batch: &[T],
        position: usize,
        outputs: &mut [&mut [f32]],
        scratch: &mut CropScratch,
    ) -> Result<Option<Filled>, LoaderError>;
}

/// The scheduled batches of one epoch run, produced lazily (a stream may still be reading
/// them); an error ends the epoch with that error.
pub(crate) type ScheduledBatches<T> = Box<dyn Iterator<Item = Result<Vec<T>, LoaderError>> + Send>;

/// What one epoch run needs.
pub(crate) struct EpochPlan<T> {
    pub(crate) epoch: u64,
    /// Iteration number of the first batch in `batches`.
    pub(crate) first_iteration: usize,
    /// How many batches `batches` yields.
    pub(crate) count: usize,
    /// The scheduled samples of each batch.
    pub(crate) batches: ScheduledBatches<T>,
}

impl EpochPlan<usize> {
    /// A plan over batches of dataset indices known in advance.
    pub(crate) fn indices(epoch: u64, first_iteration: usize, batches: Vec<Vec<usize>>) -> Self {
        Self {
            epoch,
            first_iteration,
            count: batches.len(),
            batches: Box::new(batches.into_iter().map(Ok)),
        }
    }
}

/// The parts of a loader the pipeline runs on.
pub(crate) struct Engine<T> {
    pub(crate) pool: Arc<rayon::ThreadPool>,
    pub(crate) buffers: Arc<BufferPool>,
    pub(crate) stats: Arc<StatsCollector>,
    pub(crate) groups: Arc<[ResolutionGroup]>,
    /// Whether batches carry labels.
    pub(crate) labelled: bool,
    pub(crate) filler: Arc<dyn ImageFiller<T>>,
    prefetch: usize,
}

impl<T> Clone for Engine<T> {
    fn clone(&self) -> Self {
        Self {
            pool: Arc::clone(&self.pool),
            buffers: Arc::clone(&self.buffers),
            stats: Arc::clone(&self.stats),
            groups: Arc::clone(&self.groups),
            labelled: self.labelled,
            filler: Arc::clone(&self.filler),
            prefetch: self.prefetch,
        }
    }
}

impl<T: Send + Sync + 'static> Engine<T> {
    /// Builds the worker pool and the buffer pool (which keeps `prefetch + 1` spare
    /// buffers: the prefetched batches plus the one the consumer holds).
    pub(crate) fn new(
        labelled: bool,
        filler: Arc<dyn ImageFiller<T>>,
        groups: Vec<ResolutionGroup>,
        batch_size: usize,
        workers: usize,
        prefetch: usize,
    ) -> Result<Self, LoaderError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("swav-loader-{i}"))
            .build()
            .map_err(|e| LoaderError::ThreadPool {
                workers,
                reason: e.to_string(),
            })?;
        Ok(Self {
            pool: Arc::new(pool),
            buffers: Arc::new(BufferPool::new(&groups, batch_size, prefetch + 1)),
            stats: Arc::new(StatsCollector::new(workers)),
            groups: groups.into(),
            labelled,
            filler,
            prefetch,
        })
    }

    /// Throughput counters since creation or the last reset.
    pub(crate) fn stats(&self) -> LoaderStats {
        self.stats.snapshot(self.buffers.allocated())
    }

    /// Starts producing the batches of `plan`.
    pub(crate) fn run(&self, plan: EpochPlan<T>) -> Result<EpochBatches, LoaderError> {
        let count = plan.count;
        // Unbounded, yet never longer than the prefetch depth: each result used a credit.
        let (results_tx, results_rx) = crossbeam_channel::unbounded();
        let (cancel_tx, cancel_rx) = crossbeam_channel::bounded::<()>(0);
        let (credit_tx, credit_rx) = crossbeam_channel::bounded::<()>(self.prefetch);
        for _ in 0..self.prefetch {
            let _ = credit_tx.try_send(());
        }
        let engine = self.clone();
        let epoch = plan.epoch;
        let first_iteration = plan.first_iteration;
        let feeder = std::thread::Builder::new()
            .name("swav-loader-feed".into())
            .spawn(move || engine.feed(plan, results_tx, credit_rx, cancel_rx))
            .map_err(|e| LoaderError::ThreadPool {
                workers: 1,
                reason: e.to_string(),
            })?;
        Ok(EpochBatches {
            epoch,
            first_iteration,
            next: 0,
            count,
            results: results_rx,
            pending: BTreeMap::new(),
            stats: Arc::clone(&self.stats),
            failed: false,
            credits: credit_tx,
            cancel: Some(cancel_tx),
            feeder: Some(feeder),
        })
    }

    /// Feeder thread: one pool task per batch, each started once a credit is available.
    /// A batch the schedule fails to produce is delivered as its error, and ends the epoch.
    fn feed(
        self,
        plan: EpochPlan<T>,
        results: Sender<(usize, Result<Batch, LoaderError>)>,
        credits: Receiver<()>,
        cancel: Receiver<()>,
    ) {
        for (position, scheduled) in plan.batches.enumerate() {
            let granted = crossbeam_channel::select! {
                recv(credits) -> credit => credit.is_ok(),
                recv(cancel) -> _ => false,
            };
            if !granted {
                return;
            }
            let samples = match scheduled {
                Ok(samples) => samples,
                Err(error) => {
                    let _ = results.send((position, Err(error)));
                    return;
                }
            };
            let storage = self.buffers.acquire();
            let iteration = plan.first_iteration + position;
            let batch = Batch::new(
                plan.epoch,
                iteration,
                Arc::clone(&self.groups),
                self.labelled,
                storage,
                self.buffers.recycler(),
            );
            let engine = self.clone();
            let results = results.clone();
            self.pool.spawn(move || {
                let result = engine.fill_batch(batch, plan.epoch, &samples);
                // The consumer may have gone; the batch then recycles itself.
                let _ = results.send((position, result));
            });
        }
    }

    /// Fills every image of `batch` in parallel. A panic in a worker becomes an error.
    fn fill_batch(
        &self,
        mut batch: Batch,
        epoch: u64,
        samples: &[T],
    ) -> Result<Batch, LoaderError> {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.fill_images(&mut batch, epoch, samples)
        }));
        match outcome {
            Ok(Ok(())) => Ok(batch),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(LoaderError::WorkerLost {
                epoch,
                iteration: batch.iteration(),
            }),
        }
    }

    fn fill_images(&self, batch: &mut Batch, epoch: u64, samples: &[T]) -> Result<(), LoaderError> {
        let groups = Arc::clone(&self.groups);
        let n = samples.len();
        let Some(storage) = batch.storage_mut() else {
            return Ok(());
        };
        // Split each group buffer into per-(crop, image) slots; chunk k of a group is crop
        // k / n of image k % n, so each image's slots come out in crop order.
        let mut slots: Vec<Vec<&mut [f32]>> = (0..n).map(|_| Vec::new()).collect();
        for (group, buffer) in groups.iter().zip(storage.groups.iter_mut()) {
            let len = group.crop_len();
            for (k, slot) in buffer[..group.crops * n * len]
                .chunks_exact_mut(len)
                .enumerate()
            {
                slots[k % n].push(slot);
            }
        }
        let filled: Vec<(Result<Option<Filled>, LoaderError>, Duration)> = slots
            .par_iter_mut()
            .enumerate()
            .map(|(position, outputs)| {
                let started = Instant::now();
                // A dataset whose `load` itself uses rayon can make this thread run another
                // image while the scratch is borrowed; that image gets fresh buffers.
                let result = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
                    Ok(mut scratch) => {
                        self.filler
                            .fill(epoch, samples, position, outputs, &mut scratch)
                    }
                    Err(_) => {
                        self.filler
                            .fill(epoch, samples, position, outputs, &mut CropScratch::new())
                    }
                });
                (result, started.elapsed())
            })
            .collect();
        drop(slots);
        self.stats
            .record_work(n, filled.iter().map(|(_, busy)| *busy).sum());
        let mut kept = Vec::with_capacity(n);
        for (position, (result, _)) in filled.into_iter().enumerate() {
            if let Some(sample) = result? {
                kept.push((position, sample));
            }
        }
        if kept.len() < n {
            compact(&groups, &mut storage.groups, n, &kept);
        }
        storage.indices.clear();
        storage
            .indices
            .extend(kept.iter().map(|(_, sample)| sample.index));
        storage.labels.clear();
        storage
            .labels
            .extend(kept.iter().map(|(_, sample)| sample.label));
        batch.set_len(kept.len());
        Ok(())
    }
}

/// Moves the kept images of a batch of `n` down so that the buffers hold a batch of
/// `kept.len()` in the crop-major layout. Destinations never pass their sources.
fn compact(
    groups: &[ResolutionGroup],
    buffers: &mut [Vec<f32>],
    n: usize,
    kept: &[(usize, Filled)],
) {
    let m = kept.len();
    for (group, buffer) in groups.iter().zip(buffers.iter_mut()) {
        let len = group.crop_len();
        for crop in 0..group.crops {
            for (j, &(position, _)) in kept.iter().enumerate() {
                let from = (crop * n + position) * len;
                let to = (crop * m + j) * len;
                buffer.copy_within(from..from + len, to);
            }
        }
    }
}

/// The batches of one epoch, in order. Dropping it stops the production of the rest.
pub struct EpochBatches {
    epoch: u64,
    first_iteration: usize,
    next: usize,
    count: usize,
    results: Receiver<(usize, Result<Batch, LoaderError>)>,
    pending: BTreeMap<usize, Result<Batch, LoaderError>>,
    stats: Arc<StatsCollector>,
    failed: bool,
    credits: Sender<()>,
    cancel: Option<Sender<()>>,
    feeder: Option<JoinHandle<()>>,
}

impl EpochBatches {
    /// The epoch being produced.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The iteration number of the next batch.
    pub fn next_iteration(&self) -> usize {
        self.first_iteration + self.next
    }

    /// Batches not yet handed out.
    pub fn remaining(&self) -> usize {
        if self.failed {
            0
        } else {
            self.count - self.next
        }
    }
}

impl Iterator for EpochBatches {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.count {
            return None;
        }
        let requested = Instant::now();
        let result = loop {
            if let Some(result) = self.pending.remove(&self.next) {
                break result;
            }
            match self.results.recv() {
                Ok((position, result)) => {
                    self.pending.insert(position, result);
                }
                Err(_) => {
                    break Err(LoaderError::WorkerLost {
                        epoch: self.epoch,
                        iteration: self.next_iteration(),
                    });
                }
            }
        };
        let waited = requested.elapsed();
        self.next += 1;
        // The batch left the prefetch window: the feeder may start another.
        let _ = self.credits.try_send(());
        match &result {
            Ok(batch) => self.stats.record_delivery(requested, waited, batch.len()),
            Err(_) => {
                self.failed = true;
                self.stats.record_delivery(requested, waited, 0);
            }
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining()))
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        // Disconnecting the cancel channel wakes a feeder waiting for a buffer.
        self.cancel.take();
        self.pending.clear();
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
    }
}
