//! `swav assign --embeddings E.npy --prototypes P.npy`: balanced soft (or hard) assignment
//! of any embeddings to any prototypes with SwAV's Sinkhorn-Knopp, computed in f64.

use std::path::Path;

use anyhow::{Result, bail};
use ndarray::{Array1, Array2, Axis};
use swav_core::{
    MatrixOps, SingleProcess, SinkhornConfig, SinkhornWorkspace, SliceOps, Stabilization, sinkhorn,
};

use crate::npy::{expect_cols, expect_finite_rows, read_matrix, write_indices, write_matrix};

/// The Sinkhorn settings of an assignment.
#[derive(Debug, Clone, Copy)]
pub struct AssignSettings {
    /// ε.
    pub epsilon: f64,
    /// Normalisation rounds.
    pub iterations: usize,
    /// L2-normalise both sides first.
    pub normalize: bool,
    /// Write arg-max indices instead of soft codes.
    pub hard: bool,
}

/// Reads the two matrices, assigns, and writes the result.
pub fn run(
    embeddings: &Path,
    prototypes: &Path,
    output: &Path,
    settings: AssignSettings,
) -> Result<()> {
    let z = read_matrix(embeddings)?;
    let w = read_matrix(prototypes)?;
    expect_cols(prototypes, &w, z.ncols(), "the prototype matrix")?;
    // Sinkhorn's first normalisation sums over every sample: one bad row would reach every
    // code, so bad rows are refused with their place, before any work.
    expect_finite_rows(embeddings, &z, "the embeddings")?;
    expect_finite_rows(prototypes, &w, "the prototypes")?;
    if z.nrows() == 0 || w.nrows() == 0 {
        bail!(
            "nothing to assign: {} embeddings, {} prototypes",
            z.nrows(),
            w.nrows()
        );
    }
    let codes = assign(&z, &w, settings)?;
    if settings.hard {
        write_indices(output, &hard_clusters(&codes))?;
    } else {
        write_matrix(output, &codes.mapv(|v| v as f32))?;
    }
    eprintln!(
        "assigned {} embeddings to {} prototypes -> {}",
        z.nrows(),
        w.nrows(),
        output.display()
    );
    Ok(())
}

/// Sinkhorn codes (`n × k`, rows summing to 1) of `z` against the prototypes `w`.
pub fn assign(z: &Array2<f64>, w: &Array2<f64>, settings: AssignSettings) -> Result<Array2<f64>> {
    let (n, k, d) = (z.nrows(), w.nrows(), z.ncols());
    let (z, w) = if settings.normalize {
        (unit_rows(z), unit_rows(w))
    } else {
        (z.clone(), w.clone())
    };
    let mut ops = SliceOps;
    let mut scores = vec![0.0f64; n * k];
    let zs: Vec<f64> = z.iter().copied().collect();
    let ws: Vec<f64> = w.iter().copied().collect();
    ops.matmul_nt(&zs, &ws, n, k, d, &mut scores)?;
    let config = SinkhornConfig {
        epsilon: settings.epsilon,
        iterations: settings.iterations,
        stabilization: Stabilization::Stable,
    };
    let mut workspace = SinkhornWorkspace::new(&mut ops, n, k)?;
    let mut codes = vec![0.0f64; n * k];
    sinkhorn(
        &mut ops,
        &SingleProcess,
        &scores,
        &config,
        &mut workspace,
        &mut codes,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Array2::from_shape_vec((n, k), codes).expect("n × k codes"))
}

/// The arg-max cluster of every row of the codes.
pub fn hard_clusters(codes: &Array2<f64>) -> Array1<i64> {
    codes
        .axis_iter(Axis(0))
        .map(|row| argmax(row.iter().copied()) as i64)
        .collect()
}

fn unit_rows(m: &Array2<f64>) -> Array2<f64> {
    let mut out = m.clone();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        row.mapv_inplace(|v| v / norm);
    }
    out
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn balanced_assignment_splits_points_between_prototypes() {
        let z = array![[1.0, 0.0], [0.9, 0.1], [0.8, 0.3], [0.7, 0.4]];
        let w = array![[1.0, 0.0], [0.0, 1.0]];
        let settings = AssignSettings {
            epsilon: 0.05,
            iterations: 50,
            normalize: true,
            hard: false,
        };
        let codes = assign(&z, &w, settings).unwrap();
        // All four points are nearer prototype 0, but the balance constraint gives half the
        // mass to prototype 1: the two points furthest from prototype 0 go there.
        let mass: Vec<f64> = (0..2).map(|j| codes.column(j).sum()).collect();
        assert!(
            (mass[0] - 2.0).abs() < 1e-2 && (mass[1] - 2.0).abs() < 1e-2,
            "{mass:?}"
        );
        assert!(codes[[0, 0]] > 0.99 && codes[[3, 1]] > 0.99);
    }
}
