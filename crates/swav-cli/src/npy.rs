//! Reading and writing .npy matrices, accepting f32 or f64 input, and finding the rows of a
//! matrix that hold NaN or infinite values.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyError, ReadNpyExt, write_npy};
use swav_core::Real;

/// The smallest element this reader accepts (f32), which bounds the elements a file of a
/// given size can hold.
const SMALLEST_ELEMENT_BYTES: usize = 4;

/// Why bytes are not a 2-D f32 or f64 .npy matrix.
#[derive(Debug, thiserror::Error)]
pub enum NpyMatrixError {
    /// The header length field points past the end of the file.
    #[error("the header claims {claimed} bytes but only {available} follow it")]
    HeaderPastEnd {
        /// The header length the file states.
        claimed: usize,
        /// The bytes after the length field.
        available: usize,
    },
    /// The shape needs more data than the file holds (checked before any allocation).
    #[error("the shape {shape:?} needs more data than the {available} bytes after the header")]
    ShapePastEnd {
        /// The shape the header states.
        shape: Vec<usize>,
        /// The bytes after the header.
        available: usize,
    },
    /// The header dictionary nests brackets a .npy header never has (a flat dict with one
    /// shape tuple); refused before the reader's parser, whose time grows steeply with
    /// nesting (libFuzzer: 139 bytes took seconds).
    #[error("the header is not a flat .npy dictionary (nested brackets)")]
    NestedHeader,
    /// The .npy reader refused the bytes.
    #[error("{source}{}", hint(source))]
    Parse {
        /// The reader's error.
        source: ReadNpyError,
    },
}

fn hint(e: &ReadNpyError) -> &'static str {
    match e {
        ReadNpyError::WrongNdim(..) => " (expected a 2-D array)",
        ReadNpyError::WrongDescriptor(_) => " (expected float32 or float64)",
        _ => "",
    }
}

/// Reads a 2-D .npy array of f32 or f64 as f64; the error names the file.
pub fn read_matrix(path: &Path) -> Result<Array2<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_matrix(&bytes).with_context(|| format!("cannot read {}", path.display()))
}

/// Parses the bytes of a 2-D f32 or f64 .npy file as f64. The header's length and shape
/// are checked against the bytes present before anything is allocated, so a damaged header
/// cannot ask for more memory than twice the file's size.
pub fn parse_matrix(bytes: &[u8]) -> Result<Array2<f64>, NpyMatrixError> {
    let header = check_sizes(bytes)?;
    let parse = |source| NpyMatrixError::Parse { source };
    match Array2::<f64>::read_npy(header) {
        Ok(m) => Ok(m),
        Err(ReadNpyError::WrongDescriptor(_)) => Array2::<f32>::read_npy(header)
            .map(|m| m.mapv(f64::from))
            .map_err(parse),
        Err(e) => Err(parse(e)),
    }
}

/// Checks the header length field and the shape against the file's size; returns the
/// bytes unchanged for the reader.
fn check_sizes(bytes: &[u8]) -> Result<&[u8], NpyMatrixError> {
    // Magic (6 bytes), version (2), then a u16 (version 1) or u32 (2 and 3) header length.
    let length_field = match bytes.get(6) {
        Some(1) => 2,
        _ => 4,
    };
    if let Some(field) = bytes.get(8..8 + length_field) {
        let claimed = field
            .iter()
            .rev()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let available = bytes.len() - 8 - length_field;
        if claimed > available {
            return Err(NpyMatrixError::HeaderPastEnd { claimed, available });
        }
        let dict = &bytes[8 + length_field..8 + length_field + claimed];
        let count = |c: u8| dict.iter().filter(|&&b| b == c).count();
        if count(b'{') > 1
            || count(b'}') > 1
            || count(b'(') > 1
            || count(b')') > 1
            || count(b'[') > 0
        {
            return Err(NpyMatrixError::NestedHeader);
        }
    }
    let mut rest = bytes;
    // A header the reader refuses is reported by the reader itself, below.
    if let Ok(header) = ndarray_npy::npy::header::Header::from_reader(&mut rest) {
        let elements = header
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if elements.is_none_or(|n| n > rest.len() / SMALLEST_ELEMENT_BYTES) {
            return Err(NpyMatrixError::ShapePastEnd {
                shape: header.shape,
                available: rest.len(),
            });
        }
    }
    Ok(bytes)
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

/// The rows of a matrix that hold at least one NaN or infinite value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonFiniteRows {
    /// The first such row.
    pub first: usize,
    /// How many rows there are.
    pub count: usize,
}

/// The rows of `m` holding NaN or infinite values, or `None` when every value is finite.
pub fn non_finite_rows<T: Real>(m: &Array2<T>) -> Option<NonFiniteRows> {
    let mut bad = m
        .rows()
        .into_iter()
        .enumerate()
        .filter(|(_, row)| row.iter().any(|v| !v.is_finite()))
        .map(|(i, _)| i);
    let first = bad.next()?;
    Some(NonFiniteRows {
        first,
        count: 1 + bad.count(),
    })
}

/// Fails when `m` (read from `path`) has rows holding NaN or infinite values, naming the
/// file, the first such row and how many there are.
pub fn expect_finite_rows(path: &Path, m: &Array2<f64>, what: &str) -> Result<()> {
    if let Some(bad) = non_finite_rows(m) {
        bail!(
            "{}: {} of the {} rows of {what} hold NaN or infinite values (the first is row {}); \
             nothing was assigned",
            path.display(),
            bad.count,
            m.nrows(),
            bad.first
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use ndarray_npy::WriteNpyExt;

    fn npy_bytes(m: &Array2<f32>) -> Vec<u8> {
        let mut bytes = Vec::new();
        m.write_npy(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn reads_f32_and_f64() {
        let m = array![[1.0f32, 2.0], [3.0, 4.0]];
        assert_eq!(
            parse_matrix(&npy_bytes(&m)).unwrap(),
            m.mapv(f64::from),
            "f32"
        );
        let mut bytes = Vec::new();
        m.mapv(f64::from).write_npy(&mut bytes).unwrap();
        assert_eq!(parse_matrix(&bytes).unwrap(), m.mapv(f64::from), "f64");
    }

    /// A version-1 .npy file with the given header dictionary and data bytes.
    fn npy_with_header(dict: &str, data: &[u8]) -> Vec<u8> {
        let header = format!("{dict}\n");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    #[test]
    fn a_nested_header_is_refused_before_the_slow_parser() {
        // libFuzzer's input: 139 bytes whose nested brackets kept the dictionary parser busy
        // for seconds.
        let bytes = include_bytes!("../tests/regressions/npy/timeout-nested-header.npy");
        let err = parse_matrix(bytes).unwrap_err();
        assert!(matches!(err, NpyMatrixError::NestedHeader), "{err}");
        let list_descr = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 2), }";
        let err = parse_matrix(&npy_with_header(list_descr, &[0u8; 16])).unwrap_err();
        assert!(matches!(err, NpyMatrixError::NestedHeader), "{err}");
    }

    #[test]
    fn a_huge_shape_is_refused_before_allocating() {
        let data = [0u8; 16];
        let sane = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        assert!(parse_matrix(&npy_with_header(sane, &data)).is_ok());
        // 2^40 × 2^20 f64 elements: eight exbibytes if it were believed.
        let huge = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1048576), }";
        let err = parse_matrix(&npy_with_header(huge, &data)).unwrap_err();
        assert!(matches!(err, NpyMatrixError::ShapePastEnd { .. }), "{err}");
        let overflowing = "{'descr': '<f8', 'fortran_order': False, \
                           'shape': (18446744073709551615, 3), }";
        let err = parse_matrix(&npy_with_header(overflowing, &data)).unwrap_err();
        assert!(matches!(err, NpyMatrixError::ShapePastEnd { .. }), "{err}");
    }

    #[test]
    fn a_header_length_past_the_end_is_refused() {
        let mut bytes = npy_bytes(&array![[1.0f32]]);
        bytes[6] = 2; // version 2: a four-byte length, here ~4 GiB
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = parse_matrix(&bytes).unwrap_err();
        assert!(matches!(err, NpyMatrixError::HeaderPastEnd { .. }), "{err}");
    }

    #[test]
    fn non_finite_rows_are_found_and_counted() {
        let m = array![
            [1.0, 2.0],
            [f64::NAN, 0.0],
            [3.0, 4.0],
            [0.0, f64::INFINITY]
        ];
        assert_eq!(
            non_finite_rows(&m),
            Some(NonFiniteRows { first: 1, count: 2 })
        );
        assert_eq!(non_finite_rows(&array![[1.0f32, 2.0]]), None);
    }
}
