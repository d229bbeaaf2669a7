//! The datasets and loaders a run's configuration asks for.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use swav_augment::DatasetError;
use swav_augment::dataset::{
    Dataset, FlatFolder, IdxDataset, IdxSplit, ImageFolder, Subset, SyntheticConfig,
    SyntheticDataset, SyntheticSplit, is_idx_folder,
};
use swav_augment::loader::{
    BadInputPolicy, LoaderConfig, MultiCropLoader, ShardLoader, TrainingLoader, count_shards,
};
use swav_augment::shards::{is_shard_pattern, is_shard_spec, shard_paths};
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

/// Opens a data folder: the training split of an MNIST-format IDX folder (one that holds
/// `train-images-idx3-ubyte[.gz]` or another of its four files), else the ImageFolder
/// layout when `dir` has sub-folders, else a flat folder.
pub fn open_folder(dir: &Path) -> Result<Arc<dyn Dataset>> {
    refuse_shards(dir)?;
    let meta = std::fs::metadata(dir).with_context(|| format!("data folder {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("data path {} is not a folder", dir.display());
    }
    if is_idx_folder(dir) {
        return Ok(Arc::new(IdxDataset::open(dir, IdxSplit::Train)?));
    }
    let has_subfolders = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list data folder {}", dir.display()))?
        .filter_map(|e| e.ok())
        .any(|e| e.file_type().is_ok_and(|t| t.is_dir()));
    let opened: Result<Arc<dyn Dataset>, DatasetError> = if has_subfolders {
        ImageFolder::open(dir).map(|d| Arc::new(d) as Arc<dyn Dataset>)
    } else {
        FlatFolder::open(dir).map(|d| Arc::new(d) as Arc<dyn Dataset>)
    };
    opened.map_err(|e| match (&e, tar_files(dir)) {
        (DatasetError::NoImages { .. }, tars) if tars > 0 => anyhow!(
            "data folder {} holds no images but {tars} .tar files: to train on WebDataset shards, name them, e.g. --data '{}/NAME-{{000000..000099}}.tar', or list them in a file",
            dir.display(),
            dir.display()
        ),
        _ => e.into(),
    })
}

/// Stops with one line when `--data` value `dir` names WebDataset shards (a brace pattern
/// or a `.tar`), which only `swav pretrain` streams. (Any other file is refused as not a
/// folder by the caller.)
pub fn refuse_shards(dir: &Path) -> Result<()> {
    if is_shard_pattern(dir) {
        bail!(
            "--data {} names WebDataset shards, which only `swav pretrain` streams; this command reads an image folder or an IDX folder",
            dir.display()
        );
    }
    Ok(())
}

/// How many `.tar` files `dir` holds directly.
fn tar_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "tar"))
                .count()
        })
        .unwrap_or(0)
}

/// `dataset`, read from `dir`, cut to the first `per_class` images of each class (0: all
/// of it); `flag` names the setting in errors.
pub fn first_per_class(
    dataset: Arc<dyn Dataset>,
    per_class: usize,
    flag: &str,
    dir: &Path,
) -> Result<Arc<dyn Dataset>> {
    if per_class == 0 {
        return Ok(dataset);
    }
    if dataset.num_classes() == 0 {
        bail!(
            "{flag} needs labelled images (an ImageFolder or an MNIST-format IDX folder); {} is a flat folder of unlabelled images",
            dir.display()
        );
    }
    Ok(Arc::new(Subset::first_per_class(dataset, per_class)?))
}

/// `N images, C classes (n per class)`, or `N unlabelled images`: the size of a dataset
/// for the lines a run starts with.
fn describe(dataset: &dyn Dataset) -> String {
    let classes = dataset.num_classes();
    if classes == 0 {
        return format!("{} unlabelled images", dataset.len());
    }
    let mut counts = vec![0usize; classes];
    for label in (0..dataset.len()).filter_map(|i| dataset.label(i)) {
        if let Some(count) = counts.get_mut(label) {
            *count += 1;
        }
    }
    let (fewest, most) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    let per_class = if fewest == most {
        format!("{most} per class")
    } else {
        format!("{fewest} to {most} per class")
    };
    format!("{} images, {classes} classes ({per_class})", dataset.len())
}

/// `dir/train` and `dir/val` when both are folders: the split layout k-NN evaluates on.
fn train_val_folders(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (train, val) = (dir.join("train"), dir.join("val"));
    (train.is_dir() && val.is_dir()).then_some((train, val))
}

/// The folder a run trains on: `dir/train` when `dir` has `train/` and `val/` (and is not an
/// IDX folder), else `dir`.
pub fn training_folder(dir: &Path) -> PathBuf {
    match train_val_folders(dir) {
        Some((train, _)) if !is_idx_folder(dir) => train,
        _ => dir.to_path_buf(),
    }
}

/// The training images of a run: the `--data` folder, its `train/` split when it has
/// `train/` and `val/` (the validation images stay out of training, as k-NN evaluates on
/// them), or the built-in dataset. With `data_images_per_class` set, the first images of
/// each class of those.
pub fn training_dataset(config: &PretrainConfig) -> Result<Arc<dyn Dataset>> {
    match &config.data {
        Some(dir) => {
            let per_class = config.data_images_per_class;
            let source = training_folder(dir);
            first_per_class(
                open_folder(&source)?,
                per_class,
                "--images-per-class",
                &source,
            )
        }
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

/// The training loader of rank `rank` out of `world`: over WebDataset shards when `--data`
/// names them, else over the run's dataset.
pub fn training_loader(
    config: &PretrainConfig,
    rank: usize,
    world: usize,
) -> Result<TrainingLoader> {
    match config.data.as_deref() {
        Some(spec) if is_shard_spec(spec) => Ok(TrainingLoader::Shards(shard_loader(
            config, spec, rank, world,
        )?)),
        _ => Ok(TrainingLoader::Dataset(dataset_loader(
            config, rank, world,
        )?)),
    }
}

/// The training loader of rank `rank` out of `world` over the run's dataset (a folder, an
/// IDX folder or the built-in set).
pub fn dataset_loader(
    config: &PretrainConfig,
    rank: usize,
    world: usize,
) -> Result<MultiCropLoader> {
    let started = Instant::now();
    let dataset = training_dataset(config)?;
    if let (Some(dir), 0) = (&config.data, rank) {
        crate::say!(
            "training set: {} from {}, read in {:.2} s",
            describe(dataset.as_ref()),
            training_folder(dir).display(),
            started.elapsed().as_secs_f64()
        );
    }
    loader_over(dataset, config, rank, world)
}

/// The training loader of rank `rank` out of `world` over the shards `spec` names, which
/// every rank counts from their headers (so all agree on the epoch's length).
fn shard_loader(
    config: &PretrainConfig,
    spec: &Path,
    rank: usize,
    world: usize,
) -> Result<ShardLoader> {
    for (flag, n) in [
        ("--images-per-class", config.data_images_per_class),
        ("--eval-images-per-class", config.eval_images_per_class),
    ] {
        if n > 0 {
            bail!(
                "{flag} takes the first images of each class of a folder; shards are streamed without an index, so it does not apply to --data {}",
                spec.display()
            );
        }
    }
    let started = Instant::now();
    let shards = count_shards(&shard_paths(spec)?)?;
    let loader = ShardLoader::new(
        shards,
        multi_crop(config)?,
        loader_config(config, rank, world),
        config.shuffle_buffer,
    )?;
    if rank == 0 {
        let counts = loader.shards().iter().map(|s| s.count);
        let samples: usize = counts.clone().map(|c| c.samples).sum();
        let without_image: usize = counts.clone().map(|c| c.without_image).sum();
        let labels = if loader.is_labelled() {
            "with cls labels"
        } else {
            "not all labelled"
        };
        let skipped = match without_image {
            0 => String::new(),
            1 => "; 1 sample without an image member is skipped".to_string(),
            n => format!("; {n} samples without an image member are skipped"),
        };
        let shards = match loader.shards().len() {
            1 => "1 shard".to_string(),
            n => format!("{n} shards"),
        };
        crate::say!(
            "training shards: {shards} from {}, {samples} samples ({labels}){skipped}; counted from the tar headers in {:.2} s",
            spec.display(),
            started.elapsed().as_secs_f64()
        );
        let per_rank = loader.rank_samples();
        let (fewest, most) = (
            per_rank.iter().min().copied().unwrap_or(0),
            per_rank.iter().max().copied().unwrap_or(0),
        );
        let streams = match (world, fewest == most) {
            (1, _) => "one rank streams every shard".to_string(),
            (_, true) => {
                format!("each of {world} ranks streams its own shards ({most} samples each)")
            }
            (_, false) => {
                format!("each of {world} ranks streams its own shards ({fewest} to {most} samples)")
            }
        };
        crate::say!(
            "{streams} through a shuffle buffer of {}: {} iterations per epoch{}",
            config.shuffle_buffer,
            loader.iters_per_epoch(),
            if most > fewest {
                format!(
                    ", set by the smallest rank; up to {} samples of the others go unread each epoch",
                    most - fewest
                )
            } else {
                String::new()
            }
        );
    }
    Ok(loader)
}

/// The loader settings of rank `rank` out of `world` for `config`.
fn loader_config(config: &PretrainConfig, rank: usize, world: usize) -> LoaderConfig {
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
    }
}

/// The training loader of rank `rank` out of `world` over `dataset` (already read), with
/// `config`'s crops and augmentations.
pub fn loader_over(
    dataset: Arc<dyn Dataset>,
    config: &PretrainConfig,
    rank: usize,
    world: usize,
) -> Result<MultiCropLoader> {
    Ok(MultiCropLoader::new(
        dataset,
        multi_crop(config)?,
        loader_config(config, rank, world),
    )?)
}

/// The evaluation transform for images of a run's data: the whole image resized for small
/// images (the synthetic ones, and an IDX folder's, to the first crop size), the ImageNet
/// resize + centre crop otherwise.
pub fn eval_transform(config: &PretrainConfig) -> EvalConfig {
    match &config.data {
        None => EvalConfig {
            size: config.synthetic_image_size as u32,
            mode: EvalMode::Resize,
            ..EvalConfig::default()
        },
        Some(dir) => EvalConfig {
            size: config.size_crops[0] as u32,
            mode: if is_idx_folder(dir) {
                EvalMode::Resize
            } else {
                EvalMode::ResizeCenterCrop
            },
            ..EvalConfig::default()
        },
    }
}

/// Training and validation images of one evaluation.
pub type TrainValSplit = (Arc<dyn Dataset>, Arc<dyn Dataset>);

/// The (train, validation) datasets k-NN evaluation uses for a run: the synthetic splits;
/// an IDX folder's `train` and `t10k` splits; or `train/` and `val/` under the data folder
/// (`None` if neither exists, and for shards). Of a folder, the training side keeps the first
/// `data_images_per_class` images of each class and the validation side the first
/// `eval_images_per_class` (0: all).
pub fn knn_datasets(config: &PretrainConfig) -> Result<Option<TrainValSplit>> {
    match &config.data {
        Some(spec) if is_shard_spec(spec) => Ok(None),
        None => {
            let synthetic = synthetic_config(config);
            let val_per_class = (config.synthetic_images_per_class / 2).max(20);
            let (train, val) = SyntheticDataset::train_val(synthetic, val_per_class)?;
            Ok(Some((Arc::new(train), Arc::new(val))))
        }
        Some(dir) => {
            let started = Instant::now();
            let (train, val, train_dir, val_dir): (_, Arc<dyn Dataset>, _, _) =
                if is_idx_folder(dir) {
                    if IdxSplit::Test.images_file(dir).is_none() {
                        return Ok(None);
                    }
                    (
                        open_folder(dir)?,
                        Arc::new(IdxDataset::open(dir, IdxSplit::Test)?),
                        dir.clone(),
                        dir.clone(),
                    )
                } else {
                    let Some((train, val)) = train_val_folders(dir) else {
                        return Ok(None);
                    };
                    (open_folder(&train)?, open_folder(&val)?, train, val)
                };
            let train = first_per_class(
                train,
                config.data_images_per_class,
                "--images-per-class",
                &train_dir,
            )?;
            let val = first_per_class(
                val,
                config.eval_images_per_class,
                "--eval-images-per-class",
                &val_dir,
            )?;
            crate::say!(
                "k-NN sets: {} against {}, read in {:.2} s",
                describe(train.as_ref()),
                describe(val.as_ref()),
                started.elapsed().as_secs_f64()
            );
            Ok(Some((train, val)))
        }
    }
}
