//! Straightforward `f64` implementations of the operations, read off their definitions.

use alloc::vec;
use alloc::vec::Vec;

use crate::{Conv2dShape, Pool2dShape};

/// The convolution by its definition: NHWC input, OHWI weight, NHWC output.
pub(crate) fn conv2d(x: &[f32], w: &[f32], s: &Conv2dShape) -> Vec<f64> {
    let (oh_n, ow_n) = (s.out_height(), s.out_width());
    let (k, c) = (s.kernel, s.in_channels);
    let mut y = vec![0.0f64; s.output_len()];
    for n in 0..s.batch {
        for oh in 0..oh_n {
            for ow in 0..ow_n {
                for o in 0..s.out_channels {
                    let mut acc = 0.0f64;
                    for kh in 0..k {
                        let ih = (oh * s.stride + kh) as isize - s.padding as isize;
                        if ih < 0 || ih as usize >= s.in_height {
                            continue;
                        }
                        for kw in 0..k {
                            let iw = (ow * s.stride + kw) as isize - s.padding as isize;
                            if iw < 0 || iw as usize >= s.in_width {
                                continue;
                            }
                            let xb =
                                ((n * s.in_height + ih as usize) * s.in_width + iw as usize) * c;
                            let wb = ((o * k + kh) * k + kw) * c;
                            for i in 0..c {
                                acc += x[xb + i] as f64 * w[wb + i] as f64;
                            }
                        }
                    }
                    y[((n * oh_n + oh) * ow_n + ow) * s.out_channels + o] = acc;
                }
            }
        }
    }
    y
}

/// Per-channel mean and biased variance of a `rows × channels` tensor.
pub(crate) fn moments(x: &[f32], rows: usize, channels: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0f64; channels];
    let mut var = vec![0.0f64; channels];
    for r in 0..rows {
        for c in 0..channels {
            mean[c] += x[r * channels + c] as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    for r in 0..rows {
        for c in 0..channels {
            let d = x[r * channels + c] as f64 - mean[c];
            var[c] += d * d;
        }
    }
    var.iter_mut().for_each(|v| *v /= rows as f64);
    (mean, var)
}

/// The per-channel statistics a batch norm normalises with, and its `eps`.
#[derive(Clone, Copy)]
pub(crate) struct Moments<'a> {
    pub(crate) mean: &'a [f64],
    pub(crate) var: &'a [f64],
    pub(crate) eps: f64,
}

/// Batch-norm output from given statistics, with optional residual and ReLU.
pub(crate) fn batch_norm(
    x: &[f32],
    channels: usize,
    Moments { mean, var, eps }: Moments<'_>,
    weight: &[f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i % channels;
            let mut y =
                (v as f64 - mean[c]) / (var[c] + eps).sqrt() * weight[c] as f64 + bias[c] as f64;
            if let Some(r) = residual {
                y += r[i] as f64;
            }
            if relu { y.max(0.0) } else { y }
        })
        .collect()
}

/// Batch-norm gradients `(dx, dweight, dbias)`; `train` selects batch statistics (the mean
/// and variance then depend on `x`) over frozen ones. `relu_output` masks `dy`.
pub(crate) fn batch_norm_backward(
    dy: &[f32],
    x: &[f32],
    relu_output: Option<&[f32]>,
    channels: usize,
    Moments { mean, var, eps }: Moments<'_>,
    weight: &[f32],
    train: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let rows = x.len() / channels;
    let g: Vec<f64> = dy
        .iter()
        .enumerate()
        .map(|(i, &d)| match relu_output {
            Some(y) if y[i] <= 0.0 => 0.0,
            _ => d as f64,
        })
        .collect();
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let xhat = |i: usize| (x[i] as f64 - mean[i % channels]) * invstd[i % channels];
    let mut sg = vec![0.0f64; channels];
    let mut sgx = vec![0.0f64; channels];
    for i in 0..x.len() {
        sg[i % channels] += g[i];
        sgx[i % channels] += g[i] * xhat(i);
    }
    let n = rows as f64;
    let dx = (0..x.len())
        .map(|i| {
            let c = i % channels;
            let a = weight[c] as f64 * invstd[c];
            if train {
                a * (g[i] - sg[c] / n - xhat(i) * sgx[c] / n)
            } else {
                a * g[i]
            }
        })
        .collect();
    (dx, sgx, sg)
}

/// Max pooling by its definition (padding never wins).
pub(crate) fn max_pool(x: &[f32], s: &Pool2dShape) -> Vec<f64> {
    let (oh_n, ow_n, c) = (s.out_height(), s.out_width(), s.channels);
    let mut y = vec![f64::NEG_INFINITY; s.output_len()];
    for n in 0..s.batch {
        for oh in 0..oh_n {
            for ow in 0..ow_n {
                for kh in 0..s.kernel {
                    for kw in 0..s.kernel {
                        let ih = (oh * s.stride + kh) as isize - s.padding as isize;
                        let iw = (ow * s.stride + kw) as isize - s.padding as isize;
                        if ih < 0
                            || iw < 0
                            || ih as usize >= s.in_height
                            || iw as usize >= s.in_width
                        {
                            continue;
                        }
                        for ch in 0..c {
                            let v = x[((n * s.in_height + ih as usize) * s.in_width + iw as usize)
                                * c
                                + ch] as f64;
                            let o = &mut y[((n * oh_n + oh) * ow_n + ow) * c + ch];
                            *o = o.max(v);
                        }
                    }
                }
            }
        }
    }
    y
}

/// Global average pooling by its definition.
pub(crate) fn avg_pool(x: &[f32], batch: usize, pixels: usize, channels: usize) -> Vec<f64> {
    let mut y = vec![0.0f64; batch * channels];
    for n in 0..batch {
        for p in 0..pixels {
            for c in 0..channels {
                y[n * channels + c] += x[(n * pixels + p) * channels + c] as f64;
            }
        }
    }
    y.iter_mut().for_each(|v| *v /= pixels as f64);
    y
}

/// `x·wᵀ + b` by its definition.
pub(crate) fn linear(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    inp: usize,
    out: usize,
) -> Vec<f64> {
    let mut y = vec![0.0f64; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let mut acc = bias.map_or(0.0, |b| b[o] as f64);
            for i in 0..inp {
                acc += x[r * inp + i] as f64 * w[o * inp + i] as f64;
            }
            y[r * out + o] = acc;
        }
    }
    y
}

/// Row-wise `x / max(‖x‖, eps)`.
pub(crate) fn l2_normalize(x: &[f32], cols: usize, eps: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(cols) {
        let n = row
            .iter()
            .map(|&v| v as f64 * v as f64)
            .sum::<f64>()
            .sqrt()
            .max(eps);
        out.extend(row.iter().map(|&v| v as f64 / n));
    }
    out
}
