//! The multi-crop configuration: SwAV's `nmb_crops`/`size_crops`/`min_scale_crops`/
//! `max_scale_crops` plus every strength and probability of the per-crop pipeline.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::transform::color_jitter::ColorJitter;
use crate::transform::normalize::Normalization;

/// `count` crops of `size x size` pixels, each covering a fraction of the image area drawn
/// from `[min_scale, max_scale]` (RandomResizedCrop's `scale`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropGroupConfig {
    /// Number of crops.
    pub count: usize,
    /// Output side in pixels.
    pub size: u32,
    /// Smallest area fraction.
    pub min_scale: f64,
    /// Largest area fraction.
    pub max_scale: f64,
}

/// Everything the multi-crop transform draws from. `Default` is SwAV's official recipe:
/// 2 x 224 (scale 0.14-1) + 6 x 96 (scale 0.05-0.14), flip 0.5, colour jitter of strength 1
/// with probability 0.8, greyscale 0.2, PIL Gaussian blur with probability 0.5 and
/// sigma in U[0.1, 2], SwAV's normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiCropConfig {
    /// The crop groups, in output order.
    pub crops: Vec<CropGroupConfig>,
    /// RandomResizedCrop's aspect-ratio range `[low, high]`.
    pub aspect_ratio: [f64; 2],
    /// Probability of a horizontal flip.
    pub flip_probability: f64,
    /// Colour distortion strength `s`: ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s).
    pub jitter_strength: f32,
    /// Probability of applying the colour jitter.
    pub jitter_probability: f64,
    /// Probability of converting the crop to greyscale.
    pub grayscale_probability: f64,
    /// Probability of blurring the crop.
    pub blur_probability: f64,
    /// Range `[low, high]` of the blur's standard deviation (PIL's `radius`).
    pub blur_sigma: [f32; 2],
    /// Probability of rotating the crop (RandomRotation; 0 in SwAV's recipes).
    pub rotation_probability: f64,
    /// A rotated crop turns by a uniform angle in `[-rotation_degrees, rotation_degrees]`
    /// (0..=180).
    pub rotation_degrees: f32,
    /// Normalisation applied after `ToTensor`.
    pub normalization: Normalization,
}

impl Default for MultiCropConfig {
    fn default() -> Self {
        Self {
            crops: vec![
                CropGroupConfig {
                    count: 2,
                    size: 224,
                    min_scale: 0.14,
                    max_scale: 1.0,
                },
                CropGroupConfig {
                    count: 6,
                    size: 96,
                    min_scale: 0.05,
                    max_scale: 0.14,
                },
            ],
            aspect_ratio: [3.0 / 4.0, 4.0 / 3.0],
            flip_probability: 0.5,
            jitter_strength: 1.0,
            jitter_probability: 0.8,
            grayscale_probability: 0.2,
            blur_probability: 0.5,
            blur_sigma: [0.1, 2.0],
            rotation_probability: 0.0,
            rotation_degrees: 180.0,
            normalization: Normalization::SWAV,
        }
    }
}

impl MultiCropConfig {
    /// The default recipe with other crop groups.
    pub fn with_crops(crops: Vec<CropGroupConfig>) -> Self {
        Self {
            crops,
            ..Self::default()
        }
    }

    /// Crop groups from SwAV's four parallel argument lists (`--nmb_crops 2 6
    /// --size_crops 224 96 --min_scale_crops 0.14 0.05 --max_scale_crops 1 0.14`).
    pub fn from_swav_lists(
        nmb_crops: &[usize],
        size_crops: &[u32],
        min_scale_crops: &[f64],
        max_scale_crops: &[f64],
    ) -> Result<Self, ConfigError> {
        let n = nmb_crops.len();
        for (name, len) in [
            ("size_crops", size_crops.len()),
            ("min_scale_crops", min_scale_crops.len()),
            ("max_scale_crops", max_scale_crops.len()),
        ] {
            if len != n {
                return Err(ConfigError::new(
                    name,
                    format!("has {len} entries but nmb_crops has {n}"),
                ));
            }
        }
        let crops = (0..n)
            .map(|i| CropGroupConfig {
                count: nmb_crops[i],
                size: size_crops[i],
                min_scale: min_scale_crops[i],
                max_scale: max_scale_crops[i],
            })
            .collect();
        let config = Self::with_crops(crops);
        config.validate()?;
        Ok(config)
    }

    /// Total crops per image (SwAV's V).
    pub fn num_crops(&self) -> usize {
        self.crops.iter().map(|g| g.count).sum()
    }

    /// The ColorJitter ranges for `jitter_strength`.
    pub fn color_jitter(&self) -> ColorJitter {
        ColorJitter::from_strength(self.jitter_strength)
    }

    /// Checks every value; the error names the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.crops.is_empty() {
            return Err(ConfigError::new("crops", "needs at least one crop group"));
        }
        for (i, group) in self.crops.iter().enumerate() {
            let name = |field: &str| format!("crops[{i}].{field}");
            if group.count == 0 {
                return Err(ConfigError::new(name("count"), "must be at least 1"));
            }
            if group.size == 0 || group.size > 4096 {
                return Err(ConfigError::new(
                    name("size"),
                    format!("{} is outside 1..=4096", group.size),
                ));
            }
            let scale_ok = group.min_scale > 0.0
                && group.min_scale <= group.max_scale
                && group.max_scale <= 1.0;
            if !scale_ok {
                return Err(ConfigError::new(
                    name("min_scale"),
                    format!(
                        "needs 0 < min_scale <= max_scale <= 1, got [{}, {}]",
                        group.min_scale, group.max_scale
                    ),
                ));
            }
        }
        let [low, high] = self.aspect_ratio;
        if !(low > 0.0 && low <= high && high.is_finite()) {
            return Err(ConfigError::new(
                "aspect_ratio",
                format!("needs 0 < low <= high, got [{low}, {high}]"),
            ));
        }
        for (name, p) in [
            ("flip_probability", self.flip_probability),
            ("jitter_probability", self.jitter_probability),
            ("grayscale_probability", self.grayscale_probability),
            ("blur_probability", self.blur_probability),
            ("rotation_probability", self.rotation_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::new(name, format!("{p} is not a probability")));
            }
        }
        if !(0.0..=180.0).contains(&self.rotation_degrees) {
            return Err(ConfigError::new(
                "rotation_degrees",
                format!("{} is outside [0, 180]", self.rotation_degrees),
            ));
        }
        let s = self.jitter_strength;
        if !(0.0..=2.5).contains(&s) {
            return Err(ConfigError::new(
                "jitter_strength",
                format!("{s} is outside [0, 2.5] (the hue range 0.2 s must stay within 0.5)"),
            ));
        }
        let [sigma_low, sigma_high] = self.blur_sigma;
        if !(sigma_low > 0.0 && sigma_low <= sigma_high && sigma_high <= 100.0) {
            return Err(ConfigError::new(
                "blur_sigma",
                format!("needs 0 < low <= high <= 100, got [{sigma_low}, {sigma_high}]"),
            ));
        }
        self.normalization.validate("normalization")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_swav_recipe() {
        let config = MultiCropConfig::default();
        assert_eq!(config.num_crops(), 8);
        assert!(config.validate().is_ok());
        let same =
            MultiCropConfig::from_swav_lists(&[2, 6], &[224, 96], &[0.14, 0.05], &[1.0, 0.14]);
        assert_eq!(same, Ok(config));
    }

    #[test]
    fn errors_name_the_parameter() {
        let bad = MultiCropConfig::from_swav_lists(&[2, 6], &[224], &[0.14, 0.05], &[1.0, 0.14]);
        assert_eq!(bad.map_err(|e| e.parameter), Err("size_crops".to_string()));
        let mut config = MultiCropConfig::default();
        config.crops[1].min_scale = 0.5;
        assert_eq!(
            config.validate().map_err(|e| e.parameter),
            Err("crops[1].min_scale".into())
        );
        let config = MultiCropConfig {
            blur_probability: 1.5,
            ..MultiCropConfig::default()
        };
        assert_eq!(
            config.validate().map_err(|e| e.parameter),
            Err("blur_probability".into())
        );
        let config = MultiCropConfig {
            jitter_strength: 3.0,
            ..MultiCropConfig::default()
        };
        assert_eq!(
            config.validate().map_err(|e| e.parameter),
            Err("jitter_strength".into())
        );
    }

    #[test]
    fn serde_round_trip_and_defaults_for_missing_fields() {
        let config = MultiCropConfig::default();
        let json = serde_json::to_string(&config).expect("serialise");
        let back: MultiCropConfig = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, config);
        let partial: MultiCropConfig =
            serde_json::from_str(r#"{"blur_probability": 0.0}"#).expect("deserialise");
        assert_eq!(partial.crops, config.crops);
        assert_eq!(partial.blur_probability, 0.0);
        assert!(serde_json::from_str::<MultiCropConfig>(r#"{"blur_prob": 0.0}"#).is_err());
    }
}
