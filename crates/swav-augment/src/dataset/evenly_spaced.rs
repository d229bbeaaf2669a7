//! At most `N` samples of a dataset, evenly spaced over its indices: a label-free,
//! seed-free sample of the whole dataset (every class of a dataset stored class by class
//! is represented), the same on every run.

use crate::dataset::{Dataset, Subset};

impl<D: Dataset> Subset<D> {
    /// At most `n` samples of `source`: samples `⌊i · len / n⌋` for `i < n` (all of it when
    /// it has at most `n`).
    pub fn evenly_spaced(source: D, n: usize) -> Self {
        let len = n.min(source.len());
        let indices = (0..len).map(|i| i * source.len() / len).collect();
        Self::new(source, indices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};

    #[test]
    fn takes_evenly_spaced_indices_and_all_of_a_small_dataset() {
        let source = std::sync::Arc::new(
            SyntheticDataset::new(
                SyntheticConfig {
                    num_classes: 4,
                    images_per_class: 5,
                    ..SyntheticConfig::default()
                },
                SyntheticSplit::Train,
            )
            .expect("valid"),
        );
        let n = source.len();
        let spaced = Subset::evenly_spaced(source.clone(), 4);
        assert_eq!(spaced.len(), 4);
        let picked: Vec<usize> = (0..4).filter_map(|i| spaced.source_index(i)).collect();
        assert_eq!(picked, vec![0, n / 4, n / 2, 3 * n / 4]);
        assert_eq!(spaced.source_index(4), None);
        assert!(spaced.load(4).is_err());
        assert_eq!(spaced.sample_name(1), source.sample_name(n / 4));
        let all = Subset::evenly_spaced(source.clone(), 1000);
        assert_eq!(all.len(), n);
        assert_eq!(all.source_index(n - 1), Some(n - 1));
    }
}
