//! Numbers that explain a collapse: how far the loss is from
//! `ln K`, how much the scores differ across prototypes, how alike the prototypes are, how
//! spread the embeddings are, and how large the last update was relative to the weights.
//!
//! [`SwavStep`](crate::SwavStep) measures them on this rank's batch, first assignment crop,
//! at iterations that ask for them only (they need host copies of the scores, embeddings
//! and prototypes).

use crate::update_sizes::UpdateSizes;

/// One logging iteration's view of the model's health.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Diagnostics {
    /// The loss minus `ln K`: about 0 for uniform predictions against uniform codes.
    pub loss_minus_ln_k: f64,
    /// The mean over samples of the standard deviation of a sample's scores (cosines with
    /// the prototypes) across prototypes. Divided by the temperature it is the spread of
    /// the softmax logits: near 0, every prediction is uniform.
    pub score_spread: f64,
    /// The mean cosine between two distinct prototypes: 1 when all point the same way.
    pub prototype_cosine: f64,
    /// The total variance of the batch's embeddings (the trace of their covariance; unit
    /// vectors, so at most 1): 0 when every image maps to the same point.
    pub embedding_variance: f64,
    /// Update norm over weight norm of the last step, per parameter group.
    pub relative_update: UpdateSizes,
}

/// The mean over the `rows` rows of `scores` (`rows × cols`) of each row's standard
/// deviation.
pub fn score_spread(scores: &[f32], rows: usize, cols: usize) -> f64 {
    assert_eq!(scores.len(), rows * cols, "scores size");
    if rows == 0 || cols == 0 {
        return 0.0;
    }
    let total: f64 = scores
        .chunks_exact(cols)
        .map(|row| {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / cols as f64;
            var.sqrt()
        })
        .sum();
    total / rows as f64
}

/// The mean cosine over all pairs of distinct rows of `w` (`k × d`).
pub fn mean_pairwise_cosine(w: &[f32], k: usize, d: usize) -> f64 {
    assert_eq!(w.len(), k * d, "prototypes size");
    if k < 2 {
        return 1.0;
    }
    // Σ_{i≠j} ŵᵢ·ŵⱼ = ‖Σ ŵᵢ‖² − Σ ‖ŵᵢ‖², with unit rows ŵ.
    let mut sum = vec![0.0f64; d];
    let mut unit_rows = 0usize;
    for row in w.chunks_exact(d) {
        let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        if norm > 0.0 {
            unit_rows += 1;
            sum.iter_mut()
                .zip(row)
                .for_each(|(s, &v)| *s += v as f64 / norm);
        }
    }
    let sum_sq: f64 = sum.iter().map(|s| s * s).sum();
    (sum_sq - unit_rows as f64) / (k * (k - 1)) as f64
}

/// The trace of the covariance of the `rows` rows of `z` (`rows × d`).
pub fn embedding_variance(z: &[f32], rows: usize, d: usize) -> f64 {
    assert_eq!(z.len(), rows * d, "embeddings size");
    if rows == 0 {
        return 0.0;
    }
    let mut mean = vec![0.0f64; d];
    for row in z.chunks_exact(d) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    let total: f64 = z
        .chunks_exact(d)
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, m)| (v as f64 - m).powi(2))
                .sum::<f64>()
        })
        .sum();
    total / rows as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_mean_row_standard_deviation() {
        // Row 0: values ±1 (std 1); row 1: constant (std 0).
        let scores = [1.0, -1.0, 1.0, -1.0, 0.3, 0.3, 0.3, 0.3];
        assert!((score_spread(&scores, 2, 4) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn pairwise_cosine_of_identical_orthogonal_and_opposite_prototypes() {
        let same = [1.0, 0.0, 2.0, 0.0, 0.5, 0.0];
        assert!((mean_pairwise_cosine(&same, 3, 2) - 1.0).abs() < 1e-12);
        let orthogonal = [1.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0];
        assert!(mean_pairwise_cosine(&orthogonal, 3, 4).abs() < 1e-12);
        // Two opposite prototypes: cosine -1.
        assert!((mean_pairwise_cosine(&[1.0, 1.0, -2.0, -2.0], 2, 2) + 1.0).abs() < 1e-12);
        // A brute-force mean over pairs agrees.
        let w = [0.6, 0.8, 1.0, 0.0, 0.0, 1.0, -0.6, 0.8];
        let unit: Vec<[f64; 2]> = w
            .chunks(2)
            .map(|r| {
                let n = ((r[0] * r[0] + r[1] * r[1]) as f64).sqrt();
                [r[0] as f64 / n, r[1] as f64 / n]
            })
            .collect();
        let mut pairs = Vec::new();
        for i in 0..4 {
            for j in 0..4 {
                if i != j {
                    pairs.push(unit[i][0] * unit[j][0] + unit[i][1] * unit[j][1]);
                }
            }
        }
        let brute = pairs.iter().sum::<f64>() / pairs.len() as f64;
        assert!((mean_pairwise_cosine(&w, 4, 2) - brute).abs() < 1e-7);
    }

    #[test]
    fn variance_is_zero_for_one_point_and_one_minus_mean_norm_for_unit_vectors() {
        assert_eq!(embedding_variance(&[0.6, 0.8, 0.6, 0.8], 2, 2), 0.0);
        // ±e₁: mean 0, so the trace is 1.
        assert!((embedding_variance(&[1.0, 0.0, -1.0, 0.0], 2, 2) - 1.0).abs() < 1e-12);
    }
}
