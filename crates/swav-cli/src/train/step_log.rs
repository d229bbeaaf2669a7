//! Rank 0's record of the logged steps: `metrics.jsonl`, the live TensorBoard file, and the
//! collapse watch that reads each record and decides what a collapse leads to.

use std::path::Path;

use anyhow::{Context, Result};

use super::checkpoint_state::RunPosition;
use super::collapse_escape::MAX_ADAPTATIONS;
use super::collapse_watch::{CollapseContext, CollapseKind, CollapseSignals, CollapseWatch};
use super::knn_probe::KnnPoint;
use super::progress::Progress;
use super::run_folder::files;
use super::run_request::RunRequest;
use crate::config::OnCollapse;
use crate::event_file::LiveEvents;
use crate::metrics::{MetricsLog, StepRecord};

/// The collective code of the decision to stop on a collapse (remedies have their own
/// [`Remedy::code`](super::collapse_escape::Remedy::code); 0: no decision).
pub const STOP_ON_COLLAPSE: u8 = 9;

/// The logged steps of one run (rank 0).
pub struct StepLog {
    metrics: MetricsLog,
    events: LiveEvents,
    collapse: CollapseWatch,
    on_collapse: OnCollapse,
    /// The settings change this attempt starts with, for the first record.
    adaptation: Option<String>,
}

impl StepLog {
    /// The log of `req`'s run at `position`. A resumed run first drops the records of the
    /// iterations it is about to run again (metrics and the k-NN curve), and TensorBoard's
    /// file starts a new session at its first step.
    pub fn open(
        req: &RunRequest<'_>,
        position: RunPosition,
        queue_rows: usize,
        iters_per_epoch: u64,
    ) -> Result<Self> {
        let config = req.config;
        let metrics_path = req.output.join(files::METRICS);
        if req.resume.is_some() {
            let from = position.global_iteration;
            truncate_jsonl::<StepRecord>(&metrics_path, |r| r.iteration < from)?;
            let knn_path = req.output.join(files::KNN_CURVE);
            truncate_jsonl::<KnnPoint>(&knn_path, |p| p.iteration <= from)?;
        }
        let resumed_at = req.resume.map(|_| position.global_iteration as i64 + 1);
        // Past the bound on adaptations, a collapse is only warned about.
        let on_collapse = match config.on_collapse {
            OnCollapse::Adapt if config.collapse_adaptations.len() >= MAX_ADAPTATIONS => {
                OnCollapse::Warn
            }
            other => other,
        };
        Ok(Self {
            metrics: MetricsLog::open(&metrics_path, req.resume.is_some())?,
            events: LiveEvents::open(&req.output.join(files::TENSORBOARD_EVENTS), resumed_at)?,
            collapse: CollapseWatch::new(
                CollapseContext::for_run(config, req.world, queue_rows),
                config.freeze_prototypes_niters.max(iters_per_epoch),
                iters_per_epoch,
            ),
            on_collapse,
            adaptation: req.adaptation.map(str::to_string),
        })
    }

    /// Writes `record` (the first one carries the attempt's adaptation) and shows it to the
    /// collapse watch; a collapse it diagnoses is printed above the progress bar and its
    /// decision returned: 0 (warn), [`STOP_ON_COLLAPSE`] or a remedy's code.
    pub fn write(&mut self, mut record: StepRecord, progress: &Progress) -> Result<Option<u8>> {
        record.adaptation = self.adaptation.take();
        self.metrics.write(&record)?;
        self.events.step(&record)?;
        let signals = CollapseSignals {
            iteration: record.iteration,
            loss: record.loss,
            diagnostics: record.diagnostics.as_ref(),
            sample_code_entropy: record.sample_code_entropy,
            prototypes_in_use: record.prototypes_in_use,
        };
        Ok(self.collapse.observe(&signals).map(|verdict| {
            progress.println(&verdict.warning);
            match self.on_collapse {
                OnCollapse::Warn => 0,
                OnCollapse::Stop => STOP_ON_COLLAPSE,
                OnCollapse::Adapt => verdict.remedy.code(),
            }
        }))
    }

    /// Whether the run is healthy at this point (an epoch end worth keeping as last-good).
    pub fn healthy(&self) -> bool {
        self.collapse.healthy()
    }

    /// The collapse the run is still in at its last logged step, if any.
    pub fn still_collapsed(&self) -> Option<CollapseKind> {
        self.collapse.still_collapsed()
    }
}

/// Keeps the records of a JSON-lines log that satisfy `keep` (those of iterations a resumed
/// run is about to run again are dropped).
fn truncate_jsonl<T: serde::de::DeserializeOwned>(
    path: &Path,
    keep: impl Fn(&T) -> bool,
) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| serde_json::from_str::<T>(line).is_ok_and(|r| keep(&r)))
        .collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    swav_nn::write_atomic(path, out.as_bytes())
        .with_context(|| format!("cannot rewrite {}", path.display()))
}
