//! The multi-crop transform: V independently augmented crops per image, in resolution groups.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, TransformError};
use crate::rgb_image::RgbImage;
use crate::rng::{crop_stream, uniform};
use crate::transform::color_jitter::ColorJitter;
use crate::transform::config::MultiCropConfig;
use crate::transform::crop::{CropParams, CropScratch};
use crate::transform::normalize::NormalizeTable;
use crate::transform::random_resized_crop::sample_crop_box;

/// A run of consecutive crops with the same output size. The model runs one trunk pass per
/// group (docs/algorithm.md §1.5), so consecutive config groups of equal size are merged into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolutionGroup {
    /// Output side in pixels.
    pub size: u32,
    /// Global index of the group's first crop.
    pub first_crop: usize,
    /// Number of crops in the group.
    pub crops: usize,
}

impl ResolutionGroup {
    /// `f32` values in one crop (`size * size * 3`).
    pub fn crop_len(&self) -> usize {
        self.size as usize * self.size as usize * 3
    }
}

/// Merges consecutive crops of equal size into resolution groups.
fn resolution_groups(sizes: &[u32]) -> Vec<ResolutionGroup> {
    let mut groups: Vec<ResolutionGroup> = Vec::new();
    for (crop, &size) in sizes.iter().enumerate() {
        match groups.last_mut() {
            Some(group) if group.size == size => group.crops += 1,
            _ => groups.push(ResolutionGroup {
                size,
                first_crop: crop,
                crops: 1,
            }),
        }
    }
    groups
}

/// SwAV's multi-crop augmentation with torchvision/PIL semantics (see [`crate::transform`]).
#[derive(Debug, Clone)]
pub struct MultiCropTransform {
    config: MultiCropConfig,
    /// Per crop: output size and RandomResizedCrop scale range.
    crops: Vec<(u32, [f64; 2])>,
    groups: Vec<ResolutionGroup>,
    jitter: ColorJitter,
    table: NormalizeTable,
}

impl MultiCropTransform {
    /// Validates `config` and prepares the transform.
    pub fn new(config: MultiCropConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let crops: Vec<(u32, [f64; 2])> = config
            .crops
            .iter()
            .flat_map(|g| std::iter::repeat_n((g.size, [g.min_scale, g.max_scale]), g.count))
            .collect();
        let sizes: Vec<u32> = crops.iter().map(|&(size, _)| size).collect();
        Ok(Self {
            groups: resolution_groups(&sizes),
            jitter: config.color_jitter(),
            table: NormalizeTable::new(&config.normalization),
            crops,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MultiCropConfig {
        &self.config
    }

    /// Crops per image (V).
    pub fn num_crops(&self) -> usize {
        self.crops.len()
    }

    /// The resolution groups, in crop order.
    pub fn resolution_groups(&self) -> &[ResolutionGroup] {
        &self.groups
    }

    /// The output side of crop `crop`.
    pub fn crop_size(&self, crop: usize) -> Option<u32> {
        self.crops.get(crop).map(|&(size, _)| size)
    }

    /// The normalisation table in use.
    pub fn normalize_table(&self) -> &NormalizeTable {
        &self.table
    }

    /// Draws the parameters of crop `crop` of a `width x height` image from `rng`, in this
    /// order: crop box, flip, jitter (apply?, then order and factors), greyscale, blur
    /// (apply?, then sigma), and only when rotations are enabled, rotation (apply?, then
    /// angle), so that a recipe without them draws exactly SwAV's stream. `None` if `crop`
    /// is out of range.
    pub fn sample(
        &self,
        crop: usize,
        width: u32,
        height: u32,
        rng: &mut impl Rng,
    ) -> Option<CropParams> {
        let &(size, scale) = self.crops.get(crop)?;
        let config = &self.config;
        let crop_box = sample_crop_box(rng, width, height, scale, config.aspect_ratio);
        let flip = rng.random::<f64>() < config.flip_probability;
        let jitter =
            (rng.random::<f64>() < config.jitter_probability).then(|| self.jitter.sample(rng));
        let grayscale = rng.random::<f64>() < config.grayscale_probability;
        let blur_sigma = (rng.random::<f64>() < config.blur_probability).then(|| {
            let [low, high] = config.blur_sigma;
            uniform(rng, low as f64, high as f64) as f32
        });
        let rotation_degrees = (config.rotation_probability > 0.0
            && rng.random::<f64>() < config.rotation_probability)
            .then(|| {
                let limit = config.rotation_degrees as f64;
                uniform(rng, -limit, limit) as f32
            });
        Some(CropParams {
            crop: crop_box,
            size,
            flip,
            jitter,
            grayscale,
            blur_sigma,
            rotation_degrees,
        })
    }

    /// The parameters of crop `crop` of dataset sample `index` in `epoch`, drawn from that
    /// crop's own stream: the same whatever thread or order computes it.
    pub fn params_for(
        &self,
        seed: u64,
        epoch: u64,
        index: u64,
        crop: usize,
        width: u32,
        height: u32,
    ) -> Option<CropParams> {
        self.sample(
            crop,
            width,
            height,
            &mut crop_stream(seed, epoch, index, crop as u64),
        )
    }

    /// Renders crop `params` of `image` normalised into `out` (`size * size * 3`, HWC).
    pub fn render(
        &self,
        image: &RgbImage,
        params: &CropParams,
        scratch: &mut CropScratch,
        out: &mut [f32],
    ) -> Result<(), TransformError> {
        params.render_normalized(image, &self.table, scratch, out)
    }

    /// Augments every crop of sample `index` of `epoch`; `outputs[v]` receives crop `v`
    /// (`size_v * size_v * 3` values each).
    pub fn apply(
        &self,
        image: &RgbImage,
        key: SampleKey,
        scratch: &mut CropScratch,
        outputs: &mut [&mut [f32]],
    ) -> Result<(), TransformError> {
        for (crop, out) in outputs.iter_mut().enumerate().take(self.num_crops()) {
            let params = self
                .params_for(
                    key.seed,
                    key.epoch,
                    key.index,
                    crop,
                    image.width(),
                    image.height(),
                )
                .ok_or_else(|| TransformError {
                    src_width: image.width(),
                    src_height: image.height(),
                    dst_width: 0,
                    dst_height: 0,
                    reason: format!("crop {crop} is out of range"),
                })?;
            self.render(image, &params, scratch, out)?;
        }
        Ok(())
    }
}

/// What keys a sample's random streams: the run seed, the epoch and the dataset index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleKey {
    /// The run's seed.
    pub seed: u64,
    /// The epoch.
    pub epoch: u64,
    /// The dataset index of the sample as the sampler scheduled it.
    pub index: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::config::CropGroupConfig;

    fn group(count: usize, size: u32) -> CropGroupConfig {
        CropGroupConfig {
            count,
            size,
            min_scale: 0.1,
            max_scale: 1.0,
        }
    }

    #[test]
    fn consecutive_equal_sizes_merge() {
        let config = MultiCropConfig::with_crops(vec![
            group(2, 64),
            group(1, 64),
            group(3, 32),
            group(1, 64),
        ]);
        let t = MultiCropTransform::new(config).expect("valid");
        let g = t.resolution_groups();
        assert_eq!(g.len(), 3);
        assert_eq!((g[0].size, g[0].first_crop, g[0].crops), (64, 0, 3));
        assert_eq!((g[1].size, g[1].first_crop, g[1].crops), (32, 3, 3));
        assert_eq!((g[2].size, g[2].first_crop, g[2].crops), (64, 6, 1));
        assert_eq!(t.num_crops(), 7);
        assert_eq!(t.crop_size(3), Some(32));
        assert_eq!(t.crop_size(7), None);
    }

    #[test]
    fn params_depend_only_on_the_key() {
        let t = MultiCropTransform::new(MultiCropConfig::default()).expect("valid");
        let a = t.params_for(5, 2, 17, 3, 500, 375);
        assert_eq!(a, t.params_for(5, 2, 17, 3, 500, 375));
        assert_ne!(a, t.params_for(5, 2, 17, 4, 500, 375));
        assert_ne!(a, t.params_for(5, 3, 17, 3, 500, 375));
        assert_eq!(a.map(|p| p.size), Some(96));
    }

    #[test]
    fn probabilities_are_respected_on_average() {
        let t = MultiCropTransform::new(MultiCropConfig::default()).expect("valid");
        let n = 4000;
        let (mut flips, mut jitters, mut grays, mut blurs) = (0, 0, 0, 0);
        for i in 0..n {
            let p = t.params_for(0, 0, i, 0, 300, 200).expect("crop 0");
            flips += p.flip as usize;
            jitters += p.jitter.is_some() as usize;
            grays += p.grayscale as usize;
            blurs += p.blur_sigma.is_some() as usize;
            if let Some(s) = p.blur_sigma {
                assert!((0.1..=2.0).contains(&s));
            }
        }
        let rate = |k: usize| k as f64 / n as f64;
        assert!((rate(flips) - 0.5).abs() < 0.04);
        assert!((rate(jitters) - 0.8).abs() < 0.04);
        assert!((rate(grays) - 0.2).abs() < 0.04);
        assert!((rate(blurs) - 0.5).abs() < 0.04);
    }

    #[test]
    fn rotations_are_drawn_only_when_enabled() {
        let plain = MultiCropTransform::new(MultiCropConfig::default()).expect("valid");
        let rotating = MultiCropTransform::new(MultiCropConfig {
            rotation_probability: 0.25,
            rotation_degrees: 30.0,
            ..MultiCropConfig::default()
        })
        .expect("valid");
        let n = 4000;
        let mut rotated = 0;
        for i in 0..n {
            let p = plain.params_for(0, 0, i, 0, 300, 200).expect("crop 0");
            assert_eq!(p.rotation_degrees, None);
            let r = rotating.params_for(0, 0, i, 0, 300, 200).expect("crop 0");
            // Every earlier choice is SwAV's own stream, drawn before the rotation.
            assert_eq!(
                CropParams {
                    rotation_degrees: None,
                    ..r
                },
                p
            );
            if let Some(degrees) = r.rotation_degrees {
                assert!((-30.0..=30.0).contains(&degrees));
                rotated += 1;
            }
        }
        assert!((rotated as f64 / n as f64 - 0.25).abs() < 0.03);
    }
}
