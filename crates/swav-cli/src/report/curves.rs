//! The training curves of a run: loss, learning rate, code entropy, prototypes in use, the
//! k-NN points and the collapse diagnostics, as `curves.svg` beside `metrics.jsonl`; and the
//! few numbers `swav report` prints.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::chart::{Figure, PALETTE, Panel, REFERENCE, Series};
use super::run_history::RunHistory;
use crate::metrics::StepRecord;
use crate::train::run_folder::files;
use swav_train::Diagnostics;

/// A solid curve of one metric over the logged iterations.
fn metric(
    history: &RunHistory,
    label: &str,
    color: &'static str,
    value: impl Fn(&StepRecord) -> Option<f64>,
) -> Series {
    Series {
        label: label.to_string(),
        points: history
            .records
            .iter()
            .filter_map(|r| value(r).map(|v| ((r.iteration + 1) as f64, v)))
            .collect(),
        color,
        dashed: false,
        markers: false,
    }
}

/// A dashed horizontal reference line across the logged iterations.
fn level(history: &RunHistory, label: String, value: f64, color: &'static str) -> Series {
    let last = history.records.last().map_or(1, |r| r.iteration + 1) as f64;
    Series {
        label,
        points: vec![(0.0, value), (last, value)],
        color,
        dashed: true,
        markers: false,
    }
}

/// The figure of a run's curves.
pub fn figure(history: &RunHistory) -> Figure {
    let ln_k = history.uniform_loss();
    let with_ln_k = |mut series: Vec<Series>, label: &str| {
        if let Some(ln_k) = ln_k {
            series.push(level(
                history,
                format!("{label} = {ln_k:.3}"),
                ln_k,
                REFERENCE,
            ));
        }
        series
    };
    let mut prototypes = vec![metric(history, "prototypes in use", PALETTE[0], |r| {
        Some(r.prototypes_in_use as f64)
    })];
    if let Some(config) = &history.config {
        prototypes.push(level(
            history,
            format!("K = {}", config.nmb_prototypes),
            config.nmb_prototypes as f64,
            REFERENCE,
        ));
    }
    let mut knn = Vec::new();
    let ks: Vec<usize> = history
        .knn
        .first()
        .map(|p| p.top1.iter().map(|t| t.k).collect())
        .unwrap_or_default();
    for (i, &k) in ks.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        knn.push(Series {
            label: format!("trained, k = {k}"),
            points: history
                .knn
                .iter()
                .filter_map(|p| {
                    let top1 = p.top1.iter().find(|t| t.k == k)?;
                    Some((p.iteration as f64, 100.0 * top1.top1))
                })
                .collect(),
            color,
            dashed: false,
            markers: true,
        });
        if let Some(random) = history.random_init.iter().find(|t| t.k == k) {
            knn.push(level(
                history,
                format!("random init, k = {k}"),
                100.0 * random.top1,
                color,
            ));
        }
    }
    let diagnostic = |label: &str, color, value: fn(&Diagnostics) -> f64| {
        metric(history, label, color, move |r| {
            r.diagnostics.as_ref().map(value)
        })
    };
    let health: Vec<Series> = [
        diagnostic("embedding variance", PALETTE[0], |d| d.embedding_variance),
        diagnostic("mean prototype cosine", PALETTE[1], |d| d.prototype_cosine),
        diagnostic("score spread", PALETTE[2], |d| d.score_spread),
    ]
    .into_iter()
    .filter(|s| !s.points.is_empty())
    .collect();

    let epochs = history.config.as_ref().map(|c| c.epochs);
    let last_epoch = history.records.last().map(|r| r.epoch + 1);
    let title = match (last_epoch, epochs) {
        (Some(done), Some(total)) => format!("{}: epoch {done} of {total}", history.dir.display()),
        _ => history.dir.display().to_string(),
    };
    let x_label = match iterations_per_epoch(&history.records) {
        Some(n) => format!("iteration ({n} per epoch)"),
        None => "iteration".to_string(),
    };
    Figure {
        title,
        x_label,
        columns: 2,
        panels: vec![
            Panel {
                title: "Loss".into(),
                y_label: "swapped-prediction loss".into(),
                series: with_ln_k(
                    vec![metric(history, "loss", PALETTE[0], |r| Some(r.loss))],
                    "ln K (collapse)",
                ),
                empty_note: "no logged iterations".into(),
            },
            Panel {
                title: "Learning rate".into(),
                y_label: "learning rate".into(),
                series: vec![metric(history, "lr", PALETTE[0], |r| Some(r.lr))],
                empty_note: "no logged iterations".into(),
            },
            Panel {
                title: "Code entropy".into(),
                y_label: "entropy (nats)".into(),
                series: with_ln_k(
                    vec![
                        metric(history, "of the batch's mean code", PALETTE[0], |r| {
                            Some(r.codes_entropy)
                        }),
                        metric(history, "per sample", PALETTE[1], |r| {
                            Some(r.sample_code_entropy)
                        }),
                    ],
                    "ln K",
                ),
                empty_note: "no logged iterations".into(),
            },
            Panel {
                title: "Prototypes in use".into(),
                y_label: "prototypes winning a sample".into(),
                series: prototypes,
                empty_note: "no logged iterations".into(),
            },
            Panel {
                title: "k-NN top-1 on the validation split".into(),
                y_label: "top-1 (%)".into(),
                series: knn,
                empty_note: "no k-NN points: train with --eval-knn-every N".into(),
            },
            Panel {
                title: "Collapse signs".into(),
                y_label: "value".into(),
                series: health,
                empty_note: "no diagnostics in this log".into(),
            },
        ],
    }
}

/// The iterations per epoch, when the logged (epoch, iteration) pairs pin them down: each
/// record has `epoch · n <= iteration < (epoch + 1) · n`.
fn iterations_per_epoch(records: &[StepRecord]) -> Option<u64> {
    let (mut lo, mut hi) = (1u64, u64::MAX);
    for r in records {
        lo = lo.max(r.iteration / (r.epoch + 1) + 1);
        if let Some(bound) = r.iteration.checked_div(r.epoch) {
            hi = hi.min(bound);
        }
    }
    (lo == hi).then_some(lo)
}

/// Draws the curves of `history` into its folder's `curves.svg`; returns that path.
pub fn write_curves(history: &RunHistory) -> Result<PathBuf> {
    let path = history.dir.join(files::CURVES);
    swav_nn::write_atomic(&path, figure(history).to_svg().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The lines `swav report` prints: where the run stands, its last logged numbers, the
/// k-NN curve's best point and the skipped files.
pub fn summary(history: &RunHistory) -> Vec<String> {
    let mut lines = Vec::new();
    let Some(last) = history.records.last() else {
        lines.push(format!(
            "{}: no logged iterations yet",
            history.dir.display()
        ));
        return lines;
    };
    let epochs = history
        .config
        .as_ref()
        .map_or(String::new(), |c| format!("/{}", c.epochs));
    let against_ln_k = history.uniform_loss().map_or(String::new(), |ln_k| {
        format!(" (ln K {ln_k:.4}, loss - ln K {:+.4})", last.loss - ln_k)
    });
    let prototypes = history
        .config
        .as_ref()
        .map_or(String::new(), |c| format!("/{}", c.nmb_prototypes));
    lines.push(format!(
        "{}: epoch {}{epochs}, iteration {}; loss {:.4}{against_ln_k}; lr {:.4}; prototypes in use {}{prototypes}; {:.1} img/s",
        history.dir.display(),
        last.epoch + 1,
        last.iteration + 1,
        last.loss,
        last.lr,
        last.prototypes_in_use,
        last.samples_per_sec
    ));
    for point in &history.knn {
        lines.push(point.summary());
    }
    if last.skipped_files > 0 {
        lines.push(format!(
            "{} unreadable training files skipped (each replaced by the next readable one)",
            last.skipped_files
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: u64, iteration: u64) -> StepRecord {
        StepRecord {
            epoch,
            iteration,
            loss: 1.0,
            lr: 0.1,
            codes_entropy: 1.0,
            sample_code_entropy: 1.0,
            prototypes_in_use: 1,
            samples_per_sec: 1.0,
            queue_in_use: false,
            elapsed_s: 0.0,
            unix_time: 0.0,
            skipped_files: 0,
            data_ms: 0.0,
            adaptation: None,
            diagnostics: None,
        }
    }

    #[test]
    fn iterations_per_epoch_come_from_the_logged_positions() {
        // 9 iterations per epoch, 30 epochs, logged every 10 iterations.
        let logged: Vec<StepRecord> = (0..270).step_by(10).map(|i| record(i / 9, i)).collect();
        assert_eq!(iterations_per_epoch(&logged), Some(9));
        // A few records leave it open (9 or 10 fit both): no claim.
        assert_eq!(iterations_per_epoch(&logged[..6]), None);
    }
}
