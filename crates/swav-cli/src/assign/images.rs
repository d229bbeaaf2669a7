//! `swav assign --weights CKPT --data DIR`: cluster assignments of images to a trained
//! model's prototypes, balanced with Sinkhorn over the whole set.

use crate::eval::data::folder_transform;
use anyhow::{Result, anyhow, bail};
use ndarray::Array2;
use swav_nn::Backend;

use super::embeddings::{AssignSettings, assign, hard_clusters};
use crate::config::Device;
use crate::datasets::open_folder;
use crate::device::{BackendJob, on_device};
use crate::eval::features::{extract, write_row_paths};
use crate::model_loading::load_model;
use crate::npy::{non_finite_rows, write_indices, write_matrix};
use crate::skipped_files::report_skipped;
use crate::train::weights_source::WeightsSource;

/// What to assign and where to write it.
pub struct AssignImages<'a> {
    /// The trained model.
    pub weights: &'a std::path::Path,
    /// The images.
    pub data: &'a std::path::Path,
    /// The .npy to write.
    pub output: &'a std::path::Path,
    /// Crop size (default: the model's training size).
    pub image_size: Option<usize>,
    /// Sinkhorn and output settings.
    pub settings: AssignSettings,
}

/// Runs the assignment of images.
pub fn run(request: AssignImages<'_>) -> Result<()> {
    let weights = WeightsSource::read(request.weights)?;
    on_device(Device::Cpu, 0, Job { request, weights })
}

struct Job<'a> {
    request: AssignImages<'a>,
    weights: WeightsSource,
}

impl BackendJob for Job<'_> {
    type Output = ();
    fn run<B: Backend>(self, b: &mut B) -> Result<()> {
        let r = &self.request;
        let config = self.weights.model_config()?;
        if config.prototypes == 0 {
            bail!(
                "{} has no prototypes: assign needs a SwAV checkpoint or the official layout",
                r.weights.display()
            );
        }
        let dataset = open_folder(r.data)?;
        let training = self.weights.training_config().ok().flatten();
        let transform = folder_transform(r.image_size, training.as_ref());
        let mut model = load_model(b, &self.weights)?;
        let features = extract(b, &mut model, dataset.clone(), transform, 64, 4)?;
        let rows = features.indices.len();
        let dev = |e: B::Error| anyhow!("device error: {e}");
        let mut feature_buf = b.zeros(rows * model.feature_dim()).map_err(dev)?;
        b.upload(
            features.values.as_slice().expect("standard layout"),
            &mut feature_buf,
            0,
        )
        .map_err(dev)?;
        let mut embeddings = b.zeros(rows * config.output_dim).map_err(dev)?;
        model
            .forward_eval_head(b, &feature_buf, rows, &mut embeddings, None)
            .map_err(dev)?;
        let mut z = vec![0.0f32; rows * config.output_dim];
        b.download(&embeddings, 0, &mut z).map_err(dev)?;
        let prototypes = model.prototypes().expect("checked above");
        let mut w = vec![0.0f32; config.prototypes * config.output_dim];
        b.download(prototypes, 0, &mut w).map_err(dev)?;
        let z = Array2::from_shape_vec((rows, config.output_dim), z)?.mapv(f64::from);
        let w = Array2::from_shape_vec((config.prototypes, config.output_dim), w)?.mapv(f64::from);
        if let Some(bad) = non_finite_rows(&w) {
            bail!(
                "{}: {} of the {} prototypes hold NaN or infinite values (the first is row {}); \
                 nothing was assigned",
                r.weights.display(),
                bad.count,
                w.nrows(),
                bad.first
            );
        }
        if let Some(bad) = non_finite_rows(&z) {
            bail!(
                "{}: the model's embeddings of {} of {rows} images are NaN or infinite (the \
                 first is row {}, {}); nothing was assigned",
                r.weights.display(),
                bad.count,
                bad.first,
                dataset.sample_name(features.indices[bad.first])
            );
        }
        let codes = assign(&z, &w, r.settings)?;
        if r.settings.hard {
            write_indices(r.output, &hard_clusters(&codes))?;
        } else {
            write_matrix(r.output, &codes.mapv(|v| v as f32))?;
        }
        let paths = write_row_paths(r.output, &*dataset, &features)?;
        eprintln!(
            "assigned {rows} of {} images to {} prototypes -> {}; row paths -> {}",
            dataset.len(),
            config.prototypes,
            r.output.display(),
            paths.display()
        );
        report_skipped("assign", &features.skipped);
        Ok(())
    }
}
