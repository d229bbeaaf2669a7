//! The training loader: shuffled, sharded, multi-crop batches.

use std::sync::Arc;

use crate::dataset::Dataset;
use crate::error::{ConfigError, LoaderError};
use crate::loader::bad_input::{BadInputLog, BadInputPolicy, BadInputSummary};
use crate::loader::config::{LoaderConfig, validate_common};
use crate::loader::pipeline::{Engine, EpochBatches, EpochPlan, Filled, ImageFiller};
use crate::loader::sampler::{DistributedSampler, iterations};
use crate::loader::stats::LoaderStats;
use crate::transform::crop::CropScratch;
use crate::transform::multi_crop::{MultiCropTransform, ResolutionGroup, SampleKey};

/// Loads and augments one training image into its crop slots.
struct MultiCropFiller {
    dataset: Arc<dyn Dataset>,
    transform: Arc<MultiCropTransform>,
    seed: u64,
    policy: BadInputPolicy,
    log: Arc<BadInputLog>,
}

impl ImageFiller<usize> for MultiCropFiller {
    fn fill(
        &self,
        epoch: u64,
        batch: &[usize],
        position: usize,
        outputs: &mut [&mut [f32]],
        scratch: &mut CropScratch,
    ) -> Result<Option<Filled>, LoaderError> {
        let index = batch[position];
        let (used, image) = self
            .log
            .load_or_substitute(&*self.dataset, index, &self.policy)?;
        let key = SampleKey {
            seed: self.seed,
            epoch,
            index: index as u64,
        };
        self.transform
            .apply(&image, key, scratch, outputs)
            .map_err(|source| LoaderError::Transform {
                name: self.dataset.sample_name(used),
                source,
            })?;
        Ok(Some(Filled {
            index: used,
            label: self.dataset.label(used).unwrap_or(0),
        }))
    }
}

/// SwAV's training loader: each epoch is shuffled from (seed, epoch), padded and sharded
/// like PyTorch's DistributedSampler, cut into batches (dropping the last incomplete one
/// by default), and each image is decoded once and augmented into V crops by worker
/// threads. Batches come out in order, laid out as described in [`crate::loader::batch`].
///
/// Every crop draws from its own stream keyed by (seed, epoch, scheduled dataset index,
/// crop), so a batch is bit-identical whatever the number of workers, and a run resumed at
/// (epoch, iteration) continues exactly as the uninterrupted run would have.
pub struct MultiCropLoader {
    config: LoaderConfig,
    sampler: DistributedSampler,
    transform: Arc<MultiCropTransform>,
    log: Arc<BadInputLog>,
    engine: Engine<usize>,
    classes: usize,
    dataset: Arc<dyn Dataset>,
}

impl MultiCropLoader {
    /// A loader over `dataset` with `transform`.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        transform: MultiCropTransform,
        config: LoaderConfig,
    ) -> Result<Self, LoaderError> {
        if dataset.is_empty() {
            return Err(LoaderError::EmptyDataset);
        }
        validate_common(config.batch_size, config.workers, config.prefetch)?;
        let sampler = DistributedSampler::new(
            dataset.len(),
            config.rank,
            config.world_size,
            true,
            config.seed,
        )?;
        if iterations(sampler.num_samples(), config.batch_size, config.drop_last) == 0 {
            return Err(ConfigError::new(
                "batch_size",
                format!(
                    "{} exceeds the {} samples of this rank's shard, so drop_last leaves no batch; use a batch size of at most {}",
                    config.batch_size,
                    sampler.num_samples(),
                    sampler.num_samples()
                ),
            )
            .into());
        }
        let classes = dataset.num_classes();
        let transform = Arc::new(transform);
        let log = Arc::new(BadInputLog::default());
        let filler = Arc::new(MultiCropFiller {
            dataset: Arc::clone(&dataset),
            transform: Arc::clone(&transform),
            seed: config.seed,
            policy: config.bad_input,
            log: Arc::clone(&log),
        });
        let engine = Engine::new(
            classes > 0,
            filler,
            transform.resolution_groups().to_vec(),
            config.batch_size,
            config.workers,
            config.prefetch,
        )?;
        Ok(Self {
            config,
            sampler,
            transform,
            log,
            engine,
            classes,
            dataset,
        })
    }

    /// The dataset it loads from.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// The number of classes of the dataset (0 when it is unlabelled).
    pub fn num_classes(&self) -> usize {
        self.classes
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The transform.
    pub fn transform(&self) -> &MultiCropTransform {
        &self.transform
    }

    /// The resolution groups of every batch.
    pub fn resolution_groups(&self) -> &[ResolutionGroup] {
        self.transform.resolution_groups()
    }

    /// Batches per epoch: `floor(ceil(N / world_size) / batch_size)` with `drop_last`.
    pub fn iters_per_epoch(&self) -> usize {
        iterations(
            self.sampler.num_samples(),
            self.config.batch_size,
            self.config.drop_last,
        )
    }

    /// The scheduled dataset indices of every batch of `epoch` on this rank (before any
    /// bad-input substitution).
    pub fn epoch_schedule(&self, epoch: u64) -> Vec<Vec<usize>> {
        let indices = self.sampler.indices(epoch);
        indices
            .chunks(self.config.batch_size)
            .take(self.iters_per_epoch())
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// The batches of `epoch`, from the first.
    pub fn epoch(&self, epoch: u64) -> Result<EpochBatches, LoaderError> {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from iteration `start` on (resume). `start` equal to
    /// [`Self::iters_per_epoch`] gives an empty epoch.
    pub fn epoch_from(&self, epoch: u64, start: usize) -> Result<EpochBatches, LoaderError> {
        let iters_per_epoch = self.iters_per_epoch();
        if start > iters_per_epoch {
            return Err(LoaderError::StartPastEnd {
                iteration: start,
                iters_per_epoch,
            });
        }
        let batches = self.epoch_schedule(epoch).split_off(start);
        self.engine.run(EpochPlan::indices(epoch, start, batches))
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
