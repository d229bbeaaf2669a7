//! k-NN top-1 of a run's network on its evaluation splits: used every `eval_knn_every`
//! epochs while training (the points of the k-NN curve, in `knn.jsonl`) and once at the end
//! (trained against random initialisation, `knn.json`).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use swav_augment::dataset::Dataset;
use swav_augment::transform::eval::EvalConfig;
use swav_nn::{Backend, SwavModel};

use super::model_spec::model_config;
use super::run_folder::files;
use crate::config::PretrainConfig;
use crate::datasets::{TrainValSplit, eval_transform, knn_datasets};
use crate::eval::data::require_labels;
use crate::eval::features::extract;
use crate::eval::knn::{DEFAULT_KS, DEFAULT_TEMPERATURE, KnnAccuracy, knn_accuracy};
use crate::event_file::{LiveEvents, knn_tag};
use crate::skipped_files::report_skipped;

/// Images per forward pass of the evaluation.
const EVAL_BATCH: usize = 128;

/// A run's k-NN evaluation: its splits, opened once, and their transform.
pub struct KnnProbe {
    split: TrainValSplit,
    transform: EvalConfig,
    workers: usize,
    skips_reported: AtomicBool,
}

/// One point of the k-NN curve (a line of `knn.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnPoint {
    /// Epochs completed when evaluated.
    pub epoch: u64,
    /// Iterations completed when evaluated.
    pub iteration: u64,
    /// Top-1 accuracy (a fraction) per neighbour count.
    pub top1: Vec<KnnTop1>,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// Top-1 for one neighbour count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KnnTop1 {
    /// Neighbours that vote.
    pub k: usize,
    /// Fraction of validation images classified right.
    pub top1: f64,
}

impl KnnProbe {
    /// The probe of a run, or `None` when its data has no `train/` and `val/` folders.
    pub fn for_run(config: &PretrainConfig) -> Result<Option<Self>> {
        Ok(knn_datasets(config)?.map(|split| Self {
            split,
            transform: eval_transform(config),
            workers: config.workers,
            skips_reported: AtomicBool::new(false),
        }))
    }

    /// Images one evaluation reads: the train and val splits together.
    pub fn images(&self) -> usize {
        self.split.0.len() + self.split.1.len()
    }

    /// The number of classes of the training split.
    pub fn classes(&self) -> usize {
        self.split.0.num_classes().max(1)
    }

    /// Top-1 for the default neighbour counts of `model` (evaluation mode: running
    /// statistics, no state of the training pass is touched). Skipped files are reported
    /// after the first evaluation only.
    pub fn evaluate<B: Backend>(
        &self,
        b: &mut B,
        model: &mut SwavModel<B>,
    ) -> Result<Vec<KnnAccuracy>> {
        let (train_set, val_set) = &self.split;
        let train = extract(
            b,
            model,
            train_set.clone(),
            self.transform,
            EVAL_BATCH,
            self.workers,
        )?;
        let val = extract(
            b,
            model,
            val_set.clone(),
            self.transform,
            EVAL_BATCH,
            self.workers,
        )?;
        if !self.skips_reported.swap(true, Ordering::Relaxed) {
            report_skipped("k-NN train split", &train.skipped);
            report_skipped("k-NN val split", &val.skipped);
        }
        Ok(knn_accuracy(
            train.values.view(),
            &require_labels(&train.labels)?,
            val.values.view(),
            &require_labels(&val.labels)?,
            self.classes(),
            &DEFAULT_KS,
            DEFAULT_TEMPERATURE,
        ))
    }

    /// [`Self::evaluate`] as a curve point after `epoch` epochs and `iteration` iterations,
    /// appended to `log` (`knn.jsonl`) and to the TensorBoard file beside it.
    pub fn point<B: Backend>(
        &self,
        b: &mut B,
        model: &mut SwavModel<B>,
        (epoch, iteration): (u64, u64),
        log: &Path,
    ) -> Result<KnnPoint> {
        let started = Instant::now();
        let accuracy = self.evaluate(b, model)?;
        let point = KnnPoint {
            epoch,
            iteration,
            top1: accuracy
                .iter()
                .map(|a| KnnTop1 {
                    k: a.k,
                    top1: a.top1,
                })
                .collect(),
            seconds: started.elapsed().as_secs_f64(),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot write {}", log.display()))?;
        writeln!(file, "{}", serde_json::to_string(&point)?)
            .with_context(|| format!("cannot write {}", log.display()))?;
        let scalars: Vec<(String, f64)> = point
            .top1
            .iter()
            .map(|t| (knn_tag(t.k), 100.0 * t.top1))
            .collect();
        LiveEvents::append(&log.with_file_name(files::TENSORBOARD_EVENTS))?
            .scalars(iteration as i64, &scalars)?;
        Ok(point)
    }
    /// Prints `trained` (the top-1 of the network called `name`) beside a randomly
    /// initialised network of the run's architecture, and writes both to `output`/knn.json.
    pub fn compare_with_random<B: Backend>(
        &self,
        b: &mut B,
        name: &str,
        trained: Vec<KnnAccuracy>,
        config: &PretrainConfig,
        output: &Path,
    ) -> Result<()> {
        let mut random = SwavModel::new(b, model_config(config), config.seed.wrapping_add(1))
            .map_err(|e| anyhow!("building the random network: {e}"))?;
        let random_init = self.evaluate(b, &mut random)?;
        let rows = [(name, trained), ("random init", random_init)];
        let classes = self.classes();
        crate::say!("k-NN top-1 on the validation split ({classes} classes):");
        for (name, acc) in &rows {
            let cells: Vec<String> = acc
                .iter()
                .map(|a| format!("k={}: {:5.1}%", a.k, 100.0 * a.top1))
                .collect();
            crate::say!("  {name:<12} {}", cells.join("   "));
        }
        let json = serde_json::json!({
            "classes": classes,
            "results": rows.iter().map(|(name, acc)| serde_json::json!({
                "model": name,
                "top1": acc.iter().map(|a| serde_json::json!({"k": a.k, "top1": a.top1})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        let path = output.join(files::KNN_REPORT);
        swav_nn::write_atomic(
            &path,
            (serde_json::to_string_pretty(&json)? + "\n").as_bytes(),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

impl KnnPoint {
    /// `k-NN top-1 after epoch 5: k=20 41.2%  k=200 38.0% (3.1 s)`.
    pub fn summary(&self) -> String {
        let cells: Vec<String> = self
            .top1
            .iter()
            .map(|t| format!("k={} {:.1}%", t.k, 100.0 * t.top1))
            .collect();
        format!(
            "k-NN top-1 after epoch {}: {} ({:.1} s)",
            self.epoch,
            cells.join("  "),
            self.seconds
        )
    }
}
