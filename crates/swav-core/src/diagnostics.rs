//! Collapse diagnostics on host copies of the codes or scores.
//!
//! A SwAV run that collapses keeps its loss at `ln K` (uniform codes, uniform predictions),
//! or sends every sample to the same few prototypes. These measures make both visible.

use alloc::vec;

use crate::Real;

/// `ln K`: the loss of uniform codes against uniform predictions (8.0064 for K = 3000).
pub fn uniform_loss(prototypes: usize) -> f64 {
    num_traits::Float::ln(prototypes as f64)
}

/// Entropy (natural log) of the mean code over the `rows` samples of a `rows × cols` code
/// matrix: `ln K` when the batch uses all prototypes equally, 0 when all mass is on one.
pub fn mean_code_entropy<T: Real>(codes: &[T], rows: usize, cols: usize) -> f64 {
    assert_eq!(codes.len(), rows * cols, "codes size");
    if rows == 0 {
        return 0.0;
    }
    let mut mean = vec![0.0f64; cols];
    for row in codes.chunks_exact(cols) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += v.to_f64_lossless());
    }
    let total: f64 = mean.iter().sum();
    if total.partial_cmp(&0.0) != Some(core::cmp::Ordering::Greater) {
        return 0.0;
    }
    mean.iter()
        .map(|&m| m / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * num_traits::Float::ln(p))
        .sum()
}

/// The mean over samples of each sample's code entropy (natural log): `ln K` when every
/// sample is spread evenly over all prototypes (no signal for the loss), 0 when each sample
/// is assigned to one prototype. The entropy of the *mean* code cannot show this: Sinkhorn's
/// equipartition keeps it near `ln K` whatever the codes.
pub fn mean_sample_entropy<T: Real>(codes: &[T], rows: usize, cols: usize) -> f64 {
    assert_eq!(codes.len(), rows * cols, "codes size");
    if rows == 0 {
        return 0.0;
    }
    let total: f64 = codes
        .chunks_exact(cols)
        .map(|row| {
            let sum: f64 = row.iter().map(|v| v.to_f64_lossless()).sum();
            row.iter()
                .map(|v| v.to_f64_lossless() / sum)
                .filter(|&p| p > 0.0)
                .map(|p| -p * num_traits::Float::ln(p))
                .sum::<f64>()
        })
        .sum();
    total / rows as f64
}

/// The number of distinct prototypes that are the arg-max of at least one sample's row.
pub fn prototypes_in_use<T: Real>(values: &[T], rows: usize, cols: usize) -> usize {
    assert_eq!(values.len(), rows * cols, "values size");
    let mut used = vec![false; cols];
    for row in values.chunks_exact(cols) {
        let mut best = 0;
        for (j, v) in row.iter().enumerate() {
            if *v > row[best] {
                best = j;
            }
        }
        used[best] = true;
    }
    used.iter().filter(|&&u| u).count()
}

/// A summary of one iteration's signs of collapse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollapseReport {
    /// The swapped-prediction loss.
    pub loss: f64,
    /// `ln K`, the loss of a collapsed (uniform) solution.
    pub uniform_loss: f64,
    /// Entropy of the batch's mean code (`ln K` at best).
    pub mean_code_entropy: f64,
    /// Mean entropy of each sample's code (`ln K`: uniform codes, no learning signal).
    pub sample_code_entropy: f64,
    /// Distinct prototypes that win at least one sample.
    pub prototypes_in_use: usize,
}

impl CollapseReport {
    /// Builds the report from the loss and a host copy of one crop's codes.
    pub fn new<T: Real>(loss: f64, codes: &[T], rows: usize, cols: usize) -> Self {
        Self {
            loss,
            uniform_loss: uniform_loss(cols),
            mean_code_entropy: mean_code_entropy(codes, rows, cols),
            sample_code_entropy: mean_sample_entropy(codes, rows, cols),
            prototypes_in_use: prototypes_in_use(codes, rows, cols),
        }
    }

    /// `loss / ln K`: 1 at the uniform solution, falling as the model learns.
    pub fn loss_ratio(&self) -> f64 {
        self.loss / self.uniform_loss
    }

    /// Whether the loss sits within `tolerance` (relative) of `ln K`.
    pub fn at_uniform_loss(&self, tolerance: f64) -> bool {
        (self.loss_ratio() - 1.0).abs() <= tolerance
    }
}
