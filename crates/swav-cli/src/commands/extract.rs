//! `swav extract`: pooled trunk features of a folder of images, as .npy, with the source
//! path of every row beside it and, for an ImageFolder layout, the labels.

use crate::eval::data::folder_transform;
use anyhow::{Result, bail};
use ndarray::Array1;
use swav_nn::Backend;

use crate::cli::ExtractArgs;
use crate::config::Device;
use crate::datasets::open_folder;
use crate::device::{BackendJob, on_device};
use crate::eval::features::{extract, write_row_paths};
use crate::model_loading::load_model;
use crate::npy::{non_finite_rows, write_indices, write_matrix};
use crate::skipped_files::report_skipped;
use crate::train::weights_source::WeightsSource;

/// Runs `swav extract`.
pub fn run(args: &ExtractArgs) -> Result<()> {
    let weights = WeightsSource::read(&args.weights)?;
    on_device(Device::Cpu, 0, Extract { args, weights })
}

struct Extract<'a> {
    args: &'a ExtractArgs,
    weights: WeightsSource,
}

impl BackendJob for Extract<'_> {
    type Output = ();
    fn run<B: Backend>(self, b: &mut B) -> Result<()> {
        let args = self.args;
        let dataset = open_folder(&args.data)?;
        let training = self.weights.training_config().ok().flatten();
        let transform = folder_transform(args.image_size, training.as_ref());
        let mut model = load_model(b, &self.weights)?;
        let features = extract(
            b,
            &mut model,
            dataset.clone(),
            transform,
            args.batch_size,
            args.workers,
        )?;
        if let Some(bad) = non_finite_rows(&features.values) {
            bail!(
                "{}: the features of {} of {} images are NaN or infinite (the first is row {}, \
                 {}); nothing was written",
                args.weights.display(),
                bad.count,
                features.indices.len(),
                bad.first,
                dataset.sample_name(features.indices[bad.first])
            );
        }
        write_matrix(&args.output, &features.values)?;
        let paths = write_row_paths(&args.output, &*dataset, &features)?;
        let labels_path = args.output.with_extension("labels.npy");
        let labelled = dataset.num_classes() > 0;
        if labelled {
            let labels: Array1<i64> = features
                .labels
                .iter()
                .map(|l| l.map_or(-1, |c| c as i64))
                .collect();
            write_indices(&labels_path, &labels)?;
        }
        eprintln!(
            "{} of {} images -> {} ({} features each); row paths -> {}{}",
            features.indices.len(),
            dataset.len(),
            args.output.display(),
            features.values.ncols(),
            paths.display(),
            if labelled {
                format!("; labels -> {}", labels_path.display())
            } else {
                "; no labels (a flat folder)".to_string()
            }
        );
        report_skipped("extract", &features.skipped);
        Ok(())
    }
}
