//! A linear classifier on frozen features, as the official `eval_linear.py` (docs/algorithm.md
//! §6.2): `Linear(F, classes)` with weight ~ N(0, 0.01²) and zero bias, cross-entropy, SGD
//! with momentum 0.9 and weight decay, the learning rate annealed by a cosine per epoch to
//! 0, and the best validation top-1 over the epochs reported (`best_acc`).

use anyhow::Result;
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use swav_core::SplitMix64;

/// The classifier's training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeSettings {
    /// Epochs (official: 100).
    pub epochs: usize,
    /// Initial learning rate (official: 0.3).
    pub lr: f64,
    /// Weight decay (official: 1e-6).
    pub weight_decay: f64,
    /// SGD momentum (0.9).
    pub momentum: f64,
    /// Mini-batch size (official: 256).
    pub batch: usize,
    /// Seed of the initialisation and the shuffles.
    pub seed: u64,
}

/// The outcome of a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// Best validation top-1 over the epochs (what the official script reports).
    pub best_top1: f64,
    /// The epoch (from 0) that reached it.
    pub best_epoch: usize,
    /// Validation top-1 after every epoch.
    pub per_epoch: Vec<f64>,
}

/// Training features for one epoch: fixed features, or features of freshly augmented crops.
pub trait EpochFeatures {
    /// The features and labels to train on in `epoch`.
    fn features(&mut self, epoch: usize) -> Result<(ArrayView2<'_, f32>, &[usize])>;
}

/// The same features every epoch.
pub struct FixedFeatures<'a> {
    /// One row per image.
    pub values: ArrayView2<'a, f32>,
    /// Their labels.
    pub labels: &'a [usize],
}

impl EpochFeatures for FixedFeatures<'_> {
    fn features(&mut self, _epoch: usize) -> Result<(ArrayView2<'_, f32>, &[usize])> {
        Ok((self.values.view(), self.labels))
    }
}

/// Trains the classifier and evaluates it on `val` after every epoch.
pub fn train_probe(
    train: &mut dyn EpochFeatures,
    val: ArrayView2<'_, f32>,
    val_labels: &[usize],
    classes: usize,
    settings: ProbeSettings,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<ProbeResult> {
    let (mut weight, mut bias) = init_classifier(classes, val.ncols(), settings.seed);
    let dim = val.ncols();
    let mut weight_momentum = Array2::<f32>::zeros((classes, dim));
    let mut bias_momentum = Array1::<f32>::zeros(classes);
    let mut first_step = true;
    let mut per_epoch = Vec::with_capacity(settings.epochs);
    for epoch in 0..settings.epochs {
        let lr = 0.5
            * settings.lr
            * (1.0 + (std::f64::consts::PI * epoch as f64 / settings.epochs as f64).cos());
        let (x, labels) = train.features(epoch)?;
        let mut order: Vec<usize> = (0..x.nrows()).collect();
        shuffle(
            &mut order,
            settings.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        for chunk in order.chunks(settings.batch.max(1)) {
            let xb = x.select(Axis(0), chunk);
            let mut grad = xb.dot(&weight.t());
            grad += &bias;
            let chunk_labels: Vec<usize> = chunk.iter().map(|&i| labels[i]).collect();
            cross_entropy_backward(&mut grad, &chunk_labels);
            let mut gw = grad.t().dot(&xb);
            let mut gb = grad.sum_axis(Axis(0));
            gw.scaled_add(settings.weight_decay as f32, &weight);
            gb.scaled_add(settings.weight_decay as f32, &bias);
            let m = settings.momentum as f32;
            if first_step {
                weight_momentum.assign(&gw);
                bias_momentum.assign(&gb);
                first_step = false;
            } else {
                weight_momentum.zip_mut_with(&gw, |b, g| *b = m * *b + g);
                bias_momentum.zip_mut_with(&gb, |b, g| *b = m * *b + g);
            }
            weight.scaled_add(-(lr as f32), &weight_momentum);
            bias.scaled_add(-(lr as f32), &bias_momentum);
        }
        let top1 = accuracy(val, val_labels, &weight, &bias);
        on_epoch(epoch, top1);
        per_epoch.push(top1);
    }
    let (best_epoch, best_top1) =
        per_epoch
            .iter()
            .copied()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (e, a)| {
                if a > best.1 { (e, a) } else { best }
            });
    Ok(ProbeResult {
        best_top1,
        best_epoch,
        per_epoch,
    })
}

/// Top-1 accuracy of the classifier on `x`.
fn accuracy(
    x: ArrayView2<'_, f32>,
    labels: &[usize],
    weight: &Array2<f32>,
    bias: &Array1<f32>,
) -> f64 {
    if x.nrows() == 0 {
        return 0.0;
    }
    let mut correct = 0;
    for start in (0..x.nrows()).step_by(1024) {
        let end = (start + 1024).min(x.nrows());
        let mut logits = x.slice(s![start..end, ..]).dot(&weight.t());
        logits += bias;
        for (row, &label) in logits.axis_iter(Axis(0)).zip(&labels[start..end]) {
            let best = row
                .iter()
                .enumerate()
                .fold(0, |b, (i, v)| if *v > row[b] { i } else { b });
            correct += usize::from(best == label);
        }
    }
    correct as f64 / x.nrows() as f64
}

/// The mean cross-entropy of `logits` (one row per sample) against `labels`, with the
/// logits replaced by the loss's gradient with respect to them: `(softmax − onehot) / n`.
pub fn cross_entropy_backward(logits: &mut Array2<f32>, labels: &[usize]) -> f64 {
    let n = logits.nrows().max(1);
    let mut loss = 0.0;
    for (mut row, &label) in logits.axis_iter_mut(Axis(0)).zip(labels) {
        let max = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
        loss -= (row[label].max(f32::MIN_POSITIVE) as f64).ln();
        row[label] -= 1.0;
        row.mapv_inplace(|v| v / n as f32);
    }
    loss / n as f64
}

/// A `classes × dim` weight drawn from N(0, 0.01²) with `seed` and a zero bias: the
/// official `eval_linear.py` initialisation of a linear classifier.
pub fn init_classifier(classes: usize, dim: usize, seed: u64) -> (Array2<f32>, Array1<f32>) {
    let mut rng = SplitMix64::new(seed);
    let weight = Array2::from_shape_fn((classes, dim), |_| (0.01 * probe_normal(&mut rng)) as f32);
    (weight, Array1::zeros(classes))
}

/// A standard normal number for the classifier's initialisation: the cosine half of
/// Box-Muller on two uniforms at the midpoints `(k + ½)/2⁵³` of SplitMix64's 53-bit grid,
/// one number per pair (the stream the probe's results were fixed with, which differs from
/// [`SplitMix64::normal`]).
fn probe_normal(rng: &mut SplitMix64) -> f64 {
    let mut midpoint = || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u, v) = (midpoint(), midpoint());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn shuffle(order: &mut [usize], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_classes_are_learned() {
        // Three Gaussian-free clusters along the axes of R^3.
        let n = 90;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| {
            if i % 3 == j {
                1.0 + 0.01 * (i as f32)
            } else {
                0.1
            }
        });
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let settings = ProbeSettings {
            epochs: 20,
            lr: 0.3,
            weight_decay: 1e-6,
            momentum: 0.9,
            batch: 16,
            seed: 1,
        };
        let mut source = FixedFeatures {
            values: x.view(),
            labels: &labels,
        };
        let mut seen = 0;
        let result = train_probe(&mut source, x.view(), &labels, 3, settings, |_, _| {
            seen += 1
        })
        .unwrap();
        assert_eq!(seen, 20);
        assert_eq!(result.best_top1, 1.0);
        assert_eq!(result.per_epoch.len(), 20);
    }

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let logits =
            Array2::from_shape_vec((2, 3), vec![0.5f32, -1.0, 2.0, 0.0, 0.3, -0.2]).expect("shape");
        let labels = [2, 0];
        let mut grad = logits.clone();
        let loss = cross_entropy_backward(&mut grad, &labels);
        let h = 1e-3f32;
        for i in 0..2 {
            for j in 0..3 {
                let (mut plus, mut minus) = (logits.clone(), logits.clone());
                plus[[i, j]] += h;
                minus[[i, j]] -= h;
                let numeric = (cross_entropy_backward(&mut plus, &labels)
                    - cross_entropy_backward(&mut minus, &labels))
                    / (2.0 * h as f64);
                assert!((numeric - grad[[i, j]] as f64).abs() < 1e-4, "({i}, {j})");
            }
        }
        // Row 0: -ln softmax(0.5, -1, 2)[2]; row 1: -ln softmax(0, 0.3, -0.2)[0].
        let expected = (0.2413_f64 + 1.1533) / 2.0;
        assert!((loss - expected).abs() < 1e-3, "{loss}");
    }
}
