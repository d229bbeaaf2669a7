//! torchvision's `RandomResizedCrop.get_params`: the crop rectangle, before the resize.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::rng::uniform;

/// Attempts before the centre-crop fallback (torchvision uses 10).
pub const ATTEMPTS: usize = 10;

/// A crop rectangle in source pixels: torchvision's `(i, j, h, w)` = (`top`, `left`,
/// `height`, `width`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropBox {
    /// First row.
    pub top: u32,
    /// First column.
    pub left: u32,
    /// Rows in the crop.
    pub height: u32,
    /// Columns in the crop.
    pub width: u32,
}

impl CropBox {
    /// The whole `width x height` image.
    pub fn full(width: u32, height: u32) -> Self {
        Self {
            top: 0,
            left: 0,
            height,
            width,
        }
    }

    /// Whether the box lies inside a `width x height` image and is not empty.
    pub fn fits(&self, width: u32, height: u32) -> bool {
        self.width > 0
            && self.height > 0
            && self.left as u64 + self.width as u64 <= width as u64
            && self.top as u64 + self.height as u64 <= height as u64
    }
}

/// Python's `round` (half to even), which torchvision applies to the crop sides.
fn python_round(v: f64) -> f64 {
    v.round_ties_even()
}

/// Draws a crop of a `width x height` image: up to [`ATTEMPTS`] tries of an area fraction
/// in `scale` and a log-uniform aspect ratio in `ratio`, accepted when the rounded sides
/// fit; then [`centre_crop_fallback`]. The top-left corner is uniform over the valid
/// positions.
pub fn sample_crop_box(
    rng: &mut impl Rng,
    width: u32,
    height: u32,
    scale: [f64; 2],
    ratio: [f64; 2],
) -> CropBox {
    let area = width as f64 * height as f64;
    let log_ratio = [ratio[0].ln(), ratio[1].ln()];
    for _ in 0..ATTEMPTS {
        let target_area = area * uniform(rng, scale[0], scale[1]);
        let aspect = uniform(rng, log_ratio[0], log_ratio[1]).exp();
        let w = python_round((target_area * aspect).sqrt());
        let h = python_round((target_area / aspect).sqrt());
        if w > 0.0 && w <= width as f64 && h > 0.0 && h <= height as f64 {
            let (w, h) = (w as u32, h as u32);
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return CropBox {
                top,
                left,
                height: h,
                width: w,
            };
        }
    }
    centre_crop_fallback(width, height, ratio)
}

/// torchvision's fallback: the largest centred crop whose aspect ratio is clamped to `ratio`.
pub fn centre_crop_fallback(width: u32, height: u32, ratio: [f64; 2]) -> CropBox {
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < ratio[0] {
        (
            width,
            (python_round(width as f64 / ratio[0]) as u32).clamp(1, height),
        )
    } else if in_ratio > ratio[1] {
        (
            (python_round(height as f64 * ratio[1]) as u32).clamp(1, width),
            height,
        )
    } else {
        (width, height)
    };
    CropBox {
        top: (height - h) / 2,
        left: (width - w) / 2,
        height: h,
        width: w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::crop_stream;

    const RATIO: [f64; 2] = [3.0 / 4.0, 4.0 / 3.0];

    #[test]
    fn sampled_boxes_fit_and_respect_scale_and_ratio() {
        let mut rng = crop_stream(0, 0, 0, 0);
        for _ in 0..2000 {
            let b = sample_crop_box(&mut rng, 500, 375, [0.14, 1.0], RATIO);
            assert!(b.fits(500, 375), "{b:?}");
            let area = (b.width * b.height) as f64 / (500.0 * 375.0);
            let aspect = b.width as f64 / b.height as f64;
            if b != centre_crop_fallback(500, 375, RATIO) {
                assert!((0.13..=1.01).contains(&area), "{area}");
                assert!((0.74..=1.35).contains(&aspect), "{aspect}");
            }
        }
    }

    #[test]
    fn fallback_clamps_the_aspect_ratio() {
        // Very wide: height kept, width = round(100 * 4/3) = 133.
        assert_eq!(
            centre_crop_fallback(1000, 100, RATIO),
            CropBox {
                top: 0,
                left: 433,
                height: 100,
                width: 133
            }
        );
        // Very tall: width kept, height = round(100 / (3/4)) = 133.
        assert_eq!(
            centre_crop_fallback(100, 1000, RATIO),
            CropBox {
                top: 433,
                left: 0,
                height: 133,
                width: 100
            }
        );
        assert_eq!(
            centre_crop_fallback(300, 300, RATIO),
            CropBox::full(300, 300)
        );
    }

    #[test]
    fn a_one_pixel_image_still_gets_a_valid_box() {
        let mut rng = crop_stream(0, 0, 0, 0);
        let b = sample_crop_box(&mut rng, 1, 1, [0.05, 0.14], RATIO);
        assert_eq!(b, CropBox::full(1, 1));
    }

    #[test]
    fn extreme_strips_fall_back_inside_the_image() {
        let mut rng = crop_stream(0, 0, 0, 0);
        for (w, h) in [(1, 400), (400, 1), (2, 3)] {
            assert!(sample_crop_box(&mut rng, w, h, [0.05, 0.14], RATIO).fits(w, h));
        }
    }
}
