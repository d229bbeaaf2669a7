//! A run folder's logs, read back: `metrics.jsonl`, the k-NN curve (`knn.jsonl`), the final
//! k-NN comparison (`knn.json`) and the resolved configuration (`config.toml`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;

use crate::config::PretrainConfig;
use crate::metrics::StepRecord;
use crate::train::knn_probe::{KnnPoint, KnnTop1};
use crate::train::run_folder::files;

/// Everything a run folder logged.
#[derive(Debug, Clone)]
pub struct RunHistory {
    /// The folder.
    pub dir: PathBuf,
    /// The logged iterations, in order.
    pub records: Vec<StepRecord>,
    /// The k-NN curve.
    pub knn: Vec<KnnPoint>,
    /// The randomly initialised network's k-NN top-1 (from the final comparison), if any.
    pub random_init: Vec<KnnTop1>,
    /// The run's configuration, if `config.toml` is there and readable.
    pub config: Option<PretrainConfig>,
}

impl RunHistory {
    /// Reads the logs of run folder `dir`; an error names the file and line at fault.
    pub fn read(dir: &Path) -> Result<Self> {
        let metrics = dir.join(files::METRICS);
        if !metrics.is_file() {
            bail!(
                "{} has no {}: is it the --output folder of a swav pretrain run?",
                dir.display(),
                files::METRICS
            );
        }
        let config = std::fs::read_to_string(dir.join(files::CONFIG))
            .ok()
            .and_then(|text| toml::from_str(&text).ok());
        Ok(Self {
            dir: dir.to_path_buf(),
            records: read_jsonl(&metrics)?,
            knn: read_jsonl(&dir.join(files::KNN_CURVE))?,
            random_init: random_init(&dir.join(files::KNN_REPORT))?,
            config,
        })
    }

    /// `ln K` of the run, when its configuration is known.
    pub fn uniform_loss(&self) -> Option<f64> {
        self.config.as_ref().map(|c| (c.nmb_prototypes as f64).ln())
    }
}

/// The records of a JSON-lines file (none when the file does not exist).
fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// The `random init` row of a `knn.json` (none when the file does not exist).
fn random_init(path: &Path) -> Result<Vec<KnnTop1>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let report: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let row = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["model"] == "random init");
    match row {
        Some(row) => serde_json::from_value(row["top1"].clone())
            .with_context(|| format!("{}: `top1` of the random-init row", path.display())),
        None => Ok(Vec::new()),
    }
}
