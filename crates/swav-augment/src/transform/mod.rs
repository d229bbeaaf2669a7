//! Augmentations with torchvision/PIL semantics.
//!
//! Every step of SwAV's per-crop pipeline reproduces what torchvision computes on a PIL
//! image, down to Pillow's integer arithmetic: RandomResizedCrop
//! ([`random_resized_crop`], [`resize`]), ColorJitter ([`color_jitter`], built on
//! [`blend`], [`grayscale`] and [`hsv`]), RandomGrayscale, Gaussian blur ([`blur`]), the optional RandomRotation ([`rotate`]) and
//! `ToTensor` + `Normalize` ([`normalize`]). [`crop`] fixes one crop's random choices and
//! renders them; [`multi_crop`] draws them per (seed, epoch, sample, crop); [`eval`] is the
//! deterministic evaluation transform.

pub mod blend;
pub mod blur;
pub mod color_jitter;
pub mod config;
pub mod crop;
pub mod eval;
pub mod grayscale;
pub mod hsv;
pub mod multi_crop;
pub mod normalize;
pub mod random_resized_crop;
pub mod resize;
pub mod rotate;
