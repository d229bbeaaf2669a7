//! The training batches of a run, from a dataset or from shards.

use std::sync::Arc;

use crate::dataset::Dataset;
use crate::error::LoaderError;
use crate::loader::bad_input::BadInputSummary;
use crate::loader::multi_crop_loader::MultiCropLoader;
use crate::loader::pipeline::EpochBatches;
use crate::loader::shard_loader::ShardLoader;
use crate::loader::stats::LoaderStats;
use crate::transform::multi_crop::ResolutionGroup;

/// A run's training loader: the same batches, laid out the same way, from either source.
pub enum TrainingLoader {
    /// An indexable dataset (a folder, IDX files, the built-in set).
    Dataset(MultiCropLoader),
    /// WebDataset shards, streamed.
    Shards(ShardLoader),
}

impl TrainingLoader {
    /// Batches per epoch.
    pub fn iters_per_epoch(&self) -> usize {
        match self {
            Self::Dataset(loader) => loader.iters_per_epoch(),
            Self::Shards(loader) => loader.iters_per_epoch(),
        }
    }

    /// The resolution groups of every batch.
    pub fn resolution_groups(&self) -> &[ResolutionGroup] {
        match self {
            Self::Dataset(loader) => loader.resolution_groups(),
            Self::Shards(loader) => loader.resolution_groups(),
        }
    }

    /// The batches of `epoch` from iteration `start` on.
    pub fn epoch_from(&self, epoch: u64, start: usize) -> Result<EpochBatches, LoaderError> {
        match self {
            Self::Dataset(loader) => loader.epoch_from(epoch, start),
            Self::Shards(loader) => loader.epoch_from(epoch, start),
        }
    }

    /// Bad samples met so far.
    pub fn bad_input_summary(&self) -> BadInputSummary {
        match self {
            Self::Dataset(loader) => loader.bad_input_summary(),
            Self::Shards(loader) => loader.bad_input_summary(),
        }
    }

    /// Throughput counters.
    pub fn stats(&self) -> LoaderStats {
        match self {
            Self::Dataset(loader) => loader.stats(),
            Self::Shards(loader) => loader.stats(),
        }
    }

    /// Restarts the throughput counters.
    pub fn reset_stats(&self) {
        match self {
            Self::Dataset(loader) => loader.reset_stats(),
            Self::Shards(loader) => loader.reset_stats(),
        }
    }

    /// The dataset, when the batches come from one (not from shards).
    pub fn dataset(&self) -> Option<&Arc<dyn Dataset>> {
        match self {
            Self::Dataset(loader) => Some(loader.dataset()),
            Self::Shards(_) => None,
        }
    }
}
