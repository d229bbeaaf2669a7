//! Batch normalisation over `rows × channels` tensors: statistics, finalisation with the
//! running-statistics update, the fused normalise + affine (+ residual) (+ ReLU) pass, and the
//! two halves of the backward pass.
//!
//! Reductions run over a fixed split of the rows (see [`crate::partition`]), accumulate in
//! `f64` and are combined in order, so they are exact to `f32` rounding and deterministic.

use core::convert::Infallible;
use core::ops::Range;

use rayon::prelude::*;
use swav_nn::{
    Affine, AffineGrads, BatchNormBackward, BatchNormOps, BatchNormSettings, BatchNormShape,
    Epilogue, RunningStats,
};

use crate::CpuBackend;
use crate::partition::{row_parts, split_even};
use crate::profile::OpScope;

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

impl BatchNormOps for CpuBackend {
    fn batch_norm_stats(
        &mut self,
        x: &Vec<f32>,
        shape: &BatchNormShape,
        shift: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "batch_norm_stats", 0.0);
        stats(x, shape, shift, out, &mut self.sums);
        Ok(())
    }

    fn batch_norm_finalize(
        &mut self,
        stats: &Vec<f32>,
        channels: usize,
        settings: BatchNormSettings,
        running: RunningStats<'_, Vec<f32>>,
        saved: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "batch_norm_finalize", 0.0);
        finalize(stats, channels, settings, running, saved);
        Ok(())
    }

    fn batch_norm_frozen(
        &mut self,
        running_mean: &Vec<f32>,
        running_var: &Vec<f32>,
        channels: usize,
        eps: f32,
        saved: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "batch_norm_frozen", 0.0);
        frozen(running_mean, running_var, channels, eps, saved);
        Ok(())
    }

    fn batch_norm_apply(
        &mut self,
        x: &Vec<f32>,
        shape: &BatchNormShape,
        saved: &Vec<f32>,
        affine: Affine<'_, Vec<f32>>,
        epilogue: Epilogue<'_, Vec<f32>>,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "batch_norm_apply", 0.0);
        apply(x, shape, saved, affine, epilogue, y);
        Ok(())
    }

    fn batch_norm_backward_reduce(
        &mut self,
        inputs: &BatchNormBackward<'_, Vec<f32>>,
        shape: &BatchNormShape,
        sums: &mut Vec<f32>,
        grads: AffineGrads<'_, Vec<f32>>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "batch_norm_backward_reduce", 0.0);
        backward_reduce(inputs, shape, sums, grads, &mut self.sums);
        Ok(())
    }

    fn batch_norm_backward_apply(
        &mut self,
        inputs: &BatchNormBackward<'_, Vec<f32>>,
        shape: &BatchNormShape,
        weight: &Vec<f32>,
        sums: Option<&Vec<f32>>,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "batch_norm_backward_apply", 0.0);
        backward_apply(inputs, shape, weight, sums.map(|s| &s[..]), dx);
        Ok(())
    }

    fn relu_backward(
        &mut self,
        dy: &mut Vec<f32>,
        relu_output: &Vec<f32>,
        len: usize,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "relu_backward", 0.0);
        relu_backward(&mut dy[..len], &relu_output[..len]);
        Ok(())
    }
}

/// `stats = [Σ(x-k), Σ(x-k)², rows]` per channel, `k = shift`.
fn stats(
    x: &[f32],
    &BatchNormShape { rows, channels }: &BatchNormShape,
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
fn finalize(
    stats: &[f32],
    channels: usize,
    BatchNormSettings { eps, momentum }: BatchNormSettings,
    running: RunningStats<'_, Vec<f32>>,
    saved: &mut [f32],
) {
    let (running_mean, running_var) = (running.mean, running.var);
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
fn frozen(running_mean: &[f32], running_var: &[f32], channels: usize, eps: f32, saved: &mut [f32]) {
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
fn apply(
    x: &[f32],
    &BatchNormShape { rows, channels }: &BatchNormShape,
    saved: &[f32],
    affine: Affine<'_, Vec<f32>>,
    Epilogue { residual, relu }: Epilogue<'_, Vec<f32>>,
    y: &mut [f32],
) {
    let ss = scale_shift(saved, affine.weight, affine.bias, channels);
    let (scale, shift) = ss.split_at(channels);
    let len = rows * channels;
    let chunk = apply_rows(channels) * channels;
    y[..len]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, out)| {
            let span = i * chunk..i * chunk + out.len();
            let xs = &x[span.clone()];
            match (residual.map(|r| &r[span]), relu) {
                (Some(res), true) => apply_chunk::<true, true>(xs, res, scale, shift, out),
                (Some(res), false) => apply_chunk::<true, false>(xs, res, scale, shift, out),
                (None, true) => apply_chunk::<false, true>(xs, xs, scale, shift, out),
                (None, false) => apply_chunk::<false, false>(xs, xs, scale, shift, out),
            }
        });
}

/// [`apply`] on whole rows, one pass per element (`res` is read only when `RESIDUAL`).
#[inline(always)]
fn apply_chunk<const RESIDUAL: bool, const RELU: bool>(
    x: &[f32],
    res: &[f32],
    scale: &[f32],
    shift: &[f32],
    out: &mut [f32],
) {
    let channels = scale.len();
    for ((o, xr), rr) in out
        .chunks_exact_mut(channels)
        .zip(x.chunks_exact(channels))
        .zip(res.chunks_exact(channels))
    {
        for ((((o, &v), &r), &a), &b) in o.iter_mut().zip(xr).zip(rr).zip(scale).zip(shift) {
            let mut v = v * a + b;
            if RESIDUAL {
                v += r;
            }
            if RELU && v < 0.0 {
                v = 0.0;
            }
            *o = v;
        }
    }
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
fn backward_reduce(
    inputs: &BatchNormBackward<'_, Vec<f32>>,
    &BatchNormShape { rows, channels }: &BatchNormShape,
    sums: &mut [f32],
    grads: AffineGrads<'_, Vec<f32>>,
    partials: &mut Vec<f64>,
) {
    let (dy, x, relu_output, saved) = (inputs.dy, inputs.x, inputs.relu_output, inputs.saved);
    let (dweight, dbias) = (grads.weight, grads.bias);
    let mean = &saved[..channels];
    let total = reduce_pairs(rows, channels, partials, |range, sg, sgx| {
        let span = range.start * channels..range.end * channels;
        let (dy, x) = (&dy[span.clone()], &x[span.clone()]);
        match relu_output {
            Some(y) => reduce_chunk::<true>(dy, x, &y[span], mean, sg, sgx),
            None => reduce_chunk::<false>(dy, x, x, mean, sg, sgx),
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

/// [`backward_reduce`] on whole rows: `Σg` into `sg`, `Σg·(x - mean)` into `sgx` (`y`, the
/// ReLU output, is read only when `RELU`).
#[inline(always)]
fn reduce_chunk<const RELU: bool>(
    dy: &[f32],
    x: &[f32],
    y: &[f32],
    mean: &[f32],
    sg: &mut [f64],
    sgx: &mut [f64],
) {
    let channels = mean.len();
    let rows = dy
        .chunks_exact(channels)
        .zip(x.chunks_exact(channels))
        .zip(y.chunks_exact(channels));
    for ((dyr, xr), yr) in rows {
        let inputs = dyr.iter().zip(xr).zip(yr);
        let sums = sg.iter_mut().zip(sgx.iter_mut()).zip(mean);
        for (((&dy, &x), &y), ((sg, sgx), &mean)) in inputs.zip(sums) {
            let g = masked(dy, RELU.then_some(y)) as f64;
            *sg += g;
            *sgx += g * (x - mean) as f64;
        }
    }
}

/// `dx = weight·invstd·(g - Σg/N - x̂·Σg·x̂/N)`, or `weight·invstd·g` with frozen statistics.
fn backward_apply(
    inputs: &BatchNormBackward<'_, Vec<f32>>,
    &BatchNormShape { rows, channels }: &BatchNormShape,
    weight: &[f32],
    sums: Option<&[f32]>,
    dx: &mut [f32],
) {
    let (dy, x, relu_output, saved) = (inputs.dy, inputs.x, inputs.relu_output, inputs.saved);
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
    let coefficients = [a, mu, mg, mgx];
    dx[..len]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, out)| {
            let span = i * chunk..i * chunk + out.len();
            let (dy, x) = (&dy[span.clone()], &x[span.clone()]);
            match relu_output {
                Some(y) => backward_apply_chunk::<true>(dy, x, &y[span], coefficients, out),
                None => backward_apply_chunk::<false>(dy, x, x, coefficients, out),
            }
        });
}

/// [`backward_apply`] on whole rows (`y`, the ReLU output, is read only when `RELU`).
#[inline(always)]
fn backward_apply_chunk<const RELU: bool>(
    dy: &[f32],
    x: &[f32],
    y: &[f32],
    [a, mu, mg, mgx]: [&[f32]; 4],
    out: &mut [f32],
) {
    let channels = a.len();
    let rows = out
        .chunks_exact_mut(channels)
        .zip(dy.chunks_exact(channels))
        .zip(x.chunks_exact(channels).zip(y.chunks_exact(channels)));
    for ((o, dyr), (xr, yr)) in rows {
        let inputs = dyr.iter().zip(xr).zip(yr);
        let coefficients = a.iter().zip(mu).zip(mg.iter().zip(mgx));
        for ((o, ((&dy, &x), &y)), ((&a, &mu), (&mg, &mgx))) in
            o.iter_mut().zip(inputs).zip(coefficients)
        {
            let g = masked(dy, RELU.then_some(y));
            // x̂·mean(g·x̂) = (x - mean)·invstd·mean(g·x̂); mgx already holds invstd·…
            *o = a * (g - mg - (x - mu) * mgx);
        }
    }
}

/// `dy = 0` where `relu_output <= 0`, in place.
fn relu_backward(dy: &mut [f32], relu_output: &[f32]) {
    dy.par_chunks_mut(APPLY_CHUNK)
        .zip(relu_output.par_chunks(APPLY_CHUNK))
        .for_each(|(d, y)| {
            d.iter_mut()
                .zip(y)
                .for_each(|(d, &y)| *d = masked(*d, Some(y)));
        });
}
