//! Helpers shared by swav-core's integration tests.
#![allow(dead_code)]

pub use swav_core::SplitMix64;
use swav_core::{
    Collective, Real, SingleProcess, SinkhornConfig, SinkhornPath, SinkhornWorkspace, SliceOps,
    Stabilization, sinkhorn,
};

/// `n` values uniform in `[-1, 1)`.
pub fn uniform_vec(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// Row-normalised random matrix.
pub fn unit_rows(rng: &mut SplitMix64, rows: usize, cols: usize) -> Vec<f64> {
    let mut m = uniform_vec(rng, rows * cols);
    for r in m.chunks_mut(cols) {
        let n = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        r.iter_mut().for_each(|v| *v /= n);
    }
    m
}

/// Cosine scores of random unit embeddings against random unit prototypes.
pub fn cosine_scores(rng: &mut SplitMix64, rows: usize, cols: usize, dim: usize) -> Vec<f64> {
    let z = unit_rows(rng, rows, dim);
    let w = unit_rows(rng, cols, dim);
    let mut s = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            s[i * cols + j] = (0..dim).map(|d| z[i * dim + d] * w[j * dim + d]).sum();
        }
    }
    s
}

pub fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}

/// Runs Sinkhorn on one process with `SliceOps`.
pub fn run_sinkhorn<T: Real>(
    scores: &[T],
    rows: usize,
    cols: usize,
    epsilon: f64,
    iterations: usize,
    stabilization: Stabilization,
) -> (Vec<T>, SinkhornPath) {
    run_sinkhorn_with(
        &SingleProcess,
        scores,
        rows,
        cols,
        epsilon,
        iterations,
        stabilization,
    )
}

/// Runs Sinkhorn with `SliceOps` and a given collective.
pub fn run_sinkhorn_with<T: Real, C: Collective<Vec<T>>>(
    comm: &C,
    scores: &[T],
    rows: usize,
    cols: usize,
    epsilon: f64,
    iterations: usize,
    stabilization: Stabilization,
) -> (Vec<T>, SinkhornPath) {
    let mut ops = SliceOps;
    let config = SinkhornConfig {
        epsilon: T::of(epsilon),
        iterations,
        stabilization,
    };
    let mut ws = SinkhornWorkspace::new(&mut ops, rows, cols).unwrap();
    let mut codes = vec![T::zero(); rows * cols];
    let path = sinkhorn(
        &mut ops,
        comm,
        &scores.to_vec(),
        &config,
        &mut ws,
        &mut codes,
    )
    .map_err(|e| format!("{e:?}"))
    .unwrap();
    (codes, path)
}

/// Largest relative difference, with a floor on the denominator.
pub fn max_rel_diff(a: &[f64], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(floor))
        .fold(0.0, f64::max)
}

pub fn widen<T: Real>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64_lossless()).collect()
}
