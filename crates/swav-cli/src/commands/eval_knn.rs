//! `swav eval knn`: weighted k-NN top-1 of frozen trunk features.

use anyhow::Result;
use swav_nn::Backend;

use crate::cli::KnnArgs;
use crate::device::{BackendJob, on_device};
use crate::eval::data::{eval_data, require_labels};
use crate::eval::features::extract;
use crate::eval::knn::knn_accuracy;
use crate::model_loading::load_model;
use crate::skipped_files::report_skipped;
use crate::train::weights_source::WeightsSource;

/// Runs `swav eval knn`.
pub fn run(args: &KnnArgs) -> Result<()> {
    let weights = WeightsSource::read(&args.source.weights)?;
    on_device(args.source.device, 0, Knn { args, weights })
}

struct Knn<'a> {
    args: &'a KnnArgs,
    weights: WeightsSource,
}

impl BackendJob for Knn<'_> {
    type Output = ();
    fn run<B: Backend>(self, b: &mut B) -> Result<()> {
        let source = &self.args.source;
        let data = eval_data(source, self.weights.training_config()?.as_ref())?;
        let mut model = load_model(b, &self.weights)?;
        let train = extract(
            b,
            &mut model,
            data.train.clone(),
            data.transform,
            source.batch_size,
            source.workers,
        )?;
        let val = extract(
            b,
            &mut model,
            data.val.clone(),
            data.transform,
            source.batch_size,
            source.workers,
        )?;
        let classes = data.train.num_classes().max(1);
        let results = knn_accuracy(
            train.values.view(),
            &require_labels(&train.labels)?,
            val.values.view(),
            &require_labels(&val.labels)?,
            classes,
            &self.args.k,
            self.args.temperature,
        );
        println!(
            "k-NN ({} train, {} val images, {classes} classes, T = {}):",
            train.indices.len(),
            val.indices.len(),
            self.args.temperature
        );
        for r in results {
            println!("  k = {:<4} top-1 {:6.2}%", r.k, 100.0 * r.top1);
        }
        report_skipped("train split", &train.skipped);
        report_skipped("val split", &val.skipped);
        Ok(())
    }
}
