//! The evaluation transform: torchvision's `Resize(round(size * 256 / 224))` +
//! `CenterCrop(size)`, or a plain resize to `size x size` for images that are already small
//! (the synthetic dataset), then `ToTensor` + `Normalize`.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, TransformError};
use crate::rgb_image::RgbImage;
use crate::transform::crop::CropScratch;
use crate::transform::normalize::{Normalization, NormalizeTable};
use crate::transform::random_resized_crop::CropBox;

/// How the evaluation transform gets from the image to `size x size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalMode {
    /// Resize the short side to `round(size * 256 / 224)` (bilinear, antialiased), then take
    /// the centre `size x size` crop (ImageNet evaluation).
    #[default]
    ResizeCenterCrop,
    /// Resize the whole image to `size x size` (no crop; for already-small images).
    Resize,
}

/// Configuration of the evaluation transform.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Output side in pixels.
    pub size: u32,
    /// Resize policy.
    pub mode: EvalMode,
    /// Normalisation applied after `ToTensor`.
    pub normalization: Normalization,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            size: 224,
            mode: EvalMode::ResizeCenterCrop,
            normalization: Normalization::SWAV,
        }
    }
}

/// The deterministic evaluation transform.
#[derive(Debug, Clone)]
pub struct EvalTransform {
    config: EvalConfig,
    table: NormalizeTable,
}

/// torchvision's `Resize(int)` output size: the short side becomes `short`, the long side
/// `int(short * long / short_in)` (truncated).
pub fn resize_short_side(width: u32, height: u32, short: u32) -> (u32, u32) {
    if width <= height {
        let long = (short as f64 * height as f64 / width as f64) as u32;
        (short, long.max(1))
    } else {
        let long = (short as f64 * width as f64 / height as f64) as u32;
        (long.max(1), short)
    }
}

/// torchvision's `CenterCrop` offsets: `int(round((side - size) / 2))`, Python rounding.
pub fn centre_offset(side: u32, size: u32) -> u32 {
    ((side.saturating_sub(size)) as f64 / 2.0).round_ties_even() as u32
}

impl EvalTransform {
    /// Validates `config` and prepares the transform.
    pub fn new(config: EvalConfig) -> Result<Self, ConfigError> {
        if config.size == 0 || config.size > 4096 {
            return Err(ConfigError::new(
                "size",
                format!("{} is outside 1..=4096", config.size),
            ));
        }
        config.normalization.validate("normalization")?;
        Ok(Self {
            table: NormalizeTable::new(&config.normalization),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EvalConfig {
        &self.config
    }

    /// Output side in pixels.
    pub fn size(&self) -> u32 {
        self.config.size
    }

    /// `f32` values per output image (`size * size * 3`).
    pub fn output_len(&self) -> usize {
        self.config.size as usize * self.config.size as usize * 3
    }

    /// The short side the image is resized to before the centre crop:
    /// `round(size * 256 / 224)`.
    pub fn resize_size(&self) -> u32 {
        (self.config.size as f64 * 256.0 / 224.0).round_ties_even() as u32
    }

    /// Resizes into `scratch.pixels`; returns the resized size and the crop window
    /// `[left, top, width, height]`.
    fn resize(
        &self,
        image: &RgbImage,
        scratch: &mut CropScratch,
    ) -> Result<(u32, [usize; 4]), TransformError> {
        let size = self.config.size;
        let (width, height) = match self.config.mode {
            EvalMode::Resize => (size, size),
            EvalMode::ResizeCenterCrop => {
                resize_short_side(image.width(), image.height(), self.resize_size())
            }
        };
        scratch.resizer.crop_resize(
            image,
            CropBox::full(image.width(), image.height()),
            width,
            height,
            &mut scratch.pixels,
        )?;
        let window = [
            centre_offset(width, size) as usize,
            centre_offset(height, size) as usize,
            size.min(width) as usize,
            size.min(height) as usize,
        ];
        Ok((width, window))
    }

    /// The transformed image as bytes (before `ToTensor`).
    pub fn render_rgb(
        &self,
        image: &RgbImage,
        scratch: &mut CropScratch,
    ) -> Result<RgbImage, TransformError> {
        let (stride, [left, top, width, height]) = self.resize(image, scratch)?;
        let stride = stride as usize;
        let pixels: Vec<u8> = (top..top + height)
            .flat_map(|y| {
                let start = (y * stride + left) * 3;
                scratch.pixels[start..start + width * 3].iter().copied()
            })
            .collect();
        Ok(RgbImage::from_exact(width as u32, height as u32, pixels))
    }

    /// Writes the normalised output into `out` (`size * size * 3` values, HWC).
    pub fn render(
        &self,
        image: &RgbImage,
        scratch: &mut CropScratch,
        out: &mut [f32],
    ) -> Result<(), TransformError> {
        let (stride, window) = self.resize(image, scratch)?;
        self.table
            .write(&scratch.pixels, stride as usize, window, false, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_size_follows_256_over_224() {
        let t = |size| {
            EvalTransform::new(EvalConfig {
                size,
                ..EvalConfig::default()
            })
            .expect("valid")
        };
        assert_eq!(t(224).resize_size(), 256);
        assert_eq!(t(96).resize_size(), 110);
        assert_eq!(t(32).resize_size(), 37);
    }

    #[test]
    fn short_side_resize_truncates_the_long_side() {
        assert_eq!(resize_short_side(500, 375, 256), (341, 256));
        assert_eq!(resize_short_side(375, 500, 256), (256, 341));
        assert_eq!(resize_short_side(300, 300, 256), (256, 256));
    }

    #[test]
    fn centre_offset_rounds_half_to_even() {
        assert_eq!(centre_offset(341, 224), 58); // 58.5 -> 58
        assert_eq!(centre_offset(256, 224), 16);
        assert_eq!(centre_offset(227, 224), 2); // 1.5 -> 2
    }

    #[test]
    fn output_has_the_configured_size() {
        let image = RgbImage::from_raw(50, 40, (0..50 * 40 * 3).map(|i| (i % 251) as u8).collect())
            .expect("sized");
        for mode in [EvalMode::Resize, EvalMode::ResizeCenterCrop] {
            let t = EvalTransform::new(EvalConfig {
                size: 24,
                mode,
                ..EvalConfig::default()
            })
            .expect("valid");
            let mut scratch = CropScratch::new();
            let rgb = t.render_rgb(&image, &mut scratch).expect("render");
            assert_eq!((rgb.width(), rgb.height()), (24, 24));
            let mut out = vec![0.0; t.output_len()];
            t.render(&image, &mut scratch, &mut out).expect("render");
            assert!(out.iter().all(|v| v.is_finite()));
        }
    }
}
