//! Batch normalisation over `rows × channels` tensors: statistics, finalisation with the
//! running-statistics update, the fused normalise + affine (+ residual) (+ ReLU) pass, and the
//! two halves of the backward pass.
//!
//! Reductions run over a fixed split of the rows (see [`crate::partition`]), accumulate in
//! `f64` and are combined in order, so they are exact to `f32` rounding and deterministic.

use core::ops::Range;

use rayon::prelude::*;

use crate::partition::{row_parts, split_even};

/// The fewest rows a reduction task takes.
const MIN_REDUCE_ROWS: usize = 64;

/// Elements per task of the element-wise passes.
const APPLY_CHUNK: usize = 1 << 15;

/// Per-part `f64` sums of two per-channel quantities, combined in part order.
fn reduce_pairs(
    rows: usize,
    channels: usize,
    partials: &mut Vec<f64>,
    body: impl Fn(Range<usize>, &mut [f64], &mut [f64]) + Sync,
) -> &[f64] {
    let parts = split_even(rows, row_parts(rows, MIN_REDUCE_ROWS), 1);
    partials.clear();
    partials.resize((parts.len() + 1) * 2 * channels, 0.0);
    let (total, per_part) = partials.split_at_mut(2 * channels);
    per_part
        .par_chunks_mut(2 * channels)
        .zip(parts)
        .for_each(|(acc, range)| {
            let (first, second) = acc.split_at_mut(channels);
            body(range, first, second);
        });
    for part in per_part.chunks_exact(2 * channels) {
        total.iter_mut().zip(part).for_each(|(t, &p)| *t += p);
    }
    &partials[..2 * channels]
}

/// `stats = [Σ(x-k), Σ(x-k)², rows]` per channel, `k = shift`.
pub(crate) fn stats(
    x: &[f32],
    rows: usize,
    channels: usize,
    shift: &[f32],
    stats: &mut [f32],
    partials: &mut Vec<f64>,
) {
    let x = &x[..rows * channels];
    let shift = &shift[..channels];
    let total = reduce_pairs(rows, channels, partials, |range, sum, sq| {
        for row in x[range.start * channels..range.end * channels].chunks_exact(channels) {
            accumulate_shifted(row, shift, sum, sq);
        }
    });
    for (dst, &v) in stats[..2 * channels].iter_mut().zip(total) {
        *dst = v as f32;
    }
    stats[2 * channels] = rows as f32;
}

/// Adds `v - k` and `(v - k)²` of one row to the `f64` sums.
#[inline(always)]
pub(crate) fn accumulate_shifted(row: &[f32], shift: &[f32], sum: &mut [f64], sq: &mut [f64]) {
    for (((s, q), &v), &k) in sum.iter_mut().zip(sq.iter_mut()).zip(row).zip(shift) {
        let d = v as f64 - k as f64;
        *s += d;
        *q += d * d;
    }
}

/// Mean and `1/√(var + eps)` into `saved` from statistics shifted by the running mean;
/// running statistics updated with the unbiased variance (the biased one when the count
/// is 1).
pub(crate) fn finalize(
    stats: &[f32],
    channels: usize,
    eps: f32,
    momentum: f32,
    running_mean: &mut [f32],
    running_var: &mut [f32],
    saved: &mut [f32],
) {
    let count = stats[2 * channels] as f64;
    let correction = if count > 1.0 {
        count / (count - 1.0)
    } else {
        1.0
    };
    for c in 0..channels {
        let shifted = stats[c] as f64 / count;
        let var = (stats[channels + c] as f64 / count - shifted * shifted).max(0.0);
        let mean = running_mean[c] as f64 + shifted;
        let invstd = 1.0 / (var + eps as f64).sqrt();
        saved[c] = mean as f32;
        saved[channels + c] = invstd as f32;
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean as f32;
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * (var * correction) as f32;
    }
    saved[2 * channels] = count as f32;
}

/// Evaluation mode: `saved = [running_mean, 1/√(running_var + eps), 0]`.
pub(crate) fn frozen(
    running_mean: &[f32],
    running_var: &[f32],
    channels: usize,
    eps: f32,
    saved: &mut [f32],
) {
    saved[..channels].copy_from_slice(&running_mean[..channels]);
    for (s, &v) in saved[channels..2 * channels].iter_mut().zip(running_var) {
        *s = 1.0 / (v + eps).sqrt();
    }
    saved[2 * channels] = 0.0;
}

/// Per-channel `scale = weight·invstd` and `shift = bias - mean·scale`.
fn scale_shift(saved: &[f32], weight: &[f32], bias: &[f32], channels: usize) -> Vec<f32> {
    let mut out = vec![0.0; 2 * channels];
    for c in 0..channels {
        let scale = weight[c] * saved[channels + c];
        out[c] = scale;
        out[channels + c] = bias[c] - saved[c] * scale;
    }
    out
}

/// Rows per element-wise task (a whole number of rows).
fn apply_rows(channels: usize) -> usize {
    (APPLY_CHUNK / channels.max(1)).max(1)
}

/// `y = x·scale + shift (+ residual) (then ReLU)`.
pub(crate) fn apply(
    x: &[f32],
    rows: usize,
    channels: usize,
    saved: &[f32],
    weight: &[f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    let ss = scale_shift(saved, weight, bias, channels);
    let (scale, shift) = ss.split_at(channels);
    let len = rows * channels;
    let chunk = apply_rows(channels) * channels;
    y[..len]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, out)| {
            let start = i * chunk;
            let xs = &x[start..start + out.len()];
            let res = residual.map(|r| &r[start..start + out.len()]);
            for (r, (o, xr)) in out
                .chunks_exact_mut(channels)
                .zip(xs.chunks_exact(channels))
                .enumerate()
            {
                for c in 0..channels {
                    o[c] = xr[c] * scale[c] + shift[c];
                }
                if let Some(res) = res {
                    let rr = &res[r * channels..(r + 1) * channels];
                    o.iter_mut().zip(rr).for_each(|(o, &v)| *o += v);
                }
                if relu {
                    o.iter_mut()
                        .for_each(|o| *o = if *o < 0.0 { 0.0 } else { *o });
                }
            }
        });
}

/// `g = dy` masked where `relu_output <= 0`.
#[inline(always)]
fn masked(dy: f32, relu_output: Option<f32>) -> f32 {
    match relu_output {
        Some(y) if y <= 0.0 => 0.0,
        _ => dy,
    }
}

/// `sums = [Σg, Σg·x̂, 0]`; `dbias += Σg`, `dweight += Σg·x̂`.
pub(crate) fn backward_reduce(
    dy: &[f32],
    x: &[f32],
    relu_output: Option<&[f32]>,
    rows: usize,
    channels: usize,
    saved: &[f32],
    sums: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
    partials: &mut Vec<f64>,
) {
    let mean = &saved[..channels];
    let total = reduce_pairs(rows, channels, partials, |range, sg, sgx| {
        let span = range.start * channels..range.end * channels;
        let dy = dy[span.clone()].chunks_exact(channels);
        let x = x[span.clone()].chunks_exact(channels);
        match relu_output {
            Some(y) => {
                for ((dyr, xr), yr) in dy.zip(x).zip(y[span].chunks_exact(channels)) {
                    for c in 0..channels {
                        let g = masked(dyr[c], Some(yr[c])) as f64;
                        sg[c] += g;
                        sgx[c] += g * (xr[c] - mean[c]) as f64;
                    }
                }
            }
            None => {
                for (dyr, xr) in dy.zip(x) {
                    for c in 0..channels {
                        let g = dyr[c] as f64;
                        sg[c] += g;
                        sgx[c] += g * (xr[c] - mean[c]) as f64;
                    }
                }
            }
        }
    });
    let invstd = &saved[channels..2 * channels];
    for c in 0..channels {
        let sum_g = total[c] as f32;
        let sum_gx = (total[channels + c] * invstd[c] as f64) as f32;
        sums[c] = sum_g;
        sums[channels + c] = sum_gx;
        dbias[c] += sum_g;
        dweight[c] += sum_gx;
    }
    sums[2 * channels] = 0.0;
}

/// `dx = weight·invstd·(g - Σg/N - x̂·Σg·x̂/N)`, or `weight·invstd·g` with frozen statistics.
pub(crate) fn backward_apply(
    dy: &[f32],
    x: &[f32],
    relu_output: Option<&[f32]>,
    rows: usize,
    channels: usize,
    saved: &[f32],
    weight: &[f32],
    sums: Option<&[f32]>,
    dx: &mut [f32],
) {
    let (mean, invstd) = (&saved[..channels], &saved[channels..2 * channels]);
    // Per channel: a = weight·invstd, mean of g, mean of g·x̂ (zero when frozen).
    let mut coef = vec![0.0f32; 4 * channels];
    let count = saved[2 * channels];
    for c in 0..channels {
        coef[c] = weight[c] * invstd[c];
        coef[channels + c] = mean[c];
        coef[2 * channels + c] = sums.map_or(0.0, |s| s[c] / count);
        coef[3 * channels + c] = sums.map_or(0.0, |s| s[channels + c] / count * invstd[c]);
    }
    let (a, rest) = coef.split_at(channels);
    let (mu, rest) = rest.split_at(channels);
    let (mg, mgx) = rest.split_at(channels);
    let len = rows * channels;
    let chunk = apply_rows(channels) * channels;
    dx[..len]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, out)| {
            let span = i * chunk..i * chunk + out.len();
            let dy = &dy[span.clone()];
            let x = &x[span.clone()];
            let y = relu_output.map(|y| &y[span]);
            for (r, o) in out.chunks_exact_mut(channels).enumerate() {
                let base = r * channels;
                for c in 0..channels {
                    let g = masked(dy[base + c], y.map(|y| y[base + c]));
                    // x̂·mean(g·x̂) = (x - mean)·invstd·mean(g·x̂); mgx already holds invstd·…
                    o[c] = a[c] * (g - mg[c] - (x[base + c] - mu[c]) * mgx[c]);
                }
            }
        });
}

/// `dy = 0` where `relu_output <= 0`, in place.
pub(crate) fn relu_backward(dy: &mut [f32], relu_output: &[f32]) {
    dy.par_chunks_mut(APPLY_CHUNK)
        .zip(relu_output.par_chunks(APPLY_CHUNK))
        .for_each(|(d, y)| {
            d.iter_mut()
                .zip(y)
                .for_each(|(d, &y)| *d = masked(*d, Some(y)));
        });
}
