//! The checkpoint file: named tensors plus string metadata in one safetensors file, with a
//! CRC-32 over everything, written atomically.
//!
//! A killed run never leaves a half-written checkpoint: the file is written under a
//! temporary name in the same folder, flushed to disk, renamed over the old one (an atomic
//! step on POSIX file systems) and the folder is synced ([`swav_nn::write_atomic`]). A
//! truncated or corrupted file is detected on reading (safetensors' own bounds checks, then
//! the checksum) and reported with its path; it is never silently loaded.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

/// The metadata key holding the checksum.
const CHECKSUM_KEY: &str = "swav.crc32";
/// The metadata key identifying the file kind and version.
const FORMAT_KEY: &str = "swav.format";
/// The current format.
const FORMAT: &str = "swav-checkpoint-1";

/// The element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// 32-bit float (parameters, buffers, optimizer state, queue).
    F32,
    /// 64-bit signed integer (`num_batches_tracked`).
    I64,
}

/// One stored tensor: shape and little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    /// Element type.
    pub dtype: ElementType,
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Little-endian element bytes.
    pub bytes: Vec<u8>,
}

impl StoredTensor {
    /// An f32 tensor.
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            dtype: ElementType::F32,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An i64 tensor.
    pub fn i64(shape: Vec<usize>, values: &[i64]) -> Self {
        Self {
            dtype: ElementType::I64,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The values, if this is an f32 tensor.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.dtype == ElementType::F32).then(|| {
            self.bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
    }

    /// The values, if this is an i64 tensor.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        (self.dtype == ElementType::I64).then(|| {
            self.bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect()
        })
    }
}

/// The contents of a checkpoint file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckpointFile {
    /// Named tensors.
    pub tensors: BTreeMap<String, StoredTensor>,
    /// String metadata (epoch, iteration, configuration, ...).
    pub metadata: BTreeMap<String, String>,
}

/// A checkpoint that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    /// The file or its folder could not be written.
    #[error("cannot write checkpoint {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file could not be read.
    #[error("cannot read checkpoint {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is truncated, corrupted, or not a swav checkpoint.
    #[error("checkpoint {path} is corrupt or truncated: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl CheckpointFile {
    /// Writes the checkpoint to `path` atomically ([`swav_nn::write_atomic`]).
    pub fn write_atomic(&self, path: &Path) -> Result<(), CheckpointFileError> {
        swav_nn::write_atomic(path, &self.to_bytes()).map_err(|source| CheckpointFileError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads and verifies a checkpoint.
    pub fn read(path: &Path) -> Result<Self, CheckpointFileError> {
        let bytes = fs::read(path).map_err(|source| CheckpointFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|reason| CheckpointFileError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// The serialised file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut metadata: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        metadata.insert(FORMAT_KEY.into(), FORMAT.into());
        metadata.insert(CHECKSUM_KEY.into(), format!("{:08x}", self.checksum()));
        let views: Vec<(String, TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let dtype = match t.dtype {
                    ElementType::F32 => Dtype::F32,
                    ElementType::I64 => Dtype::I64,
                };
                let view = TensorView::new(dtype, t.shape.clone(), &t.bytes)
                    .expect("stored tensors have consistent shapes");
                (name.clone(), view)
            })
            .collect();
        safetensors::serialize(views, Some(metadata)).expect("serialising in-memory tensors")
    }

    /// Parses and verifies serialised bytes; the error says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (_, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        let parsed = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let mut metadata: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        match metadata.remove(FORMAT_KEY).as_deref() {
            Some(FORMAT) => {}
            Some(other) => return Err(format!("unsupported checkpoint format `{other}`")),
            None => return Err("not a swav checkpoint (no format tag)".into()),
        }
        let stored_checksum = metadata
            .remove(CHECKSUM_KEY)
            .ok_or("the checksum is missing")?;
        let mut tensors = BTreeMap::new();
        for (name, view) in parsed.tensors() {
            let dtype = match view.dtype() {
                Dtype::F32 => ElementType::F32,
                Dtype::I64 => ElementType::I64,
                other => return Err(format!("tensor `{name}` has unsupported type {other:?}")),
            };
            tensors.insert(
                name,
                StoredTensor {
                    dtype,
                    shape: view.shape().to_vec(),
                    bytes: view.data().to_vec(),
                },
            );
        }
        let file = Self { tensors, metadata };
        let actual = format!("{:08x}", file.checksum());
        if actual != stored_checksum {
            return Err(format!(
                "checksum mismatch (stored {stored_checksum}, computed {actual})"
            ));
        }
        Ok(file)
    }

    /// CRC-32 over the metadata and every tensor, in name order.
    fn checksum(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for (k, v) in &self.metadata {
            h.update(k.as_bytes());
            h.update(&[0]);
            h.update(v.as_bytes());
            h.update(&[0]);
        }
        for (name, t) in &self.tensors {
            h.update(name.as_bytes());
            h.update(&[0, t.dtype as u8]);
            for d in &t.shape {
                h.update(&(*d as u64).to_le_bytes());
            }
            h.update(&t.bytes);
        }
        h.finalize()
    }

    /// Adds every tensor of a safetensors file (e.g. a model export), keys prefixed.
    pub fn add_safetensors(&mut self, bytes: &[u8], prefix: &str) -> Result<(), String> {
        let parsed = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        for (name, view) in parsed.tensors() {
            let dtype = match view.dtype() {
                Dtype::F32 => ElementType::F32,
                Dtype::I64 => ElementType::I64,
                other => return Err(format!("tensor `{name}` has unsupported type {other:?}")),
            };
            self.tensors.insert(
                format!("{prefix}{name}"),
                StoredTensor {
                    dtype,
                    shape: view.shape().to_vec(),
                    bytes: view.data().to_vec(),
                },
            );
        }
        Ok(())
    }

    /// A metadata value, or a corrupt-file error naming the key.
    pub fn meta(&self, key: &str) -> Result<&str, String> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("metadata `{key}` is missing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckpointFile {
        let mut c = CheckpointFile::default();
        c.tensors.insert(
            "a.weight".into(),
            StoredTensor::f32(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        );
        c.tensors.insert(
            "a.num_batches_tracked".into(),
            StoredTensor::i64(vec![], &[7]),
        );
        c.metadata.insert("epoch".into(), "3".into());
        c
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        sample().write_atomic(&path).unwrap();
        let back = CheckpointFile::read(&path).unwrap();
        assert_eq!(back, sample());
        assert_eq!(
            back.tensors["a.num_batches_tracked"].to_i64().unwrap(),
            vec![7]
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn truncation_and_bit_flips_are_detected() {
        let bytes = sample().to_bytes();
        for cut in [0, 7, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                CheckpointFile::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        let err = CheckpointFile::from_bytes(&flipped).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
        assert!(CheckpointFile::from_bytes(b"not a checkpoint at all").is_err());
    }

    #[test]
    fn an_unwritable_folder_is_a_clear_error() {
        let err = sample()
            .write_atomic(Path::new("/nonexistent-folder/x/ckpt.safetensors"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent-folder/x/ckpt.safetensors"),
            "{err}"
        );
    }
}
