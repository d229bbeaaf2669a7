//! At most `N` samples of a dataset, evenly spaced over its indices: a label-free,
//! seed-free sample of the whole dataset (every class of a dataset stored class by class
//! is represented), the same on every run.

use crate::dataset::Dataset;
use crate::error::DatasetError;
use crate::rgb_image::RgbImage;

/// Samples `⌊i · len / n⌋` for `i < n` of `D` (all of `D` when it has at most `n`).
#[derive(Debug, Clone)]
pub struct EvenlySpaced<D> {
    source: D,
    len: usize,
}

impl<D: Dataset> EvenlySpaced<D> {
    /// At most `n` samples of `source`.
    pub fn new(source: D, n: usize) -> Self {
        let len = n.min(source.len());
        Self { source, len }
    }

    /// The index in the source dataset of sample `index`.
    pub fn source_index(&self, index: usize) -> Option<usize> {
        (index < self.len).then(|| index * self.source.len() / self.len)
    }
}

impl<D: Dataset> Dataset for EvenlySpaced<D> {
    fn len(&self) -> usize {
        self.len
    }

    fn label(&self, index: usize) -> Option<usize> {
        self.source_index(index).and_then(|i| self.source.label(i))
    }

    fn class_names(&self) -> &[String] {
        self.source.class_names()
    }

    fn sample_name(&self, index: usize) -> String {
        match self.source_index(index) {
            Some(i) => self.source.sample_name(i),
            None => format!("<index {index} out of range>"),
        }
    }

    fn load(&self, index: usize) -> Result<RgbImage, DatasetError> {
        let i = self
            .source_index(index)
            .ok_or(DatasetError::IndexOutOfRange {
                index,
                len: self.len,
            })?;
        self.source.load(i)
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
        let spaced = EvenlySpaced::new(source.clone(), 4);
        assert_eq!(spaced.len(), 4);
        let picked: Vec<usize> = (0..4).filter_map(|i| spaced.source_index(i)).collect();
        assert_eq!(picked, vec![0, n / 4, n / 2, 3 * n / 4]);
        assert_eq!(spaced.source_index(4), None);
        assert!(spaced.load(4).is_err());
        assert_eq!(spaced.sample_name(1), source.sample_name(n / 4));
        let all = EvenlySpaced::new(source.clone(), 1000);
        assert_eq!(all.len(), n);
        assert_eq!(all.source_index(n - 1), Some(n - 1));
    }
}
