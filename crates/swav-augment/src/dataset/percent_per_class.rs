//! A class-balanced share of a labelled dataset: the same percentage of every class, spread
//! evenly over each class's samples, the same on every run (the semi-supervised protocol's
//! 1 % and 10 % of the labels).

use crate::dataset::{Dataset, Subset};
use crate::error::ConfigError;

impl<D: Dataset> Subset<D> {
    /// `percent` % of each class of `source` (rounded, at least one image per class),
    /// evenly spaced over that class's samples in index order.
    pub fn percent_per_class(source: D, percent: f64) -> Result<Self, ConfigError> {
        if !(percent > 0.0 && percent <= 100.0) {
            return Err(ConfigError::new(
                "labels_percent",
                "must be above 0 and at most 100",
            ));
        }
        let classes = source.num_classes();
        if classes == 0 {
            return Err(ConfigError::new(
                "labels_percent",
                "a share of the labels needs labelled images; this dataset has no classes",
            ));
        }
        let mut members = vec![Vec::new(); classes];
        for index in 0..source.len() {
            if let Some(class) = source.label(index).and_then(|l| members.get_mut(l)) {
                class.push(index);
            }
        }
        let mut indices = Vec::new();
        for class in members.iter().filter(|m| !m.is_empty()) {
            let keep =
                ((percent / 100.0 * class.len() as f64).round() as usize).clamp(1, class.len());
            indices.extend((0..keep).map(|i| class[i * class.len() / keep]));
        }
        indices.sort_unstable();
        Ok(Self::new(source, indices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};

    #[test]
    fn takes_the_same_share_of_every_class_and_at_least_one() {
        let source = std::sync::Arc::new(
            SyntheticDataset::new(
                SyntheticConfig {
                    num_classes: 4,
                    images_per_class: 20,
                    ..SyntheticConfig::default()
                },
                SyntheticSplit::Train,
            )
            .expect("valid"),
        );
        let ten = Subset::percent_per_class(source.clone(), 10.0).expect("valid");
        assert_eq!(ten.class_counts(), vec![2, 2, 2, 2]);
        let one = Subset::percent_per_class(source.clone(), 1.0).expect("valid");
        assert_eq!(one.class_counts(), vec![1, 1, 1, 1]);
        let all = Subset::percent_per_class(source.clone(), 100.0).expect("valid");
        assert_eq!(all.len(), source.len());
        // Spread over each class, not its first images.
        let class0: Vec<usize> = (0..ten.len())
            .filter_map(|i| ten.source_index(i))
            .filter(|&i| source.label(i) == Some(0))
            .collect();
        let first0: Vec<usize> = (0..source.len())
            .filter(|&i| source.label(i) == Some(0))
            .collect();
        assert_eq!(class0, vec![first0[0], first0[10]]);
        for bad in [0.0, -1.0, 101.0, f64::NAN] {
            assert!(
                Subset::percent_per_class(source.clone(), bad).is_err(),
                "{bad}"
            );
        }
    }
}
