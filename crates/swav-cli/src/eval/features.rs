//! Pooled trunk features of a dataset, through a model in evaluation mode.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use ndarray::Array2;
use swav_augment::dataset::Dataset;
use swav_augment::loader::{BadInputSummary, EvalLoader, EvalLoaderConfig};
use swav_augment::transform::eval::{EvalConfig, EvalTransform};
use swav_nn::{Backend, SwavModel};

/// Features (`images × feature_dim`) with the labels and dataset indices of their rows
/// (unreadable images are left out and reported by the loader).
pub struct Features {
    /// One row per image.
    pub values: Array2<f32>,
    /// Labels, when the dataset has them.
    pub labels: Vec<Option<usize>>,
    /// Dataset index of each row.
    pub indices: Vec<usize>,
    /// The unreadable images that were left out.
    pub skipped: BadInputSummary,
}

/// Runs every image of `dataset` through the trunk (running statistics); an error when no
/// image is readable.
pub fn extract<B: Backend>(
    b: &mut B,
    model: &mut SwavModel<B>,
    dataset: Arc<dyn Dataset>,
    transform: EvalConfig,
    batch_size: usize,
    workers: usize,
) -> Result<Features> {
    let size = transform.size as usize;
    let loader = EvalLoader::new(
        dataset,
        EvalTransform::new(transform)?,
        EvalLoaderConfig {
            batch_size,
            workers,
            ..EvalLoaderConfig::default()
        },
    )?;
    let mut embedder = TrunkEmbedder::new(b, model, batch_size, size)?;
    let mut values = Vec::new();
    let (mut labels, mut indices) = (Vec::new(), Vec::new());
    for batch in loader.batches()? {
        let batch = batch?;
        let group = batch.group(0).expect("one resolution group");
        let n = group.batch();
        if n == 0 {
            // Every image of this batch was unreadable.
            continue;
        }
        embedder.embed(b, model, group.data(), n, &mut values)?;
        match batch.labels() {
            Some(l) => labels.extend(l.iter().map(|&c| Some(c))),
            None => labels.extend(std::iter::repeat_n(None, n)),
        }
        indices.extend_from_slice(batch.indices());
    }
    let rows = indices.len();
    let skipped = loader.bad_input_summary();
    if rows == 0 {
        bail!(
            "none of the {} images could be read ({skipped})",
            skipped.count
        );
    }
    Ok(Features {
        values: Array2::from_shape_vec((rows, model.feature_dim()), values).expect("rows × dim"),
        labels,
        indices,
        skipped,
    })
}

/// Device buffers that run batches of at most `batch` square `size`-pixel images (NHWC)
/// through a trunk in evaluation mode and bring their pooled features back to the host.
pub struct TrunkEmbedder<B: Backend> {
    images: B::Buf,
    features: B::Buf,
    host: Vec<f32>,
    side: usize,
    dim: usize,
}

impl<B: Backend> TrunkEmbedder<B> {
    /// Buffers for `model`'s features of `batch` images of `size` pixels.
    pub fn new(b: &mut B, model: &SwavModel<B>, batch: usize, size: usize) -> Result<Self> {
        let dim = model.feature_dim();
        Ok(Self {
            images: b
                .alloc_activation(batch * size * size * 3)
                .map_err(device_error)?,
            features: b.zeros(batch * dim).map_err(device_error)?,
            host: vec![0.0; batch * dim],
            side: size,
            dim,
        })
    }

    /// Appends the features of the `n` images in `data` (`n × size × size × 3` values), one
    /// row of [`SwavModel::feature_dim`] values each, to `out`.
    pub fn embed(
        &mut self,
        b: &mut B,
        model: &mut SwavModel<B>,
        data: &[f32],
        n: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (side, rows) = (self.side, n * self.dim);
        b.upload(data, &mut self.images, 0).map_err(device_error)?;
        model
            .forward_eval_features(b, &self.images, n, side, side, &mut self.features)
            .map_err(device_error)?;
        b.download(&self.features, 0, &mut self.host[..rows])
            .map_err(device_error)?;
        out.extend_from_slice(&self.host[..rows]);
        Ok(())
    }
}

fn device_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("device error: {e}")
}

/// The file beside `output` that lists the source of each row: `features.npy` →
/// `features.paths.txt`.
pub fn row_paths_file(output: &Path) -> PathBuf {
    output.with_extension("paths.txt")
}

/// Writes the source path of every row of `features` (from `dataset`), one per line, in row
/// order, to [`row_paths_file`]`(output)`; returns that file.
pub fn write_row_paths(
    output: &Path,
    dataset: &dyn Dataset,
    features: &Features,
) -> Result<PathBuf> {
    let path = row_paths_file(output);
    let mut text = String::new();
    for &index in &features.indices {
        text.push_str(&dataset.sample_name(index));
        text.push('\n');
    }
    swav_nn::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
