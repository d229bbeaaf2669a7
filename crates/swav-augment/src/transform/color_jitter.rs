//! torchvision's `ColorJitter` on PIL images: brightness, contrast, saturation and hue in a
//! random order, each with Pillow's exact 8-bit arithmetic.
//!
//! * brightness: `ImageEnhance.Brightness`, a blend with black;
//! * contrast: `ImageEnhance.Contrast`, a blend with a grey image whose level is the mean of
//!   the image's L conversion, rounded (`int(mean + 0.5)`);
//! * saturation: `ImageEnhance.Color`, a blend with the image's own L conversion;
//! * hue: `adjust_hue`, a shift of PIL's integer H channel (see [`crate::transform::hsv`]).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::rng::{fisher_yates, uniform};
use crate::transform::blend::{blend_table, pil_blend};
use crate::transform::grayscale::pil_luma;
use crate::transform::hsv::{hue_shift_for_factor, shift_hue_in_place};

/// One of the four jitter operations, in torchvision's numbering (`fn_idx` 0..4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JitterOp {
    /// `adjust_brightness` (index 0).
    Brightness,
    /// `adjust_contrast` (index 1).
    Contrast,
    /// `adjust_saturation` (index 2).
    Saturation,
    /// `adjust_hue` (index 3).
    Hue,
}

impl JitterOp {
    /// The four operations in torchvision's index order.
    pub const ALL: [JitterOp; 4] = [
        Self::Brightness,
        Self::Contrast,
        Self::Saturation,
        Self::Hue,
    ];
}

/// The ranges ColorJitter draws its factors from; `None` disables an operation (torchvision
/// skips an operation whose strength is zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    /// Brightness factor range, `[max(0, 1 - b), 1 + b]`.
    pub brightness: Option<[f32; 2]>,
    /// Contrast factor range, `[max(0, 1 - c), 1 + c]`.
    pub contrast: Option<[f32; 2]>,
    /// Saturation factor range, `[max(0, 1 - s), 1 + s]`.
    pub saturation: Option<[f32; 2]>,
    /// Hue factor range, `[-h, h]` with `h <= 0.5`.
    pub hue: Option<[f32; 2]>,
}

impl ColorJitter {
    /// torchvision's `ColorJitter(brightness, contrast, saturation, hue)` ranges.
    pub fn new(brightness: f32, contrast: f32, saturation: f32, hue: f32) -> Self {
        let around_one = |v: f32| (v > 0.0).then(|| [(1.0 - v).max(0.0), 1.0 + v]);
        Self {
            brightness: around_one(brightness),
            contrast: around_one(contrast),
            saturation: around_one(saturation),
            hue: (hue > 0.0).then_some([-hue, hue]),
        }
    }

    /// SwAV's `get_color_distortion(s)`: `ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s)`.
    pub fn from_strength(strength: f32) -> Self {
        Self::new(
            0.8 * strength,
            0.8 * strength,
            0.8 * strength,
            0.2 * strength,
        )
    }

    /// Draws an operation order and the factors (order first, then brightness, contrast,
    /// saturation and hue, as torchvision's `get_params`).
    pub fn sample(&self, rng: &mut impl Rng) -> ColorJitterParams {
        let mut order = JitterOp::ALL;
        fisher_yates(&mut order, rng);
        let mut draw = |range: Option<[f32; 2]>| {
            range.map(|[low, high]| uniform(rng, low as f64, high as f64) as f32)
        };
        ColorJitterParams {
            order,
            brightness: draw(self.brightness),
            contrast: draw(self.contrast),
            saturation: draw(self.saturation),
            hue: draw(self.hue),
        }
    }
}

/// One draw of ColorJitter: the order of the operations and their factors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorJitterParams {
    /// The order the operations run in.
    pub order: [JitterOp; 4],
    /// Brightness factor, or `None` to skip.
    pub brightness: Option<f32>,
    /// Contrast factor, or `None` to skip.
    pub contrast: Option<f32>,
    /// Saturation factor, or `None` to skip.
    pub saturation: Option<f32>,
    /// Hue factor in [-0.5, 0.5], or `None` to skip.
    pub hue: Option<f32>,
}

impl ColorJitterParams {
    /// Applies the operations in `order` to an interleaved RGB buffer.
    pub fn apply(&self, pixels: &mut [u8]) {
        for op in self.order {
            match op {
                JitterOp::Brightness => self.brightness.map(|f| adjust_brightness(pixels, f)),
                JitterOp::Contrast => self.contrast.map(|f| adjust_contrast(pixels, f)),
                JitterOp::Saturation => self.saturation.map(|f| adjust_saturation(pixels, f)),
                JitterOp::Hue => self.hue.map(|f| adjust_hue(pixels, f)),
            };
        }
    }
}

fn apply_table(pixels: &mut [u8], table: &[u8; 256]) {
    for v in pixels.iter_mut() {
        *v = table[*v as usize];
    }
}

/// `ImageEnhance.Brightness(img).enhance(factor)`.
pub fn adjust_brightness(pixels: &mut [u8], factor: f32) {
    apply_table(pixels, &blend_table(0, factor));
}

/// The grey level `ImageEnhance.Contrast` blends with: `int(mean(L) + 0.5)`.
pub fn contrast_mean(pixels: &[u8]) -> u8 {
    let count = pixels.len() / 3;
    if count == 0 {
        return 0;
    }
    let sum: u64 = pixels
        .chunks_exact(3)
        .map(|px| pil_luma(px[0], px[1], px[2]) as u64)
        .sum();
    (sum as f64 / count as f64 + 0.5) as u8
}

/// `ImageEnhance.Contrast(img).enhance(factor)`.
pub fn adjust_contrast(pixels: &mut [u8], factor: f32) {
    let mean = contrast_mean(pixels);
    apply_table(pixels, &blend_table(mean, factor));
}

/// Pixels per de-interleaved chunk of [`adjust_saturation`].
const CHUNK: usize = 64;

/// `ImageEnhance.Color(img).enhance(factor)`. Works on de-interleaved chunks so the luma and
/// the three blends vectorise.
pub fn adjust_saturation(pixels: &mut [u8], factor: f32) {
    for chunk in pixels.chunks_mut(CHUNK * 3) {
        let n = chunk.len() / 3;
        let mut channels = [[0u8; CHUNK]; 3];
        for (i, px) in chunk.chunks_exact(3).enumerate() {
            for c in 0..3 {
                channels[c][i] = px[c];
            }
        }
        let [r, g, b] = &mut channels;
        for i in 0..CHUNK {
            let l = pil_luma(r[i], g[i], b[i]);
            r[i] = pil_blend(l, r[i], factor);
            g[i] = pil_blend(l, g[i], factor);
            b[i] = pil_blend(l, b[i], factor);
        }
        for (i, px) in chunk.chunks_exact_mut(3).enumerate().take(n) {
            for c in 0..3 {
                px[c] = channels[c][i];
            }
        }
    }
}

/// torchvision's `adjust_hue(img, hue_factor)` on a PIL RGB image.
pub fn adjust_hue(pixels: &mut [u8], hue_factor: f32) {
    shift_hue_in_place(pixels, hue_shift_for_factor(hue_factor));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::crop_stream;

    #[test]
    fn strength_one_is_swav_jitter() {
        let jitter = ColorJitter::from_strength(1.0);
        assert_eq!(jitter.brightness, Some([0.19999999, 1.8]));
        assert_eq!(jitter.hue, Some([-0.2, 0.2]));
        assert_eq!(ColorJitter::from_strength(0.0).brightness, None);
    }

    #[test]
    fn sampled_factors_stay_in_range_and_order_is_a_permutation() {
        let jitter = ColorJitter::from_strength(1.0);
        let mut rng = crop_stream(1, 0, 0, 0);
        for _ in 0..200 {
            let params = jitter.sample(&mut rng);
            let b = params.brightness.unwrap_or(f32::NAN);
            assert!((0.19..=1.8).contains(&b));
            let h = params.hue.unwrap_or(f32::NAN);
            assert!((-0.2..=0.2).contains(&h));
            for op in JitterOp::ALL {
                assert_eq!(params.order.iter().filter(|&&o| o == op).count(), 1);
            }
        }
    }

    #[test]
    fn contrast_mean_rounds_half_up() {
        // Two grey pixels 10 and 11: mean 10.5 -> 11.
        assert_eq!(contrast_mean(&[10, 10, 10, 11, 11, 11]), 11);
        assert_eq!(contrast_mean(&[]), 0);
    }

    #[test]
    fn chunked_saturation_equals_per_pixel_blends() {
        let mut pixels: Vec<u8> = (0..(CHUNK + 5) * 3).map(|i| (i * 53 % 256) as u8).collect();
        let expected: Vec<u8> = pixels
            .chunks_exact(3)
            .flat_map(|px| {
                let l = pil_luma(px[0], px[1], px[2]);
                px.iter()
                    .map(move |&v| pil_blend(l, v, 1.7))
                    .collect::<Vec<_>>()
            })
            .collect();
        adjust_saturation(&mut pixels, 1.7);
        assert_eq!(pixels, expected);
    }

    #[test]
    fn saturation_zero_is_grayscale() {
        let mut px = [200, 30, 60, 5, 250, 90];
        let expected = [
            pil_luma(200, 30, 60),
            pil_luma(200, 30, 60),
            pil_luma(200, 30, 60),
            pil_luma(5, 250, 90),
            pil_luma(5, 250, 90),
            pil_luma(5, 250, 90),
        ];
        adjust_saturation(&mut px, 0.0);
        assert_eq!(px, expected);
    }
}
