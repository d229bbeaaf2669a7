//! The SwAV data pipeline: datasets, multi-crop augmentation with torchvision/PIL
//! semantics, and a parallel, deterministic batch loader.
//!
//! * [`dataset`]: the [`Dataset`](dataset::Dataset) trait and its sources: an ImageFolder
//!   (labelled), a flat folder (unlabelled), and a procedural synthetic dataset that needs
//!   no files; decoding of JPEG/PNG/WebP/BMP/PNM to RGB8; export to an image folder.
//! * [`transform`]: SwAV's per-crop pipeline (RandomResizedCrop, flip, ColorJitter,
//!   RandomGrayscale, Gaussian blur, Normalize) reproducing Pillow's arithmetic, and the
//!   evaluation transform.
//! * [`shards`]: WebDataset shards: naming, reading, shuffling and writing them; the
//!   [`ShardLoader`](loader::ShardLoader) trains from them without an index.
//! * [`loader`]: [`MultiCropLoader`](loader::MultiCropLoader) for training (shuffle and
//!   sharding with DistributedSampler semantics, resume at any iteration) and
//!   [`EvalLoader`](loader::EvalLoader), both filling recycled NHWC `f32` buffers on worker
//!   threads, one buffer per resolution group, crop-major (see [`loader::batch`]).
//!
//! Randomness is keyed by (seed, epoch, sample index, crop), each with its own ChaCha8
//! stream ([`rng`]), so batches are bit-identical for any number of worker threads.
//!
//! # Example
//!
//! Two 32-pixel and four 16-pixel crops of a synthetic dataset, two batches:
//!
//! ```
//! use std::sync::Arc;
//! use swav_augment::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};
//! use swav_augment::loader::{LoaderConfig, MultiCropLoader};
//! use swav_augment::transform::config::{CropGroupConfig, MultiCropConfig};
//! use swav_augment::transform::multi_crop::MultiCropTransform;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = SyntheticDataset::new(
//!     SyntheticConfig { image_size: 32, num_classes: 10, images_per_class: 4, ..Default::default() },
//!     SyntheticSplit::Train,
//! )?;
//! let transform = MultiCropTransform::new(MultiCropConfig::with_crops(vec![
//!     CropGroupConfig { count: 2, size: 32, min_scale: 0.14, max_scale: 1.0 },
//!     CropGroupConfig { count: 4, size: 16, min_scale: 0.05, max_scale: 0.14 },
//! ]))?;
//! let config = LoaderConfig { batch_size: 8, workers: 2, ..LoaderConfig::default() };
//! let loader = MultiCropLoader::new(Arc::new(data), transform, config)?;
//! assert_eq!(loader.iters_per_epoch(), 5); // 40 images, drop_last
//!
//! for batch in loader.epoch(0)?.take(2) {
//!     let batch = batch?;
//!     let large = batch.group(0).expect("group of 32-pixel crops");
//!     assert_eq!(large.shape(), [2 * 8, 32, 32, 3]); // crop-major: crop c of image n at c * 8 + n
//!     let small = batch.group(1).expect("group of 16-pixel crops");
//!     assert_eq!(small.shape(), [4 * 8, 16, 16, 3]);
//!     assert_eq!(batch.labels().map(|l| l.len()), Some(8));
//! } // each batch's buffers return to the loader here
//! println!("{}", loader.stats());
//! # Ok(())
//! # }
//! ```

pub mod dataset;
pub mod error;
pub mod loader;
pub mod rgb_image;
pub mod rng;
pub mod shards;
pub mod transform;

pub use error::{ConfigError, DatasetError, LoaderError, TransformError};
pub use rgb_image::RgbImage;
