//! One augmented crop: its fixed parameters and how they are rendered.
//!
//! The pipeline is SwAV's, in torchvision's order: RandomResizedCrop (crop + bilinear
//! resize), the optional RandomRotation (off in SwAV's recipes), horizontal flip,
//! ColorJitter, RandomGrayscale, Gaussian blur, ToTensor, Normalize. The flip is applied last, while writing the output: every later step is a
//! per-pixel map or Pillow's mirror-symmetric box blur, so it commutes exactly with the
//! flip.

use serde::{Deserialize, Serialize};

use crate::error::TransformError;
use crate::rgb_image::RgbImage;
use crate::transform::blur::{BlurScratch, gaussian_blur};
use crate::transform::color_jitter::ColorJitterParams;
use crate::transform::grayscale::grayscale_in_place;
use crate::transform::normalize::NormalizeTable;
use crate::transform::random_resized_crop::CropBox;
use crate::transform::resize::CropResizer;
use crate::transform::rotate::rotate_in_place;

/// Every random choice of one crop, fixed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropParams {
    /// The source rectangle.
    pub crop: CropBox,
    /// The output side in pixels.
    pub size: u32,
    /// Horizontal flip.
    pub flip: bool,
    /// The colour jitter, if applied.
    pub jitter: Option<ColorJitterParams>,
    /// Greyscale conversion.
    pub grayscale: bool,
    /// The blur's standard deviation, if blurred.
    pub blur_sigma: Option<f32>,
    /// The counter-clockwise rotation in degrees, if rotated.
    #[serde(default)]
    pub rotation_degrees: Option<f32>,
}

/// Per-thread working memory for rendering crops; reuse it across calls.
#[derive(Debug, Default, Clone)]
pub struct CropScratch {
    pub(crate) resizer: CropResizer,
    pub(crate) pixels: Vec<u8>,
    blur: BlurScratch,
    rotation: Vec<u8>,
}

impl CropScratch {
    /// Empty buffers; they grow to the largest crop on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

impl CropParams {
    /// Renders every step but the flip and the normalisation into `scratch.pixels`.
    fn render_unflipped(
        &self,
        image: &RgbImage,
        scratch: &mut CropScratch,
    ) -> Result<(), TransformError> {
        if self.size == 0 {
            return Err(self.error("the output size is zero"));
        }
        scratch
            .resizer
            .crop_resize(image, self.crop, self.size, self.size, &mut scratch.pixels)?;
        if let Some(degrees) = self.rotation_degrees {
            let size = self.size as usize;
            rotate_in_place(&mut scratch.pixels, size, degrees, &mut scratch.rotation);
        }
        self.apply_after_resize(&mut scratch.pixels, &mut scratch.blur);
        Ok(())
    }

    /// The steps after the resize, on a `size x size` RGB crop in place: colour jitter,
    /// greyscale and blur (not the flip, which commutes with all three).
    pub fn apply_after_resize(&self, pixels: &mut [u8], blur: &mut BlurScratch) {
        if let Some(jitter) = &self.jitter {
            jitter.apply(pixels);
        }
        if self.grayscale {
            grayscale_in_place(pixels);
        }
        if let Some(sigma) = self.blur_sigma {
            let size = self.size as usize;
            gaussian_blur(pixels, size, size, sigma, blur);
        }
    }

    /// The augmented crop as an 8-bit image (what torchvision holds just before `ToTensor`).
    pub fn render_rgb(
        &self,
        image: &RgbImage,
        scratch: &mut CropScratch,
    ) -> Result<RgbImage, TransformError> {
        self.render_unflipped(image, scratch)?;
        let mut pixels = scratch.pixels.clone();
        if self.flip {
            for row in pixels.chunks_exact_mut(self.size as usize * 3) {
                let mirrored: Vec<u8> = row.chunks_exact(3).rev().flatten().copied().collect();
                row.copy_from_slice(&mirrored);
            }
        }
        Ok(RgbImage::from_exact(self.size, self.size, pixels))
    }

    fn error(&self, reason: &str) -> TransformError {
        TransformError {
            src_width: self.crop.width,
            src_height: self.crop.height,
            dst_width: self.size,
            dst_height: self.size,
            reason: reason.into(),
        }
    }

    /// Renders the crop normalised into `out`, which must hold `size * size * 3` values
    /// (HWC); extra values are left untouched.
    pub fn render_normalized(
        &self,
        image: &RgbImage,
        table: &NormalizeTable,
        scratch: &mut CropScratch,
        out: &mut [f32],
    ) -> Result<(), TransformError> {
        self.render_unflipped(image, scratch)?;
        let size = self.size as usize;
        table.write(&scratch.pixels, size, [0, 0, size, size], self.flip, out);
        Ok(())
    }
}
