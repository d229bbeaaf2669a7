//! `swav eval semisup`: the official semi-supervised evaluation (`eval_semisup.py`). The
//! pretrained trunk and a new linear head are fine-tuned together on a class-balanced share
//! of the labelled training images (1 % or 10 %): RandomResizedCrop + flip, cross-entropy,
//! SGD with momentum 0.9 and no weight decay, one learning rate for the trunk and another
//! for the head, both multiplied by `gamma` at each decay epoch. After every epoch the
//! network classifies the validation images (resize + centre crop); the best epoch's top-1
//! and top-5 are reported, as the official script does.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use swav_augment::dataset::{Dataset, Subset};
use swav_augment::loader::{LoaderConfig, MultiCropLoader};
use swav_core::Lars;
use swav_nn::{Backend, SwavModel};

use crate::cli::SemisupArgs;
use crate::device::{BackendJob, on_device};
use crate::eval::classifier::{Classifier, top_k_hits};
use crate::eval::data::{EvalData, crop_and_flip, eval_data, require_labels};
use crate::eval::features::extract;
use crate::eval::labelled_training::LabelledTraining;
use crate::model_loading::load_model;
use crate::skipped_files::report_skipped;
use crate::train::input_feed::crop_groups;
use crate::train::progress::format_duration;
use crate::train::weights_source::WeightsSource;

/// Runs `swav eval semisup`.
pub fn run(args: &SemisupArgs) -> Result<()> {
    if !(args.lr >= 0.0 && args.lr_last_layer >= 0.0 && args.gamma > 0.0) {
        bail!("--lr, --lr-last-layer must be 0 or more and --gamma above 0");
    }
    if args.epochs == 0 || args.fine_tune_batch == 0 {
        bail!("--epochs and --fine-tune-batch must be at least 1");
    }
    let weights = WeightsSource::read(&args.source.weights)?;
    on_device(args.source.device, 0, Semisup { args, weights })
}

/// The learning-rate factor of `epoch`: `gamma` to the number of decay epochs reached
/// (PyTorch's `MultiStepLR`).
pub fn decay_factor(epoch: usize, decay_epochs: &[usize], gamma: f64) -> f64 {
    gamma.powi(decay_epochs.iter().filter(|&&d| d <= epoch).count() as i32)
}

/// One epoch's validation: top-1 and top-5 as fractions.
#[derive(Debug, Clone, Copy)]
struct Validation {
    top1: f64,
    top5: f64,
}

struct Semisup<'a> {
    args: &'a SemisupArgs,
    weights: WeightsSource,
}

impl BackendJob for Semisup<'_> {
    type Output = ();

    fn run<B: Backend>(self, b: &mut B) -> Result<()> {
        let (args, source) = (self.args, &self.args.source);
        let dev = |e: B::Error| anyhow!("device error: {e}");
        let data = eval_data(source, self.weights.training_config()?.as_ref())?;
        let classes = data.train.num_classes();
        if classes < 2 {
            bail!(
                "`swav eval semisup` needs labelled training images: train/ with one sub-folder per class, an IDX folder or the built-in dataset"
            );
        }
        let labelled: Arc<dyn Dataset> = Arc::new(
            Subset::percent_per_class(data.train.clone(), args.labels_percent)
                .context("--labels-percent")?,
        );
        let batch = args.fine_tune_batch.min(labelled.len());
        if batch < args.fine_tune_batch {
            eprintln!(
                "note: --fine-tune-batch {} is more than the {} labelled images; fine-tuning with batches of {batch}",
                args.fine_tune_batch,
                labelled.len()
            );
        }
        let size = data.transform.size;
        let loader = MultiCropLoader::new(
            labelled.clone(),
            crop_and_flip(size)?,
            LoaderConfig {
                batch_size: batch,
                seed: args.seed,
                workers: source.workers,
                drop_last: true,
                ..LoaderConfig::default()
            },
        )?;
        eprintln!(
            "semi-supervised fine-tuning on {}% of the labels: {} of {} training images ({classes} classes), \
             {} epochs of {} iterations, lr {} (trunk) / {} (head), x{} at epochs {:?}",
            args.labels_percent,
            labelled.len(),
            data.train.len(),
            args.epochs,
            loader.iters_per_epoch(),
            args.lr,
            args.lr_last_layer,
            args.gamma,
            args.decay_epochs
        );
        let mut model = load_model(b, &self.weights)?;
        let mut training = LabelledTraining::new(
            b,
            &model,
            Lars::plain_sgd(0.9, 0.0),
            classes,
            args.seed,
            batch,
        )?;
        let side = size as usize;
        let mut inputs = vec![b.alloc_activation(batch * side * side * 3).map_err(dev)?];
        let started = Instant::now();
        let mut best: Option<(usize, Validation)> = None;
        let mut last = None;
        for epoch in 0..args.epochs {
            let factor = decay_factor(epoch, &args.decay_epochs, args.gamma);
            let (mut loss_sum, mut hits, mut seen) = (0.0, 0.0, 0usize);
            for batch_result in loader.epoch(epoch as u64)? {
                let crops = batch_result?;
                let labels = crops
                    .labels()
                    .context("`swav eval semisup` needs labelled images")?
                    .to_vec();
                let data: Vec<&[f32]> = crops.groups().map(|g| g.data()).collect();
                b.stage_inputs(&data, &mut inputs).map_err(dev)?;
                b.await_staged_inputs().map_err(dev)?;
                let groups = crop_groups(&inputs, &[(1, side)]);
                let rates = (
                    (args.lr_last_layer * factor) as f32,
                    (args.lr * factor) as f32,
                );
                let at = format!("in epoch {}", epoch + 1);
                let (loss, accuracy) =
                    training.step(b, &mut model, &groups, batch, &labels, rates, &at)?;
                loss_sum += loss * labels.len() as f64;
                hits += accuracy * labels.len() as f64;
                seen += labels.len();
            }
            let val = validate(b, &mut model, training.head(), &data, args)?;
            eprintln!(
                "epoch {}/{}: train loss {:.4}, train top-1 {:5.1}%; val top-1 {:5.1}%, top-5 {:5.1}% ({})",
                epoch + 1,
                args.epochs,
                loss_sum / seen.max(1) as f64,
                100.0 * hits / seen.max(1) as f64,
                100.0 * val.top1,
                100.0 * val.top5,
                format_duration(started.elapsed())
            );
            if best.is_none_or(|(_, b)| val.top1 > b.top1) {
                best = Some((epoch, val));
            }
            last = Some(val);
        }
        report_skipped("training data", &loader.bad_input_summary());
        let (epoch, best) = best.expect("at least one epoch");
        let last = last.expect("at least one epoch");
        println!(
            "semi-supervised ({}% of the labels, {} images): best val top-1 {:.2}%, top-5 {:.2}% (epoch {}); last top-1 {:.2}%, top-5 {:.2}%",
            args.labels_percent,
            labelled.len(),
            100.0 * best.top1,
            100.0 * best.top5,
            epoch + 1,
            100.0 * last.top1,
            100.0 * last.top5
        );
        Ok(())
    }
}

/// Top-1 and top-5 of the network and head on the validation images (evaluation mode).
fn validate<B: Backend>(
    b: &mut B,
    model: &mut SwavModel<B>,
    head: &Classifier,
    data: &EvalData,
    args: &SemisupArgs,
) -> Result<Validation> {
    let val = extract(
        b,
        model,
        data.val.clone(),
        data.transform,
        args.source.batch_size,
        args.source.workers,
    )?;
    report_skipped("val split", &val.skipped);
    let labels = require_labels(&val.labels)?;
    let logits = head.logits(val.values.view());
    let n = labels.len().max(1) as f64;
    Ok(Validation {
        top1: top_k_hits(logits.view(), &labels, 1) as f64 / n,
        top5: top_k_hits(logits.view(), &labels, 5) as f64 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rates_decay_at_each_decay_epoch_as_multistep_lr() {
        let f = |e| decay_factor(e, &[12, 16], 0.2);
        assert_eq!(f(0), 1.0);
        assert_eq!(f(11), 1.0);
        assert!((f(12) - 0.2).abs() < 1e-12 && (f(15) - 0.2).abs() < 1e-12);
        assert!((f(16) - 0.04).abs() < 1e-12 && (f(19) - 0.04).abs() < 1e-12);
    }
}
