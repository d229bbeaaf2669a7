//! Shared by swav-cuda's GPU tests: opening the GPU (or skipping), deterministic data,
//! comparisons, and straightforward f64 host definitions of the model operations.
#![allow(dead_code)]

use swav_core::HeadOps;
use swav_cuda::{
    Conv2dShape, CudaBackend, CudaBuffer, CudaConfig, CudaError, Pool2dShape, Precision,
};

/// A backend on GPU 0 with `precision`, or `None` (after saying why) where this machine has
/// no driver or no GPU. `SWAV_REQUIRE_GPU=1` turns the skip into a failure.
pub fn gpu(precision: Precision) -> Option<CudaBackend> {
    let config = CudaConfig {
        precision,
        ..CudaConfig::default()
    };
    match CudaBackend::with_config(0, config) {
        Ok(backend) => Some(backend),
        Err(e @ (CudaError::NoDriver | CudaError::NoDevice { .. })) => {
            assert!(
                std::env::var("SWAV_REQUIRE_GPU").as_deref() != Ok("1"),
                "SWAV_REQUIRE_GPU=1 but no GPU is usable: {e}"
            );
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("the GPU is there but the backend failed to open: {e}"),
    }
}

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-1, 1)`.
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0) as f32
    }
    /// `n` values `scale·u + offset`.
    pub fn vec(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| scale * self.uniform() + offset).collect()
    }
    /// `rows × cols` with unit-norm rows.
    pub fn unit_rows(&mut self, rows: usize, cols: usize) -> Vec<f32> {
        let mut m = self.vec(rows * cols, 1.0, 0.0);
        for r in m.chunks_mut(cols) {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            r.iter_mut().for_each(|v| *v /= n);
        }
        m
    }
}

/// Rounds to the nearest bf16 (ties to even), as the GPU stores bf16 activations.
pub fn bf16_round(v: &[f32]) -> Vec<f32> {
    v.iter()
        .map(|&x| half::bf16::from_f32(x).to_f32())
        .collect()
}

/// An f32 (parameter-class) buffer holding `data`.
pub fn upload(b: &mut CudaBackend, data: &[f32]) -> CudaBuffer {
    let mut buf = b.zeros(data.len()).unwrap();
    b.upload(data, &mut buf, 0).unwrap();
    buf
}

/// An activation buffer holding `data` (rounded to bf16 under mixed precision).
pub fn upload_activation(b: &mut CudaBackend, data: &[f32]) -> CudaBuffer {
    let mut buf = b.alloc_activation(data.len()).unwrap();
    b.upload(data, &mut buf, 0).unwrap();
    buf
}

/// The first `len` values of `buf`.
pub fn download(b: &mut CudaBackend, buf: &CudaBuffer, len: usize) -> Vec<f32> {
    let mut out = vec![0.0; len];
    b.download(buf, 0, &mut out).unwrap();
    out
}

/// Asserts `max |got - want| <= tol · max(|want|, 1e-30)`.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    let mut worst = (0.0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        if err.is_nan() || err > worst.0 {
            worst = (if err.is_nan() { f64::INFINITY } else { err }, i);
        }
    }
    assert!(
        worst.0 <= tol * scale,
        "{what}: max error {:e} at {} (got {}, want {}) exceeds {tol:e} × {scale:e}",
        worst.0,
        worst.1,
        got[worst.1],
        want[worst.1]
    );
}

/// Widens to f64.
pub fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// ----- f64 host definitions of the model operations (NHWC, OHWI) -----

/// Convolution forward.
pub fn conv_forward(x: &[f32], w: &[f32], s: &Conv2dShape) -> Vec<f64> {
    let (oh, ow) = (s.out_height(), s.out_width());
    let mut y = vec![0.0; s.output_len()];
    for n in 0..s.batch {
        for i in 0..oh {
            for j in 0..ow {
                for o in 0..s.out_channels {
                    let mut acc = 0.0f64;
                    for kh in 0..s.kernel {
                        for kw in 0..s.kernel {
                            let (ih, iw) = (
                                (i * s.stride + kh) as isize - s.padding as isize,
                                (j * s.stride + kw) as isize - s.padding as isize,
                            );
                            if ih < 0
                                || iw < 0
                                || ih >= s.in_height as isize
                                || iw >= s.in_width as isize
                            {
                                continue;
                            }
                            let xb = ((n * s.in_height + ih as usize) * s.in_width + iw as usize)
                                * s.in_channels;
                            let wb = ((o * s.kernel + kh) * s.kernel + kw) * s.in_channels;
                            for c in 0..s.in_channels {
                                acc += x[xb + c] as f64 * w[wb + c] as f64;
                            }
                        }
                    }
                    y[((n * oh + i) * ow + j) * s.out_channels + o] = acc;
                }
            }
        }
    }
    y
}

/// Convolution backward: (dx, dw) for output gradient `dy`.
pub fn conv_backward(x: &[f32], w: &[f32], dy: &[f32], s: &Conv2dShape) -> (Vec<f64>, Vec<f64>) {
    let (oh, ow) = (s.out_height(), s.out_width());
    let mut dx = vec![0.0; s.input_len()];
    let mut dw = vec![0.0; s.weight_len()];
    for n in 0..s.batch {
        for i in 0..oh {
            for j in 0..ow {
                for o in 0..s.out_channels {
                    let g = dy[((n * oh + i) * ow + j) * s.out_channels + o] as f64;
                    for kh in 0..s.kernel {
                        for kw in 0..s.kernel {
                            let (ih, iw) = (
                                (i * s.stride + kh) as isize - s.padding as isize,
                                (j * s.stride + kw) as isize - s.padding as isize,
                            );
                            if ih < 0
                                || iw < 0
                                || ih >= s.in_height as isize
                                || iw >= s.in_width as isize
                            {
                                continue;
                            }
                            let xb = ((n * s.in_height + ih as usize) * s.in_width + iw as usize)
                                * s.in_channels;
                            let wb = ((o * s.kernel + kh) * s.kernel + kw) * s.in_channels;
                            for c in 0..s.in_channels {
                                dx[xb + c] += g * w[wb + c] as f64;
                                dw[wb + c] += g * x[xb + c] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw)
}

/// Per-channel (Σx, Σx²) of a `rows × channels` matrix.
pub fn channel_sums(x: &[f32], rows: usize, channels: usize) -> (Vec<f64>, Vec<f64>) {
    let mut s = vec![0.0; channels];
    let mut q = vec![0.0; channels];
    for r in 0..rows {
        for c in 0..channels {
            let v = x[r * channels + c] as f64;
            s[c] += v;
            q[c] += v * v;
        }
    }
    (s, q)
}

/// Per-channel (Σ(x-k), Σ(x-k)²) of a `rows × channels` matrix.
pub fn shifted_channel_sums(
    x: &[f32],
    rows: usize,
    channels: usize,
    k: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let mut s = vec![0.0; channels];
    let mut q = vec![0.0; channels];
    for r in 0..rows {
        for c in 0..channels {
            let d = x[r * channels + c] as f64 - k[c] as f64;
            s[c] += d;
            q[c] += d * d;
        }
    }
    (s, q)
}

/// Max pooling forward and the flat input index of each window's winner (first maximum,
/// a NaN wins).
pub fn max_pool(x: &[f32], s: &Pool2dShape) -> (Vec<f64>, Vec<usize>) {
    let (oh, ow) = (s.out_height(), s.out_width());
    let mut y = vec![0.0; s.output_len()];
    let mut arg = vec![0; s.output_len()];
    for n in 0..s.batch {
        for i in 0..oh {
            for j in 0..ow {
                for c in 0..s.channels {
                    let mut best = (f32::NEG_INFINITY, usize::MAX);
                    for kh in 0..s.kernel {
                        for kw in 0..s.kernel {
                            let (ih, iw) = (
                                (i * s.stride + kh) as isize - s.padding as isize,
                                (j * s.stride + kw) as isize - s.padding as isize,
                            );
                            if ih < 0
                                || iw < 0
                                || ih >= s.in_height as isize
                                || iw >= s.in_width as isize
                            {
                                continue;
                            }
                            let at = ((n * s.in_height + ih as usize) * s.in_width + iw as usize)
                                * s.channels
                                + c;
                            if best.1 == usize::MAX || x[at] > best.0 || x[at].is_nan() {
                                best = (x[at], at);
                            }
                        }
                    }
                    let o = ((n * oh + i) * ow + j) * s.channels + c;
                    y[o] = best.0 as f64;
                    arg[o] = best.1;
                }
            }
        }
    }
    (y, arg)
}
