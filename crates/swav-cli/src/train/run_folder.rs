//! A run's output folder: the names of the files in it, and creating it.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use swav_nn::{Backend, ExportOptions, SwavModel, export_safetensors};

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
    /// The recipe probes' runs, one sub-folder per candidate (`--recipe-probe-iterations`).
    pub const PROBES_DIR: &str = "probes";
    /// The recipe choice: every candidate's label-free score and the one trained.
    pub const RECIPE_CHOICE: &str = "recipe-choice.json";
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

/// Writes the trunk of `model` to `path` as safetensors with torchvision's names.
pub fn write_trunk<B: Backend>(b: &mut B, model: &mut SwavModel<B>, path: &Path) -> Result<()> {
    let trunk = export_safetensors(
        model,
        b,
        &ExportOptions {
            trunk_only: true,
            ..ExportOptions::default()
        },
    )
    .map_err(|e| anyhow!("exporting the trunk: {e}"))?;
    swav_nn::write_atomic(path, &trunk).with_context(|| format!("cannot write {}", path.display()))
}
