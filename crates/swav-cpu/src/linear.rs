//! Fully connected layers (`y = x·Wᵀ + b`) and their gradients, as block-parallel products.

use crate::gemm::{self, par_gemm};

/// `y = x · wᵀ (+ bias)`; `x` is `rows × inp`, `w` is `out × inp`.
pub(crate) fn forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    inp: usize,
    out: usize,
    y: &mut [f32],
) {
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
pub(crate) fn backward_data(
    dy: &[f32],
    w: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
    dx: &mut [f32],
) {
    par_gemm(
        1.0,
        &gemm::rows(dy, rows, out),
        &gemm::rows(w, out, inp),
        0.0,
        gemm::rows_mut(dx, rows, inp),
    );
}

/// `dw += dyᵀ · x`; `dbias += Σ_rows dy` (summed in row order, then added).
pub(crate) fn backward_weight(
    dy: &[f32],
    x: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
) {
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
