//! A linear classifier on pooled trunk features, trained on the host while the trunk trains
//! on the device: the supervised yardstick's and the semi-supervised fine-tuning's head.

use ndarray::{Array2, ArrayView2};
use swav_core::{Lars, LarsParam, MomentumState, ParamKind, SliceOps};

use super::linear_probe::{cross_entropy_backward, init_classifier};

/// A linear classifier on pooled trunk features, stepped on the host with the caller's
/// optimiser (LARC + SGD, or plain SGD).
pub struct Classifier {
    /// `classes × dim`, row-major.
    weight: Vec<f32>,
    shape: (usize, usize),
    bias: Vec<f32>,
    momentum: [Vec<f32>; 2],
    states: [MomentumState; 2],
}

impl Classifier {
    /// A classifier of `classes` outputs on `dim` features, initialised as the linear
    /// probe's.
    pub fn new(classes: usize, dim: usize, seed: u64) -> Self {
        let (weight, bias) = init_classifier(classes, dim, seed);
        Self {
            momentum: [vec![0.0; classes * dim], vec![0.0; classes]],
            states: [MomentumState::default(); 2],
            weight: weight.iter().copied().collect(),
            shape: (classes, dim),
            bias: bias.to_vec(),
        }
    }

    /// One step on `features` (rows × dim): returns the mean cross-entropy, the accuracy of
    /// the rows, and the loss's gradient with respect to the features.
    pub fn step(
        &mut self,
        features: ArrayView2<'_, f32>,
        labels: &[usize],
        lars: &Lars<f32>,
        lr: f32,
    ) -> (f64, f64, Array2<f32>) {
        let weight = ArrayView2::from_shape(self.shape, &self.weight).expect("classes × dim");
        let mut logits = self.logits(features);
        let correct = top_k_hits(logits.view(), labels, 1);
        let loss = cross_entropy_backward(&mut logits, labels);
        let d_features = logits.dot(&weight);
        let grad_weight: Vec<f32> = logits.t().dot(&features).iter().copied().collect();
        let grad_bias = logits.sum_axis(ndarray::Axis(0)).to_vec();
        {
            let [m_weight, m_bias] = &mut self.momentum;
            let [s_weight, s_bias] = &mut self.states;
            let mut table = [
                LarsParam {
                    param: &mut self.weight,
                    grad: Some(&grad_weight),
                    momentum: m_weight,
                    state: s_weight,
                    kind: ParamKind::Weight,
                },
                LarsParam {
                    param: &mut self.bias,
                    grad: Some(&grad_bias),
                    momentum: m_bias,
                    state: s_bias,
                    kind: ParamKind::BiasOrNorm,
                },
            ];
            let Ok(()) = lars.step_all(&mut SliceOps, &mut table, lr);
        }
        (
            loss,
            correct as f64 / labels.len().max(1) as f64,
            d_features,
        )
    }

    /// The logits of `features` (rows × dim): rows × classes.
    pub fn logits(&self, features: ArrayView2<'_, f32>) -> Array2<f32> {
        let weight = ArrayView2::from_shape(self.shape, &self.weight).expect("classes × dim");
        let mut logits = features.dot(&weight.t());
        for mut row in logits.rows_mut() {
            row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b);
        }
        logits
    }
}

/// How many rows of `logits` have their label among their `k` highest scores (ties go to
/// the lower class index, as a stable sort would).
pub fn top_k_hits(logits: ArrayView2<'_, f32>, labels: &[usize], k: usize) -> usize {
    logits
        .rows()
        .into_iter()
        .zip(labels)
        .filter(|(row, label)| {
            let own = row[**label];
            let above = row
                .iter()
                .enumerate()
                .filter(|&(i, &v)| v > own || (v == own && i < **label))
                .count();
            above < k
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_counts_labels_among_the_highest_scores() {
        let logits = ndarray::array![[0.1f32, 0.9, 0.5], [0.7, 0.2, 0.1], [0.3, 0.3, 0.9]];
        let labels = [2, 0, 1];
        assert_eq!(top_k_hits(logits.view(), &labels, 1), 1);
        assert_eq!(top_k_hits(logits.view(), &labels, 2), 2);
        assert_eq!(top_k_hits(logits.view(), &labels, 3), 3);
    }
}
