//! What one training run is asked to do: its configuration, data, output, where it starts
//! from, its rank, and the limits it keeps to.

use std::path::Path;
use std::time::Duration;

use swav_augment::loader::TrainingLoader;

use super::checkpoint_state::LoadedCheckpoint;
use super::knn_probe::KnnProbe;
use super::time_budget::LiveBudget;
use super::weights_source::WeightsSource;
use crate::config::PretrainConfig;

/// What to run.
pub struct RunRequest<'a> {
    /// The resolved configuration.
    pub config: &'a PretrainConfig,
    /// This rank's training loader.
    pub loader: &'a TrainingLoader,
    /// The output folder (exists and is writable).
    pub output: &'a Path,
    /// Continue from this checkpoint.
    pub resume: Option<&'a LoadedCheckpoint>,
    /// Start from these weights (not the optimiser state).
    pub init_weights: Option<&'a WeightsSource>,
    /// Stop after this many iterations of this invocation.
    pub max_iterations: Option<u64>,
    /// This process's rank.
    pub rank: usize,
    /// The number of processes.
    pub world: usize,
    /// With more than one process: end this one when no step completes for this long (a
    /// dead peer would otherwise leave every rank waiting in a collective forever).
    pub stall_timeout: Option<Duration>,
    /// Rank 0's k-NN evaluation, for `eval_knn_every` (and the final comparison).
    pub knn_probe: Option<&'a KnnProbe>,
    /// The settings change this attempt starts with (`--on-collapse adapt`, or a shorter
    /// plan of the time budget), recorded in the first metrics record.
    pub adaptation: Option<&'a str>,
    /// The time budget this run keeps to (one process, the command that planned it): at
    /// each epoch end it ends the run early with a shorter plan when finishing would
    /// overrun.
    pub budget: Option<&'a LiveBudget>,
}
