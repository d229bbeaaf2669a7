//! Some samples of a dataset, by index: what a class-balanced subset
//! ([`Subset::first_per_class`]) and an evenly spaced sample ([`Subset::evenly_spaced`])
//! both are.

use crate::dataset::Dataset;
use crate::error::DatasetError;
use crate::rgb_image::RgbImage;

/// The samples `indices` of `D`, in that order, with their labels and names.
#[derive(Debug, Clone)]
pub struct Subset<D> {
    source: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// The samples `indices` of `source`; an index past its end fails on [`Dataset::load`].
    pub fn new(source: D, indices: Vec<usize>) -> Self {
        Self { source, indices }
    }

    /// The index in the source dataset of subset sample `index`.
    pub fn source_index(&self, index: usize) -> Option<usize> {
        self.indices.get(index).copied()
    }

    /// Samples of each class of the source in the subset (empty for unlabelled data).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.source.num_classes()];
        for &i in &self.indices {
            if let Some(count) = self.source.label(i).and_then(|l| counts.get_mut(l)) {
                *count += 1;
            }
        }
        counts
    }
}

impl<D: Dataset> Dataset for Subset<D> {
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

    fn source_file(&self, index: usize) -> Option<&std::path::Path> {
        self.source.source_file(self.source_index(index)?)
    }
}
