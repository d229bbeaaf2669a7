//! A class-balanced subset of a labelled dataset: the first `N` samples of every class, in
//! the dataset's own order (file order for IDX files, torchvision's order for an
//! ImageFolder). The choice is deterministic and needs no seed, so a subset is the same
//! on every rank, every run and in PyTorch (`first N indices of each class`).

use crate::dataset::Dataset;
use crate::error::{ConfigError, DatasetError};
use crate::rgb_image::RgbImage;

/// The first `per_class` samples of each class of `D`, in index order. A class with fewer
/// samples contributes all of them ([`Self::class_counts`] tells).
#[derive(Debug, Clone)]
pub struct BalancedSubset<D> {
    source: D,
    indices: Vec<usize>,
    class_counts: Vec<usize>,
}

impl<D: Dataset> BalancedSubset<D> {
    /// Picks the first `per_class` samples of every class of `source`. Fails if
    /// `per_class` is 0 or `source` is unlabelled.
    pub fn first_per_class(source: D, per_class: usize) -> Result<Self, ConfigError> {
        if per_class == 0 {
            return Err(ConfigError::new("images_per_class", "must be at least 1"));
        }
        let classes = source.num_classes();
        if classes == 0 {
            return Err(ConfigError::new(
                "images_per_class",
                "a class-balanced subset needs labelled images; this dataset has no classes",
            ));
        }
        let mut class_counts = vec![0; classes];
        let mut indices = Vec::with_capacity(per_class.saturating_mul(classes).min(source.len()));
        for index in 0..source.len() {
            if let Some(count) = source.label(index).and_then(|l| class_counts.get_mut(l))
                && *count < per_class
            {
                *count += 1;
                indices.push(index);
            }
        }
        Ok(Self {
            source,
            indices,
            class_counts,
        })
    }

    /// Samples taken from each class (at most the requested number).
    pub fn class_counts(&self) -> &[usize] {
        &self.class_counts
    }

    /// The index in the source dataset of subset sample `index`.
    pub fn source_index(&self, index: usize) -> Option<usize> {
        self.indices.get(index).copied()
    }
}

impl<D: Dataset> Dataset for BalancedSubset<D> {
    fn len(&self) -> usize {
        self.indices.len()
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
                len: self.len(),
            })?;
        self.source.load(i)
    }
}
