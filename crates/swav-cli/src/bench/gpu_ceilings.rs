//! The two ceilings of a GPU, measured in the same run as the benchmark they put in
//! context (docs/performance.md, "Measuring on a GPU"): the device-to-device copy rate and
//! the bf16 matrix-product rate, both through the CUDA backend.

use std::time::Instant;

use swav_cuda::{CudaBackend, CudaError, DType};
use swav_nn::prelude::*;
use swav_nn::{LinearShape, hashed_uniform};

/// What the device reaches at best.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuCeilings {
    /// A 1 GiB device-to-device copy: (bytes read + bytes written) per second, in TB/s.
    pub copy_tb_s: f64,
    /// An 8192³ product of random bf16 matrices with f32 accumulation, in TFLOP/s.
    pub bf16_matmul_tflops: f64,
}

impl GpuCeilings {
    /// Measures both (a few seconds); the memory is freed before returning.
    pub fn measure(b: &mut CudaBackend) -> Result<Self, CudaError> {
        let ceilings = Self {
            copy_tb_s: copy_rate(b)?,
            bf16_matmul_tflops: matmul_rate(b)?,
        };
        b.synchronize()?;
        Ok(ceilings)
    }
}

/// Seconds per call of `work`, over `reps` calls after one untimed call.
fn seconds_per_call(
    b: &mut CudaBackend,
    reps: usize,
    mut work: impl FnMut(&mut CudaBackend) -> Result<(), CudaError>,
) -> Result<f64, CudaError> {
    work(b)?;
    b.synchronize()?;
    let start = Instant::now();
    for _ in 0..reps {
        work(b)?;
    }
    b.synchronize()?;
    Ok(start.elapsed().as_secs_f64() / reps as f64)
}

fn copy_rate(b: &mut CudaBackend) -> Result<f64, CudaError> {
    let n = 1usize << 28; // 1 GiB of f32
    let src = b.zeros(n)?;
    let mut dst = b.zeros(n)?;
    let seconds = seconds_per_call(b, 20, |b| b.copy(&src, 0, &mut dst, 0, n))?;
    Ok(2.0 * (n * 4) as f64 / seconds / 1e12)
}

fn matmul_rate(b: &mut CudaBackend) -> Result<f64, CudaError> {
    let n = 8192;
    let values: Vec<f32> = (0..(n * n) as u64)
        .map(|i| hashed_uniform(0xCE11, i))
        .collect();
    let mut x = b.alloc(n * n, DType::Bf16)?;
    b.upload(&values, &mut x, 0)?;
    // An f32 weight: the product reads its bf16 copy, made once, as in training.
    let mut w = b.zeros(n * n)?;
    b.upload(&values, &mut w, 0)?;
    let mut y = b.alloc(n * n, DType::Bf16)?;
    let shape = LinearShape {
        rows: n,
        in_features: n,
        out_features: n,
    };
    let seconds = seconds_per_call(b, 10, |b| b.linear_forward(&x, &w, None, &shape, &mut y))?;
    Ok(2.0 * (n as f64).powi(3) / seconds / 1e12)
}
