//! Writing any dataset to disk as an image folder (ImageFolder layout when labelled), so
//! the folder code paths can be exercised end to end on the synthetic dataset.

use std::path::{Path, PathBuf};

use image::ImageEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::DatasetError;
use crate::rgb_image::RgbImage;

/// The file format of exported images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// Lossless PNG.
    Png,
    /// JPEG at the given quality (1..=100).
    Jpeg {
        /// Encoder quality.
        quality: u8,
    },
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Png => "png",
            ExportFormat::Jpeg { .. } => "jpg",
        }
    }
}

/// The path sample `index` is written to under `root`: `root/<class>/<index>.<ext>` for a
/// labelled dataset, `root/<index>.<ext>` otherwise (index zero-padded to 7 digits).
pub fn export_path(
    dataset: &dyn Dataset,
    root: &Path,
    index: usize,
    format: ExportFormat,
) -> PathBuf {
    let file = format!("{index:07}.{}", format.extension());
    match dataset
        .label(index)
        .and_then(|l| dataset.class_names().get(l))
    {
        Some(class) => root.join(class).join(file),
        None => root.join(file),
    }
}

/// Writes every sample of `dataset` under `root` (created if needed), in parallel.
/// Returns the number of files written.
pub fn export_image_folder(
    dataset: &dyn Dataset,
    root: &Path,
    format: ExportFormat,
) -> Result<usize, DatasetError> {
    let write_error = |path: &Path, reason: String| DatasetError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let mut folders = vec![root.to_path_buf()];
    folders.extend(dataset.class_names().iter().map(|c| root.join(c)));
    for folder in &folders {
        std::fs::create_dir_all(folder).map_err(|e| write_error(folder, e.to_string()))?;
    }
    (0..dataset.len()).into_par_iter().try_for_each(|index| {
        let image = dataset.load(index)?;
        let path = export_path(dataset, root, index, format);
        let bytes = encode(&image, format).map_err(|e| write_error(&path, e))?;
        std::fs::write(&path, bytes).map_err(|e| write_error(&path, e.to_string()))
    })?;
    Ok(dataset.len())
}

/// `image` encoded as a file of `format`.
pub(crate) fn encode(image: &RgbImage, format: ExportFormat) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let encoded = match format {
        ExportFormat::Png => PngEncoder::new(&mut bytes).write_image(
            image.pixels(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        ),
        ExportFormat::Jpeg { quality } => {
            JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100)).write_image(
                image.pixels(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
        }
    };
    encoded.map_err(|e| e.to_string())?;
    Ok(bytes)
}
