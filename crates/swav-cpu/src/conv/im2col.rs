//! NHWC patch matrices: gathering input patches into rows (im2col) and scattering patch
//! gradients back onto the input (col2im).
//!
//! Row `p` of the patch matrix belongs to output pixel `p` (batch-major, then row, then
//! column) and holds, for each kernel tap `(kh, kw)` in order, the `C` input channels under
//! that tap, or zeros where the tap falls into the padding. Consecutive taps of one kernel
//! row read consecutive input pixels, so each kernel row is a single contiguous copy.

use core::ops::Range;

use swav_nn::Conv2dShape;

/// Where the taps of one kernel row land for one output pixel.
struct TapRun {
    /// The first valid tap column.
    kw_lo: usize,
    /// One past the last valid tap column.
    kw_hi: usize,
    /// The input offset of the first valid tap, per kernel row (`None`: row in the padding).
    row_offsets: [Option<usize>; MAX_KERNEL],
}

/// The largest kernel side handled (ResNet uses 1, 3 and 7).
const MAX_KERNEL: usize = 11;

fn tap_run(s: &Conv2dShape, pixel: usize) -> TapRun {
    assert!(
        s.kernel <= MAX_KERNEL,
        "kernel side {} unsupported",
        s.kernel
    );
    let (oh_n, ow_n) = (s.out_height(), s.out_width());
    let n = pixel / (oh_n * ow_n);
    let rem = pixel % (oh_n * ow_n);
    let (oh, ow) = (rem / ow_n, rem % ow_n);
    let iw0 = (ow * s.stride) as isize - s.padding as isize;
    let kw_lo = (-iw0).clamp(0, s.kernel as isize) as usize;
    let kw_hi = (s.in_width as isize - iw0).clamp(0, s.kernel as isize) as usize;
    let mut row_offsets = [None; MAX_KERNEL];
    for (kh, slot) in row_offsets.iter_mut().enumerate().take(s.kernel) {
        let ih = (oh * s.stride + kh) as isize - s.padding as isize;
        if ih >= 0 && (ih as usize) < s.in_height && kw_lo < kw_hi {
            let iw = (iw0 + kw_lo as isize) as usize;
            *slot = Some(((n * s.in_height + ih as usize) * s.in_width + iw) * s.in_channels);
        }
    }
    TapRun {
        kw_lo,
        kw_hi,
        row_offsets,
    }
}

/// Writes the patch rows `pixels` of `x`, restricted to the kernel rows `kernel_rows`, into
/// `col` (`pixels.len() × kernel_rows.len()·kernel·C`, row-major).
pub(crate) fn im2col(
    x: &[f32],
    s: &Conv2dShape,
    pixels: Range<usize>,
    kernel_rows: Range<usize>,
    col: &mut [f32],
) {
    let c = s.in_channels;
    let row_len = s.kernel * c;
    let width = kernel_rows.len() * row_len;
    for (dst, pixel) in col.chunks_exact_mut(width).zip(pixels) {
        let run = tap_run(s, pixel);
        for (seg, kh) in dst.chunks_exact_mut(row_len).zip(kernel_rows.clone()) {
            match run.row_offsets[kh] {
                None => seg.fill(0.0),
                Some(src) => {
                    let (lo, hi) = (run.kw_lo * c, run.kw_hi * c);
                    seg[..lo].fill(0.0);
                    seg[lo..hi].copy_from_slice(&x[src..src + hi - lo]);
                    seg[hi..].fill(0.0);
                }
            }
        }
    }
}

/// Adds the patch-gradient rows `col` (`pixels.len() × kernel·kernel·C`) back onto the input
/// gradient `dx`, which holds the images starting at image `first_image`.
pub(crate) fn col2im_add(
    col: &[f32],
    s: &Conv2dShape,
    pixels: Range<usize>,
    first_image: usize,
    dx: &mut [f32],
) {
    let c = s.in_channels;
    let row_len = s.kernel * c;
    let base = first_image * s.in_height * s.in_width * c;
    for (src, pixel) in col.chunks_exact(s.patch_len()).zip(pixels) {
        let run = tap_run(s, pixel);
        for (seg, kh) in src.chunks_exact(row_len).zip(0..s.kernel) {
            if let Some(dst) = run.row_offsets[kh] {
                let (lo, hi) = (run.kw_lo * c, run.kw_hi * c);
                let dst = dst - base;
                dx[dst..dst + hi - lo]
                    .iter_mut()
                    .zip(&seg[lo..hi])
                    .for_each(|(d, &g)| *d += g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(kernel: usize, stride: usize, padding: usize) -> Conv2dShape {
        Conv2dShape {
            batch: 2,
            in_height: 5,
            in_width: 4,
            in_channels: 3,
            out_channels: 1,
            kernel,
            stride,
            padding,
        }
    }

    /// The patch matrix read straight from its definition.
    fn reference(x: &[f32], s: &Conv2dShape) -> Vec<f32> {
        let mut out = Vec::new();
        for n in 0..s.batch {
            for oh in 0..s.out_height() {
                for ow in 0..s.out_width() {
                    for kh in 0..s.kernel {
                        for kw in 0..s.kernel {
                            for ch in 0..s.in_channels {
                                let ih = (oh * s.stride + kh) as isize - s.padding as isize;
                                let iw = (ow * s.stride + kw) as isize - s.padding as isize;
                                let inside = ih >= 0
                                    && iw >= 0
                                    && (ih as usize) < s.in_height
                                    && (iw as usize) < s.in_width;
                                out.push(if inside {
                                    x[((n * s.in_height + ih as usize) * s.in_width + iw as usize)
                                        * s.in_channels
                                        + ch]
                                } else {
                                    0.0
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn patches_match_the_definition_for_every_geometry() {
        for (k, st, p) in [
            (3, 1, 1),
            (3, 2, 1),
            (1, 2, 0),
            (5, 2, 3),
            (7, 2, 3),
            (1, 1, 0),
        ] {
            let s = shape(k, st, p);
            let x: Vec<f32> = (0..s.input_len()).map(|i| i as f32 + 1.0).collect();
            let rows = s.output_pixels();
            let mut col = vec![f32::NAN; rows * s.patch_len()];
            im2col(&x, &s, 0..rows, 0..k, &mut col);
            assert_eq!(col, reference(&x, &s), "kernel {k} stride {st} pad {p}");
            // A slice of pixels and kernel rows is the matching sub-block.
            if k > 1 && rows > 3 {
                let kr = 1..k;
                let w = kr.len() * k * s.in_channels;
                let mut part = vec![f32::NAN; 2 * w];
                im2col(&x, &s, 2..4, kr, &mut part);
                let full = reference(&x, &s);
                for r in 0..2 {
                    let start = (2 + r) * s.patch_len() + k * s.in_channels;
                    assert_eq!(&part[r * w..(r + 1) * w], &full[start..start + w]);
                }
            }
        }
    }

    #[test]
    fn scatter_is_the_adjoint_of_gather() {
        // ⟨im2col(x), g⟩ = ⟨x, col2im(g)⟩ for all x, g.
        let s = shape(3, 2, 1);
        let rows = s.output_pixels();
        let x: Vec<f32> = (0..s.input_len()).map(|i| (i % 7) as f32 - 3.0).collect();
        let g: Vec<f32> = (0..rows * s.patch_len())
            .map(|i| (i % 5) as f32 - 2.0)
            .collect();
        let mut col = vec![0.0; g.len()];
        im2col(&x, &s, 0..rows, 0..3, &mut col);
        let lhs: f32 = col.iter().zip(&g).map(|(a, b)| a * b).sum();
        let mut dx = vec![0.0; x.len()];
        let per_image = s.out_height() * s.out_width();
        let image_len = s.in_height * s.in_width * s.in_channels;
        for n in 0..s.batch {
            let pix = n * per_image..(n + 1) * per_image;
            let src = &g[pix.start * s.patch_len()..pix.end * s.patch_len()];
            col2im_add(src, &s, pix, n, &mut dx[n * image_len..(n + 1) * image_len]);
        }
        let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
