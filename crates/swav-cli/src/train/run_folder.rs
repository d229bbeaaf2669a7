//! A run's output folder: the names of the files in it, and creating it.

use std::path::Path;

use anyhow::{Context, Result};

use crate::config::PretrainConfig;

/// The file names inside a run's output folder.
pub mod files {
    /// The latest checkpoint.
    pub const CHECKPOINT: &str = "checkpoint.safetensors";
    /// Numbered checkpoint copies.
    pub const CHECKPOINTS_DIR: &str = "checkpoints";
    /// Under `checkpoints/`: the checkpoint of the last epoch end that looked healthy,
    /// where `--on-collapse adapt` restarts from.
    pub const LAST_GOOD_CHECKPOINT: &str = "last-good.safetensors";
    /// The metrics log.
    pub const METRICS: &str = "metrics.jsonl";
    /// The resolved configuration.
    pub const CONFIG: &str = "config.toml";
    /// The k-NN curve: one evaluation per line (`--eval-knn-every`, and the final one).
    pub const KNN_CURVE: &str = "knn.jsonl";
    /// The final k-NN comparison of the trained and a random network.
    pub const KNN_REPORT: &str = "knn.json";
    /// The training curves drawn at the end of a run and by `swav report`.
    pub const CURVES: &str = "curves.svg";
    /// The same scalars for TensorBoard (`tensorboard --logdir RUN_DIR`).
    pub const TENSORBOARD_EVENTS: &str = "events.out.tfevents.swav";
    /// The trained trunk, exported at the end of a run (torchvision-compatible).
    pub const TRUNK_EXPORT: &str = "trunk.safetensors";
}

/// Creates the output folder and writes the resolved configuration (which also proves the
/// folder is writable before any training starts).
pub fn prepare_output(output: &Path, config: &PretrainConfig) -> Result<()> {
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create output folder {}", output.display()))?;
    let path = output.join(files::CONFIG);
    swav_nn::write_atomic(&path, config.to_toml().as_bytes())
        .with_context(|| format!("output folder {} is not writable", output.display()))
}
