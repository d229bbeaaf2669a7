//! Reading and writing .npy matrices, accepting f32 or f64 input.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyError, read_npy, write_npy};

/// Reads a 2-D .npy array of f32 or f64 as f64.
pub fn read_matrix(path: &Path) -> Result<Array2<f64>> {
    match read_npy::<_, Array2<f64>>(path) {
        Ok(m) => Ok(m),
        Err(ReadNpyError::WrongDescriptor(_)) => {
            let m: Array2<f32> = read_npy(path).map_err(|e| describe(path, e))?;
            Ok(m.mapv(f64::from))
        }
        Err(e) => Err(describe(path, e)),
    }
}

fn describe(path: &Path, e: ReadNpyError) -> anyhow::Error {
    let hint = match &e {
        ReadNpyError::WrongNdim(..) => " (expected a 2-D array)",
        ReadNpyError::WrongDescriptor(_) => " (expected float32 or float64)",
        _ => "",
    };
    anyhow::anyhow!("cannot read {}: {e}{hint}", path.display())
}

/// Writes an f32 matrix.
pub fn write_matrix(path: &Path, m: &Array2<f32>) -> Result<()> {
    write_npy(path, m).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes an i64 vector.
pub fn write_indices(path: &Path, v: &Array1<i64>) -> Result<()> {
    write_npy(path, v).with_context(|| format!("cannot write {}", path.display()))
}

/// Fails unless `m` has `cols` columns, naming the file.
pub fn expect_cols(path: &Path, m: &Array2<f64>, cols: usize, what: &str) -> Result<()> {
    if m.ncols() != cols {
        bail!(
            "{}: {what} has {} columns but {cols} were expected",
            path.display(),
            m.ncols()
        );
    }
    Ok(())
}
