//! Pillow's `ImageFilter.GaussianBlur(radius)`, reproduced exactly.
//!
//! Pillow approximates a Gaussian of standard deviation `radius` by three passes of an
//! "extended" box blur (Gwosdek et al. 2011): a box of fractional radius `l + a`, where the
//! fractional part weights the two pixels just outside the integer box. Each pass works in
//! 24-bit fixed point and rounds back to bytes; the three horizontal passes run first, then
//! the three vertical ones, and edges repeat the border pixel. SwAV's `PILRandomGaussianBlur`
//! calls this with `radius = U(0.1, 2.0)`.
//!
//! Here every pass is a vertical pass over all columns at once (it vectorises well); the
//! horizontal passes run on the transposed image, exactly as Pillow does internally.

/// Passes of Pillow's Gaussian approximation.
const PASSES: usize = 3;

/// Pillow's `_gaussian_blur_radius`: the fractional box radius whose `passes`-fold repetition
/// has the variance of a Gaussian with standard deviation `sigma` (C float/double mix kept).
pub fn extended_box_radius(sigma: f32, passes: u32) -> f32 {
    let sigma2: f32 = sigma * sigma / passes as f32;
    let box_length = (12.0 * sigma2 as f64 + 1.0).sqrt() as f32;
    let l = ((box_length as f64 - 1.0) / 2.0).floor() as f32;
    let mut a: f32 = (2.0 * l + 1.0) * (l * (l + 1.0) - 3.0 * sigma2);
    a /= 6.0 * (sigma2 - (l + 1.0) * (l + 1.0));
    l + a
}

/// The integer radius and the 24-bit fixed-point weights of one extended box pass:
/// `ww` for the pixels inside the box, `fw` for the two pixels just outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxWeights {
    /// Integer part of the radius.
    pub radius: usize,
    /// Weight of each pixel inside the box.
    pub inner: u32,
    /// Weight of each of the two pixels just outside the box.
    pub outer: u32,
}

impl BoxWeights {
    /// Pillow's weights for a fractional `radius`.
    pub fn new(radius: f32) -> Self {
        let whole = radius as usize;
        let inner = ((1u32 << 24) as f32 / (radius * 2.0 + 1.0)) as u32;
        let outer = ((1u32 << 24) - (whole as u32 * 2 + 1) * inner) / 2;
        Self {
            radius: whole,
            inner,
            outer,
        }
    }
}

/// Reusable buffers for [`gaussian_blur`].
#[derive(Debug, Default, Clone)]
pub struct BlurScratch {
    transposed: Vec<u8>,
    ping: Vec<u8>,
    accumulators: Vec<u32>,
}

/// Blurs an interleaved RGB image (`width * height * 3` bytes) in place exactly as Pillow's
/// `GaussianBlur(sigma)`. A `sigma` of zero or less leaves the image unchanged.
///
/// # Panics
///
/// If `pixels` is shorter than `width * height * 3`.
pub fn gaussian_blur(
    pixels: &mut [u8],
    width: usize,
    height: usize,
    sigma: f32,
    scratch: &mut BlurScratch,
) {
    if width == 0 || height == 0 || sigma <= 0.0 || !sigma.is_finite() {
        return;
    }
    let radius = extended_box_radius(sigma, PASSES as u32);
    if radius == 0.0 {
        return;
    }
    let weights = BoxWeights::new(radius);
    let BlurScratch {
        transposed,
        ping,
        accumulators,
    } = scratch;
    // Horizontal passes: on the transpose, rows become columns.
    transposed.resize(pixels.len(), 0);
    transpose_rgb(pixels, width, height, transposed);
    blur_columns_passes(transposed, ping, height * 3, width, weights, accumulators);
    transpose_rgb(transposed, height, width, pixels);
    blur_columns_passes(pixels, ping, width * 3, height, weights, accumulators);
}

/// Writes the transpose of a `width x height` RGB image into `out` (`height x width`).
fn transpose_rgb(src: &[u8], width: usize, height: usize, out: &mut [u8]) {
    const BLOCK: usize = 16;
    for y0 in (0..height).step_by(BLOCK) {
        for x0 in (0..width).step_by(BLOCK) {
            for y in y0..(y0 + BLOCK).min(height) {
                for x in x0..(x0 + BLOCK).min(width) {
                    let from = (y * width + x) * 3;
                    let to = (x * height + y) * 3;
                    out[to..to + 3].copy_from_slice(&src[from..from + 3]);
                }
            }
        }
    }
}

/// Runs the three vertical passes on `image` (rows of `row_len` bytes), ending in `image`.
fn blur_columns_passes(
    image: &mut [u8],
    ping: &mut Vec<u8>,
    row_len: usize,
    rows: usize,
    weights: BoxWeights,
    accumulators: &mut Vec<u32>,
) {
    ping.resize(image.len(), 0);
    // Odd pass count: image -> ping -> image -> ping, then copy back.
    let mut in_image = true;
    for _ in 0..PASSES {
        if in_image {
            blur_columns(image, ping, row_len, rows, weights, accumulators);
        } else {
            blur_columns(ping, image, row_len, rows, weights, accumulators);
        }
        in_image = !in_image;
    }
    if !in_image {
        image.copy_from_slice(ping);
    }
}

/// One extended-box pass down every column of `src` into `dst`, following Pillow's line
/// routine index for index: the accumulator starts as the sum for the virtual row -1, and
/// each output row moves it by one row in and one row out, with edge rows repeated.
fn blur_columns(
    src: &[u8],
    dst: &mut [u8],
    row_len: usize,
    rows: usize,
    weights: BoxWeights,
    acc: &mut Vec<u32>,
) {
    let BoxWeights {
        radius,
        inner,
        outer,
    } = weights;
    let last = rows - 1;
    let row = |i: usize| &src[i * row_len..(i + 1) * row_len];
    let edge_a = (radius + 1).min(rows);
    let edge_b = rows.saturating_sub(radius + 1);

    acc.clear();
    acc.extend(row(0).iter().map(|&v| v as u32 * (radius as u32 + 1)));
    for y in 0..edge_a.saturating_sub(1) {
        for (a, &v) in acc.iter_mut().zip(row(y)) {
            *a += v as u32;
        }
    }
    let tail = (radius + 1 - edge_a) as u32;
    for (a, &v) in acc.iter_mut().zip(row(last)) {
        *a += v as u32 * tail;
    }

    // (row leaving, row entering, far-left row, far-right row) for output row y.
    let schedule = |y: usize| -> (usize, usize, usize, usize) {
        if edge_a <= edge_b {
            if y < edge_a {
                (0, y + radius, 0, y + radius + 1)
            } else if y < edge_b {
                (y - radius - 1, y + radius, y - radius - 1, y + radius + 1)
            } else {
                (y - radius - 1, last, y - radius - 1, last)
            }
        } else if y < edge_b {
            (0, y + radius, 0, y + radius + 1)
        } else if y < edge_a {
            (0, last, 0, last)
        } else {
            (y - radius - 1, last, y - radius - 1, last)
        }
    };

    for (y, out) in dst.chunks_exact_mut(row_len).take(rows).enumerate() {
        let (leaving, entering, far_left, far_right) = schedule(y);
        let (leaving, entering) = (row(leaving), row(entering));
        let (far_left, far_right) = (row(far_left), row(far_right));
        for k in 0..row_len {
            let a = acc[k]
                .wrapping_add(entering[k] as u32)
                .wrapping_sub(leaving[k] as u32);
            acc[k] = a;
            let bulk = a
                .wrapping_mul(inner)
                .wrapping_add((far_left[k] as u32 + far_right[k] as u32).wrapping_mul(outer));
            out[k] = (bulk.wrapping_add(1 << 23) >> 24) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_matches_gwosdek_formula_examples() {
        // sigma = 1 with 3 passes: sigma^2/3 = 1/3, L = sqrt(5) = 2.236, l = 0,
        // a = 1 * (0 - 1) / (6 * (1/3 - 1)) = 0.25.
        assert!((extended_box_radius(1.0, 3) - 0.25).abs() < 1e-6);
        assert!(extended_box_radius(2.0, 3) > 1.0);
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for sigma in [0.1f32, 0.5, 1.0, 1.7, 2.0] {
            let w = BoxWeights::new(extended_box_radius(sigma, 3));
            let total = (2 * w.radius as u32 + 1) * w.inner + 2 * w.outer;
            assert!(
                total <= 1 << 24 && total > (1 << 24) - 4,
                "{sigma}: {total}"
            );
        }
    }

    #[test]
    fn constant_image_is_unchanged() {
        let mut px = vec![77u8; 13 * 9 * 3];
        gaussian_blur(&mut px, 13, 9, 1.8, &mut BlurScratch::default());
        assert!(px.iter().all(|&v| v == 77));
    }

    #[test]
    fn blur_spreads_a_point_symmetrically() {
        let (w, h) = (11, 11);
        let mut px = vec![0u8; w * h * 3];
        let centre = (5 * w + 5) * 3;
        px[centre..centre + 3].fill(255);
        gaussian_blur(&mut px, w, h, 1.5, &mut BlurScratch::default());
        let at = |x: usize, y: usize| px[(y * w + x) * 3];
        assert!(at(5, 5) < 255 && at(5, 5) > 0);
        assert_eq!(at(4, 5), at(6, 5));
        assert_eq!(at(5, 4), at(5, 6));
        assert!(at(4, 5) > at(3, 5));
    }

    #[test]
    fn tiny_images_do_not_panic() {
        for (w, h) in [(1, 1), (1, 5), (5, 1), (2, 3)] {
            let mut px: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 256) as u8).collect();
            gaussian_blur(&mut px, w, h, 2.0, &mut BlurScratch::default());
        }
    }
}
