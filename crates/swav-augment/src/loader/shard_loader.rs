//! The training loader over WebDataset shards: streamed, shuffled through a buffer, split
//! across ranks by shard, resumable at any iteration.
//!
//! * **Split.** Shard `i` of the list belongs to rank `i mod world_size`, so every rank
//!   reads only its own shards (there must be at least as many shards as ranks). Each
//!   epoch a rank reads its shards in an order drawn from (seed, epoch, rank).
//! * **Count.** At start-up every rank counts the samples of every shard from the tar
//!   headers alone ([`count_samples`]: 512 bytes read per member, no image decoded), so all
//!   ranks agree on the iterations per epoch without talking: `floor(min over ranks of
//!   the rank's samples / batch_size)`. A rank with more samples leaves its surplus
//!   unread at the end of each epoch. No index of the samples is kept.
//! * **Shuffle.** One reader thread per rank streams its shards through a
//!   [`ShuffleBuffer`] of `shuffle_buffer` samples (default [`DEFAULT_SHUFFLE_BUFFER`])
//!   drawing from the same stream, so the order is a function of (seed, epoch, rank).
//!   Decoding and augmentation run on the worker pool, and every crop draws from the
//!   stream keyed by (seed, epoch, `position * world_size + rank`), where `position` is
//!   the sample's place in the rank's epoch: batches are bit-identical for any number of
//!   workers.
//! * **Resume.** Starting an epoch at iteration `k` re-reads the epoch's stream and drops
//!   its first `k * batch_size` samples undecoded, so a resumed run trains on exactly the
//!   samples, in the order and with the crops, that the uninterrupted run would have.
//! * **Bad samples** (undecodable or too small images, a `cls` that is not a number, a
//!   sample without an image member) are skipped and reported with shard and key, as a
//!   folder's bad files are; a bad image is replaced by the next readable sample of its
//!   batch, so batches stay full. A shard that is not a readable tar archive stops the
//!   epoch with an error naming it.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::dataset::decode::decode_image;
use crate::error::{ConfigError, DatasetError, LoaderError};
use crate::loader::bad_input::{BadInputLog, BadInputPolicy, BadInputSummary, check_size};
use crate::loader::config::{LoaderConfig, validate_common};
use crate::loader::pipeline::{Engine, EpochBatches, EpochPlan, Filled, ImageFiller};
use crate::loader::stats::LoaderStats;
use crate::rgb_image::RgbImage;
use crate::rng::{fisher_yates, shard_stream};
use crate::shards::shuffle_buffer::ShuffleBuffer;
use crate::shards::tar_samples::{
    IMAGE_MEMBERS, RawSample, ShardCount, count_samples, read_samples,
};
use crate::transform::crop::CropScratch;
use crate::transform::multi_crop::{MultiCropTransform, ResolutionGroup, SampleKey};

/// Samples held by the shuffle buffer unless configured otherwise.
pub const DEFAULT_SHUFFLE_BUFFER: usize = 1000;

/// One shard and what its headers say it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard's path.
    pub path: PathBuf,
    /// Its samples.
    pub count: ShardCount,
}

/// Counts the samples of every shard in `paths` (see [`count_samples`]).
pub fn count_shards(paths: &[PathBuf]) -> Result<Vec<ShardInfo>, DatasetError> {
    paths
        .iter()
        .map(|path| {
            Ok(ShardInfo {
                path: path.clone(),
                count: count_samples(path)?,
            })
        })
        .collect()
}

/// A sample on its way from a shard to a batch.
pub(crate) struct ShardSample {
    /// `shard << 32 | ordinal in the shard`: its identity in bad-input reports.
    id: usize,
    /// `shard path:key`.
    name: String,
    image: Vec<u8>,
    /// Its class (0 without a `cls`), or why its `cls` is not one.
    label: Result<usize, String>,
    /// Its place in the rank's epoch stream.
    position: u64,
}

/// Decodes and augments one sample of a batch, replacing a bad one by the next readable
/// sample of the batch.
struct ShardFiller {
    transform: Arc<MultiCropTransform>,
    seed: u64,
    rank: u64,
    world: u64,
    policy: BadInputPolicy,
    log: Arc<BadInputLog>,
}

impl ShardFiller {
    /// The image and class of `sample`, or `None` when it is bad (recorded).
    fn decode(&self, sample: &ShardSample) -> Result<Option<(RgbImage, usize)>, LoaderError> {
        if self.log.is_known_bad(sample.id) {
            return Ok(None);
        }
        let named = Path::new(&sample.name);
        let checked = sample
            .label
            .clone()
            .map_err(|reason| DatasetError::Decode {
                path: named.to_path_buf(),
                reason,
            })
            .and_then(|label| {
                let image = decode_image(&sample.image, named)?;
                Ok((
                    check_size(image, || sample.name.clone(), &self.policy)?,
                    label,
                ))
            });
        match checked {
            Ok(decoded) => Ok(Some(decoded)),
            Err(error) if self.policy.strict => Err(LoaderError::BadSample(error)),
            Err(error) => {
                self.log.record(sample.id, sample.name.clone(), &error);
                Ok(None)
            }
        }
    }
}

impl ImageFiller<ShardSample> for ShardFiller {
    fn fill(
        &self,
        epoch: u64,
        batch: &[ShardSample],
        position: usize,
        outputs: &mut [&mut [f32]],
        scratch: &mut CropScratch,
    ) -> Result<Option<Filled>, LoaderError> {
        let key = SampleKey {
            seed: self.seed,
            epoch,
            index: batch[position].position * self.world + self.rank,
        };
        for step in 0..batch.len() {
            let sample = &batch[(position + step) % batch.len()];
            let Some((image, label)) = self.decode(sample)? else {
                continue;
            };
            self.transform
                .apply(&image, key, scratch, outputs)
                .map_err(|source| LoaderError::Transform {
                    name: sample.name.clone(),
                    source,
                })?;
            return Ok(Some(Filled {
                index: sample.id,
                label,
            }));
        }
        Err(LoaderError::NoReadableSample {
            len: batch.len(),
            first: self.log.first_reason(),
        })
    }
}

/// SwAV's training loader over WebDataset shards (see the module documentation).
pub struct ShardLoader {
    config: LoaderConfig,
    shards: Arc<[ShardInfo]>,
    /// This rank's shards, as indices into `shards`.
    mine: Vec<usize>,
    /// Samples of each rank's shards.
    rank_samples: Vec<usize>,
    iters: usize,
    shuffle_buffer: usize,
    transform: Arc<MultiCropTransform>,
    log: Arc<BadInputLog>,
    engine: Engine<ShardSample>,
}

impl ShardLoader {
    /// A loader over `shards` (counted by [`count_shards`]) with `transform`.
    pub fn new(
        shards: Vec<ShardInfo>,
        transform: MultiCropTransform,
        config: LoaderConfig,
        shuffle_buffer: usize,
    ) -> Result<Self, LoaderError> {
        validate_common(config.batch_size, config.workers, config.prefetch)?;
        let world = config.world_size.max(1);
        if config.rank >= world {
            return Err(ConfigError::new(
                "rank",
                format!("{} is not below world_size {world}", config.rank),
            )
            .into());
        }
        if shards.len() < world {
            return Err(ConfigError::new(
                "world_size",
                format!(
                    "{world} ranks need at least {world} shards (each rank reads its own), but the data has {}",
                    shards.len()
                ),
            )
            .into());
        }
        let total: usize = shards.iter().map(|s| s.count.samples).sum();
        if total == 0 {
            return Err(LoaderError::EmptyDataset);
        }
        let rank_samples: Vec<usize> = (0..world)
            .map(|r| {
                shards
                    .iter()
                    .skip(r)
                    .step_by(world)
                    .map(|s| s.count.samples)
                    .sum()
            })
            .collect();
        let fewest = rank_samples.iter().copied().min().unwrap_or(0);
        let iters = fewest / config.batch_size;
        if iters == 0 {
            return Err(ConfigError::new(
                "batch_size",
                format!(
                    "{} exceeds the {fewest} samples of the smallest rank's shards, so no batch is full; use a batch size of at most {fewest}",
                    config.batch_size
                ),
            )
            .into());
        }
        let labelled = shards.iter().all(|s| s.count.labelled == s.count.samples);
        let transform = Arc::new(transform);
        let log = Arc::new(BadInputLog::default());
        let filler = Arc::new(ShardFiller {
            transform: Arc::clone(&transform),
            seed: config.seed,
            rank: config.rank as u64,
            world: world as u64,
            policy: config.bad_input,
            log: Arc::clone(&log),
        });
        let engine = Engine::new(
            labelled,
            filler,
            transform.resolution_groups().to_vec(),
            config.batch_size,
            config.workers,
            config.prefetch,
        )?;
        Ok(Self {
            mine: (config.rank..shards.len()).step_by(world).collect(),
            config,
            shards: shards.into(),
            rank_samples,
            iters,
            shuffle_buffer,
            transform,
            log,
            engine,
        })
    }

    /// Every shard, with its count.
    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    /// The samples of each rank's shards (the smallest sets the epoch's length).
    pub fn rank_samples(&self) -> &[usize] {
        &self.rank_samples
    }

    /// Batches per epoch: `floor(min over ranks of its samples / batch_size)`.
    pub fn iters_per_epoch(&self) -> usize {
        self.iters
    }

    /// The resolution groups of every batch.
    pub fn resolution_groups(&self) -> &[ResolutionGroup] {
        self.transform.resolution_groups()
    }

    /// Whether every sample has a `cls` label.
    pub fn is_labelled(&self) -> bool {
        self.engine.labelled
    }

    /// The samples of `epoch` on this rank, as they come out of the shuffle buffer.
    fn stream(&self, epoch: u64, skip: usize, batches: usize) -> ShardStream {
        let mut rng = shard_stream(self.config.seed, epoch, self.config.rank as u64);
        let mut order = self.mine.clone();
        fisher_yates(&mut order, &mut rng);
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let mut reader = StreamReader {
            shards: Arc::clone(&self.shards),
            log: Arc::clone(&self.log),
            buffer: ShuffleBuffer::new(self.shuffle_buffer, rng),
            skip,
            batch_size: self.config.batch_size,
            batches,
            next_position: 0,
            current: Vec::with_capacity(self.config.batch_size),
            sender,
        };
        let handle = std::thread::Builder::new()
            .name("swav-shard-reader".into())
            .spawn(move || reader.run(&order))
            .ok();
        ShardStream {
            receiver: Some(receiver),
            reader: handle,
        }
    }

    /// The batches of `epoch` from iteration `start` on (resume). `start` equal to
    /// [`Self::iters_per_epoch`] gives an empty epoch.
    pub fn epoch_from(&self, epoch: u64, start: usize) -> Result<EpochBatches, LoaderError> {
        if start > self.iters {
            return Err(LoaderError::StartPastEnd {
                iteration: start,
                iters_per_epoch: self.iters,
            });
        }
        let count = self.iters - start;
        let stream = self.stream(epoch, start * self.config.batch_size, count);
        if stream.reader.is_none() {
            return Err(LoaderError::ThreadPool {
                workers: 1,
                reason: "cannot start the shard reader thread".into(),
            });
        }
        self.engine.run(EpochPlan {
            epoch,
            first_iteration: start,
            count,
            batches: Box::new(stream),
        })
    }

    /// Bad samples met so far.
    pub fn bad_input_summary(&self) -> BadInputSummary {
        self.log.summary()
    }

    /// Throughput counters since creation or the last [`Self::reset_stats`].
    pub fn stats(&self) -> LoaderStats {
        self.engine.stats()
    }

    /// Restarts the throughput counters.
    pub fn reset_stats(&self) {
        self.engine.stats.reset();
    }
}

/// The reader thread's side of one epoch's stream.
struct StreamReader {
    shards: Arc<[ShardInfo]>,
    log: Arc<BadInputLog>,
    buffer: ShuffleBuffer<ShardSample>,
    /// Samples to drop undecoded at the start (resume).
    skip: usize,
    batch_size: usize,
    /// Batches still to send.
    batches: usize,
    next_position: u64,
    current: Vec<ShardSample>,
    sender: Sender<Result<Vec<ShardSample>, LoaderError>>,
}

impl StreamReader {
    fn run(&mut self, order: &[usize]) {
        if self.batches == 0 {
            return;
        }
        for &shard in order {
            let path = self.shards[shard].path.clone();
            let mut ordinal = 0usize;
            let read = read_samples(&path, |raw| {
                let id = (shard << 32) | ordinal;
                ordinal += 1;
                match self.sample(&path, id, raw) {
                    Some(sample) => match self.buffer.push(sample) {
                        Some(out) => self.emit(out),
                        None => ControlFlow::Continue(()),
                    },
                    None => ControlFlow::Continue(()),
                }
            });
            if let Err(error) = read {
                let _ = self.sender.send(Err(LoaderError::Shard(error)));
                return;
            }
            if self.batches == 0 {
                return;
            }
        }
        while let Some(out) = self.buffer.pop() {
            if self.emit(out).is_break() {
                return;
            }
        }
        if self.batches > 0 {
            let first = order.first().map(|&s| self.shards[s].path.clone());
            let _ = self.sender.send(Err(LoaderError::Shard(DatasetError::Shard {
                shard: first.unwrap_or_default(),
                reason: format!(
                    "this rank's shards ended after {} samples, fewer than they held when the run started; did a shard change?",
                    self.next_position
                ),
            })));
        }
    }

    /// The sample to train on from `raw`, or `None` (recorded) when it has no image.
    fn sample(&self, path: &Path, id: usize, raw: RawSample) -> Option<ShardSample> {
        let name = format!("{}:{}", path.display(), raw.key);
        let label = raw.label().map(|l| l.unwrap_or(0));
        let Some(index) = raw
            .members
            .iter()
            .position(|(ext, _)| IMAGE_MEMBERS.contains(&ext.as_str()))
        else {
            let reason = format!(
                "sample {} has no image member ({}); its members: {}",
                raw.key,
                IMAGE_MEMBERS.join(", "),
                raw.extensions()
            );
            self.log.record(
                id,
                name,
                &DatasetError::Shard {
                    shard: path.to_path_buf(),
                    reason,
                },
            );
            return None;
        };
        let mut members = raw.members;
        Some(ShardSample {
            id,
            name,
            image: members.swap_remove(index).1,
            label,
            position: 0,
        })
    }

    /// Places `sample` in the epoch: dropped while resuming, else into the current batch,
    /// which is sent when full. Breaks when the epoch is complete or nobody listens.
    fn emit(&mut self, mut sample: ShardSample) -> ControlFlow<()> {
        let position = self.next_position;
        self.next_position += 1;
        if (position as usize) < self.skip {
            return ControlFlow::Continue(());
        }
        sample.position = position;
        self.current.push(sample);
        if self.current.len() < self.batch_size {
            return ControlFlow::Continue(());
        }
        let batch = std::mem::replace(&mut self.current, Vec::with_capacity(self.batch_size));
        if self.sender.send(Ok(batch)).is_err() {
            self.batches = 0;
            return ControlFlow::Break(());
        }
        self.batches -= 1;
        if self.batches == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// The scheduled batches of one epoch, as the reader thread sends them. Dropping it stops
/// the reader.
struct ShardStream {
    receiver: Option<Receiver<Result<Vec<ShardSample>, LoaderError>>>,
    reader: Option<JoinHandle<()>>,
}

impl Iterator for ShardStream {
    type Item = Result<Vec<ShardSample>, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.receiver.as_ref()?.recv().ok()
    }
}

impl Drop for ShardStream {
    fn drop(&mut self) {
        // Disconnecting first makes a reader blocked on a send return.
        self.receiver.take();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
