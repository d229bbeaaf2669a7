//! The weight gradient of a convolution: `dW += dyᵀ · patches(x)`, a product whose inner
//! dimension is every output pixel of the batch.
//!
//! The work is cut two ways, both fixed by the shape: the columns of `dW` into blocks (one
//! kernel row of taps each, or channel blocks for 1×1 convolutions), which need no reduction,
//! and the pixels into "slots" of consecutive chunks, each summed into its own partial
//! gradient; the partials are then added in slot order. Within a slot, chunks are added in
//! order by the product itself. So the result never depends on the thread count.

use core::ops::Range;

use rayon::prelude::*;
use swav_nn::Conv2dShape;

use super::avx512;
use super::avx512_filter::filter_tile;
use super::forward::is_direct;
use super::im2col::im2col;
use crate::gemm::{self, gemm, split_axis};
use crate::partition::{TASKS, split_even, split_fixed};
use crate::scratch::with_tile;

/// The largest patch tile a task gathers, in elements.
const PATCH_TILE: usize = 1 << 20;

/// Pixels per chunk of a 1×1 stride-1 convolution (no patch copy).
const DIRECT_CHUNK_ROWS: usize = 1024;

/// The narrowest column block worth a task.
const MIN_COLUMN_BLOCK: usize = 64;

/// Elements per task when adding the partial gradients.
const REDUCE_CHUNK: usize = 1 << 14;

/// The fewest output channels of a row block worth a task of the register kernel.
const MIN_OUT_BLOCK: usize = 32;

/// How the weight gradient is cut.
struct Plan {
    /// Row ranges of `dW` (output channels): one for the sgemm; for the register kernel, as
    /// many as it takes to give every thread work when there are few pixels to split.
    out_blocks: Vec<Range<usize>>,
    /// Column ranges of `dW` (`oc × patch_len`).
    columns: Vec<Range<usize>>,
    /// For patch convolutions, the kernel rows each column block covers.
    kernel_rows: Vec<Range<usize>>,
    /// Pixel chunks, the inner dimension of the product.
    chunks: Vec<Range<usize>>,
    /// Consecutive chunk indices per slot.
    slots: Vec<Range<usize>>,
}

/// The cut for `s`; `registers`: whether the register kernel runs.
fn plan(s: &Conv2dShape, registers: bool) -> Plan {
    let pixels = s.output_pixels();
    let (columns, kernel_rows, chunk_rows) = if is_direct(s) {
        let c = s.in_channels;
        let mut parts = 1;
        while parts < TASKS && c / (2 * parts) >= MIN_COLUMN_BLOCK {
            parts *= 2;
        }
        (split_even(c, parts, 16), Vec::new(), DIRECT_CHUNK_ROWS)
    } else {
        let row_width = s.kernel * s.in_channels;
        let by_row = s.kernel > 1 && row_width >= MIN_COLUMN_BLOCK;
        let kernel_rows: Vec<_> = if by_row {
            (0..s.kernel).map(|r| r..r + 1).collect()
        } else {
            core::iter::once(0..s.kernel).collect()
        };
        let columns = kernel_rows
            .iter()
            .map(|r| r.start * row_width..r.end * row_width)
            .collect::<Vec<_>>();
        let widest = columns.iter().map(Range::len).max().unwrap_or(1);
        // At least a few hundred pixels per product: each one re-reads and re-writes the
        // partial gradient block.
        let rows = (PATCH_TILE / widest).clamp(256, 1024) / 16 * 16;
        (columns, kernel_rows, rows)
    };
    let chunks = split_fixed(pixels, chunk_rows);
    let slot_count = TASKS.div_ceil(columns.len()).clamp(1, chunks.len().max(1));
    let slots = split_even(chunks.len(), slot_count, 1);
    // The late layers have one chunk of pixels and as few column blocks as kernel rows (3
    // tasks for 2 threads); their output channels split without any reduction.
    let oc = s.out_channels;
    let mut out_parts = 1;
    while registers
        && columns.len() * slots.len() * out_parts < TASKS
        && oc / (2 * out_parts) >= MIN_OUT_BLOCK
    {
        out_parts *= 2;
    }
    Plan {
        out_blocks: split_even(oc, out_parts, 16),
        columns,
        kernel_rows,
        chunks,
        slots,
    }
}

/// `dw += Σ_pixels dyᵀ · patches(x)`; `partials` is scratch.
pub(crate) fn conv_backward_filter(
    dy: &[f32],
    x: &[f32],
    s: &Conv2dShape,
    dw: &mut [f32],
    partials: &mut Vec<f32>,
) {
    let (oc, patch) = (s.out_channels, s.patch_len());
    // Where AVX-512 is present its kernel reads `dy` and `x` in place instead of gathering
    // patch tiles for the sgemm (see `avx512_filter`); the cut of the work is the same but for
    // the output-channel blocks. It loses to the sgemm on strided convolutions and on inputs
    // of fewer than 16 channels (a mostly empty vector), measured with the conv_layers example.
    let registers = avx512::available() && s.stride == 1 && s.in_channels >= 16;
    let plan = plan(s, registers);
    if plan.chunks.is_empty() {
        return;
    }
    let direct = is_direct(s);
    let slots = plan.slots.len();
    let dw = &mut dw[..oc * patch];
    // Slot 0 of a single-slot plan accumulates straight into dW.
    let targets: Vec<&mut [f32]> = if slots == 1 {
        vec![dw as &mut [f32]]
    } else {
        partials.clear();
        partials.resize(slots * oc * patch, 0.0);
        partials.chunks_exact_mut(oc * patch).collect()
    };
    let mut tasks = Vec::with_capacity(slots * plan.columns.len());
    for (slot, target) in targets.into_iter().enumerate() {
        let views = split_axis(
            gemm::rows_mut(target, oc, patch),
            ndarray::Axis(1),
            &plan.columns,
        );
        for (block, view) in views.into_iter().enumerate() {
            let parts = split_axis(view, ndarray::Axis(0), &plan.out_blocks);
            for (rows, part) in plan.out_blocks.iter().zip(parts) {
                tasks.push((slot, block, rows.clone(), part));
            }
        }
    }
    tasks
        .into_par_iter()
        .for_each(|(slot, block, out_channels, mut out)| {
            let cols = plan.columns[block].clone();
            if registers {
                let chunks = &plan.chunks[plan.slots[slot].clone()];
                let pixels = chunks[0].start..chunks[chunks.len() - 1].end;
                let (kernel_rows, channels) = if direct {
                    (0..1, cols)
                } else {
                    (plan.kernel_rows[block].clone(), 0..s.in_channels)
                };
                let block = (out_channels, kernel_rows, channels);
                filter_tile(dy, x, s, pixels, block, &mut out);
                return;
            }
            for (i, chunk) in plan.chunks[plan.slots[slot].clone()].iter().enumerate() {
                let rows = chunk.len();
                let a = gemm::view(&dy[chunk.start * oc..chunk.end * oc], oc, rows, 1, oc);
                let beta = if slots == 1 || i > 0 { 1.0 } else { 0.0 };
                if direct {
                    let c = s.in_channels;
                    let b = gemm::view(&x[chunk.start * c + cols.start..], rows, cols.len(), c, 1);
                    gemm(1.0, &a, &b, beta, &mut out);
                } else {
                    with_tile(rows * cols.len(), |col| {
                        im2col(x, s, chunk.clone(), plan.kernel_rows[block].clone(), col);
                        let b = gemm::rows(col, rows, cols.len());
                        gemm(1.0, &a, &b, beta, &mut out);
                    });
                }
            }
        });
    if slots > 1 {
        let len = oc * patch;
        let partials = &partials[..slots * len];
        dw.par_chunks_mut(REDUCE_CHUNK)
            .enumerate()
            .for_each(|(i, out)| {
                let range = i * REDUCE_CHUNK..i * REDUCE_CHUNK + out.len();
                with_tile(out.len(), |sum| {
                    sum.copy_from_slice(&partials[range.clone()]);
                    for slot in 1..slots {
                        let part = &partials[slot * len + range.start..slot * len + range.end];
                        sum.iter_mut().zip(part).for_each(|(s, &p)| *s += p);
                    }
                    out.iter_mut().zip(sum.iter()).for_each(|(o, &s)| *o += s);
                });
            });
    }
}
