//! `ToTensor` + `Normalize`, written straight into an NHWC `f32` slot, with the horizontal
//! flip folded into the write.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Per-channel mean and standard deviation of `Normalize`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// Channel means (R, G, B) on the [0, 1] scale.
    pub mean: [f32; 3],
    /// Channel standard deviations (R, G, B).
    pub std: [f32; 3],
}

impl Normalization {
    /// SwAV's constants: mean (0.485, 0.456, 0.406), std (0.228, 0.224, 0.225). The 0.228 is
    /// not a typo: SwAV's code uses it (the usual ImageNet value is 0.229).
    pub const SWAV: Self = Self {
        mean: [0.485, 0.456, 0.406],
        std: [0.228, 0.224, 0.225],
    };

    /// Checks that every standard deviation is positive and every value finite.
    pub fn validate(&self, parameter: &str) -> Result<(), ConfigError> {
        if self.mean.iter().chain(&self.std).any(|v| !v.is_finite()) {
            return Err(ConfigError::new(parameter, "mean and std must be finite"));
        }
        if self.std.iter().any(|&s| s <= 0.0) {
            return Err(ConfigError::new(
                format!("{parameter}.std"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

impl Default for Normalization {
    fn default() -> Self {
        Self::SWAV
    }
}

/// The 3 x 256 table of `(v / 255 - mean) / std` in `f32`, bit-identical to torchvision's
/// `ToTensor` (a float32 division by 255) followed by `Normalize` (float32 sub then div).
#[derive(Debug, Clone)]
pub struct NormalizeTable {
    table: [[f32; 256]; 3],
}

impl NormalizeTable {
    /// The table for `normalization`.
    pub fn new(normalization: &Normalization) -> Self {
        let mut table = [[0.0f32; 256]; 3];
        for (c, row) in table.iter_mut().enumerate() {
            for (v, out) in row.iter_mut().enumerate() {
                *out = (v as f32 / 255.0 - normalization.mean[c]) / normalization.std[c];
            }
        }
        Self { table }
    }

    /// The normalised value of byte `v` in channel `c`.
    pub fn value(&self, channel: usize, v: u8) -> f32 {
        self.table[channel][v as usize]
    }

    /// Normalises the `width x height` window at (`left`, `top`) of an RGB image whose rows
    /// are `stride` pixels long into `out` (`width * height * 3` values, HWC), mirroring
    /// each row when `flip` is set.
    ///
    /// # Panics
    ///
    /// If the window reaches outside `src`.
    pub fn write(
        &self,
        src: &[u8],
        stride: usize,
        window: [usize; 4],
        flip: bool,
        out: &mut [f32],
    ) {
        let [left, top, width, height] = window;
        for (y, out_row) in out.chunks_exact_mut(width * 3).take(height).enumerate() {
            let start = ((top + y) * stride + left) * 3;
            let src_row = &src[start..start + width * 3];
            let write_px = |out_px: &mut [f32], px: &[u8]| {
                out_px[0] = self.table[0][px[0] as usize];
                out_px[1] = self.table[1][px[1] as usize];
                out_px[2] = self.table[2][px[2] as usize];
            };
            if flip {
                for (out_px, px) in out_row
                    .chunks_exact_mut(3)
                    .zip(src_row.chunks_exact(3).rev())
                {
                    write_px(out_px, px);
                }
            } else {
                for (out_px, px) in out_row.chunks_exact_mut(3).zip(src_row.chunks_exact(3)) {
                    write_px(out_px, px);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_to_tensor_then_normalize() {
        let table = NormalizeTable::new(&Normalization::SWAV);
        assert_eq!(table.value(0, 0), (0.0 - 0.485f32) / 0.228);
        assert_eq!(table.value(2, 255), (1.0 - 0.406f32) / 0.225);
    }

    #[test]
    fn write_flips_rows_and_reads_a_window() {
        let norm = Normalization {
            mean: [0.0; 3],
            std: [1.0 / 255.0; 3],
        };
        let table = NormalizeTable::new(&norm);
        // 3x2 image, pixel value = 10 * x + y in all channels.
        let src: Vec<u8> = (0..2)
            .flat_map(|y| (0..3).flat_map(move |x| [10 * x + y; 3]))
            .collect();
        let mut out = vec![0.0; 2 * 2 * 3];
        table.write(&src, 3, [1, 0, 2, 2], true, &mut out);
        let firsts: Vec<f32> = out.chunks(3).map(|p| p[0].round()).collect();
        assert_eq!(firsts, vec![20.0, 10.0, 21.0, 11.0]);
        assert!(norm.validate("n").is_ok());
        assert!(
            Normalization {
                mean: [0.0; 3],
                std: [1.0, 0.0, 1.0]
            }
            .validate("n")
            .is_err()
        );
    }
}
