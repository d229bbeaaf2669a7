//! The input gradient of a convolution.
//!
//! * 1×1 stride 1: `dx = dy · W`, one product, tiled like the forward pass.
//! * Other stride-1 convolutions: a forward convolution of `dy` with the weights flipped in
//!   space and transposed in channels (padding `k - 1 - p`); gathers, never scatters.
//! * Strided convolutions: `dpatches = dy · W` per tile of output pixels, scattered back onto
//!   the input (col2im). Each task owns whole images, so scatters never race.

use rayon::prelude::*;
use swav_nn::Conv2dShape;

use super::forward::{conv_forward, is_direct};
use super::im2col::col2im_add;
use crate::gemm::{self, gemm};
use crate::partition::split_fixed;
use crate::scratch::with_tile;

/// Output pixels per scattered tile.
const SCATTER_TILE_ROWS: usize = 256;

/// `dx = convᵀ(dy, w)` (`+=` when `accumulate`). `flipped`, `partials` and `packed` are
/// scratch.
pub(crate) fn conv_backward_data(
    dy: &[f32],
    w: &[f32],
    s: &Conv2dShape,
    dx: &mut [f32],
    accumulate: bool,
    flipped: &mut Vec<f32>,
    partials: &mut Vec<f64>,
    packed: &mut Vec<f32>,
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
        conv_forward(dy, &transposed, &b, beta, dx, None, partials, packed);
    } else if s.stride == 1
        && s.padding < k
        && transposed.out_height() == s.in_height
        && transposed.out_width() == s.in_width
    {
        flip_weights(w, s, flipped);
        let patch = k * k * oc;
        let b = gemm::view(flipped, patch, ic, 1, patch);
        conv_forward(dy, &transposed, &b, beta, dx, None, partials, packed);
    } else {
        scatter(dy, w, s, dx, accumulate);
    }
}

/// `flipped[ic][kh][kw][oc] = w[oc][k-1-kh][k-1-kw][ic]`.
fn flip_weights(w: &[f32], s: &Conv2dShape, flipped: &mut Vec<f32>) {
    let (oc_n, ic_n, k) = (s.out_channels, s.in_channels, s.kernel);
    flipped.clear();
    flipped.resize(s.weight_len(), 0.0);
    for oc in 0..oc_n {
        for kh in 0..k {
            for kw in 0..k {
                let src = ((oc * k + kh) * k + kw) * ic_n;
                let tap = (k - 1 - kh) * k + (k - 1 - kw);
                for (ic, &v) in w[src..src + ic_n].iter().enumerate() {
                    flipped[(ic * k * k + tap) * oc_n + oc] = v;
                }
            }
        }
    }
}

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
