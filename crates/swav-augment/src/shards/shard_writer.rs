//! Writing WebDataset shards: `PREFIX-000000.tar`, `PREFIX-000001.tar`, ... of
//! `shard_size` samples each, every sample an image member and, for a labelled dataset, a
//! `cls` member (the class number in ASCII), keyed by a zero-padded running number.
//!
//! Images read from files keep their bytes (a JPEG stays the same JPEG); generated or
//! packed images (the built-in set, IDX files) are written as PNG. Members carry mode
//! 0444, uid 0 and mtime 0, so the same input gives byte-identical shards.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::SeedableRng;

use crate::dataset::Dataset;
use crate::dataset::export::{ExportFormat, encode};
use crate::error::DatasetError;
use crate::rng::{StreamRng, fisher_yates};
use crate::shards::tar_samples::{IMAGE_MEMBERS, LABEL_EXTENSION};

/// Writes samples into numbered shards of a fixed size.
pub struct ShardWriter {
    prefix: PathBuf,
    shard_size: usize,
    current: Option<tar::Builder<BufWriter<File>>>,
    in_current: usize,
    written: Vec<PathBuf>,
}

impl ShardWriter {
    /// A writer of `PREFIX-NNNNNN.tar` shards of `shard_size` samples (the last may hold
    /// fewer). The prefix's folder is created if needed.
    pub fn new(prefix: &Path, shard_size: usize) -> Result<Self, DatasetError> {
        if shard_size == 0 {
            return Err(DatasetError::Write {
                path: prefix.to_path_buf(),
                reason: "the shard size must be at least 1".into(),
            });
        }
        if let Some(parent) = prefix.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| DatasetError::Write {
                path: parent.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        Ok(Self {
            prefix: prefix.to_path_buf(),
            shard_size,
            current: None,
            in_current: 0,
            written: Vec::new(),
        })
    }

    /// The path of shard number `n`.
    pub fn shard_path(&self, n: usize) -> PathBuf {
        let mut name = self.prefix.as_os_str().to_owned();
        name.push(format!("-{n:06}.tar"));
        PathBuf::from(name)
    }

    /// The shard the next sample goes to.
    pub fn next_shard(&self) -> PathBuf {
        if self.current.is_some() && self.in_current < self.shard_size {
            self.written.last().cloned().unwrap_or_default()
        } else {
            self.shard_path(self.written.len())
        }
    }

    /// Appends one sample of `(extension, bytes)` members under `key`.
    pub fn add(&mut self, key: &str, members: &[(&str, &[u8])]) -> Result<(), DatasetError> {
        if self.current.is_none() || self.in_current == self.shard_size {
            self.close_current()?;
            let path = self.shard_path(self.written.len());
            let file = File::create(&path).map_err(|e| write_error(&path, e))?;
            self.current = Some(tar::Builder::new(BufWriter::new(file)));
            self.written.push(path);
            self.in_current = 0;
        }
        let path = self.written.last().cloned().unwrap_or_default();
        let builder = self.current.as_mut().expect("a shard is open");
        for (ext, bytes) in members {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o444);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, format!("{key}.{ext}"), *bytes)
                .map_err(|e| write_error(&path, e))?;
        }
        self.in_current += 1;
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), DatasetError> {
        if let Some(builder) = self.current.take() {
            let path = self.written.last().cloned().unwrap_or_default();
            let mut inner = builder.into_inner().map_err(|e| write_error(&path, e))?;
            inner.flush().map_err(|e| write_error(&path, e))?;
        }
        Ok(())
    }

    /// Ends the last shard; returns the shards written.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, DatasetError> {
        self.close_current()?;
        Ok(std::mem::take(&mut self.written))
    }
}

fn write_error(path: &Path, error: std::io::Error) -> DatasetError {
    DatasetError::Write {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// Where one sample of the source went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedSample {
    /// Its key in the shards.
    pub key: String,
    /// The shard that holds it.
    pub shard: PathBuf,
    /// Its name in the source dataset (a file path, or a generated sample's name).
    pub source: String,
}

/// What [`write_shards`] did.
#[derive(Debug, Default)]
pub struct ShardsWritten {
    /// The shards, in order.
    pub shards: Vec<PathBuf>,
    /// Each written sample, in shard order.
    pub samples: Vec<ShardedSample>,
    /// (sample name, reason) of each sample left out because it could not be read.
    pub skipped: Vec<(String, String)>,
}

/// The image member of sample `index`: a file's own bytes when its extension is one a
/// shard image may have and its content is an image, else the decoded image as PNG.
fn image_member(dataset: &dyn Dataset, index: usize) -> Result<(String, Vec<u8>), DatasetError> {
    if let Some(path) = dataset.source_file(index) {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if IMAGE_MEMBERS.contains(&ext.as_str()) {
            let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            if bytes.is_empty() {
                return Err(DatasetError::EmptyFile {
                    path: path.to_path_buf(),
                });
            }
            if image::guess_format(&bytes).is_err() {
                return Err(DatasetError::UnknownFormat {
                    path: path.to_path_buf(),
                });
            }
            return Ok((ext, bytes));
        }
    }
    let image = dataset.load(index)?;
    let bytes = encode(&image, ExportFormat::Png).map_err(|reason| DatasetError::Decode {
        path: PathBuf::from(dataset.sample_name(index)),
        reason,
    })?;
    Ok(("png".into(), bytes))
}

/// Writes every sample of `dataset` into shards of `shard_size` under `prefix` (see the
/// module documentation), in an order shuffled from `shuffle_seed` (`None`: dataset
/// order). Unreadable samples are left out and listed; `progress` is called after each
/// sample with the number done.
pub fn write_shards(
    dataset: &dyn Dataset,
    prefix: &Path,
    shard_size: usize,
    shuffle_seed: Option<u64>,
    mut progress: impl FnMut(usize),
) -> Result<ShardsWritten, DatasetError> {
    let mut order: Vec<usize> = (0..dataset.len()).collect();
    if let Some(seed) = shuffle_seed {
        fisher_yates(&mut order, &mut StreamRng::seed_from_u64(seed));
    }
    let width = 6.max(dataset.len().to_string().len());
    let mut writer = ShardWriter::new(prefix, shard_size)?;
    let mut report = ShardsWritten::default();
    for (done, &index) in order.iter().enumerate() {
        let (ext, bytes) = match image_member(dataset, index) {
            Ok(member) => member,
            Err(error) => {
                report
                    .skipped
                    .push((dataset.sample_name(index), error.to_string()));
                progress(done + 1);
                continue;
            }
        };
        let key = format!("{:0width$}", report.samples.len());
        let label = dataset.label(index).map(|l| l.to_string());
        let mut members: Vec<(&str, &[u8])> = vec![(ext.as_str(), &bytes)];
        if let Some(label) = &label {
            members.push((LABEL_EXTENSION, label.as_bytes()));
        }
        let shard = writer.next_shard();
        writer.add(&key, &members)?;
        report.samples.push(ShardedSample {
            key,
            shard,
            source: dataset.sample_name(index),
        });
        progress(done + 1);
    }
    report.shards = writer.finish()?;
    Ok(report)
}
