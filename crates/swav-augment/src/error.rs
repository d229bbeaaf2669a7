//! Error types. Every variant names the file, sample or parameter it is about.

use std::path::PathBuf;

/// A problem with a dataset: a folder that cannot be used, or a sample that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The dataset folder does not exist.
    #[error("dataset folder {path} does not exist")]
    MissingFolder {
        /// The folder that was asked for.
        path: PathBuf,
    },
    /// The dataset path exists but is not a folder.
    #[error("dataset path {path} is not a folder")]
    NotAFolder {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The folder holds no file with an image extension.
    #[error("dataset folder {path} holds no image files (extensions: {extensions})")]
    NoImages {
        /// The folder that was scanned.
        path: PathBuf,
        /// The accepted extensions, comma separated.
        extensions: String,
    },
    /// An I/O error while listing a folder or reading a file.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is empty (zero bytes).
    #[error("{path} is empty (0 bytes)")]
    EmptyFile {
        /// The empty file.
        path: PathBuf,
    },
    /// The file's content is not in any supported image format.
    #[error("{path} is not an image in a supported format (JPEG, PNG, WebP, BMP, PNM)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file ends before its image data is complete.
    #[error("{path} is truncated: {detail}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was missing.
        detail: String,
    },
    /// The decoder rejected the file.
    #[error("cannot decode {path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// A shard list names no shard, or a pattern in it is malformed.
    #[error("shard list {spec}: {reason}")]
    ShardList {
        /// The `--data` value or list file.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A shard cannot be read as a tar archive, or changed since it was counted.
    #[error("shard {shard}: {reason}")]
    Shard {
        /// The shard's path.
        shard: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The image decoded but is smaller than the configured minimum side.
    #[error("{name} is {width}x{height}, below the minimum side of {min_side} px")]
    TooSmall {
        /// The sample (file path or synthetic sample name).
        name: String,
        /// Decoded width.
        width: u32,
        /// Decoded height.
        height: u32,
        /// The minimum accepted side.
        min_side: u32,
    },
    /// A sample index past the end of the dataset.
    #[error("sample index {index} is out of range for a dataset of {len} samples")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The dataset length.
        len: usize,
    },
    /// An MNIST-format IDX file or folder that cannot be used: a wrong magic number,
    /// impossible dimensions, images and labels that do not pair up, labels out of range.
    #[error("{path}: {problem}")]
    Idx {
        /// The file (or folder) at fault.
        path: PathBuf,
        /// What is wrong, in one sentence.
        problem: String,
    },
    /// Writing an image while exporting a dataset failed.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The encoder's or file system's message.
        reason: String,
    },
}

/// An invalid configuration value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {parameter}: {reason}")]
pub struct ConfigError {
    /// The parameter's name, as in the config structs (e.g. `crops[1].min_scale`).
    pub parameter: String,
    /// Why the value is rejected.
    pub reason: String,
}

impl ConfigError {
    /// An error about `parameter`.
    pub fn new(parameter: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            parameter: parameter.into(),
            reason: reason.into(),
        }
    }
}

/// An error from a transform: the resize kernel refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("resizing a {src_width}x{src_height} crop to {dst_width}x{dst_height} failed: {reason}")]
pub struct TransformError {
    /// Width of the source region.
    pub src_width: u32,
    /// Height of the source region.
    pub src_height: u32,
    /// Output width.
    pub dst_width: u32,
    /// Output height.
    pub dst_height: u32,
    /// The resize library's message.
    pub reason: String,
}

/// An error from a loader.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The loader's or transform's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A sample could not be read and the bad-input policy is strict.
    #[error("bad input (strict mode): {0}")]
    BadSample(#[source] DatasetError),
    /// Every sample of the dataset failed to load.
    #[error("none of the {len} samples of the dataset could be read; first failure: {first}")]
    NoReadableSample {
        /// The dataset length.
        len: usize,
        /// The first failure.
        first: String,
    },
    /// The dataset has no samples.
    #[error("the dataset is empty")]
    EmptyDataset,
    /// A shard could not be read while streaming an epoch.
    #[error("{0}")]
    Shard(#[source] DatasetError),
    /// A resume point past the end of the epoch.
    #[error(
        "start iteration {iteration} is past the end of the epoch ({iters_per_epoch} iterations)"
    )]
    StartPastEnd {
        /// The requested start iteration.
        iteration: usize,
        /// Iterations in one epoch.
        iters_per_epoch: usize,
    },
    /// A transform failed on a sample.
    #[error("sample {name}: {source}")]
    Transform {
        /// The sample's file path or synthetic name.
        name: String,
        /// The transform's error.
        source: TransformError,
    },
    /// The worker thread pool could not be created.
    #[error("cannot start {workers} loader worker threads: {reason}")]
    ThreadPool {
        /// The requested thread count.
        workers: usize,
        /// The system's message.
        reason: String,
    },
    /// A worker stopped without delivering its batch (it panicked).
    #[error("a loader worker stopped while producing batch {iteration} of epoch {epoch}")]
    WorkerLost {
        /// The epoch.
        epoch: u64,
        /// The batch's iteration within the epoch.
        iteration: usize,
    },
}
