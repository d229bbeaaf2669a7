//! The convolution kernel for CPUs with AVX-512: a direct convolution with the output
//! channels held in vector registers and the NHWC input read in place.
//!
//! The GEMM route copies every patch twice (into the patch matrix, then into the sgemm's
//! packed panels), and each copied element feeds only as many multiply-adds as there are
//! output channels; for the narrow layers (16 to 64 channels) the copies cost more than the
//! arithmetic. Here a micro-kernel keeps `R` output pixels × up to 64 output channels in
//! registers and walks the kernel taps: for each tap it points at each pixel's input pixel
//! (or at a row of zeros where the tap falls into the padding), then for each input channel
//! broadcasts that channel's value of every pixel against one row of the repacked weights.
//! Only the weights are repacked, once per call (`K × M` elements).
//!
//! Every output element is the sum over taps, then input channels, in that order, whatever
//! the tiling or the thread count, so results are deterministic.

use core::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2, s};
use rayon::prelude::*;
use swav_nn::Conv2dShape;

use crate::partition::{TASKS, split_fixed};

/// `f32` lanes per vector register.
pub(super) const LANES: usize = 16;

/// The most output channels one task keeps in registers (4 vectors).
const BLOCK: usize = 4 * LANES;

/// Pixel tiles are multiples of this: the pixel count of every micro-kernel (16, 12, 8, 6).
const TILE_ALIGN: usize = 48;

/// The most pixels per tile.
const MAX_TILE: usize = 480;

/// Whether this CPU runs the kernel (AVX-512 F, detected at run time).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The output tiling of the direct kernel: pixel tiles × blocks of at most 64 channels.
pub(crate) fn tiling(
    s: &Conv2dShape,
    out_channels: usize,
) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let pixels = s.output_pixels();
    let channel_blocks = split_fixed(out_channels, BLOCK);
    let wanted = (2 * TASKS).div_ceil(channel_blocks.len().max(1));
    let rows = pixels
        .div_ceil(wanted)
        .next_multiple_of(TILE_ALIGN)
        .min(MAX_TILE);
    (split_fixed(pixels, rows), channel_blocks)
}

/// Panel rows one packing task copies.
const PACK_ROWS: usize = 256;

/// Repacks `b` (`K × M`, the transposed weights) into one panel per channel block of
/// [`tiling`]: `K` rows of the block's channels, zero-padded to a multiple of 16.
///
/// The panels are copied in parallel, [`PACK_ROWS`] rows per task: on the late layers
/// (few pixels, up to 4608 × 2048 weights) a single-threaded copy took longer than the
/// convolution itself.
pub(crate) fn pack_weights(
    b: &ArrayView2<'_, f32>,
    blocks: &[Range<usize>],
    packed: &mut Vec<f32>,
) {
    let k = b.nrows();
    let total = blocks
        .iter()
        .map(|block| k * block.len().next_multiple_of(LANES))
        .sum();
    packed.clear();
    packed.resize(total, 0.0);
    let mut tasks = Vec::new();
    let mut rest = &mut packed[..];
    for block in blocks {
        let width = block.len().next_multiple_of(LANES);
        for rows in split_fixed(k, PACK_ROWS) {
            let (head, tail) = rest.split_at_mut(rows.len() * width);
            tasks.push((b.slice(s![rows, block.clone()]), width, head));
            rest = tail;
        }
    }
    tasks.into_par_iter().for_each(|(source, width, dst)| {
        let dst = dst.chunks_exact_mut(width);
        if source.strides()[1] == 1 {
            for (row, dst) in source.rows().into_iter().zip(dst) {
                let row = row.to_slice().expect("rows with unit stride");
                dst[..row.len()].copy_from_slice(row);
            }
        } else if source.strides()[0] == 1 {
            // The forward pass's weights (`b = Wᵀ`): each column is one output channel's
            // contiguous weights; transpose them 16 rows at a time so that the reads stay
            // sequential and the writes within a few cache lines.
            let columns: Vec<&[f32]> = source
                .columns()
                .into_iter()
                .map(|c| c.to_slice().expect("columns with unit stride"))
                .collect();
            let mut dst = dst.collect::<Vec<_>>();
            for r0 in (0..source.nrows()).step_by(LANES) {
                let r1 = (r0 + LANES).min(source.nrows());
                for (j, column) in columns.iter().enumerate() {
                    for (r, &v) in (r0..r1).zip(&column[r0..r1]) {
                        dst[r][j] = v;
                    }
                }
            }
        } else {
            for (row, dst) in source.rows().into_iter().zip(dst) {
                for (d, &v) in dst.iter_mut().zip(row.iter()) {
                    *d = v;
                }
            }
        }
    });
}

/// The panel of channel block `index` within the output of [`pack_weights`].
pub(crate) fn panel<'a>(
    packed: &'a [f32],
    k: usize,
    blocks: &[Range<usize>],
    index: usize,
) -> &'a [f32] {
    let start = index * k * BLOCK;
    &packed[start..start + k * blocks[index].len().next_multiple_of(LANES)]
}

/// `out = conv(x)` (`+=` when `accumulate`) for the output pixels `pixels` and the channel
/// block whose panel is `panel`; `out` is `pixels.len() × block width`, rows contiguous.
pub(crate) fn conv_tile(
    x: &[f32],
    s: &Conv2dShape,
    pixels: Range<usize>,
    panel: &[f32],
    accumulate: bool,
    out: &mut ArrayViewMut2<'_, f32>,
) {
    assert!(available(), "direct convolution kernel without AVX-512");
    assert!(x.len() >= s.input_len(), "conv: input too short");
    assert!(pixels.end <= s.output_pixels(), "conv: pixels out of range");
    let lanes = out.ncols();
    let vectors = lanes.div_ceil(LANES);
    assert!((1..=4).contains(&vectors), "conv: channel block of {lanes}");
    assert_eq!(
        panel.len(),
        s.patch_len() * vectors * LANES,
        "conv: weight panel"
    );
    assert_eq!(out.nrows(), pixels.len(), "conv: output rows");
    assert_eq!(out.strides()[1], 1, "conv: output rows contiguous");
    let ld = out.strides()[0] as usize;
    let zeros = vec![0.0f32; s.in_channels];
    #[cfg(target_arch = "x86_64")]
    {
        let tile = Tile {
            x,
            s,
            zeros: &zeros,
            panel,
            lanes,
            accumulate,
            out: out.as_mut_ptr(),
            ld,
        };
        // SAFETY: AVX-512 F is present (asserted above). The kernels read `x` only at whole
        // input pixels inside the image (`x` holds the whole input, asserted), `zeros` and
        // `panel` within their lengths (asserted), and write only the first `lanes` columns of
        // the `pixels.len()` rows of `out`, which is that view's extent.
        unsafe { kernels::dispatch(&tile, pixels, vectors, false) };
    }
}

/// What the micro-kernels of one task share.
#[cfg(target_arch = "x86_64")]
struct Tile<'a> {
    x: &'a [f32],
    s: &'a Conv2dShape,
    /// `in_channels` zeros: the input row of a tap in the padding.
    zeros: &'a [f32],
    /// The block's weight panel, `patch_len × vectors·16`.
    panel: &'a [f32],
    /// Valid output channels of the block.
    lanes: usize,
    accumulate: bool,
    /// Row 0 of the task's output block.
    out: *mut f32,
    /// Elements between output rows.
    ld: usize,
}

#[cfg(target_arch = "x86_64")]
mod kernels {
    use core::arch::x86_64::*;
    use core::ops::Range;

    use super::{LANES, Tile};

    /// All pixels of a task with `vectors` registers of output channels per pixel;
    /// `per_pixel_only` turns the row runs of [`micro`] off (for the tests).
    ///
    /// # Safety
    /// AVX-512 F must be available; `t` must satisfy [`super::conv_tile`]'s assertions.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dispatch(
        t: &Tile<'_>,
        pixels: Range<usize>,
        vectors: usize,
        per_pixel_only: bool,
    ) {
        // SAFETY (all arms): forwarded from the caller.
        unsafe {
            match vectors {
                1 => tile::<16, 1>(t, pixels, per_pixel_only),
                2 => tile::<12, 2>(t, pixels, per_pixel_only),
                3 => tile::<8, 3>(t, pixels, per_pixel_only),
                _ => tile::<6, 4>(t, pixels, per_pixel_only),
            }
        }
    }

    /// All pixels of a task, `R` at a time, with the input channels and stride made
    /// compile-time constants where row runs pay.
    ///
    /// # Safety
    /// As [`dispatch`].
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize, const NV: usize>(
        t: &Tile<'_>,
        pixels: Range<usize>,
        per_pixel_only: bool,
    ) {
        let geometry = if per_pixel_only {
            (0, 0)
        } else {
            (t.s.in_channels, t.s.stride)
        };
        // SAFETY (all arms): forwarded from the caller; `C` and `S` are the shape's.
        unsafe {
            match geometry {
                (3, 1) => pixels_of::<R, NV, 3, 1>(t, pixels),
                (16, 1) => pixels_of::<R, NV, 16, 1>(t, pixels),
                (16, 2) => pixels_of::<R, NV, 16, 2>(t, pixels),
                (32, 1) => pixels_of::<R, NV, 32, 1>(t, pixels),
                _ => pixels_of::<R, NV, 0, 0>(t, pixels),
            }
        }
    }

    /// [`tile`] with the input channels `C` and stride `S` known at compile time (`C = 0`:
    /// only the per-pixel path).
    ///
    /// # Safety
    /// As [`tile`]; with `C ≠ 0`, `t.s.in_channels == C` and `t.s.stride == S`.
    #[target_feature(enable = "avx512f")]
    unsafe fn pixels_of<const R: usize, const NV: usize, const C: usize, const S: usize>(
        t: &Tile<'_>,
        pixels: Range<usize>,
    ) {
        let mut first = pixels.start;
        while first < pixels.end {
            let count = R.min(pixels.end - first);
            // SAFETY: forwarded from the caller; `first..first + count` lies in `pixels`.
            unsafe { micro::<R, NV, C, S>(t, first, count, first - pixels.start) };
            first += count;
        }
    }

    /// Output pixels `first..first + count` (`count ≤ R`), written at output row `row`.
    ///
    /// Taps run in order, and within a tap the input channels. Where the `R` pixels lie in
    /// one output row and `C` is known, a tap whose input row is in the padding adds only
    /// zeros and is skipped, and a tap whose `R` input pixels are all inside the image reads
    /// them from one pointer at constant offsets (`i · S · C`): the per-pixel path holds `R`
    /// pointers, more than the general registers, and reloads them from the stack. The
    /// multiply-adds of every output element are the same in the same order either way.
    ///
    /// # Safety
    /// As [`pixels_of`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn micro<const R: usize, const NV: usize, const C: usize, const S: usize>(
        t: &Tile<'_>,
        first: usize,
        count: usize,
        row: usize,
    ) {
        let s = t.s;
        let (oh_n, ow_n) = (s.out_height(), s.out_width());
        let (h, w, c, k) = (
            s.in_height as isize,
            s.in_width as isize,
            s.in_channels,
            s.kernel,
        );
        // Per pixel: the image's first element and the input coordinates of tap (0, 0),
        // stepping along the output rows from the first pixel (one division per call).
        let mut origin = [(0usize, 0isize, 0isize); R];
        let (mut n, rem) = (first / (oh_n * ow_n), first % (oh_n * ow_n));
        let (mut oy, mut ox) = (rem / ow_n, rem % ow_n);
        let run = C != 0 && count == R && ox + R <= ow_n;
        for o in origin.iter_mut().take(count) {
            *o = (
                n * s.in_height * s.in_width * c,
                (oy * s.stride) as isize - s.padding as isize,
                (ox * s.stride) as isize - s.padding as isize,
            );
            ox += 1;
            if ox == ow_n {
                ox = 0;
                oy += 1;
                if oy == oh_n {
                    oy = 0;
                    n += 1;
                }
            }
        }
        let mut acc = [[_mm512_setzero_ps(); NV]; R];
        let x = t.x.as_ptr();
        let mut weights = t.panel.as_ptr();
        for kh in 0..k {
            for kw in 0..k {
                let tap_weights = weights;
                weights = weights.wrapping_add(c * NV * LANES);
                if run {
                    let (image, ih0, iw0) = origin[0];
                    let (ih, iw) = (ih0 + kh as isize, iw0 + kw as isize);
                    if !(0..h).contains(&ih) {
                        continue;
                    }
                    // Pixel `i` reads input column `iw + i·S`: the first one may fall into
                    // the left padding, the last one into the right (3 × 3, padding 1).
                    let last = iw + ((R - 1) * S) as isize;
                    let cut = (usize::from(iw < 0), usize::from(last >= w));
                    let inside =
                        iw + (cut.0 * S) as isize >= 0 && last - ((cut.1 * S) as isize) < w;
                    if inside {
                        // The address of pixel 0's input, which is only formed (never read)
                        // when that pixel falls into the padding.
                        let offset =
                            (image + ih as usize * s.in_width * C) as isize + iw * C as isize;
                        let base = x.wrapping_offset(offset);
                        // SAFETY: the pixels `i` the run reads (all but the cut ones) have
                        // input columns inside row `ih` of the image, so `C` channels from
                        // each lie within `x`; the weights as in `tap`.
                        unsafe {
                            match cut {
                                (0, 0) => run_tap::<R, NV, C, S, 0, 0>(base, tap_weights, &mut acc),
                                (1, 0) => run_tap::<R, NV, C, S, 1, 0>(base, tap_weights, &mut acc),
                                (0, 1) => run_tap::<R, NV, C, S, 0, 1>(base, tap_weights, &mut acc),
                                _ => run_tap::<R, NV, C, S, 1, 1>(base, tap_weights, &mut acc),
                            }
                        }
                        continue;
                    }
                }
                let mut src = [t.zeros.as_ptr(); R];
                for (i, &(image, ih0, iw0)) in origin.iter().enumerate().take(count) {
                    let (ih, iw) = (ih0 + kh as isize, iw0 + kw as isize);
                    if (0..h).contains(&ih) && (0..w).contains(&iw) {
                        let offset = image + (ih as usize * s.in_width + iw as usize) * c;
                        // SAFETY: (ih, iw) is inside the image, so the pixel's `c` channels
                        // lie within `x`.
                        src[i] = unsafe { x.add(offset) };
                    }
                }
                // SAFETY: every `src[i]` points at `c` readable elements; the tap's weights
                // are `c · NV · 16` elements of the panel (`patch_len · NV · 16` in all).
                unsafe { tap::<R, NV>(&src, c, tap_weights, &mut acc) };
            }
        }
        for (i, acc) in acc.iter().enumerate().take(count) {
            for (j, &v) in acc.iter().enumerate() {
                let valid = t.lanes.saturating_sub(j * LANES).min(LANES);
                if valid == 0 {
                    continue;
                }
                let mask = (u32::MAX >> (32 - valid)) as __mmask16;
                // SAFETY: row `row + i` is one of the task's rows and the masked lanes are
                // the block's first `lanes` columns; masked-off lanes are not accessed.
                unsafe {
                    let dst = t.out.add((row + i) * t.ld + j * LANES);
                    let v = if t.accumulate {
                        _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst))
                    } else {
                        v
                    };
                    _mm512_mask_storeu_ps(dst, mask, v);
                }
            }
        }
    }

    /// One tap for `R` pixels read through one pointer each.
    ///
    /// # Safety
    /// AVX-512 F; every `src[i]` points at `c` readable elements and `weights` at
    /// `c · NV · 16`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tap<const R: usize, const NV: usize>(
        src: &[*const f32; R],
        c: usize,
        weights: *const f32,
        acc: &mut [[__m512; NV]; R],
    ) {
        for ic in 0..c {
            // SAFETY: `ic · NV · 16 + NV · 16 ≤ c · NV · 16` elements of `weights`.
            let wv: [__m512; NV] = core::array::from_fn(|j| unsafe {
                _mm512_loadu_ps(weights.add((ic * NV + j) * LANES))
            });
            for i in 0..R {
                // SAFETY: `src[i]` points at `c` readable elements.
                let a = _mm512_set1_ps(unsafe { *src[i].add(ic) });
                for j in 0..NV {
                    acc[i][j] = _mm512_fmadd_ps(a, wv[j], acc[i][j]);
                }
            }
        }
    }

    /// One tap for the pixels `LO..R - HI` of a run along one output row, pixel `i` reading
    /// `C` channels at `base + i · S · C` (the first `LO` and last `HI` pixels are in the
    /// padding and add nothing).
    ///
    /// # Safety
    /// AVX-512 F; `base + i · S · C + C` elements readable for every `i` in `LO..R - HI`
    /// (`base` itself need not be); `weights` at `C · NV · 16` elements.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run_tap<
        const R: usize,
        const NV: usize,
        const C: usize,
        const S: usize,
        const LO: usize,
        const HI: usize,
    >(
        base: *const f32,
        weights: *const f32,
        acc: &mut [[__m512; NV]; R],
    ) {
        for ic in 0..C {
            // SAFETY: as in `tap`.
            let wv: [__m512; NV] = core::array::from_fn(|j| unsafe {
                _mm512_loadu_ps(weights.add((ic * NV + j) * LANES))
            });
            #[allow(clippy::needless_range_loop)] // `i` also places the pixel's input
            for i in LO..R - HI {
                // SAFETY: pixel `i`'s channel `ic` is readable (the caller's bound).
                let a = _mm512_set1_ps(unsafe { *base.wrapping_add(i * S * C + ic) });
                for j in 0..NV {
                    acc[i][j] = _mm512_fmadd_ps(a, wv[j], acc[i][j]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::reference;
    use crate::gemm;

    #[test]
    fn row_runs_give_the_per_pixel_path_bit_for_bit() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 F");
            return;
        }
        // Rows of 37 pixels: runs that fit a row, runs that straddle two, edge taps in the
        // padding; the input channels and strides that have row runs, every register shape.
        for (ic, oc, k, st, p) in [
            (16, 16, 3, 1, 1),
            (16, 40, 3, 1, 1),
            (16, 64, 1, 2, 0),
            (16, 33, 3, 2, 1),
            (3, 16, 3, 1, 1),
            (3, 70, 3, 1, 0),
            (32, 20, 3, 1, 1),
            (32, 48, 1, 1, 0),
        ] {
            let s = Conv2dShape {
                batch: 2,
                in_height: 5,
                in_width: 37,
                in_channels: ic,
                out_channels: oc,
                kernel: k,
                stride: st,
                padding: p,
            };
            let x = reference::pattern(s.input_len(), 0);
            let w = reference::pattern(s.weight_len(), 1);
            let mut expected = vec![0.0; s.output_pixels() * oc];
            reference::forward(&x, &w, &s, &mut expected);
            let b = gemm::view(&w, s.patch_len(), oc, 1, s.patch_len());
            let (tiles, blocks) = tiling(&s, oc);
            let mut packed = Vec::new();
            pack_weights(&b, &blocks, &mut packed);
            let zeros = vec![0.0f32; ic];
            let outputs = [false, true].map(|per_pixel_only| {
                let mut y = vec![0.0f32; s.output_pixels() * oc];
                let views = gemm::blocks(
                    gemm::rows_mut(&mut y, s.output_pixels(), oc),
                    &tiles,
                    &blocks,
                );
                for (i, mut out) in views.into_iter().enumerate() {
                    let tile = Tile {
                        x: &x,
                        s: &s,
                        zeros: &zeros,
                        panel: panel(&packed, s.patch_len(), &blocks, i % blocks.len()),
                        lanes: out.ncols(),
                        accumulate: false,
                        out: out.as_mut_ptr(),
                        ld: out.strides()[0] as usize,
                    };
                    let vectors = out.ncols().div_ceil(LANES);
                    // SAFETY: AVX-512 F is present; the tile is built as `conv_tile` builds
                    // it, from a whole input, its panel and its own output block.
                    unsafe {
                        kernels::dispatch(
                            &tile,
                            tiles[i / blocks.len()].clone(),
                            vectors,
                            per_pixel_only,
                        )
                    };
                }
                y
            });
            let [runs, per_pixel] = &outputs;
            for (j, ((a, b), e)) in runs.iter().zip(per_pixel).zip(&expected).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{ic}→{oc} k{k} s{st} at {j}: {a} vs {b}"
                );
                assert!(
                    (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "{ic}→{oc} at {j}: {a} vs {e}"
                );
            }
        }
    }

    #[test]
    fn tiles_match_the_definition_for_odd_geometries_and_channel_counts() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 F");
            return;
        }
        // (in channels, out channels, kernel, stride, padding): every register shape (1 to
        // 4 vectors), partial vectors, padding, strides and the 7 × 7 stem.
        for (ic, oc, k, st, p) in [
            (3, 20, 3, 1, 1),
            (5, 70, 7, 2, 3),
            (17, 16, 1, 2, 0),
            (16, 33, 3, 2, 1),
            (8, 130, 3, 1, 1),
            (2, 48, 5, 1, 2),
        ] {
            let s = reference::shape(ic, oc, k, st, p);
            let x = reference::pattern(s.input_len(), 0);
            let w = reference::pattern(s.weight_len(), 1);
            let pixels = s.output_pixels();
            for accumulate in [false, true] {
                let start: Vec<f32> = (0..pixels * oc).map(|i| (i % 3) as f32).collect();
                let mut expected = if accumulate {
                    start.clone()
                } else {
                    vec![0.0; start.len()]
                };
                reference::forward(&x, &w, &s, &mut expected);
                let b = gemm::view(&w, s.patch_len(), oc, 1, s.patch_len());
                let (tiles, blocks) = tiling(&s, oc);
                let mut packed = Vec::new();
                pack_weights(&b, &blocks, &mut packed);
                let mut y = start.clone();
                let views = gemm::blocks(gemm::rows_mut(&mut y, pixels, oc), &tiles, &blocks);
                for (i, mut out) in views.into_iter().enumerate() {
                    let rows = tiles[i / blocks.len()].clone();
                    let panel = panel(&packed, s.patch_len(), &blocks, i % blocks.len());
                    conv_tile(&x, &s, rows, panel, accumulate, &mut out);
                }
                for (j, (a, e)) in y.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{ic}→{oc} k{k} s{st} p{p} acc {accumulate} at {j}: {a} vs {e}"
                    );
                }
            }
        }
    }
}
