//! Why reading or writing weights failed.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A weights file that does not fit the model, or a device failure while moving tensors.
#[derive(Debug)]
pub enum WeightsError<D> {
    /// The bytes are not a valid safetensors file.
    Format(safetensors::SafeTensorError),
    /// Model tensors absent from the file (and not allowed to be).
    MissingKeys(Vec<String>),
    /// File tensors the model does not have (and not ignored).
    UnexpectedKeys(Vec<String>),
    /// A tensor with the wrong shape.
    ShapeMismatch {
        /// The model's key.
        key: String,
        /// The model's (PyTorch) shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A tensor with the wrong element type.
    DtypeMismatch {
        /// The model's key.
        key: String,
        /// The type the model stores (`F32`, or `I64` for batch counters).
        expected: safetensors::Dtype,
        /// The file's type.
        found: safetensors::Dtype,
    },
    /// The backend failed to upload or download a tensor.
    Device(D),
    /// Reading or writing a file failed (feature `std`).
    #[cfg(feature = "std")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl<D: fmt::Display> fmt::Display for WeightsError<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format(e) => write!(f, "weights: not a valid safetensors file: {e}"),
            Self::MissingKeys(keys) => write!(f, "weights: missing keys: {}", keys.join(", ")),
            Self::UnexpectedKeys(keys) => {
                write!(f, "weights: unexpected keys: {}", keys.join(", "))
            }
            Self::ShapeMismatch {
                key,
                expected,
                found,
            } => write!(
                f,
                "weights: {key}: shape {found:?} in the file, the model expects {expected:?}"
            ),
            Self::DtypeMismatch {
                key,
                expected,
                found,
            } => write!(
                f,
                "weights: {key}: element type {found:?} in the file, the model expects {expected:?}"
            ),
            Self::Device(e) => write!(f, "weights: device error: {e}"),
            #[cfg(feature = "std")]
            Self::Io { path, source } => write!(f, "weights: {}: {source}", path.display()),
        }
    }
}

impl<D: fmt::Debug + fmt::Display> core::error::Error for WeightsError<D> {}
