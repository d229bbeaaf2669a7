//! A procedural, labelled dataset that needs no files: one shape per image on a random
//! background. The class is the shape; colour, position, scale, rotation, reflection and
//! background are random, so a model must become invariant to them (exactly what SwAV's
//! augmentations teach) to separate the classes. Images are generated on demand from
//! (seed, split, index) and cost tens of microseconds each at 32-64 px.
//!
//! Three knobs make it easier without letting anything but the shape carry the label:
//! [`SyntheticConfig::monochrome`] (grey levels instead of colours),
//! [`SyntheticConfig::max_rotation_degrees`] (near-upright shapes) and
//! [`SyntheticConfig::plain_background`] (one flat background, no texture, clutter or noise).

pub mod render;
pub mod shapes;

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{ConfigError, DatasetError};
use crate::rgb_image::RgbImage;
use crate::rng::synthetic_stream;
pub use shapes::Shape;

/// Size and content of a synthetic dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Side of the square images in pixels (8..=1024).
    pub image_size: u32,
    /// Number of classes, i.e. of shapes used (2..=10, in [`Shape::ALL`] order).
    pub num_classes: usize,
    /// Images per class.
    pub images_per_class: usize,
    /// Seed of the whole dataset.
    pub seed: u64,
    /// Grey images: the shape and the background get random grey levels instead of random
    /// colours (colour is the easiest cue two crops of an image share, and the one
    /// self-supervised methods latch onto first on this data).
    pub monochrome: bool,
    /// Shapes turn by a uniform angle within ± this many degrees (0..=180; 180: any
    /// orientation, with arbitrary reflections). Below 180, reflections are left-right only,
    /// which horizontal flips already teach.
    pub max_rotation_degrees: u32,
    /// One flat background colour: no gradient, texture, clutter lines or sensor noise.
    pub plain_background: bool,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            image_size: 32,
            num_classes: 10,
            images_per_class: 500,
            seed: 0,
            monochrome: false,
            max_rotation_degrees: 180,
            plain_background: false,
        }
    }
}

impl SyntheticConfig {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(8..=1024).contains(&self.image_size) {
            return Err(ConfigError::new(
                "image_size",
                format!("{} is outside 8..=1024", self.image_size),
            ));
        }
        if !(2..=Shape::ALL.len()).contains(&self.num_classes) {
            return Err(ConfigError::new(
                "num_classes",
                format!("{} is outside 2..={}", self.num_classes, Shape::ALL.len()),
            ));
        }
        if self.images_per_class == 0 {
            return Err(ConfigError::new("images_per_class", "must be at least 1"));
        }
        if self.max_rotation_degrees > 180 {
            return Err(ConfigError::new(
                "max_rotation_degrees",
                format!("{} is outside 0..=180", self.max_rotation_degrees),
            ));
        }
        Ok(())
    }
}

/// Which split a synthetic dataset draws: the two never share an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticSplit {
    /// Training images.
    Train,
    /// Validation images.
    Val,
}

impl SyntheticSplit {
    fn tag(self) -> u64 {
        match self {
            SyntheticSplit::Train => 0,
            SyntheticSplit::Val => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SyntheticSplit::Train => "train",
            SyntheticSplit::Val => "val",
        }
    }
}

/// The synthetic dataset. Sample `i` has label `i % num_classes` (classes interleave, so
/// any prefix is balanced) and is a pure function of (seed, split, i). Class names are
/// `<label>_<shape>` (`00_disc`, `01_square`, ...), so an exported ImageFolder, whose
/// classes sort by name, keeps the same labels.
#[derive(Debug, Clone)]
pub struct SyntheticDataset {
    config: SyntheticConfig,
    split: SyntheticSplit,
    class_names: Vec<String>,
}

impl SyntheticDataset {
    /// The `split` of the dataset described by `config`.
    pub fn new(config: SyntheticConfig, split: SyntheticSplit) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            class_names: Shape::ALL[..config.num_classes]
                .iter()
                .enumerate()
                .map(|(label, shape)| format!("{label:02}_{}", shape.name()))
                .collect(),
            config,
            split,
        })
    }

    /// A training set as `config` describes and a validation set with the same classes and
    /// image size and `val_images_per_class` images per class.
    pub fn train_val(
        config: SyntheticConfig,
        val_images_per_class: usize,
    ) -> Result<(Self, Self), ConfigError> {
        let train = Self::new(config, SyntheticSplit::Train)?;
        let val_config = SyntheticConfig {
            images_per_class: val_images_per_class,
            ..config
        };
        let val = Self::new(val_config, SyntheticSplit::Val)
            .map_err(|e| ConfigError::new("val_images_per_class", e.reason))?;
        Ok((train, val))
    }

    /// The configuration.
    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    /// The split.
    pub fn split(&self) -> SyntheticSplit {
        self.split
    }

    /// The shape drawn in sample `index`.
    pub fn shape(&self, index: usize) -> Option<Shape> {
        self.label(index).map(|label| Shape::ALL[label])
    }

    /// Generates sample `index`; `None` past the end.
    pub fn generate(&self, index: usize) -> Option<RgbImage> {
        let shape = self.shape(index)?;
        let mut rng = synthetic_stream(self.config.seed, self.split.tag(), index as u64);
        Some(render::render(shape, &self.config, &mut rng))
    }
}

impl Dataset for SyntheticDataset {
    fn len(&self) -> usize {
        self.config.num_classes * self.config.images_per_class
    }

    fn label(&self, index: usize) -> Option<usize> {
        (index < self.len()).then_some(index % self.config.num_classes)
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn sample_name(&self, index: usize) -> String {
        let shape = self.shape(index).map_or("out of range", Shape::name);
        format!("synthetic/{}/{index} ({shape})", self.split.name())
    }

    fn load(&self, index: usize) -> Result<RgbImage, DatasetError> {
        self.generate(index).ok_or(DatasetError::IndexOutOfRange {
            index,
            len: self.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticConfig {
        SyntheticConfig {
            image_size: 32,
            num_classes: 10,
            images_per_class: 3,
            seed: 7,
            ..SyntheticConfig::default()
        }
    }

    #[test]
    fn deterministic_by_seed_split_and_index() {
        let a = SyntheticDataset::new(small(), SyntheticSplit::Train).expect("valid");
        let b = SyntheticDataset::new(small(), SyntheticSplit::Train).expect("valid");
        assert_eq!(a.generate(4), b.generate(4));
        assert_ne!(a.generate(4), a.generate(14));
        let val = SyntheticDataset::new(small(), SyntheticSplit::Val).expect("valid");
        assert_ne!(a.generate(4), val.generate(4));
        let other_seed = SyntheticDataset::new(
            SyntheticConfig { seed: 8, ..small() },
            SyntheticSplit::Train,
        )
        .expect("valid");
        assert_ne!(a.generate(4), other_seed.generate(4));
    }

    #[test]
    fn easier_settings_keep_the_random_stream_and_change_only_what_they_name() {
        let full = SyntheticDataset::new(small(), SyntheticSplit::Train).expect("valid");
        let mono = SyntheticDataset::new(
            SyntheticConfig {
                monochrome: true,
                ..small()
            },
            SyntheticSplit::Train,
        )
        .expect("valid");
        let image = mono.generate(5).expect("in range");
        assert!(
            image
                .pixels()
                .chunks(3)
                .all(|p| p[0] == p[1] && p[1] == p[2])
        );
        assert_ne!(full.generate(5), mono.generate(5));

        let plain = SyntheticDataset::new(
            SyntheticConfig {
                plain_background: true,
                max_rotation_degrees: 0,
                ..small()
            },
            SyntheticSplit::Train,
        )
        .expect("valid");
        // A disc (label 0) on a plain background has exactly two colours away from its rim.
        let disc = plain.generate(0).expect("in range");
        let mut colours: Vec<&[u8]> = disc.pixels().chunks(3).collect();
        colours.sort();
        colours.dedup();
        let corner = &disc.pixels()[..3];
        let corner_count = disc.pixels().chunks(3).filter(|p| *p == corner).count();
        assert!(
            corner_count > 32 * 32 / 3,
            "background is flat: {corner_count}"
        );
        assert!(colours.len() < 40, "{} distinct colours", colours.len());
    }

    #[test]
    fn labels_interleave_and_names_follow_shapes() {
        let d = SyntheticDataset::new(small(), SyntheticSplit::Train).expect("valid");
        assert_eq!(d.len(), 30);
        assert_eq!(d.label(13), Some(3));
        assert_eq!(d.label(30), None);
        assert_eq!(d.class_names()[5], "05_star");
        assert!(d.load(30).is_err());
        assert_eq!(d.sample_name(13), "synthetic/train/13 (ring)");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        for (config, field) in [
            (
                SyntheticConfig {
                    image_size: 4,
                    ..small()
                },
                "image_size",
            ),
            (
                SyntheticConfig {
                    num_classes: 11,
                    ..small()
                },
                "num_classes",
            ),
            (
                SyntheticConfig {
                    images_per_class: 0,
                    ..small()
                },
                "images_per_class",
            ),
            (
                SyntheticConfig {
                    max_rotation_degrees: 181,
                    ..small()
                },
                "max_rotation_degrees",
            ),
        ] {
            let err = SyntheticDataset::new(config, SyntheticSplit::Train)
                .map(|_| ())
                .map_err(|e| e.parameter);
            assert_eq!(err, Err(field.to_string()));
        }
        let err = SyntheticDataset::train_val(small(), 0)
            .map(|_| ())
            .map_err(|e| e.parameter);
        assert_eq!(err, Err("val_images_per_class".to_string()));
    }
}
