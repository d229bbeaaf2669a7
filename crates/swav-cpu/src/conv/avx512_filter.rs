//! The weight-gradient kernel for CPUs with AVX-512: `dW[oc][tap][ic] += Σ_p dy[p][oc] ·
//! x[p + tap][ic]` with a block of output channels × up to 64 input channels held in vector
//! registers, both operands read in place (no patch matrix, no packing).
//!
//! A task owns one block of `dW`'s columns (kernel rows × input channels) and one range of
//! pixels; it walks that range in chunks of [`CHUNK`] pixels cut into output-row segments, and
//! for every tap, output-channel block and input-channel block it loads the gradient block,
//! adds the chunk's pixels in order and stores it back. So each element is summed over the
//! pixels in order, whatever the thread count.

use core::ops::Range;

use ndarray::ArrayViewMut2;
use swav_nn::Conv2dShape;

use super::avx512::{LANES, available};

/// Pixels per chunk: the chunk's gradient rows and input rows stay in L2 while every tap and
/// channel block reuses them.
const CHUNK: usize = 128;

/// The most input channels one kernel call keeps in registers (4 vectors).
const INPUT_BLOCK: usize = 4 * LANES;

/// `out += Σ_{p ∈ pixels} dyᵀ · patches(x)` restricted to the output channels
/// `out_channels`, the kernel rows `kernel_rows` and the input channels `channels` (a subset
/// only for 1×1 kernels), `out` being that block of `dW` (`out_channels.len() × columns`,
/// rows contiguous).
pub(crate) fn filter_tile(
    dy: &[f32],
    x: &[f32],
    s: &Conv2dShape,
    pixels: Range<usize>,
    (out_channels, kernel_rows, channels): (Range<usize>, Range<usize>, Range<usize>),
    out: &mut ArrayViewMut2<'_, f32>,
) {
    assert!(available(), "weight-gradient kernel without AVX-512");
    assert!(x.len() >= s.input_len(), "conv: input too short");
    assert!(pixels.end <= s.output_pixels(), "conv: pixels out of range");
    assert!(
        dy.len() >= s.output_pixels() * s.out_channels,
        "conv: dy too short"
    );
    assert!(
        out_channels.end <= s.out_channels
            && kernel_rows.end <= s.kernel
            && channels.end <= s.in_channels,
        "conv: block"
    );
    assert!(
        channels.len() == s.in_channels || s.kernel == 1,
        "conv: channel subsets only for 1×1 kernels"
    );
    let columns = kernel_rows.len() * s.kernel * channels.len();
    assert_eq!(
        out.dim(),
        (out_channels.len(), columns),
        "conv: gradient block"
    );
    assert_eq!(out.strides()[1], 1, "conv: gradient rows contiguous");
    #[cfg(target_arch = "x86_64")]
    {
        let tile = Tile {
            dy,
            x,
            s,
            out_channels,
            kernel_rows,
            channels,
            out: out.as_mut_ptr(),
            ld: out.strides()[0] as usize,
        };
        let mut start = pixels.start;
        while start < pixels.end {
            let end = (start + CHUNK).min(pixels.end);
            // SAFETY: AVX-512 F is present (asserted above); every read of `x` and `dy` is of a
            // whole pixel inside the input or of a pixel in `0..output_pixels` (their lengths
            // asserted), and every write is inside the `out` block (its shape asserted).
            unsafe { kernels::chunk(&tile, start..end) };
            start = end;
        }
    }
}

/// What the kernel calls of one task share.
#[cfg(target_arch = "x86_64")]
struct Tile<'a> {
    dy: &'a [f32],
    x: &'a [f32],
    s: &'a Conv2dShape,
    /// The output channels of the block (its rows).
    out_channels: Range<usize>,
    kernel_rows: Range<usize>,
    channels: Range<usize>,
    /// Element (0, 0) of the task's block of `dW`.
    out: *mut f32,
    /// Elements between rows of `dW`.
    ld: usize,
}

/// A run of pixels `first..first + len` of one output row: image `image`, output row `oy`,
/// output columns from `ox`.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Segment {
    first: usize,
    len: usize,
    image: usize,
    oy: usize,
    ox: usize,
}

#[cfg(target_arch = "x86_64")]
mod kernels {
    use core::arch::x86_64::*;
    use core::ops::Range;

    use super::{INPUT_BLOCK, LANES, Segment, Tile};

    /// One chunk of pixels: every tap, output-channel block and input-channel block.
    ///
    /// # Safety
    /// AVX-512 F must be available; `t` must satisfy [`super::filter_tile`]'s assertions.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chunk(t: &Tile<'_>, pixels: Range<usize>) {
        let s = t.s;
        let (oh_n, ow_n) = (s.out_height(), s.out_width());
        let mut segments = Vec::new();
        let mut p = pixels.start;
        while p < pixels.end {
            let (image, rem) = (p / (oh_n * ow_n), p % (oh_n * ow_n));
            let (oy, ox) = (rem / ow_n, rem % ow_n);
            let len = (ow_n - ox).min(pixels.end - p);
            segments.push(Segment {
                first: p,
                len,
                image,
                oy,
                ox,
            });
            p += len;
        }
        let (oc_n, ic_len) = (t.out_channels.len(), t.channels.len());
        for kh in t.kernel_rows.clone() {
            for kw in 0..s.kernel {
                let column = ((kh - t.kernel_rows.start) * s.kernel + kw) * ic_len;
                let mut ic = 0;
                while ic < ic_len {
                    let lanes = (ic_len - ic).min(INPUT_BLOCK);
                    let mut oc = 0;
                    while oc < oc_n {
                        let at = BlockAt {
                            tap: (kh, kw),
                            oc0: oc,
                            ic,
                            column: column + ic,
                            lanes,
                        };
                        // SAFETY: forwarded; the blocks stay inside `dW`'s block.
                        oc += unsafe {
                            match lanes.div_ceil(LANES) {
                                1 => block::<16, 1>(t, &segments, at),
                                2 => block::<12, 2>(t, &segments, at),
                                3 => block::<8, 3>(t, &segments, at),
                                _ => block::<6, 4>(t, &segments, at),
                            }
                        };
                    }
                    ic += lanes;
                }
            }
        }
    }

    /// Where one register block lies in the task's block of `dW`.
    #[derive(Clone, Copy)]
    struct BlockAt {
        /// The kernel tap `(kh, kw)`.
        tap: (usize, usize),
        /// The first of the register block's output channels, within the task's.
        oc0: usize,
        /// The first input channel, within the task's channels.
        ic: usize,
        /// The task block's column of that input channel at this tap.
        column: usize,
        /// How many input channels (at most 64).
        lanes: usize,
    }

    /// The task's output channels `oc0..oc0 + OCB` (fewer at the end) × `lanes` input
    /// channels from `ic`, for one tap, over all `segments` (`at` says where); returns how
    /// many output channels it covered.
    ///
    /// # Safety
    /// As [`chunk`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const OCB: usize, const ICV: usize>(
        t: &Tile<'_>,
        segments: &[Segment],
        at: BlockAt,
    ) -> usize {
        let BlockAt {
            tap: (kh, kw),
            oc0,
            ic,
            column,
            lanes,
        } = at;
        let s = t.s;
        let (oc_n, c) = (s.out_channels, s.in_channels);
        let rows = OCB.min(t.out_channels.len() - oc0);
        let masks: [__mmask16; ICV] = core::array::from_fn(|j| {
            let valid = lanes.saturating_sub(j * LANES).min(LANES);
            (u32::MAX.checked_shr(32 - valid as u32).unwrap_or(0)) as __mmask16
        });
        let mut acc = [[_mm512_setzero_ps(); ICV]; OCB];
        for (i, acc) in acc.iter_mut().enumerate().take(rows) {
            for (j, v) in acc.iter_mut().enumerate() {
                // SAFETY: row `oc0 + i` < out_channels and the masked lanes are columns of
                // the block; masked-off lanes are not accessed.
                *v = unsafe {
                    _mm512_maskz_loadu_ps(
                        masks[j],
                        t.out.add((oc0 + i) * t.ld + column + j * LANES),
                    )
                };
            }
        }
        let (h, w) = (s.in_height as isize, s.in_width as isize);
        let (x, dy) = (t.x.as_ptr(), t.dy.as_ptr());
        for seg in segments {
            let ih = (seg.oy * s.stride + kh) as isize - s.padding as isize;
            if !(0..h).contains(&ih) {
                continue;
            }
            // Output columns whose tap column lies inside the image.
            let stride = s.stride as isize;
            let iw_of = |ox: usize| (ox * s.stride + kw) as isize - s.padding as isize;
            let first_inside = ((s.padding as isize - kw as isize).max(0) + stride - 1) / stride;
            let past_inside =
                ((w - 1 + s.padding as isize - kw as isize).div_euclid(stride) + 1).max(0);
            let lo = seg.ox.max(first_inside as usize);
            let hi = (seg.ox + seg.len).min(past_inside as usize);
            let row_base = (seg.image * s.in_height + ih as usize) * s.in_width;
            for ox in lo..hi {
                let iw = iw_of(ox) as usize;
                let p = seg.first + (ox - seg.ox);
                // SAFETY: (ih, iw) is inside the image, so the `lanes` channels from
                // `channels.start + ic` lie in `x` (masked beyond); `p` is an
                // output pixel, so its `out_channels` gradients lie in `dy`.
                unsafe {
                    let src = x.add((row_base + iw) * c + t.channels.start + ic);
                    let xv: [__m512; ICV] = core::array::from_fn(|j| {
                        _mm512_maskz_loadu_ps(masks[j], src.add(j * LANES))
                    });
                    let g = dy.add(p * oc_n + t.out_channels.start + oc0);
                    for i in 0..OCB {
                        // Rows past the last output channel repeat row 0 and are not stored.
                        let a = _mm512_set1_ps(*g.add(if i < rows { i } else { 0 }));
                        for j in 0..ICV {
                            acc[i][j] = _mm512_fmadd_ps(a, xv[j], acc[i][j]);
                        }
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate().take(rows) {
            for (j, &v) in acc.iter().enumerate() {
                // SAFETY: as for the loads above.
                unsafe {
                    _mm512_mask_storeu_ps(
                        t.out.add((oc0 + i) * t.ld + column + j * LANES),
                        masks[j],
                        v,
                    )
                };
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::reference;
    use crate::gemm;

    #[test]
    fn blocks_match_the_definition_for_odd_geometries_and_channel_counts() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 F");
            return;
        }
        // (in channels, out channels, kernel, stride, padding).
        for (ic, oc, k, st, p) in [
            (3, 20, 3, 1, 1),
            (5, 7, 7, 2, 3),
            (70, 16, 1, 1, 0),
            (33, 13, 3, 2, 1),
            (16, 40, 1, 2, 0),
            (2, 48, 5, 1, 2),
        ] {
            let s = reference::shape(ic, oc, k, st, p);
            let x = reference::pattern(s.input_len(), 0);
            let pixels = s.output_pixels();
            let dy = reference::pattern(pixels * oc, 1);
            let expected = reference::weight_gradient(&dy, &x, &s);
            let patch = s.patch_len();
            // Kernel rows one at a time (1×1: two channel blocks), two pixel ranges, onto a
            // gradient that starts at 1.
            let mut dw = vec![1.0f32; s.weight_len()];
            let blocks: Vec<(Range<usize>, Range<usize>)> = if k == 1 {
                vec![(0..1, 0..ic / 2), (0..1, ic / 2..ic)]
            } else {
                (0..k).map(|r| (r..r + 1, 0..ic)).collect()
            };
            let columns: Vec<Range<usize>> = blocks
                .iter()
                .map(|(r, c)| {
                    let start = r.start * k * ic + c.start;
                    start..start + r.len() * k * c.len()
                })
                .collect();
            for half in [0..pixels / 2, pixels / 2..pixels] {
                let views = gemm::split_axis(
                    gemm::rows_mut(&mut dw, oc, patch),
                    ndarray::Axis(1),
                    &columns,
                );
                // Each block's output channels in two parts, the first not a multiple of
                // any register block.
                let parts = [0..oc / 2 + 1, oc / 2 + 1..oc];
                for ((rows, channels), view) in blocks.iter().cloned().zip(views) {
                    let outs = gemm::split_axis(view, ndarray::Axis(0), &parts);
                    for (out_channels, mut out) in parts.iter().cloned().zip(outs) {
                        let block = (out_channels, rows.clone(), channels.clone());
                        filter_tile(&dy, &x, &s, half.clone(), block, &mut out);
                    }
                }
            }
            for (j, (a, e)) in dw.iter().zip(&expected).enumerate() {
                let e = e + 1.0;
                assert!(
                    (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "{ic}→{oc} k{k} s{st} p{p} at {j}: {a} vs {e}"
                );
            }
        }
    }
}
