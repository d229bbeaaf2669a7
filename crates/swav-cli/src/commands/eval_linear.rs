//! `swav eval linear`: a linear classifier on frozen trunk features.

use anyhow::{Result, anyhow};
use ndarray::{Array2, ArrayView2};
use swav_augment::loader::{LoaderConfig, MultiCropLoader};
use swav_nn::{Backend, SwavModel};

use crate::cli::LinearArgs;
use crate::device::{BackendJob, on_device};
use crate::eval::data::{EvalData, crop_and_flip, eval_data, require_labels};
use crate::eval::features::{TrunkEmbedder, extract};
use crate::eval::linear_probe::{EpochFeatures, FixedFeatures, ProbeSettings, train_probe};
use crate::model_loading::load_model;
use crate::skipped_files::report_skipped;
use crate::train::weights_source::WeightsSource;

/// Runs `swav eval linear`.
pub fn run(args: &LinearArgs) -> Result<()> {
    let weights = WeightsSource::read(&args.source.weights)?;
    on_device(args.source.device, 0, Linear { args, weights })
}

struct Linear<'a> {
    args: &'a LinearArgs,
    weights: WeightsSource,
}

impl BackendJob for Linear<'_> {
    type Output = ();
    fn run<B: Backend>(self, b: &mut B) -> Result<()> {
        let (args, source) = (self.args, &self.args.source);
        let data = eval_data(source, self.weights.training_config()?.as_ref())?;
        let mut model = load_model(b, &self.weights)?;
        let val = extract(
            b,
            &mut model,
            data.val.clone(),
            data.transform,
            source.batch_size,
            source.workers,
        )?;
        report_skipped("val split", &val.skipped);
        let val_labels = require_labels(&val.labels)?;
        let classes = data.train.num_classes().max(1);
        let settings = ProbeSettings {
            epochs: args.epochs,
            lr: args.lr,
            weight_decay: args.wd,
            momentum: 0.9,
            batch: args.classifier_batch,
            seed: args.seed,
        };
        let report = |epoch: usize, top1: f64| {
            eprintln!(
                "epoch {}/{}: val top-1 {:6.2}%",
                epoch + 1,
                args.epochs,
                100.0 * top1
            )
        };
        let result = if args.augment {
            let mut source = AugmentedFeatures {
                b,
                model: &mut model,
                data: &data,
                args,
                current: None,
            };
            train_probe(
                &mut source,
                val.values.view(),
                &val_labels,
                classes,
                settings,
                report,
            )?
        } else {
            let train = extract(
                b,
                &mut model,
                data.train.clone(),
                data.transform,
                source.batch_size,
                source.workers,
            )?;
            report_skipped("train split", &train.skipped);
            let labels = require_labels(&train.labels)?;
            let mut fixed = FixedFeatures {
                values: train.values.view(),
                labels: &labels,
            };
            train_probe(
                &mut fixed,
                val.values.view(),
                &val_labels,
                classes,
                settings,
                report,
            )?
        };
        println!(
            "linear probe: best val top-1 {:.2}% (epoch {}), last {:.2}%",
            100.0 * result.best_top1,
            result.best_epoch + 1,
            100.0 * result.per_epoch.last().copied().unwrap_or(0.0)
        );
        Ok(())
    }
}

/// Features of RandomResizedCrop + flip crops (the official training transform), recomputed
/// through the frozen trunk every epoch.
struct AugmentedFeatures<'a, B: Backend> {
    b: &'a mut B,
    model: &'a mut SwavModel<B>,
    data: &'a EvalData,
    args: &'a LinearArgs,
    current: Option<(Array2<f32>, Vec<usize>)>,
}

impl<B: Backend> EpochFeatures for AugmentedFeatures<'_, B> {
    fn features(&mut self, epoch: usize) -> Result<(ArrayView2<'_, f32>, &[usize])> {
        let size = self.data.transform.size;
        let transform = crop_and_flip(size)?;
        let batch = self.args.source.batch_size;
        let loader = MultiCropLoader::new(
            self.data.train.clone(),
            transform,
            LoaderConfig {
                batch_size: batch,
                seed: self.args.seed,
                workers: self.args.source.workers,
                drop_last: false,
                ..LoaderConfig::default()
            },
        )?;
        let dim = self.model.feature_dim();
        let mut embedder = TrunkEmbedder::new(self.b, self.model, batch, size as usize)?;
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for batch in loader.epoch(epoch as u64)? {
            let batch = batch?;
            let group = batch.group(0).expect("one crop group");
            embedder.embed(self.b, self.model, group.data(), group.batch(), &mut values)?;
            let batch_labels = batch.labels().ok_or_else(|| {
                anyhow!("the linear probe needs labelled images (an ImageFolder layout)")
            })?;
            labels.extend_from_slice(batch_labels);
        }
        let rows = labels.len();
        let matrix = Array2::from_shape_vec((rows, dim), values).expect("rows × dim");
        let (m, l) = self.current.insert((matrix, labels));
        Ok((m.view(), l.as_slice()))
    }
}
