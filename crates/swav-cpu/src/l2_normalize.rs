//! Row-wise L2 normalisation (`F.normalize(dim=1)`) and its gradient.

use core::convert::Infallible;

use rayon::prelude::*;
use swav_nn::{L2NormalizeOps, L2NormalizeShape};

use crate::CpuBackend;
use crate::profile::OpScope;

/// Rows per task.
const ROWS_PER_TASK: usize = 16;

impl L2NormalizeOps for CpuBackend {
    fn l2_normalize_rows_forward(
        &mut self,
        x: &Vec<f32>,
        shape: &L2NormalizeShape,
        z: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "l2_normalize", 0.0);
        forward(x, shape, z);
        Ok(())
    }

    fn l2_normalize_rows_backward(
        &mut self,
        dz: &Vec<f32>,
        x: &Vec<f32>,
        z: &Vec<f32>,
        shape: &L2NormalizeShape,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "l2_normalize_backward", 0.0);
        backward(dz, x, z, shape, dx);
        Ok(())
    }
}

fn norm(row: &[f32]) -> f32 {
    row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32
}

/// `z = x / max(‖x‖, eps)` per row.
fn forward(x: &[f32], shape: &L2NormalizeShape, z: &mut [f32]) {
    let L2NormalizeShape { rows, cols, eps } = *shape;
    z[..rows * cols]
        .par_chunks_mut(ROWS_PER_TASK * cols)
        .zip(x[..rows * cols].par_chunks(ROWS_PER_TASK * cols))
        .for_each(|(z, x)| {
            for (zr, xr) in z.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
                let n = norm(xr).max(eps);
                zr.iter_mut().zip(xr).for_each(|(z, &x)| *z = x / n);
            }
        });
}

/// `dx = (dz - z·⟨z, dz⟩)/‖x‖`, or `dz/eps` where the norm was clamped.
fn backward(dz: &[f32], x: &[f32], z: &[f32], shape: &L2NormalizeShape, dx: &mut [f32]) {
    let L2NormalizeShape { rows, cols, eps } = *shape;
    let len = rows * cols;
    let chunk = ROWS_PER_TASK * cols;
    dx[..len]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, dx)| {
            let span = i * chunk..i * chunk + dx.len();
            let rows_in = dx.chunks_exact_mut(cols);
            let x = x[span.clone()].chunks_exact(cols);
            let z = z[span.clone()].chunks_exact(cols);
            let dz = dz[span].chunks_exact(cols);
            for (((dxr, xr), zr), dzr) in rows_in.zip(x).zip(z).zip(dz) {
                let n = norm(xr);
                if n > eps {
                    let dot = zr
                        .iter()
                        .zip(dzr)
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum::<f64>() as f32;
                    for c in 0..cols {
                        dxr[c] = (dzr[c] - zr[c] * dot) / n;
                    }
                } else {
                    dxr.iter_mut().zip(dzr).for_each(|(d, &g)| *d = g / eps);
                }
            }
        });
}
