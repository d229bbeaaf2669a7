//! Sinkhorn at 4096 × 3000 (3 iterations, f32) and the swapped-prediction loss with its
//! gradient for 8 crops × 64 images × 3000 prototypes, on `SliceOps` (one thread).
//!
//! `python scripts/bench/core_vs_torch.py` runs this and the same work in PyTorch and numpy
//! in one go and prints the ratios.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use swav_core::{
    LossWorkspace, SingleProcess, SinkhornConfig, SinkhornWorkspace, SliceOps, Stabilization,
    SwappedPrediction, sinkhorn, swapped_prediction_loss,
};

/// Deterministic cosine-like scores in [-1, 1] (a cheap hash; the values only need to be
/// realistic in range for the exponentials).
fn scores(rows: usize, cols: usize, salt: u64) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| {
            let mut z = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
            z = (z ^ (z >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^= z >> 32;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 1.6 - 0.8
        })
        .collect()
}

fn bench_sinkhorn(c: &mut Criterion) {
    let (n, k) = (4096, 3000);
    let s = scores(n, k, 1);
    let mut ops = SliceOps;
    let mut ws = SinkhornWorkspace::new(&mut ops, n, k).unwrap();
    let mut codes = vec![0.0f32; n * k];
    for (name, stabilization) in [
        ("sinkhorn_4096x3000_plain", Stabilization::Plain),
        ("sinkhorn_4096x3000_stable", Stabilization::Stable),
    ] {
        let config = SinkhornConfig {
            epsilon: 0.05,
            iterations: 3,
            stabilization,
        };
        c.bench_function(name, |b| {
            b.iter(|| {
                sinkhorn(
                    &mut ops,
                    &SingleProcess,
                    black_box(&s),
                    &config,
                    &mut ws,
                    &mut codes,
                )
                .unwrap();
            })
        });
    }
}

fn bench_loss(c: &mut Criterion) {
    let (bs, crops, k) = (64, 8, 3000);
    let assign = [0, 1];
    let layout = SwappedPrediction {
        batch: bs,
        crops,
        prototypes: k,
        crops_for_assign: &assign,
        temperature: 0.1f32,
    };
    let s = scores(bs * crops, k, 2);
    let codes: Vec<Vec<f32>> = (0..2)
        .map(|i| {
            let mut q = scores(bs, k, 3 + i)
                .iter()
                .map(|v| v.abs())
                .collect::<Vec<f32>>();
            for row in q.chunks_mut(k) {
                let t: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= t);
            }
            q
        })
        .collect();
    let mut ops = SliceOps;
    let mut ws = LossWorkspace::new(&mut ops, &layout).unwrap();
    let mut grad = vec![0.0f32; s.len()];
    c.bench_function("loss_and_grad_8x64x3000", |b| {
        b.iter(|| {
            swapped_prediction_loss(
                &mut ops,
                &layout,
                black_box(&s),
                &codes,
                &mut ws,
                Some(&mut grad),
            )
            .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(6));
    targets = bench_sinkhorn, bench_loss
}
criterion_main!(benches);
