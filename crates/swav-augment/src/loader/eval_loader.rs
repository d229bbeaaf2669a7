//! The evaluation loader: every sample once, in order, with the evaluation transform.

use std::sync::Arc;

use crate::dataset::Dataset;
use crate::error::{ConfigError, LoaderError};
use crate::loader::bad_input::{BadInputLog, BadInputPolicy, BadInputSummary};
use crate::loader::config::{EvalLoaderConfig, validate_common};
use crate::loader::pipeline::{Engine, EpochBatches, EpochPlan, Filled, ImageFiller};
use crate::loader::stats::LoaderStats;
use crate::transform::crop::CropScratch;
use crate::transform::eval::EvalTransform;
use crate::transform::multi_crop::ResolutionGroup;

/// Loads one evaluation image into its slot, or leaves a bad one out.
struct EvalFiller {
    dataset: Arc<dyn Dataset>,
    transform: EvalTransform,
    policy: BadInputPolicy,
    log: Arc<BadInputLog>,
}

impl ImageFiller<usize> for EvalFiller {
    fn fill(
        &self,
        _epoch: u64,
        batch: &[usize],
        position: usize,
        outputs: &mut [&mut [f32]],
        scratch: &mut CropScratch,
    ) -> Result<Option<Filled>, LoaderError> {
        let index = batch[position];
        let Some(image) = self.log.load_or_skip(&*self.dataset, index, &self.policy)? else {
            return Ok(None);
        };
        for out in outputs.iter_mut() {
            self.transform
                .render(&image, scratch, out)
                .map_err(|source| LoaderError::Transform {
                    name: self.dataset.sample_name(index),
                    source,
                })?;
        }
        Ok(Some(Filled {
            index,
            label: self.dataset.label(index).unwrap_or(0),
        }))
    }
}

/// Batches for evaluation and feature extraction: rank `r` of `w` gets samples
/// `r, r + w, r + 2w, ...` in order (no shuffling, no padding, no sample twice; the ranks
/// together cover the dataset exactly once), in batches of `batch_size` with a smaller last
/// batch. Each batch has one resolution group of one crop (`[batch, size, size, 3]`).
/// Bad samples are left out of their batch (see [`crate::loader::bad_input`]).
pub struct EvalLoader {
    config: EvalLoaderConfig,
    indices: Vec<usize>,
    log: Arc<BadInputLog>,
    engine: Engine<usize>,
}

impl EvalLoader {
    /// A loader over `dataset` with `transform`.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        transform: EvalTransform,
        config: EvalLoaderConfig,
    ) -> Result<Self, LoaderError> {
        if dataset.is_empty() {
            return Err(LoaderError::EmptyDataset);
        }
        validate_common(config.batch_size, config.workers, config.prefetch)?;
        if config.world_size == 0 {
            return Err(ConfigError::new("world_size", "must be at least 1").into());
        }
        if config.rank >= config.world_size {
            return Err(ConfigError::new(
                "rank",
                format!(
                    "{} is not below world_size {}",
                    config.rank, config.world_size
                ),
            )
            .into());
        }
        let indices: Vec<usize> = (config.rank..dataset.len())
            .step_by(config.world_size)
            .collect();
        let group = ResolutionGroup {
            size: transform.size(),
            first_crop: 0,
            crops: 1,
        };
        let log = Arc::new(BadInputLog::default());
        let filler = Arc::new(EvalFiller {
            dataset: Arc::clone(&dataset),
            transform,
            policy: config.bad_input,
            log: Arc::clone(&log),
        });
        let engine = Engine::new(
            !dataset.class_names().is_empty(),
            filler,
            vec![group],
            config.batch_size,
            config.workers,
            config.prefetch,
        )?;
        Ok(Self {
            config,
            indices,
            log,
            engine,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EvalLoaderConfig {
        &self.config
    }

    /// The dataset indices this rank covers, in order.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// Number of batches: `ceil(len(indices) / batch_size)`.
    pub fn num_batches(&self) -> usize {
        self.indices.len().div_ceil(self.config.batch_size)
    }

    /// All batches, in order.
    pub fn batches(&self) -> Result<EpochBatches, LoaderError> {
        let batches = self
            .indices
            .chunks(self.config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        self.engine.run(EpochPlan::indices(0, 0, batches))
    }

    /// Bad samples met so far.
    pub fn bad_input_summary(&self) -> BadInputSummary {
        self.log.summary()
    }

    /// Throughput counters since creation.
    pub fn stats(&self) -> LoaderStats {
        self.engine.stats()
    }
}
