//! Loader configurations.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::loader::bad_input::BadInputPolicy;

/// The machine's available parallelism (at least 1).
pub fn available_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Configuration of the training loader ([`crate::loader::MultiCropLoader`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    /// Images per batch on this rank.
    pub batch_size: usize,
    /// Seed of the shuffle and of every augmentation stream.
    pub seed: u64,
    /// This process's rank.
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
    /// Worker threads that decode and augment.
    pub workers: usize,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// Drop the last incomplete batch (SwAV trains with `drop_last=True`).
    pub drop_last: bool,
    /// What to do with unreadable or tiny images.
    pub bad_input: BadInputPolicy,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            seed: 31,
            rank: 0,
            world_size: 1,
            workers: available_workers(),
            prefetch: 2,
            drop_last: true,
            bad_input: BadInputPolicy::default(),
        }
    }
}

/// Configuration of the evaluation loader ([`crate::loader::EvalLoader`]): sequential order,
/// every sample once, no augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalLoaderConfig {
    /// Images per batch (the last batch may be smaller).
    pub batch_size: usize,
    /// This process's rank.
    pub rank: usize,
    /// Number of processes; rank `r` gets samples `r, r + world_size, ...`.
    pub world_size: usize,
    /// Worker threads that decode and transform.
    pub workers: usize,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// What to do with unreadable or tiny images.
    pub bad_input: BadInputPolicy,
}

impl Default for EvalLoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            rank: 0,
            world_size: 1,
            workers: available_workers(),
            prefetch: 2,
            bad_input: BadInputPolicy::default(),
        }
    }
}

/// Checks the settings both loaders share.
pub(crate) fn validate_common(
    batch_size: usize,
    workers: usize,
    prefetch: usize,
) -> Result<(), ConfigError> {
    if batch_size == 0 {
        return Err(ConfigError::new("batch_size", "must be at least 1"));
    }
    if workers == 0 || workers > 1024 {
        return Err(ConfigError::new(
            "workers",
            format!("{workers} is outside 1..=1024"),
        ));
    }
    if prefetch == 0 || prefetch > 64 {
        return Err(ConfigError::new(
            "prefetch",
            format!("{prefetch} is outside 1..=64"),
        ));
    }
    Ok(())
}
