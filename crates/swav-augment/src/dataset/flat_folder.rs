//! A folder of unlabelled images (any depth).

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::dataset::decode::load_image_file;
use crate::dataset::scan::{IMAGE_EXTENSIONS, image_files, require_folder};
use crate::error::DatasetError;
use crate::rgb_image::RgbImage;

/// Every image under a folder, recursively, in torchvision's walk order; no labels.
#[derive(Debug, Clone)]
pub struct FlatFolder {
    root: PathBuf,
    files: Vec<PathBuf>,
}

impl FlatFolder {
    /// Scans `root`. Fails if it is missing, is not a folder, or holds no image file.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let root = root.as_ref().to_path_buf();
        require_folder(&root)?;
        let files = image_files(&root)?;
        if files.is_empty() {
            return Err(DatasetError::NoImages {
                path: root,
                extensions: IMAGE_EXTENSIONS.join(", "),
            });
        }
        Ok(Self { root, files })
    }

    /// The dataset's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of sample `index`.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.files.get(index).map(PathBuf::as_path)
    }
}

impl Dataset for FlatFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn label(&self, _index: usize) -> Option<usize> {
        None
    }

    fn class_names(&self) -> &[String] {
        &[]
    }

    fn sample_name(&self, index: usize) -> String {
        self.path(index)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("<index {index} out of range>"))
    }

    fn load(&self, index: usize) -> Result<RgbImage, DatasetError> {
        let path = self.path(index).ok_or(DatasetError::IndexOutOfRange {
            index,
            len: self.files.len(),
        })?;
        load_image_file(path)
    }

    fn source_file(&self, index: usize) -> Option<&Path> {
        self.path(index)
    }
}
