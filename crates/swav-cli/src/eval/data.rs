//! The images an evaluation command reads, and how they are transformed.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use swav_augment::dataset::{Dataset, IdxDataset, IdxSplit, SyntheticDataset, is_idx_folder};
use swav_augment::transform::config::{CropGroupConfig, MultiCropConfig};
use swav_augment::transform::eval::{EvalConfig, EvalMode};
use swav_augment::transform::multi_crop::MultiCropTransform;

use crate::cli::ModelAndData;
use crate::config::PretrainConfig;
use crate::datasets::{first_per_class, open_folder, refuse_shards, synthetic_config};
use crate::presets::Preset;

/// Train and validation images with their evaluation transform.
pub struct EvalData {
    /// Training images (k-NN memory, linear-probe training).
    pub train: Arc<dyn Dataset>,
    /// Validation images.
    pub val: Arc<dyn Dataset>,
    /// The deterministic evaluation transform.
    pub transform: EvalConfig,
}

/// The evaluation transform of real images: resize and centre crop to `image_size`, else to
/// the training run's first crop size, else to 224.
pub fn folder_transform(
    image_size: Option<usize>,
    training: Option<&PretrainConfig>,
) -> EvalConfig {
    let size = image_size
        .or_else(|| training.map(|c| c.size_crops[0]))
        .unwrap_or(224);
    EvalConfig {
        size: size as u32,
        mode: EvalMode::ResizeCenterCrop,
        ..EvalConfig::default()
    }
}

/// An MNIST-format IDX folder's `train` and `t10k` splits, each image resized whole to
/// `image_size`, else to the training run's first crop size, else kept at its own size.
fn idx_data(
    dir: &Path,
    training: Option<&PretrainConfig>,
    image_size: Option<usize>,
) -> Result<EvalData> {
    let train = IdxDataset::open(dir, IdxSplit::Train)?;
    let val = IdxDataset::open(dir, IdxSplit::Test)?;
    let size = image_size
        .or_else(|| training.map(|c| c.size_crops[0]))
        .unwrap_or(train.image_size().0 as usize);
    Ok(EvalData {
        train: Arc::new(train),
        val: Arc::new(val),
        transform: EvalConfig {
            size: size as u32,
            mode: EvalMode::Resize,
            ..EvalConfig::default()
        },
    })
}

/// `DIR/train` and `DIR/val`, resized and centre-cropped as [`folder_transform`] says.
fn split_folders(
    dir: &Path,
    training: Option<&PretrainConfig>,
    image_size: Option<usize>,
) -> Result<EvalData> {
    let (train, val) = (dir.join("train"), dir.join("val"));
    for split in [&train, &val] {
        if !split.is_dir() {
            bail!(
                "evaluation data {} must contain train/ and val/ image folders (or MNIST-format IDX files); {} is missing",
                dir.display(),
                split.display()
            );
        }
    }
    Ok(EvalData {
        train: open_folder(&train)?,
        val: open_folder(&val)?,
        transform: folder_transform(image_size, training),
    })
}

/// The synthetic splits of the run that trained the weights (or of the demo preset for
/// plain weights), resized whole to `image_size` or their own size.
fn synthetic_data(
    training: Option<&PretrainConfig>,
    image_size: Option<usize>,
) -> Result<EvalData> {
    let base = match training {
        Some(c) if c.data.is_none() => c.clone(),
        _ => Preset::Demo.config(),
    };
    let synthetic = synthetic_config(&base);
    let val_per_class = (base.synthetic_images_per_class / 2).max(20);
    let (train, val) = SyntheticDataset::train_val(synthetic, val_per_class)?;
    let size = image_size.unwrap_or(base.synthetic_image_size);
    Ok(EvalData {
        train: Arc::new(train),
        val: Arc::new(val),
        transform: EvalConfig {
            size: size as u32,
            mode: EvalMode::Resize,
            ..EvalConfig::default()
        },
    })
}

/// The images `source` names: an IDX folder's `train` and `t10k` splits or `DIR/train`
/// and `DIR/val` (each cut to the first `--images-per-class` / `--eval-images-per-class`
/// images of each class when set), else the synthetic splits of the run that trained the
/// weights (or of the demo preset for plain weights). `--image-size` overrides the crop size.
pub fn eval_data(source: &ModelAndData, training: Option<&PretrainConfig>) -> Result<EvalData> {
    let Some(dir) = source.data.as_deref() else {
        if source.images_per_class > 0 || source.eval_images_per_class > 0 {
            bail!(
                "--images-per-class and --eval-images-per-class apply to --data folders, not to the built-in dataset"
            );
        }
        return synthetic_data(training, source.image_size);
    };
    refuse_shards(dir)?;
    let (data, train_dir, val_dir) = if is_idx_folder(dir) {
        let data = idx_data(dir, training, source.image_size)?;
        (data, dir.to_path_buf(), dir.to_path_buf())
    } else {
        let data = split_folders(dir, training, source.image_size)?;
        (data, dir.join("train"), dir.join("val"))
    };
    Ok(EvalData {
        train: first_per_class(
            data.train,
            source.images_per_class,
            "--images-per-class",
            &train_dir,
        )?,
        val: first_per_class(
            data.val,
            source.eval_images_per_class,
            "--eval-images-per-class",
            &val_dir,
        )?,
        transform: data.transform,
    })
}

/// Labels of every row, or an error saying the images must be labelled.
pub fn require_labels(labels: &[Option<usize>]) -> Result<Vec<usize>> {
    labels
        .iter()
        .map(|l| l.ok_or_else(|| anyhow::anyhow!("evaluation needs labelled images (an ImageFolder layout with one sub-folder per class, or an MNIST-format IDX folder)")))
        .collect()
}
/// The official evaluations' training transform: one RandomResizedCrop (8-100 % of the
/// area) to `size`, a horizontal flip, no colour change (the linear probe's augmented epochs
/// and the semi-supervised fine-tuning).
pub fn crop_and_flip(size: u32) -> Result<MultiCropTransform> {
    Ok(MultiCropTransform::new(MultiCropConfig {
        jitter_probability: 0.0,
        grayscale_probability: 0.0,
        blur_probability: 0.0,
        ..MultiCropConfig::with_crops(vec![CropGroupConfig {
            count: 1,
            size,
            min_scale: 0.08,
            max_scale: 1.0,
        }])
    })?)
}
