//! torchvision's ImageFolder: `root/<class>/**/<image>`, classes sorted by folder name.

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::dataset::decode::load_image_file;
use crate::dataset::scan::{IMAGE_EXTENSIONS, image_files, require_folder, sub_folders};
use crate::error::DatasetError;
use crate::rgb_image::RgbImage;

/// A labelled dataset in the ImageFolder layout. Class `k` is the `k`-th sub-folder of the
/// root in name order; images are found recursively inside each class folder and ordered
/// as torchvision orders them, so indices and labels match PyTorch's ImageFolder. Files
/// directly in the root are ignored, as torchvision does.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, usize)>,
}

impl ImageFolder {
    /// Scans `root`. Fails if it is missing, is not a folder, has no class folders, or
    /// holds no image file at all.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let root = root.as_ref().to_path_buf();
        require_folder(&root)?;
        let mut classes = Vec::new();
        let mut samples = Vec::new();
        for folder in sub_folders(&root)? {
            let label = classes.len();
            classes.push(
                folder
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            samples.extend(image_files(&folder)?.into_iter().map(|p| (p, label)));
        }
        if samples.is_empty() {
            return Err(DatasetError::NoImages {
                path: root,
                extensions: IMAGE_EXTENSIONS.join(", "),
            });
        }
        Ok(Self {
            root,
            classes,
            samples,
        })
    }

    /// The dataset's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of sample `index`.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.samples.get(index).map(|(p, _)| p.as_path())
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn label(&self, index: usize) -> Option<usize> {
        self.samples.get(index).map(|&(_, label)| label)
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }

    fn sample_name(&self, index: usize) -> String {
        self.path(index)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("<index {index} out of range>"))
    }

    fn load(&self, index: usize) -> Result<RgbImage, DatasetError> {
        let path = self.path(index).ok_or(DatasetError::IndexOutOfRange {
            index,
            len: self.samples.len(),
        })?;
        load_image_file(path)
    }

    fn source_file(&self, index: usize) -> Option<&Path> {
        self.path(index)
    }
}
