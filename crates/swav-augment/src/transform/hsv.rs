//! PIL's integer HSV: `convert("HSV")`, `convert("RGB")` from HSV, and torchvision's hue shift.
//!
//! Pillow stores H, S and V as bytes. RGB -> HSV follows Python's `colorsys` in a mix of
//! single and double precision and truncates H and S to integers; HSV -> RGB rounds half
//! away from zero. A round trip is therefore lossy even without a shift, which is why
//! torchvision's `adjust_hue` changes an image even for a zero factor. The functions here
//! reproduce Pillow's arithmetic operation by operation (each `f32`/`f64` below is the
//! precision C uses at that step).
//!
//! Pillow branches on which channel is largest and on the hue sector; here every case is
//! computed and the right one selected, over de-interleaved chunks of pixels, so the
//! compiler can vectorise the whole round trip. The special cases need no branch: a grey
//! pixel yields H = S = 0 through the selects, and S = 0 makes all three HSV -> RGB
//! candidates equal to V.

/// Pixels per de-interleaved chunk of [`shift_hue_in_place`].
const CHUNK: usize = 64;

/// The byte of an integral `whole` in 0..=255: adding 2^52 puts the integer in the low
/// mantissa bits exactly. Unlike a saturating `as` cast, this bit cast vectorises.
#[inline(always)]
fn whole_to_byte(whole: f64) -> u8 {
    (whole + 4_503_599_627_370_496.0).to_bits() as u8
}

/// C's `(int)` truncation of `x` in [0, 256) as a byte.
#[inline(always)]
fn trunc_to_byte(x: f64) -> u8 {
    whole_to_byte(x.trunc())
}

/// C's `round` (half away from zero) of `x` in [0, 255] as a byte: `x - trunc(x)` is exact
/// in binary floating point, so comparing it with 0.5 rounds exactly, without the libm call
/// `f64::round` compiles to.
#[inline(always)]
fn round_to_byte(x: f64) -> u8 {
    let whole = x.trunc();
    whole_to_byte(whole + if x - whole >= 0.5 { 1.0 } else { 0.0 })
}

/// Pillow's RGB -> HSV conversion of one pixel.
#[inline(always)]
pub fn rgb_to_hsv(r: u8, g: u8, b: u8) -> [u8; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let cr = (max - min) as f32;
    let s = cr / max as f32;
    let rc = (max - r) as f32 / cr;
    let gc = (max - g) as f32 / cr;
    let bc = (max - b) as f32 / cr;
    let h_red = bc - gc;
    let h_green = (2.0 + rc as f64 - bc as f64) as f32;
    let h_blue = (4.0 + gc as f64 - rc as f64) as f32;
    let h = if r == max {
        h_red
    } else if g == max {
        h_green
    } else {
        h_blue
    };
    // C: fmod(h / 6.0 + 1.0, 1.0). The argument lies in [5/6, 11/6], where fmod is one exact
    // subtraction (Sterbenz) or nothing.
    let wrapped = h as f64 / 6.0 + 1.0;
    let h = (if wrapped >= 1.0 {
        wrapped - 1.0
    } else {
        wrapped
    }) as f32;
    let grey = max == min;
    // h lies in [0, 1) and s in [0, 1], so CLIP8 is a no-op. Grey pixels divided 0 by 0:
    // select before converting.
    let uh = trunc_to_byte(if grey { 0.0 } else { h as f64 * 255.0 });
    let us = trunc_to_byte(if grey { 0.0 } else { s as f64 * 255.0 });
    [uh, us, max]
}

/// Pillow's HSV -> RGB conversion of one pixel.
#[inline(always)]
pub fn hsv_to_rgb(h: u8, s: u8, v: u8) -> [u8; 3] {
    let scaled = h as f32 as f64 * 6.0 / 255.0;
    let sector = scaled.floor();
    let f = (scaled - sector) as f32;
    let fs = (s as f32 as f64 / 255.0) as f32;
    let value = v as f64;
    let p = round_to_byte(value * (1.0 - fs as f64));
    let q = round_to_byte(value * (1.0 - (fs * f) as f64));
    let t = round_to_byte(value * (1.0 - fs as f64 * (1.0 - f as f64)));
    // Sector 6 (h = 255) is sector 0, as C's `i % 6`. Every factor below is in [0, 1], so
    // p, q and t lie in 0..=255 and CLIP8 is a no-op.
    let sector = whole_to_byte(sector) % 6;
    let pick = |cases: [u8; 6]| -> u8 {
        let mut out = cases[0];
        for (k, &case) in cases.iter().enumerate().skip(1) {
            out = if sector == k as u8 { case } else { out };
        }
        out
    };
    [
        pick([v, q, p, p, t, v]),
        pick([t, v, v, q, p, p]),
        pick([p, p, t, v, v, q]),
    ]
}

/// The byte added to H by torchvision's `adjust_hue` for `hue_factor` in [-0.5, 0.5]:
/// `hue_factor * 255` truncated toward zero, wrapped modulo 256.
pub fn hue_shift_for_factor(hue_factor: f32) -> u8 {
    ((hue_factor as f64 * 255.0) as i32).rem_euclid(256) as u8
}

/// torchvision's `adjust_hue` on a PIL RGB image: RGB -> HSV, add `shift` to H with
/// wrap-around, HSV -> RGB, on an interleaved RGB buffer.
pub fn shift_hue_in_place(pixels: &mut [u8], shift: u8) {
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
            let [h, s, v] = rgb_to_hsv(r[i], g[i], b[i]);
            [r[i], g[i], b[i]] = hsv_to_rgb(h.wrapping_add(shift), s, v);
        }
        for (i, px) in chunk.chunks_exact_mut(3).enumerate().take(n) {
            for c in 0..3 {
                px[c] = channels[c][i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline]
    fn clip8(v: i32) -> u8 {
        v.clamp(0, 255) as u8
    }

    /// Pillow's RGB -> HSV transcribed with its branches.
    fn rgb_to_hsv_branching(r: u8, g: u8, b: u8) -> [u8; 3] {
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

    /// Pillow's HSV -> RGB transcribed with its branches and C rounding.
    fn hsv_to_rgb_branching(h: u8, s: u8, v: u8) -> [u8; 3] {
        if s == 0 {
            return [v, v, v];
        }
        let i = (h as f32 as f64 * 6.0 / 255.0).floor() as i32;
        let f = (h as f32 as f64 * 6.0 / 255.0 - i as f32 as f64) as f32;
        let fs = (s as f32 as f64 / 255.0) as f32;
        let value = v as f64;
        let p = clip8((value * (1.0 - fs as f64)).round() as i32);
        let q = clip8((value * (1.0 - (fs * f) as f64)).round() as i32);
        let t = clip8((value * (1.0 - fs as f64 * (1.0 - f as f64))).round() as i32);
        match i % 6 {
            0 => [v, t, p],
            1 => [q, v, p],
            2 => [p, v, t],
            3 => [p, q, v],
            4 => [t, p, v],
            _ => [v, p, q],
        }
    }

    #[test]
    fn branch_free_forms_equal_the_branching_transcription() {
        for r in (0..=255u8).step_by(3) {
            for g in (0..=255u8).step_by(5) {
                for b in 0..=255u8 {
                    assert_eq!(
                        rgb_to_hsv(r, g, b),
                        rgb_to_hsv_branching(r, g, b),
                        "{r} {g} {b}"
                    );
                    assert_eq!(
                        hsv_to_rgb(r, g, b),
                        hsv_to_rgb_branching(r, g, b),
                        "{r} {g} {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn chunked_shift_equals_per_pixel_conversion_including_a_ragged_tail() {
        let mut pixels: Vec<u8> = (0..(CHUNK * 2 + 7) * 3)
            .map(|i| (i * 97 % 256) as u8)
            .collect();
        let expected: Vec<u8> = pixels
            .chunks_exact(3)
            .flat_map(|px| {
                let [h, s, v] = rgb_to_hsv_branching(px[0], px[1], px[2]);
                hsv_to_rgb_branching(h.wrapping_add(40), s, v)
            })
            .collect();
        shift_hue_in_place(&mut pixels, 40);
        assert_eq!(pixels, expected);
    }

    #[test]
    fn byte_conversions_are_c_conversions() {
        for k in 0..=255u8 {
            assert_eq!(whole_to_byte(k as f64), k);
        }
        for x in [0.0, 0.999_999, 1.0, 254.999_999_999, 255.0] {
            assert_eq!(trunc_to_byte(x), x as u8, "{x}");
        }
    }

    #[test]
    fn round_to_byte_is_c_round() {
        for x in [
            0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            254.49999999999997,
            254.5,
            255.0,
        ] {
            assert_eq!(round_to_byte(x), x.round() as u8, "{x}");
        }
        for k in 0..100_000 {
            let x = k as f64 * 0.002_551_3;
            assert_eq!(round_to_byte(x), x.round() as u8, "{x}");
        }
    }

    #[test]
    fn greys_and_primaries() {
        assert_eq!(rgb_to_hsv(7, 7, 7), [0, 0, 7]);
        assert_eq!(rgb_to_hsv(0, 0, 0), [0, 0, 0]);
        assert_eq!(rgb_to_hsv(255, 0, 0), [0, 255, 255]);
        assert_eq!(rgb_to_hsv(0, 255, 0), [85, 255, 255]);
        assert_eq!(rgb_to_hsv(0, 0, 255), [170, 255, 255]);
        assert_eq!(hsv_to_rgb(0, 255, 255), [255, 0, 0]);
        assert_eq!(hsv_to_rgb(0, 0, 99), [99, 99, 99]);
        assert_eq!(hsv_to_rgb(255, 255, 255), [255, 0, 0]); // sector 6 is sector 0
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
