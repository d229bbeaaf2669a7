//! File helpers (feature `std`): read a safetensors file into the model, write one
//! atomically (temporary file, fsync, rename).

use std::borrow::ToOwned;
use std::io::Write;
use std::path::Path;

use super::{ExportOptions, ImportOptions, ImportReport, WeightsError, export_safetensors};
use crate::{Backend, SwavModel};

/// Loads a safetensors file into `model` (see [`super::import_safetensors`]).
pub fn load_safetensors_file<B: Backend>(
    model: &mut SwavModel<B>,
    b: &mut B,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportReport, WeightsError<B::Error>> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    super::import_safetensors(model, b, &bytes, options)
}

/// Writes the model's weights to `path` (see [`super::export_safetensors`]); a crash
/// never leaves a partly written file behind.
pub fn save_safetensors_file<B: Backend>(
    model: &SwavModel<B>,
    b: &mut B,
    path: &Path,
    options: &ExportOptions,
) -> Result<(), WeightsError<B::Error>> {
    let bytes = export_safetensors(model, b, options)?;
    let io = |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)
}
