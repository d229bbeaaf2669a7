//! `swav extract`: pooled trunk features of a folder of images, as .npy.

use crate::eval::data::folder_transform;
use anyhow::Result;
use ndarray::Array1;
use swav_nn::Backend;

use super::model_loading::load_model;
use crate::cli::ExtractArgs;
use crate::config::Device;
use crate::device::{BackendJob, on_device};
use crate::eval::features::extract;
use crate::npy::{write_indices, write_matrix};
use crate::train::data::open_folder;
use crate::weights_source::WeightsSource;

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
            dataset,
            transform,
            args.batch_size,
            args.workers,
        )?;
        write_matrix(&args.output, &features.values)?;
        let labels: Array1<i64> = features
            .labels
            .iter()
            .map(|l| l.map_or(-1, |c| c as i64))
            .collect();
        let labels_path = args.output.with_extension("labels.npy");
        write_indices(&labels_path, &labels)?;
        eprintln!(
            "{} images -> {} ({} features each); labels -> {}",
            features.indices.len(),
            args.output.display(),
            features.values.ncols(),
            labels_path.display()
        );
        Ok(())
    }
}
