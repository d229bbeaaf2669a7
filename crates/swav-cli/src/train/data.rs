//! The datasets and loaders a run's configuration asks for.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use swav_augment::dataset::{
    Dataset, FlatFolder, ImageFolder, SyntheticConfig, SyntheticDataset, SyntheticSplit,
};
use swav_augment::loader::{BadInputPolicy, LoaderConfig, MultiCropLoader};
use swav_augment::transform::config::{CropGroupConfig, MultiCropConfig};
use swav_augment::transform::eval::{EvalConfig, EvalMode};
use swav_augment::transform::multi_crop::MultiCropTransform;

use crate::config::PretrainConfig;

/// The built-in dataset's configuration for a run.
pub fn synthetic_config(config: &PretrainConfig) -> SyntheticConfig {
    SyntheticConfig {
        image_size: config.synthetic_image_size as u32,
        num_classes: config.synthetic_classes,
        images_per_class: config.synthetic_images_per_class,
        seed: config.synthetic_seed,
        monochrome: config.synthetic_monochrome,
        max_rotation_degrees: config.synthetic_max_rotation_degrees,
        plain_background: config.synthetic_plain_background,
    }
}

/// Opens an image folder: ImageFolder layout when `dir` has sub-folders, else flat.
pub fn open_folder(dir: &Path) -> Result<Arc<dyn Dataset>> {
    let meta = std::fs::metadata(dir).with_context(|| format!("data folder {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("data path {} is not a folder", dir.display());
    }
    let has_subfolders = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list data folder {}", dir.display()))?
        .filter_map(|e| e.ok())
        .any(|e| e.file_type().is_ok_and(|t| t.is_dir()));
    Ok(if has_subfolders {
        Arc::new(ImageFolder::open(dir)?)
    } else {
        Arc::new(FlatFolder::open(dir)?)
    })
}

/// The training images of a run.
pub fn training_dataset(config: &PretrainConfig) -> Result<Arc<dyn Dataset>> {
    match &config.data {
        Some(dir) => open_folder(dir),
        None => Ok(Arc::new(SyntheticDataset::new(
            synthetic_config(config),
            SyntheticSplit::Train,
        )?)),
    }
}

/// The multi-crop transform of a run.
pub fn multi_crop(config: &PretrainConfig) -> Result<MultiCropTransform> {
    let crops = config
        .nmb_crops
        .iter()
        .zip(&config.size_crops)
        .zip(config.min_scale_crops.iter().zip(&config.max_scale_crops))
        .map(
            |((&count, &size), (&min_scale, &max_scale))| CropGroupConfig {
                count,
                size: size as u32,
                min_scale,
                max_scale,
            },
        )
        .collect();
    let crop_config = MultiCropConfig {
        jitter_strength: config.color_jitter_strength as f32,
        blur_probability: config.blur_probability,
        grayscale_probability: config.grayscale_probability,
        rotation_probability: config.rotation_probability,
        rotation_degrees: config.rotation_degrees as f32,
        ..MultiCropConfig::with_crops(crops)
    };
    Ok(MultiCropTransform::new(crop_config)?)
}

/// The training loader of rank `rank` out of `world`.
pub fn training_loader(
    config: &PretrainConfig,
    rank: usize,
    world: usize,
) -> Result<MultiCropLoader> {
    let loader = MultiCropLoader::new(
        training_dataset(config)?,
        multi_crop(config)?,
        LoaderConfig {
            batch_size: config.batch_size,
            seed: config.seed,
            rank,
            world_size: world,
            workers: config.workers,
            prefetch: 2,
            drop_last: true,
            bad_input: BadInputPolicy {
                strict: config.strict_data,
                ..BadInputPolicy::default()
            },
        },
    )?;
    Ok(loader)
}

/// The evaluation transform for images of a run's data: the whole image resized for the
/// small synthetic images, the ImageNet resize + centre crop otherwise.
pub fn eval_transform(config: &PretrainConfig) -> EvalConfig {
    match config.data {
        None => EvalConfig {
            size: config.synthetic_image_size as u32,
            mode: EvalMode::Resize,
            ..EvalConfig::default()
        },
        Some(_) => EvalConfig {
            size: config.size_crops[0] as u32,
            mode: EvalMode::ResizeCenterCrop,
            ..EvalConfig::default()
        },
    }
}

/// Training and validation images of one evaluation.
pub type TrainValSplit = (Arc<dyn Dataset>, Arc<dyn Dataset>);

/// The (train, validation) datasets k-NN evaluation uses for a run: the synthetic splits,
/// or `train/` and `val/` under the data folder (`None` if they do not exist).
pub fn knn_datasets(config: &PretrainConfig) -> Result<Option<TrainValSplit>> {
    match &config.data {
        None => {
            let synthetic = synthetic_config(config);
            let val_per_class = (config.synthetic_images_per_class / 2).max(20);
            let (train, val) = SyntheticDataset::train_val(synthetic, val_per_class)?;
            Ok(Some((Arc::new(train), Arc::new(val))))
        }
        Some(dir) => {
            let (train, val) = (dir.join("train"), dir.join("val"));
            if train.is_dir() && val.is_dir() {
                Ok(Some((open_folder(&train)?, open_folder(&val)?)))
            } else {
                Ok(None)
            }
        }
    }
}
