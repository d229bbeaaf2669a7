//! PIL's `Image.blend`, the primitive behind every `ImageEnhance` operation.
//!
//! Pillow evaluates `degenerate + factor * (value - degenerate)` in single precision
//! (the factor is passed to C as a `float`) and converts to `u8` by truncation toward
//! zero, clamping to 0..=255 when the factor extrapolates (outside `[0, 1]`).

/// Blends `value` with `degenerate` by `factor` exactly as Pillow does for 8-bit bands.
#[inline(always)]
pub fn pil_blend(degenerate: u8, value: u8, factor: f32) -> u8 {
    let mixed = degenerate as f32 + factor * (value as i32 - degenerate as i32) as f32;
    // Clamp, truncate, and read the integer from the mantissa (exact below 2^23): the same
    // as a saturating `as u8`, but it vectorises.
    (mixed.clamp(0.0, 255.0).trunc() + 8_388_608.0).to_bits() as u8
}

/// The 256-entry table of `pil_blend(degenerate, v, factor)` for every `v`: blending with a
/// constant image is a pointwise map.
pub fn blend_table(degenerate: u8, factor: f32) -> [u8; 256] {
    let mut table = [0u8; 256];
    for (v, out) in table.iter_mut().enumerate() {
        *out = pil_blend(degenerate, v as u8, factor);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_and_clamps() {
        assert_eq!(pil_blend(0, 100, 0.5), 50);
        assert_eq!(pil_blend(0, 101, 0.5), 50); // 50.5 truncates
        assert_eq!(pil_blend(0, 200, 1.8), 255);
        assert_eq!(pil_blend(100, 0, 1.8), 0); // 100 - 180 clamps to 0
        assert_eq!(pil_blend(37, 200, 0.0), 37);
        assert_eq!(pil_blend(37, 200, 1.0), 200);
        for (d, v, f) in [
            (0u8, 255u8, 3.0f32),
            (255, 0, 2.0),
            (12, 250, 0.999),
            (128, 129, 0.5),
        ] {
            let mixed = d as f32 + f * (v as i32 - d as i32) as f32;
            assert_eq!(pil_blend(d, v, f), mixed as u8, "{d} {v} {f}");
        }
    }

    #[test]
    fn table_matches_pointwise() {
        let table = blend_table(90, 1.37);
        for v in 0..=255u8 {
            assert_eq!(table[v as usize], pil_blend(90, v, 1.37));
        }
    }
}
