//! The metrics log: one JSON object per line, appended as training runs, flushed each time.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use swav_train::Diagnostics;

/// One logged training iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Epoch (from 0).
    pub epoch: u64,
    /// Global iteration (from 0).
    pub iteration: u64,
    /// Swapped-prediction loss of this iteration (mean over all ranks: the global batch).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Entropy of the batch's mean code (ln K at best; 0 when collapsed).
    pub codes_entropy: f64,
    /// Mean entropy of each sample's code: ln K means uniform codes, i.e. no learning signal
    /// (the signature of collapse); lower is sharper.
    pub sample_code_entropy: f64,
    /// Prototypes that win at least one sample of the batch.
    pub prototypes_in_use: usize,
    /// Training throughput over the last logging window (images per second, all crops).
    pub samples_per_sec: f64,
    /// Whether the queue's scores were used.
    pub queue_in_use: bool,
    /// Seconds since the run (or its resumption) started.
    pub elapsed_s: f64,
    /// When the record was written, in seconds since 1970 (TensorBoard's wall time).
    /// Absent from older logs: 0.
    #[serde(default)]
    pub unix_time: f64,
    /// Unreadable training images the loaders of all ranks have skipped so far (each
    /// replaced by the next readable one). Absent from older logs: 0.
    #[serde(default)]
    pub skipped_files: usize,
    /// Milliseconds per step spent waiting for the next batch of crops over the last logging
    /// window, averaged over ranks: close to the step time means an input-bound run.
    /// Absent from older logs: 0.
    #[serde(default)]
    pub data_ms: f64,
    /// The settings change (`--on-collapse adapt`) made just before this record's run
    /// restarted (`epsilon 0.05 -> 0.025`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptation: Option<String>,
    /// What explains a collapse (see [`Diagnostics`]), flattened into the record; absent
    /// from older logs.
    #[serde(flatten, default)]
    pub diagnostics: Option<Diagnostics>,
}

/// An append-only JSON-lines file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
}

/// The log cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write metrics log {path}: {source}")]
pub struct MetricsError {
    path: PathBuf,
    source: std::io::Error,
}

impl MetricsLog {
    /// Opens `path` for appending (creating it), or truncates it when `append` is false.
    pub fn open(path: &Path, append: bool) -> Result<Self, MetricsError> {
        let file = OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)
            .map_err(|source| MetricsError {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Appends one record and flushes it.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), MetricsError> {
        let line = serde_json::to_string(record).expect("metrics serialise");
        writeln!(self.out, "{line}")
            .and_then(|_| self.out.flush())
            .map_err(|source| MetricsError {
                path: self.path.clone(),
                source,
            })
    }
}
