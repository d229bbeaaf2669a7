//! PIL's integer HSV: `convert("HSV")`, `convert("RGB")` from HSV, and torchvision's hue shift.
//!
//! Pillow stores H, S and V as bytes. RGB -> HSV follows Python's `colorsys` in a mix of
//! single and double precision and truncates H and S to integers; HSV -> RGB rounds half
//! away from zero. A round trip is therefore lossy even without a shift, which is why
//! torchvision's `adjust_hue` changes an image even for a zero factor. The functions here
//! reproduce Pillow's arithmetic operation by operation (each `f32`/`f64` below is the
//! precision C uses at that step), with the divisions precomputed in exact tables.

use std::sync::LazyLock;

/// Precomputed quotients; every entry is exactly what the C expression produces.
struct HsvTables {
    /// `quotient[(num << 8) | den] = num as f32 / den as f32` for `den > 0`.
    quotient: Vec<f32>,
    /// For each H byte: `i = floor(h * 6.0 / 255.0)` and the remainder `f` as `f32`.
    sector: [(u8, f32); 256],
    /// For each S byte: `fs = (float)(s / 255.0)`.
    saturation: [f32; 256],
}

static TABLES: LazyLock<HsvTables> = LazyLock::new(|| {
    let mut quotient = vec![0.0f32; 256 * 256];
    for num in 0..256usize {
        for den in 1..256usize {
            quotient[(num << 8) | den] = num as f32 / den as f32;
        }
    }
    let mut sector = [(0u8, 0.0f32); 256];
    let mut saturation = [0.0f32; 256];
    for v in 0..256usize {
        let scaled = v as f32 as f64 * 6.0 / 255.0;
        let i = scaled.floor();
        sector[v] = (i as u8, (scaled - i) as f32);
        saturation[v] = (v as f32 as f64 / 255.0) as f32;
    }
    HsvTables {
        quotient,
        sector,
        saturation,
    }
});

#[inline]
fn clip8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Pillow's RGB -> HSV conversion of one pixel.
#[inline]
pub fn rgb_to_hsv(r: u8, g: u8, b: u8) -> [u8; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    if max == min {
        return [0, 0, max];
    }
    let tables = &*TABLES;
    let delta = (max - min) as usize;
    let over_delta = |n: u8| tables.quotient[((n as usize) << 8) | delta];
    let s = tables.quotient[(delta << 8) | max as usize];
    let rc = over_delta(max - r);
    let gc = over_delta(max - g);
    let bc = over_delta(max - b);
    let h: f32 = if r == max {
        bc - gc
    } else if g == max {
        (2.0 + rc as f64 - bc as f64) as f32
    } else {
        (4.0 + gc as f64 - rc as f64) as f32
    };
    // C: fmod(h / 6.0 + 1.0, 1.0). The argument lies in [5/6, 11/6], where fmod is one exact
    // subtraction (Sterbenz) or nothing.
    let wrapped = h as f64 / 6.0 + 1.0;
    let h = (if wrapped >= 1.0 {
        wrapped - 1.0
    } else {
        wrapped
    }) as f32;
    [
        clip8((h as f64 * 255.0) as i32),
        clip8((s as f64 * 255.0) as i32),
        max,
    ]
}

/// Pillow's HSV -> RGB conversion of one pixel.
#[inline]
pub fn hsv_to_rgb(h: u8, s: u8, v: u8) -> [u8; 3] {
    if s == 0 {
        return [v, v, v];
    }
    let tables = &*TABLES;
    let (sector, f) = tables.sector[h as usize];
    let fs = tables.saturation[s as usize];
    let value = v as f64;
    let p = clip8((value * (1.0 - fs as f64)).round() as i32);
    let q = clip8((value * (1.0 - (fs * f) as f64)).round() as i32);
    let t = clip8((value * (1.0 - fs as f64 * (1.0 - f as f64))).round() as i32);
    match sector % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// The byte added to H by torchvision's `adjust_hue` for `hue_factor` in [-0.5, 0.5]:
/// `hue_factor * 255` truncated toward zero, wrapped modulo 256.
pub fn hue_shift_for_factor(hue_factor: f32) -> u8 {
    ((hue_factor as f64 * 255.0) as i32).rem_euclid(256) as u8
}

/// torchvision's `adjust_hue` on a PIL RGB image: RGB -> HSV, add `shift` to H with
/// wrap-around, HSV -> RGB, on an interleaved RGB buffer.
pub fn shift_hue_in_place(pixels: &mut [u8], shift: u8) {
    for px in pixels.chunks_exact_mut(3) {
        let [h, s, v] = rgb_to_hsv(px[0], px[1], px[2]);
        px.copy_from_slice(&hsv_to_rgb(h.wrapping_add(shift), s, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pillow's RGB -> HSV written without tables, one division at a time.
    fn rgb_to_hsv_direct(r: u8, g: u8, b: u8) -> [u8; 3] {
        let max = r.max(g).max(b);
        let min = r.min(g).min(b);
        if max == min {
            return [0, 0, max];
        }
        let cr = (max - min) as f32;
        let s = cr / max as f32;
        let rc = (max - r) as f32 / cr;
        let gc = (max - g) as f32 / cr;
        let bc = (max - b) as f32 / cr;
        let h: f32 = if r == max {
            bc - gc
        } else if g == max {
            (2.0 + rc as f64 - bc as f64) as f32
        } else {
            (4.0 + gc as f64 - rc as f64) as f32
        };
        let h = ((h as f64 / 6.0 + 1.0) % 1.0) as f32;
        [
            clip8((h as f64 * 255.0) as i32),
            clip8((s as f64 * 255.0) as i32),
            max,
        ]
    }

    #[test]
    fn tables_reproduce_the_direct_formula_on_a_colour_lattice() {
        for r in (0..=255u8).step_by(3) {
            for g in (0..=255u8).step_by(5) {
                for b in 0..=255u8 {
                    assert_eq!(
                        rgb_to_hsv(r, g, b),
                        rgb_to_hsv_direct(r, g, b),
                        "{r} {g} {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn greys_and_primaries() {
        assert_eq!(rgb_to_hsv(7, 7, 7), [0, 0, 7]);
        assert_eq!(rgb_to_hsv(255, 0, 0), [0, 255, 255]);
        assert_eq!(rgb_to_hsv(0, 255, 0), [85, 255, 255]);
        assert_eq!(rgb_to_hsv(0, 0, 255), [170, 255, 255]);
        assert_eq!(hsv_to_rgb(0, 255, 255), [255, 0, 0]);
        assert_eq!(hsv_to_rgb(0, 0, 99), [99, 99, 99]);
    }

    #[test]
    fn hue_shift_truncates_and_wraps() {
        assert_eq!(hue_shift_for_factor(0.0), 0);
        assert_eq!(hue_shift_for_factor(0.1), 25); // 25.5 truncates
        assert_eq!(hue_shift_for_factor(-0.1), 231); // -25 wraps
        assert_eq!(hue_shift_for_factor(0.5), 127);
        assert_eq!(hue_shift_for_factor(-0.5), 129);
    }
}
