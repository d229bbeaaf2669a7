//! Shared by swav-cuda's GPU tests: opening the GPU (or skipping), deterministic data and
//! comparisons.
#![allow(dead_code)]

use swav_core::{BufferOps, SplitMix64};
use swav_cuda::{CudaBackend, CudaBuffer, CudaConfig, Precision};

/// A backend on GPU 0 with `precision`, or `None` (after saying why) where this machine has
/// no driver or no GPU ([`CudaBackend::open_gpu_0_or_skip`]).
pub fn gpu(precision: Precision) -> Option<CudaBackend> {
    CudaBackend::open_gpu_0_or_skip(CudaConfig {
        precision,
        ..CudaConfig::default()
    })
}

/// Deterministic test data from one SplitMix64 stream.
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }
    /// Uniform in `[-1, 1)`.
    pub fn uniform(&mut self) -> f32 {
        self.0.uniform(-1.0, 1.0) as f32
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
