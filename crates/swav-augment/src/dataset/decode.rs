//! Decoding any supported file to RGB8, with every failure mapped to a [`DatasetError`]
//! that names the file.
//!
//! Formats: JPEG (including CMYK), PNG (8/16-bit, grey, palette, alpha), WebP, BMP, PNM.
//! Alpha is dropped without compositing and grey is replicated, as PIL's `convert("RGB")`
//! does; 16-bit samples are scaled to 8 bits. The format is detected from the content, not
//! the extension. EXIF orientation is ignored, as in torchvision's loader.

use std::io::ErrorKind;
use std::path::Path;

use image::{ImageError, ImageFormat};

use crate::dataset::jpeg_structure::jpeg_is_complete;
use crate::error::DatasetError;
use crate::rgb_image::RgbImage;

/// Formats this build decodes.
const SUPPORTED: [ImageFormat; 5] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Pnm,
];

/// Reads and decodes the image file at `path`.
pub fn load_image_file(path: &Path) -> Result<RgbImage, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image(&bytes, path)
}

/// Decodes `bytes` (the content of `path`, which is only used in errors) to RGB8.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<RgbImage, DatasetError> {
    if bytes.is_empty() {
        return Err(DatasetError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let unknown = || DatasetError::UnknownFormat {
        path: path.to_path_buf(),
    };
    let format = image::guess_format(bytes).map_err(|_| unknown())?;
    if !SUPPORTED.contains(&format) {
        return Err(unknown());
    }
    // The JPEG decoder fills missing data with grey instead of failing; PIL refuses such
    // files ("image file is truncated"), so check that the marker stream reaches its end.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            detail: "the JPEG data ends before its end-of-image marker".into(),
        });
    }
    let decoded = image::load_from_memory_with_format(bytes, format).map_err(|e| match e {
        ImageError::IoError(io) if io.kind() == ErrorKind::UnexpectedEof => {
            DatasetError::Truncated {
                path: path.to_path_buf(),
                detail: io.to_string(),
            }
        }
        other => DatasetError::Decode {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })?;
    let rgb = decoded.into_rgb8();
    let (width, height) = rgb.dimensions();
    RgbImage::from_raw(width, height, rgb.into_raw()).ok_or_else(|| DatasetError::Decode {
        path: path.to_path_buf(),
        reason: "decoder returned a buffer of the wrong size".into(),
    })
}
