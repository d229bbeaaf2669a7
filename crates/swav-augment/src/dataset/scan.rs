//! Listing image files in torchvision's order.
//!
//! torchvision's `make_dataset` walks a folder with `sorted(os.walk(dir, followlinks=True))`
//! and sorts the file names within each folder, so files are ordered by (folder path as a
//! string, file name). The same order here keeps sample indices identical to PyTorch's.
//! Symbolic links are followed; a folder reached twice (a link cycle) is visited once.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::DatasetError;

/// File extensions accepted as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "bmp", "ppm", "pgm", "pbm", "pnm",
];

/// Whether `path` has one of [`IMAGE_EXTENSIONS`], in any case.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(e))
    })
}

/// Fails unless `path` is an existing folder.
pub fn require_folder(path: &Path) -> Result<(), DatasetError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(DatasetError::NotAFolder {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DatasetError::MissingFolder {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(DatasetError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The entries of one folder: (sub-folders, files), each sorted by name.
fn read_folder(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), DatasetError> {
    let io_error = |source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut folders = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        // `metadata` follows links; a dangling link is kept as a file and fails at load time.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => folders.push(path),
            _ => files.push(path),
        }
    }
    folders.sort_by_key(|p| p.file_name().map(OsString::from));
    files.sort_by_key(|p| p.file_name().map(OsString::from));
    Ok((folders, files))
}

/// The sub-folders of `dir` (links followed), sorted by name.
pub fn sub_folders(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    read_folder(dir).map(|(folders, _)| folders)
}

/// Every file with an image extension under `dir`, recursively, in torchvision's order.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut per_folder: Vec<(OsString, Vec<PathBuf>)> = Vec::new();
    let mut visited = HashSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let identity = std::fs::canonicalize(&folder).unwrap_or_else(|_| folder.clone());
        if !visited.insert(identity) {
            continue;
        }
        let (folders, files) = read_folder(&folder)?;
        let images: Vec<PathBuf> = files
            .into_iter()
            .filter(|f| has_image_extension(f))
            .collect();
        per_folder.push((folder.clone().into_os_string(), images));
        pending.extend(folders);
    }
    // Python sorts the walk's folder paths as strings (by code point, i.e. UTF-8 bytes).
    per_folder.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    Ok(per_folder
        .into_iter()
        .flat_map(|(_, files)| files)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_match_in_any_case() {
        assert!(has_image_extension(Path::new("a/b.JPG")));
        assert!(has_image_extension(Path::new("b.JpEg")));
        assert!(has_image_extension(Path::new("b.webp")));
        assert!(!has_image_extension(Path::new("b.txt")));
        assert!(!has_image_extension(Path::new("jpg")));
    }
}
