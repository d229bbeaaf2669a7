//! A class-balanced subset of a labelled dataset: the first `N` samples of every class, in
//! the dataset's own order (file order for IDX files, torchvision's order for an
//! ImageFolder). The choice is deterministic and needs no seed, so a subset is the same
//! on every rank, every run and in PyTorch (`first N indices of each class`).

use crate::dataset::{Dataset, Subset};
use crate::error::ConfigError;

impl<D: Dataset> Subset<D> {
    /// The first `per_class` samples of every class of `source`, in index order. A class
    /// with fewer samples contributes all of them ([`Subset::class_counts`] tells). Fails
    /// if `per_class` is 0 or `source` is unlabelled.
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
        let mut taken = vec![0; classes];
        let mut indices = Vec::with_capacity(per_class.saturating_mul(classes).min(source.len()));
        for index in 0..source.len() {
            if let Some(count) = source.label(index).and_then(|l| taken.get_mut(l))
                && *count < per_class
            {
                *count += 1;
                indices.push(index);
            }
        }
        Ok(Self::new(source, indices))
    }
}
