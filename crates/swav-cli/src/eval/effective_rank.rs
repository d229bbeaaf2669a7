//! The effective rank of a set of embeddings (RankMe, Garrido et al., ICML 2023): the
//! exponential of the entropy of the normalised singular values. It needs no labels; a
//! network whose features span more directions of their space scores higher, and a collapsed
//! one (every image mapped to the same few directions) scores near 1.
//!
//! The singular values of the `n × d` feature matrix `F` are the square roots of the
//! eigenvalues of the `d × d` Gram matrix `FᵀF`, found here by cyclic Jacobi rotations in
//! f64 (exact enough for `d` in the hundreds, and free of any linear-algebra dependency).

use ndarray::{Array2, ArrayView2};

/// RankMe's ε: keeps `p log p` finite for zero singular values.
const EPSILON: f64 = 1e-7;

/// Jacobi sweeps at most; each sweep rotates every off-diagonal pair once.
const MAX_SWEEPS: usize = 60;

/// The effective rank of the rows of `features` (`n × d`), between 1 and `min(n, d)`; 0 for
/// an empty or all-zero matrix.
pub fn effective_rank(features: ArrayView2<'_, f32>) -> f64 {
    let singular = singular_values(features);
    let total: f64 = singular.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return 0.0;
    }
    let entropy: f64 = singular
        .iter()
        .map(|s| {
            let p = s / total + EPSILON;
            -p * p.ln()
        })
        .sum();
    entropy.exp()
}

/// The singular values of `features`, in no particular order.
pub fn singular_values(features: ArrayView2<'_, f32>) -> Vec<f64> {
    let f = features.mapv(f64::from);
    let gram = f.t().dot(&f);
    symmetric_eigenvalues(gram)
        .into_iter()
        .map(|l| l.max(0.0).sqrt())
        .collect()
}

/// The eigenvalues of the symmetric matrix `a` by the cyclic Jacobi method.
fn symmetric_eigenvalues(mut a: Array2<f64>) -> Vec<f64> {
    let d = a.nrows();
    let scale: f64 = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[[i, j]] * a[[i, j]])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-14 * scale || off == 0.0 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                if a[[p, q]].abs() > 0.0 {
                    rotate(&mut a, p, q);
                }
            }
        }
    }
    (0..d).map(|i| a[[i, i]]).collect()
}

/// One Jacobi rotation that zeroes `a[p][q]` (and `a[q][p]`).
fn rotate(a: &mut Array2<f64>, p: usize, q: usize) {
    let (app, aqq, apq) = (a[[p, p]], a[[q, q]], a[[p, q]]);
    let theta = (aqq - app) / (2.0 * apq);
    // `signum` is 1 at 0, so equal diagonal entries rotate by 45°.
    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
    let c = 1.0 / (t * t + 1.0).sqrt();
    let s = t * c;
    for k in 0..a.nrows() {
        let (akp, akq) = (a[[k, p]], a[[k, q]]);
        a[[k, p]] = c * akp - s * akq;
        a[[k, q]] = s * akp + c * akq;
    }
    for k in 0..a.ncols() {
        let (apk, aqk) = (a[[p, k]], a[[q, k]]);
        a[[p, k]] = c * apk - s * aqk;
        a[[q, k]] = s * apk + c * aqk;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn eigenvalues_of_a_known_symmetric_matrix() {
        // Eigenvalues 1, 2 and 4 (the matrix is Q diag(1, 2, 4) Qᵀ for a rotation Q).
        let a = array![[2.0, 0.0, 0.0], [0.0, 2.5, 1.5], [0.0, 1.5, 2.5]];
        let mut e = symmetric_eigenvalues(a);
        e.sort_by(f64::total_cmp);
        for (got, want) in e.iter().zip([1.0, 2.0, 4.0]) {
            assert!((got - want).abs() < 1e-12, "{e:?}");
        }
    }

    #[test]
    fn singular_values_match_a_diagonal_matrix_under_a_rotation() {
        // F = diag(3, 2, 1) rotated on the right by 45° in its first two columns.
        let (c, s) = (0.5f32.sqrt(), 0.5f32.sqrt());
        let f = array![
            [3.0 * c, -3.0 * s, 0.0],
            [2.0 * s, 2.0 * c, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0]
        ];
        let mut sv = singular_values(f.view());
        sv.sort_by(f64::total_cmp);
        for (got, want) in sv.iter().zip([1.0, 2.0, 3.0]) {
            assert!((got - want).abs() < 1e-5, "{sv:?}");
        }
    }

    #[test]
    fn equal_singular_values_give_the_full_rank_and_one_direction_gives_one() {
        let identity = Array2::<f32>::eye(16);
        assert!((effective_rank(identity.view()) - 16.0).abs() < 1e-3);
        // Every row the same vector: one direction.
        let collapsed = Array2::from_shape_fn((50, 16), |(_, j)| j as f32 + 1.0);
        assert!((effective_rank(collapsed.view()) - 1.0).abs() < 1e-3);
        assert_eq!(effective_rank(Array2::<f32>::zeros((4, 3)).view()), 0.0);
    }

    #[test]
    fn the_rank_lies_between_the_extremes_for_uneven_spectra() {
        // Singular values 4, 2, 1, 1: entropy of (0.5, 0.25, 0.125, 0.125) = 1.75 ln 2.
        let f = Array2::from_diag(&array![4.0f32, 2.0, 1.0, 1.0]);
        let want = (1.75 * 2f64.ln()).exp();
        assert!((effective_rank(f.view()) - want).abs() < 1e-4);
    }
}
