//! Fully connected layers (`y = x·Wᵀ + b`) and their gradients, as block-parallel products.

use core::convert::Infallible;

use swav_nn::{LinearOps, LinearShape};

use crate::CpuBackend;
use crate::gemm::{self, par_gemm};
use crate::profile::OpScope;

impl LinearOps for CpuBackend {
    fn linear_forward(
        &mut self,
        x: &Vec<f32>,
        weight: &Vec<f32>,
        bias: Option<&Vec<f32>>,
        shape: &LinearShape,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let flops = 2.0 * shape.macs() as f64;
        let _op = OpScope::new(&mut self.profile, "linear_forward", flops);
        forward(x, weight, bias.map(|b| &b[..]), shape, y);
        Ok(())
    }

    fn linear_backward_data(
        &mut self,
        dy: &Vec<f32>,
        weight: &Vec<f32>,
        shape: &LinearShape,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let flops = 2.0 * shape.macs() as f64;
        let _op = OpScope::new(&mut self.profile, "linear_backward_data", flops);
        backward_data(dy, weight, shape, dx);
        Ok(())
    }

    fn linear_backward_weight(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        shape: &LinearShape,
        dweight: &mut Vec<f32>,
        dbias: Option<&mut Vec<f32>>,
    ) -> Result<(), Infallible> {
        let flops = 2.0 * shape.macs() as f64;
        let _op = OpScope::new(&mut self.profile, "linear_backward_weight", flops);
        backward_weight(dy, x, shape, dweight, dbias.map(|b| &mut b[..]));
        Ok(())
    }
}

/// `y = x · wᵀ (+ bias)`; `x` is `rows × inp`, `w` is `out × inp`.
fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, shape: &LinearShape, y: &mut [f32]) {
    let (rows, inp, out) = (shape.rows, shape.in_features, shape.out_features);
    let y = &mut y[..rows * out];
    let beta = match bias {
        Some(b) => {
            for row in y.chunks_exact_mut(out) {
                row.copy_from_slice(&b[..out]);
            }
            1.0
        }
        None => 0.0,
    };
    par_gemm(
        1.0,
        &gemm::rows(x, rows, inp),
        &gemm::view(w, inp, out, 1, inp),
        beta,
        gemm::rows_mut(y, rows, out),
    );
}

/// `dx = dy · w`.
fn backward_data(dy: &[f32], w: &[f32], shape: &LinearShape, dx: &mut [f32]) {
    let (rows, inp, out) = (shape.rows, shape.in_features, shape.out_features);
    par_gemm(
        1.0,
        &gemm::rows(dy, rows, out),
        &gemm::rows(w, out, inp),
        0.0,
        gemm::rows_mut(dx, rows, inp),
    );
}

/// `dw += dyᵀ · x`; `dbias += Σ_rows dy` (summed in row order, then added).
fn backward_weight(
    dy: &[f32],
    x: &[f32],
    shape: &LinearShape,
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
) {
    let (rows, inp, out) = (shape.rows, shape.in_features, shape.out_features);
    par_gemm(
        1.0,
        &gemm::view(dy, out, rows, 1, out),
        &gemm::rows(x, rows, inp),
        1.0,
        gemm::rows_mut(dw, out, inp),
    );
    if let Some(db) = dbias {
        let mut sum = vec![0.0f32; out];
        for row in dy[..rows * out].chunks_exact(out) {
            sum.iter_mut().zip(row).for_each(|(s, &g)| *s += g);
        }
        db.iter_mut().zip(&sum).for_each(|(d, &s)| *d += s);
    }
}
