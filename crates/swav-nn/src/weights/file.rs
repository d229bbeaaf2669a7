//! File helpers (feature `std`): read a safetensors file into the model, write one
//! atomically ([`crate::write_atomic`]).

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
    crate::write_atomic(path, &bytes).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })
}
