//! Datasets: where samples come from, independent of how they are augmented.
//!
//! * [`ImageFolder`]: torchvision's ImageFolder layout (one sub-folder per class), labelled;
//! * [`FlatFolder`]: every image under a folder, unlabelled;
//! * [`IdxDataset`]: one split of an MNIST-format IDX folder (MNIST, Fashion-MNIST),
//!   labelled, greyscale;
//! * [`SyntheticDataset`]: procedural shapes generated on the fly, labelled, no files.
//!
//! All implement [`Dataset`], which is what the loaders and the trainer use;
//! a [`Subset`] takes some of their samples: the first N images of every class of a
//! labelled one ([`Subset::first_per_class`]), or at most N spread over any one, without
//! labels ([`Subset::evenly_spaced`]).

pub mod balanced_subset;
pub mod decode;
pub mod evenly_spaced;
pub mod export;
pub mod flat_folder;
pub mod idx;
pub mod image_folder;
pub mod jpeg_structure;
pub mod percent_per_class;
pub mod scan;
pub mod subset;
pub mod synthetic;

pub use flat_folder::FlatFolder;
pub use idx::{IdxDataset, IdxSplit, is_idx_folder};
pub use image_folder::ImageFolder;
pub use subset::Subset;
pub use synthetic::{SyntheticConfig, SyntheticDataset, SyntheticSplit};

use crate::error::DatasetError;
use crate::rgb_image::RgbImage;

/// A finite, indexable set of images with optional class labels.
///
/// Implementations are shared between loader threads, so `load` takes `&self`.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether the dataset has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class of sample `index`: `None` for unlabelled datasets or an index out of range.
    fn label(&self, index: usize) -> Option<usize>;

    /// Class names, indexed by label; empty for unlabelled datasets.
    fn class_names(&self) -> &[String];

    /// Number of classes (0 for unlabelled datasets).
    fn num_classes(&self) -> usize {
        self.class_names().len()
    }

    /// A human-readable name of sample `index` for messages: its path, or a synthetic id.
    fn sample_name(&self, index: usize) -> String;

    /// Decodes sample `index` to RGB8.
    fn load(&self, index: usize) -> Result<RgbImage, DatasetError>;

    /// The image file sample `index` is read from, for datasets of files (`None` for
    /// generated or packed ones).
    fn source_file(&self, _index: usize) -> Option<&std::path::Path> {
        None
    }
}

impl<D: Dataset + ?Sized> Dataset for std::sync::Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn label(&self, index: usize) -> Option<usize> {
        (**self).label(index)
    }
    fn class_names(&self) -> &[String] {
        (**self).class_names()
    }
    fn sample_name(&self, index: usize) -> String {
        (**self).sample_name(index)
    }
    fn load(&self, index: usize) -> Result<RgbImage, DatasetError> {
        (**self).load(index)
    }
    fn source_file(&self, index: usize) -> Option<&std::path::Path> {
        (**self).source_file(index)
    }
}
