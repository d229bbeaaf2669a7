//! Weighted k-nearest-neighbour classification on frozen features (docs/algorithm.md §6.3): cosine
//! similarity, the top-k training neighbours of each test sample vote for their class with
//! weight `exp(similarity / T)` (T = 0.07, as solo-learn), for k = 20 and 200 by default.

use ndarray::{Array2, ArrayView2, Axis, s};

/// The default neighbour counts.
pub const DEFAULT_KS: [usize; 2] = [20, 200];
/// The default vote temperature.
pub const DEFAULT_TEMPERATURE: f32 = 0.07;

/// Top-1 accuracy for one neighbour count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnAccuracy {
    /// Neighbours that vote (capped at the training-set size).
    pub k: usize,
    /// Fraction of test samples whose predicted class is right.
    pub top1: f64,
}

/// Rows scaled to unit L2 norm (zero rows stay zero).
pub fn l2_normalized(features: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = features.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.mapv_inplace(|v| v / norm);
    }
    out
}

/// Classifies every test sample by a weighted vote of its nearest training samples and
/// returns the top-1 accuracy for each `k` in `ks`. Ties (equal similarity) are broken by
/// the lower training index, equal votes by the lower class, so results are deterministic.
pub fn knn_accuracy(
    train: ArrayView2<'_, f32>,
    train_labels: &[usize],
    test: ArrayView2<'_, f32>,
    test_labels: &[usize],
    classes: usize,
    ks: &[usize],
    temperature: f32,
) -> Vec<KnnAccuracy> {
    assert_eq!(
        train.nrows(),
        train_labels.len(),
        "one label per training row"
    );
    assert_eq!(test.nrows(), test_labels.len(), "one label per test row");
    let train = l2_normalized(train);
    let test = l2_normalized(test);
    let n_train = train.nrows();
    let ks: Vec<usize> = ks.iter().map(|&k| k.clamp(1, n_train.max(1))).collect();
    let k_max = ks.iter().copied().max().unwrap_or(1);
    let mut correct = vec![0usize; ks.len()];
    let chunk = 256;
    let mut order: Vec<usize> = Vec::with_capacity(n_train);
    let mut votes = vec![0.0f64; classes];
    for start in (0..test.nrows()).step_by(chunk) {
        let end = (start + chunk).min(test.nrows());
        let sims = test.slice(s![start..end, ..]).dot(&train.t());
        for (row, sim) in sims.axis_iter(Axis(0)).enumerate() {
            let by_similarity =
                |a: &usize, b: &usize| sim[*b].total_cmp(&sim[*a]).then_with(|| a.cmp(b));
            order.clear();
            order.extend(0..n_train);
            if k_max < n_train {
                order.select_nth_unstable_by(k_max - 1, by_similarity);
                order.truncate(k_max);
            }
            order.sort_unstable_by(by_similarity);
            for (slot, &k) in ks.iter().enumerate() {
                votes.iter_mut().for_each(|v| *v = 0.0);
                for &j in &order[..k] {
                    votes[train_labels[j]] += ((sim[j] / temperature) as f64).exp();
                }
                let predicted = votes
                    .iter()
                    .enumerate()
                    .fold(0, |best, (c, v)| if *v > votes[best] { c } else { best });
                if predicted == test_labels[start + row] {
                    correct[slot] += 1;
                }
            }
        }
    }
    ks.iter()
        .zip(correct)
        .map(|(&k, c)| KnnAccuracy {
            k,
            top1: if test.nrows() == 0 {
                0.0
            } else {
                c as f64 / test.nrows() as f64
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn separable_clusters_are_classified_perfectly() {
        let train = array![[1.0f32, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 0.8]];
        let test = array![[1.0f32, 0.05], [0.05, 1.0]];
        let acc = knn_accuracy(
            train.view(),
            &[0, 0, 1, 1],
            test.view(),
            &[0, 1],
            2,
            &[1, 2],
            0.07,
        );
        assert_eq!(
            acc,
            vec![
                KnnAccuracy { k: 1, top1: 1.0 },
                KnnAccuracy { k: 2, top1: 1.0 }
            ]
        );
    }

    #[test]
    fn closer_neighbours_outvote_farther_ones() {
        // One very close neighbour of class 1 against two distant ones of class 0.
        let train = array![[1.0f32, 0.0], [0.0, 1.0], [0.1, 1.0]];
        let test = array![[1.0f32, 0.01]];
        let acc = knn_accuracy(train.view(), &[1, 0, 0], test.view(), &[1], 2, &[3], 0.07);
        assert_eq!(acc[0].top1, 1.0);
        // Unweighted (huge temperature), the majority wins instead.
        let acc = knn_accuracy(train.view(), &[1, 0, 0], test.view(), &[1], 2, &[3], 1e6);
        assert_eq!(acc[0].top1, 0.0);
    }

    #[test]
    fn k_is_capped_at_the_training_set_size() {
        let train = array![[1.0f32, 0.0]];
        let test = array![[1.0f32, 0.0]];
        let acc = knn_accuracy(train.view(), &[0], test.view(), &[0], 1, &[200], 0.07);
        assert_eq!(acc[0].k, 1);
    }
}
