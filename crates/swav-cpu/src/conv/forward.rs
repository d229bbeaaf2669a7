//! The forward convolution, tiled over output pixels and output channels: on CPUs with
//! AVX-512 by the register kernel of [`avx512`], elsewhere as a product of the patch matrix
//! with the transposed weights; the batch-norm statistics of the output are optionally
//! gathered while each tile is still in cache.

use core::ops::Range;

use ndarray::{ArrayView2, s};
use rayon::prelude::*;
use swav_nn::Conv2dShape;

use super::avx512;
use crate::batch_norm::accumulate_shifted;
use crate::gemm::{self, blocks, gemm};
use crate::partition::{TASKS, split_even, split_fixed};
use crate::scratch::with_tile;

/// The largest patch tile a task gathers, in elements (4 MiB: it streams through L3 into the
/// sgemm packing).
const PATCH_TILE: usize = 1 << 20;

/// The most output rows per tile.
const MAX_TILE_ROWS: usize = 1024;

/// The fewest output rows per tile (below that, the weights' packing dominates).
const MIN_TILE_ROWS: usize = 64;

/// The narrowest output-channel block worth splitting off.
const MIN_CHANNEL_BLOCK: usize = 64;

/// Whether a convolution reads its input directly as the patch matrix (1×1, stride 1).
pub(crate) fn is_direct(s: &Conv2dShape) -> bool {
    s.kernel == 1 && s.stride == 1 && s.padding == 0
}

/// The output tiling of a convolution: pixel tiles × output-channel blocks.
pub(crate) struct Tiling {
    /// Ranges of output pixels.
    pub tiles: Vec<Range<usize>>,
    /// Ranges of output channels.
    pub channel_blocks: Vec<Range<usize>>,
}

/// Chooses the tiling from the shape alone (never from the thread count).
///
/// Every task packs its slice of the patch matrix (after gathering it, for a patch
/// convolution) and its slice of the weights, so splitting output channels repeats the
/// patches' work and splitting pixels repeats the weights'. Among the splits into at least
/// [`TASKS`] tasks, the one moving the fewest elements wins.
pub(crate) fn tiling(s: &Conv2dShape, out_channels: usize) -> Tiling {
    let (pixels, k, n) = (s.output_pixels(), s.patch_len(), out_channels);
    let direct = is_direct(s);
    let max_rows = if direct {
        MAX_TILE_ROWS
    } else {
        (PATCH_TILE / k).clamp(MIN_TILE_ROWS, MAX_TILE_ROWS)
    };
    let patch_cost = if direct { 1 } else { 2 };
    // (fewer tasks than wanted, elements moved, rows per tile, channel parts)
    let mut best: Option<(bool, usize, usize, usize)> = None;
    let mut parts = 1;
    while parts <= TASKS && (parts == 1 || n / parts >= MIN_CHANNEL_BLOCK) {
        let wanted = TASKS.div_ceil(parts).max(pixels.div_ceil(max_rows));
        let rows = pixels
            .div_ceil(wanted)
            .next_multiple_of(16)
            .max(MIN_TILE_ROWS.min(pixels));
        let tiles = pixels.div_ceil(rows);
        let moved = parts * pixels * k * patch_cost + tiles * k * n;
        let candidate = (tiles * parts < TASKS, moved, rows, parts);
        if best.is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1)) {
            best = Some(candidate);
        }
        parts *= 2;
    }
    let (_, _, rows, parts) = best.expect("one split at least");
    Tiling {
        tiles: split_fixed(pixels, rows),
        channel_blocks: split_even(n, parts, 16),
    }
}

/// The scratch buffers of [`conv_forward`], kept between calls.
#[derive(Debug, Default)]
pub(crate) struct ForwardScratch {
    /// Per-tile partial sums of the fused batch-norm statistics.
    pub(crate) partials: Vec<f64>,
    /// The weights repacked for the register kernel.
    pub(crate) packed: Vec<f32>,
}

/// `y = beta·y + patches(x) · b`, where `b` is `patch_len × M` (the transposed weights) and
/// `y` is `pixels × M`. With `stats = (k, out)`, also writes `[Σ(y-k), Σ(y-k)², pixels]`
/// per output channel into `out` (`2M + 1` elements). `beta` is 0 or 1.
pub(crate) fn conv_forward(
    x: &[f32],
    s: &Conv2dShape,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    y: &mut [f32],
    stats: Option<(&[f32], &mut [f32])>,
    scratch: &mut ForwardScratch,
) {
    let ForwardScratch { partials, packed } = scratch;
    let m = b.ncols();
    let k = s.patch_len();
    assert_eq!(b.nrows(), k, "conv: weight rows");
    assert!(x.len() >= s.input_len(), "conv: input too short");
    let pixels = s.output_pixels();
    // Where AVX-512 is present its kernel beats the patch-matrix sgemm on every ResNet layer
    // (measured with the conv_layers example); elsewhere the sgemm runs.
    let registers = avx512::available();
    let plan = if registers {
        let (tiles, channel_blocks) = avx512::tiling(s, m);
        avx512::pack_weights(b, &channel_blocks, packed);
        Tiling {
            tiles,
            channel_blocks,
        }
    } else {
        tiling(s, m)
    };
    let y = gemm::rows_mut(&mut y[..pixels * m], pixels, m);
    let want_stats = stats.is_some();
    let shift = stats.as_ref().map(|(k, _)| *k);
    if want_stats {
        partials.clear();
        partials.resize(plan.tiles.len() * 2 * m, 0.0);
    }
    // One partial-statistics chunk per task, in task order (tile-major): [Σ block | Σ² block].
    let mut chunks: Vec<Option<&mut [f64]>> = Vec::new();
    if want_stats {
        let mut rest = &mut partials[..];
        for _ in &plan.tiles {
            for cb in &plan.channel_blocks {
                let (head, tail) = rest.split_at_mut(2 * cb.len());
                chunks.push(Some(head));
                rest = tail;
            }
        }
    } else {
        chunks.resize_with(plan.tiles.len() * plan.channel_blocks.len(), || None);
    }
    let direct = is_direct(s);
    let nb = plan.channel_blocks.len();
    let packed = &packed[..];
    let tasks: Vec<_> = blocks(y, &plan.tiles, &plan.channel_blocks)
        .into_iter()
        .zip(chunks)
        .enumerate()
        .collect();
    tasks.into_par_iter().for_each(|(i, (mut out, partial))| {
        let rows = plan.tiles[i / nb].clone();
        let cols = plan.channel_blocks[i % nb].clone();
        let bj = b.slice(s![.., cols.clone()]);
        if registers {
            let panel = avx512::panel(packed, k, &plan.channel_blocks, i % nb);
            avx512::conv_tile(x, s, rows.clone(), panel, beta != 0.0, &mut out);
        } else if direct {
            let a = gemm::rows(&x[rows.start * k..rows.end * k], rows.len(), k);
            gemm(1.0, &a, &bj, beta, &mut out);
        } else {
            with_tile(rows.len() * k, |col| {
                super::im2col::im2col(x, s, rows.clone(), 0..s.kernel, col);
                gemm(1.0, &gemm::rows(col, rows.len(), k), &bj, beta, &mut out);
            });
        }
        if let (Some(partial), Some(shift)) = (partial, shift) {
            let (sum, sq) = partial.split_at_mut(out.ncols());
            let shift = &shift[cols];
            for row in out.rows() {
                let row = row.as_slice().expect("contiguous output rows");
                accumulate_shifted(row, shift, sum, sq);
            }
        }
    });
    if let Some((_, stats)) = stats {
        reduce_partials(partials, &plan, m, pixels, stats);
    }
}

/// Sums the per-tile statistics in tile order into `stats = [Σ(y-k), Σ(y-k)², count]`.
fn reduce_partials(partials: &[f64], plan: &Tiling, m: usize, count: usize, stats: &mut [f32]) {
    let mut sum = vec![0.0f64; 2 * m];
    let mut offset = 0;
    for _ in &plan.tiles {
        for cb in &plan.channel_blocks {
            let len = cb.len();
            let chunk = &partials[offset..offset + 2 * len];
            for (j, c) in cb.clone().enumerate() {
                sum[c] += chunk[j];
                sum[m + c] += chunk[len + j];
            }
            offset += 2 * len;
        }
    }
    for (dst, &v) in stats[..2 * m].iter_mut().zip(&sum) {
        *dst = v as f32;
    }
    stats[2 * m] = count as f32;
}
