//! The SwAV data pipeline: datasets, multi-crop augmentation with torchvision/PIL
//! semantics, and a parallel, deterministic batch loader.
//!
//! * [`dataset`]: the [`Dataset`](dataset::Dataset) trait and its sources: an ImageFolder
//!   (labelled), a flat folder (unlabelled), and a procedural synthetic dataset that needs
//!   no files; decoding of JPEG/PNG/WebP/BMP/PNM to RGB8; export to an image folder.
//! * [`transform`]: SwAV's per-crop pipeline (RandomResizedCrop, flip, ColorJitter,
//!   RandomGrayscale, Gaussian blur, Normalize) reproducing Pillow's arithmetic, and the
//!   evaluation transform.
//! * [`loader`]: [`MultiCropLoader`](loader::MultiCropLoader) for training (shuffle and
//!   sharding with DistributedSampler semantics, resume at any iteration) and
//!   [`EvalLoader`](loader::EvalLoader), both filling recycled NHWC `f32` buffers on worker
//!   threads, one buffer per resolution group, crop-major (see [`loader::batch`]).
//!
//! Randomness is keyed by (seed, epoch, sample index, crop), each with its own ChaCha8
//! stream ([`rng`]), so batches are bit-identical for any number of worker threads.
//!

pub mod dataset;
pub mod error;
pub mod rgb_image;
pub mod rng;
pub mod transform;

pub use error::{ConfigError, DatasetError, LoaderError, TransformError};
pub use rgb_image::RgbImage;
