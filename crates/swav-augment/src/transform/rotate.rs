//! Random rotation of a square crop about its centre: torchvision's `RandomRotation` with
//! bilinear interpolation and a black fill (`expand=False`). Not part of SwAV's official
//! recipe (off by default); lightly's `SwaVTransform` offers it (`rr_prob`, `rr_degrees`) for
//! data whose classes do not depend on orientation, where it stops two crops of one image
//! from being matched by the orientation they share.

/// Rotates the `size x size` RGB crop `pixels` counter-clockwise by `degrees` about its
/// centre. Each output pixel takes the bilinear interpolation of the source at its inverse
/// image, with black beyond the crop's edge. `scratch` receives a copy of the input.
pub fn rotate_in_place(pixels: &mut [u8], size: usize, degrees: f32, scratch: &mut Vec<u8>) {
    debug_assert_eq!(pixels.len(), size * size * 3);
    scratch.clear();
    scratch.extend_from_slice(pixels);
    let (sin, cos) = (degrees as f64).to_radians().sin_cos();
    let centre = size as f64 / 2.0;
    let texel = |x: i64, y: i64, c: usize| -> f64 {
        if x < 0 || y < 0 || x >= size as i64 || y >= size as i64 {
            0.0
        } else {
            scratch[(y as usize * size + x as usize) * 3 + c] as f64
        }
    };
    for y in 0..size {
        let dy = y as f64 + 0.5 - centre;
        for x in 0..size {
            let dx = x as f64 + 0.5 - centre;
            // Inverse of the counter-clockwise turn in y-down image coordinates, then from
            // pixel-centre coordinates to texel indices.
            let u = cos * dx - sin * dy + centre - 0.5;
            let v = sin * dx + cos * dy + centre - 0.5;
            let (x0, y0) = (u.floor(), v.floor());
            let (fx, fy) = (u - x0, v - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for c in 0..3 {
                let top = texel(x0, y0, c) * (1.0 - fx) + texel(x0 + 1, y0, c) * fx;
                let bottom = texel(x0, y0 + 1, c) * (1.0 - fx) + texel(x0 + 1, y0 + 1, c) * fx;
                let value = top * (1.0 - fy) + bottom * fy;
                pixels[(y * size + x) * 3 + c] = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 x 4 crop whose pixel (x, y) holds (x, y, 7).
    fn ramp() -> Vec<u8> {
        (0..4u8)
            .flat_map(|y| (0..4u8).flat_map(move |x| [x * 10, y * 10, 7]))
            .collect()
    }

    fn pixel(p: &[u8], x: usize, y: usize) -> [u8; 3] {
        let i = (y * 4 + x) * 3;
        [p[i], p[i + 1], p[i + 2]]
    }

    #[test]
    fn zero_and_full_turns_change_nothing() {
        let mut scratch = Vec::new();
        for degrees in [0.0, 360.0, -360.0] {
            let mut p = ramp();
            rotate_in_place(&mut p, 4, degrees, &mut scratch);
            assert_eq!(p, ramp(), "{degrees} degrees");
        }
    }

    #[test]
    fn a_quarter_turn_is_exact_and_counter_clockwise() {
        let (mut p, mut scratch) = (ramp(), Vec::new());
        rotate_in_place(&mut p, 4, 90.0, &mut scratch);
        let src = ramp();
        for y in 0..4 {
            for x in 0..4 {
                // Counter-clockwise: the source's right column becomes the top row.
                assert_eq!(pixel(&p, x, y), pixel(&src, 3 - y, x), "({x}, {y})");
            }
        }
    }

    #[test]
    fn half_turn_then_half_turn_is_identity_and_corners_go_black_at_45() {
        let (mut p, mut scratch) = (ramp(), Vec::new());
        rotate_in_place(&mut p, 4, 180.0, &mut scratch);
        assert_eq!(pixel(&p, 0, 0), pixel(&ramp(), 3, 3));
        rotate_in_place(&mut p, 4, -180.0, &mut scratch);
        assert_eq!(p, ramp());
        let mut q = vec![200u8; 8 * 8 * 3];
        rotate_in_place(&mut q, 8, 45.0, &mut scratch);
        assert_eq!(&q[..3], &[0, 0, 0], "a corner leaves the rotated square");
        let centre = (4 * 8 + 4) * 3;
        assert_eq!(&q[centre..centre + 3], &[200, 200, 200]);
    }
}
