//! The input gradient of a convolution.
//!
//! * 1×1 stride 1: `dx = dy · W`, one product, tiled like the forward pass.
//! * Other stride-1 convolutions: a forward convolution of `dy` with the weights flipped in
//!   space and transposed in channels (padding `k - 1 - p`); gathers, never scatters.
//! * Strided convolutions: `dpatches = dy · W`, scattered back onto the input (col2im). With
//!   AVX-512 the product runs for a chunk of images at once as a 1×1 convolution of `dy`
//!   through the register kernel (so the weights are packed once per chunk, not once per
//!   image as the per-image sgemm did), then each image is scattered by its own task;
//!   elsewhere one task per image runs sgemm and col2im tile by tile. Scatters never race.

use rayon::prelude::*;
use swav_nn::Conv2dShape;

use super::avx512;
use super::forward::{ForwardScratch, conv_forward, is_direct};
use super::im2col::col2im_add;
use crate::gemm::{self, gemm};
use crate::partition::split_fixed;
use crate::scratch::with_tile;

/// Output pixels per scattered tile.
const SCATTER_TILE_ROWS: usize = 256;

/// The most patch-gradient elements one chunk of images holds (4 MiB).
const PATCH_CHUNK: usize = 1 << 20;

/// `dx = convᵀ(dy, w)` (`+=` when `accumulate`). `flipped` (the flipped weights, or the
/// patch gradients of a strided convolution) and `forward` are scratch.
pub(crate) fn conv_backward_data(
    dy: &[f32],
    w: &[f32],
    s: &Conv2dShape,
    dx: &mut [f32],
    accumulate: bool,
    flipped: &mut Vec<f32>,
    forward: &mut ForwardScratch,
) {
    let beta = if accumulate { 1.0 } else { 0.0 };
    let (oc, ic, k) = (s.out_channels, s.in_channels, s.kernel);
    let transposed = Conv2dShape {
        batch: s.batch,
        in_height: s.out_height(),
        in_width: s.out_width(),
        in_channels: oc,
        out_channels: ic,
        kernel: k,
        stride: 1,
        padding: (k - 1).saturating_sub(s.padding),
    };
    if is_direct(s) {
        let b = gemm::view(w, oc, ic, ic, 1);
        conv_forward(dy, &transposed, &b, beta, dx, None, forward);
    } else if s.stride == 1
        && s.padding < k
        && transposed.out_height() == s.in_height
        && transposed.out_width() == s.in_width
    {
        flip_weights(w, s, flipped);
        let patch = k * k * oc;
        let b = gemm::view(flipped, patch, ic, ic, 1);
        conv_forward(dy, &transposed, &b, beta, dx, None, forward);
    } else if avx512::available() {
        let scratch = Scratch {
            patches: flipped,
            forward,
        };
        scatter_chunks(dy, w, s, dx, accumulate, PATCH_CHUNK, scratch);
    } else {
        scatter(dy, w, s, dx, accumulate);
    }
}

/// `flipped[kh][kw][oc][ic] = w[oc][k-1-kh][k-1-kw][ic]`: the transposed convolution's
/// `patch_len × in_channels` weight matrix, rows contiguous, so both this copy and the
/// kernel's packing move whole channel rows.
fn flip_weights(w: &[f32], s: &Conv2dShape, flipped: &mut Vec<f32>) {
    let (oc_n, ic_n, taps) = (s.out_channels, s.in_channels, s.kernel * s.kernel);
    flipped.clear();
    flipped.resize(s.weight_len(), 0.0);
    flipped
        .par_chunks_mut(oc_n * ic_n)
        .enumerate()
        .for_each(|(flipped_tap, dst)| {
            let tap = taps - 1 - flipped_tap;
            for (oc, row) in dst.chunks_exact_mut(ic_n).enumerate() {
                let src = (oc * taps + tap) * ic_n;
                row.copy_from_slice(&w[src..src + ic_n]);
            }
        });
}

/// The scratch buffers of [`scatter_chunks`].
struct Scratch<'a> {
    patches: &'a mut Vec<f32>,
    forward: &'a mut ForwardScratch,
}

/// The strided input gradient with AVX-512: per chunk of images holding at most
/// `chunk_elements` patch gradients (at least one image), `dpatches = dy · W` as a 1×1
/// convolution of `dy` with `patch_len` output channels, then col2im per image.
fn scatter_chunks(
    dy: &[f32],
    w: &[f32],
    s: &Conv2dShape,
    dx: &mut [f32],
    accumulate: bool,
    chunk_elements: usize,
    scratch: Scratch<'_>,
) {
    let Scratch { patches, forward } = scratch;
    let (oc, k) = (s.out_channels, s.patch_len());
    let image_len = s.in_height * s.in_width * s.in_channels;
    let per_image = s.out_height() * s.out_width();
    let b = gemm::view(w, oc, k, k, 1);
    let images = (chunk_elements / (per_image * k)).clamp(1, s.batch);
    for chunk in split_fixed(s.batch, images) {
        let product = Conv2dShape {
            batch: chunk.len(),
            in_height: s.out_height(),
            in_width: s.out_width(),
            in_channels: oc,
            out_channels: k,
            kernel: 1,
            stride: 1,
            padding: 0,
        };
        patches.resize(chunk.len() * per_image * k, 0.0);
        let dy_chunk = &dy[chunk.start * per_image * oc..chunk.end * per_image * oc];
        conv_forward(dy_chunk, &product, &b, 0.0, patches, None, forward);
        let patches = &patches[..];
        dx[chunk.start * image_len..chunk.end * image_len]
            .par_chunks_mut(image_len)
            .enumerate()
            .for_each(|(i, dx_n)| {
                if !accumulate {
                    dx_n.fill(0.0);
                }
                let n = chunk.start + i;
                let col = &patches[i * per_image * k..(i + 1) * per_image * k];
                col2im_add(col, s, n * per_image..(n + 1) * per_image, n, dx_n);
            });
    }
}

/// The strided input gradient without AVX-512: one task per image, sgemm + col2im per tile.
fn scatter(dy: &[f32], w: &[f32], s: &Conv2dShape, dx: &mut [f32], accumulate: bool) {
    let (oc, k) = (s.out_channels, s.patch_len());
    let image_len = s.in_height * s.in_width * s.in_channels;
    let per_image = s.out_height() * s.out_width();
    let weights = gemm::rows(w, oc, k);
    dx[..s.batch * image_len]
        .par_chunks_mut(image_len)
        .enumerate()
        .for_each(|(n, dx_n)| {
            if !accumulate {
                dx_n.fill(0.0);
            }
            for tile in split_fixed(per_image, SCATTER_TILE_ROWS) {
                let pixels = n * per_image + tile.start..n * per_image + tile.end;
                let rows = pixels.len();
                with_tile(rows * k, |col| {
                    let a = gemm::rows(&dy[pixels.start * oc..pixels.end * oc], rows, oc);
                    gemm(1.0, &a, &weights, 0.0, &mut gemm::rows_mut(col, rows, k));
                    col2im_add(col, s, pixels.clone(), n, dx_n);
                });
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::reference;

    #[test]
    fn strided_input_gradients_match_the_definition_in_one_chunk_or_many() {
        // (in channels, out channels, kernel, stride, padding): 3 × 3 and 1 × 1 stride 2,
        // the 7 × 7 stem, odd channel counts.
        for (ic, oc, k, st, p) in [
            (16, 33, 3, 2, 1),
            (17, 20, 1, 2, 0),
            (3, 70, 7, 2, 3),
            (5, 8, 3, 3, 0),
        ] {
            let s = reference::shape(ic, oc, k, st, p);
            let dy = reference::pattern(s.output_pixels() * oc, 0);
            let w = reference::pattern(s.weight_len(), 1);
            let want = reference::input_gradient(&dy, &w, &s);
            let start: Vec<f32> = (0..s.input_len()).map(|i| (i % 5) as f32).collect();
            let check = |got: &[f32], accumulate: bool, how: &str| {
                for (j, (a, e)) in got.iter().zip(&want).enumerate() {
                    let e = if accumulate { e + start[j] } else { *e };
                    assert!(
                        (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{ic}→{oc} k{k} s{st} p{p} {how} acc {accumulate} at {j}: {a} vs {e}"
                    );
                }
            };
            for accumulate in [false, true] {
                let mut dx = start.clone();
                scatter(&dy, &w, &s, &mut dx, accumulate);
                check(&dx, accumulate, "sgemm");
                if !avx512::available() {
                    continue;
                }
                // One image per chunk, and the whole batch in one.
                for chunk_elements in [1, usize::MAX] {
                    let mut dx = start.clone();
                    let mut patches = vec![];
                    let mut forward = ForwardScratch::default();
                    let scratch = Scratch {
                        patches: &mut patches,
                        forward: &mut forward,
                    };
                    scatter_chunks(&dy, &w, &s, &mut dx, accumulate, chunk_elements, scratch);
                    check(&dx, accumulate, &format!("chunks of {chunk_elements}"));
                }
            }
        }
    }
}
