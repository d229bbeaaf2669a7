//! Parallel, deterministic batch loading.
//!
//! [`MultiCropLoader`] produces SwAV training batches from a dataset, [`ShardLoader`] from
//! WebDataset shards (both behind [`TrainingLoader`]); [`EvalLoader`] produces evaluation
//! batches. Both decode and transform on a pool of worker threads into recycled NHWC
//! buffers (one per resolution group, see [`batch`]), keep a bounded number of batches
//! ready ahead of the consumer, report their throughput ([`LoaderStats`]) and apply the
//! bad-input policy of [`bad_input`].

pub mod bad_input;
pub mod batch;
pub mod config;
pub mod eval_loader;
pub mod multi_crop_loader;
pub mod pipeline;
pub mod sampler;
pub mod shard_loader;
pub mod stats;
pub mod training_loader;

pub use bad_input::{BadInputPolicy, BadInputSummary};
pub use batch::{Batch, GroupBatch};
pub use config::{EvalLoaderConfig, LoaderConfig};
pub use eval_loader::EvalLoader;
pub use multi_crop_loader::MultiCropLoader;
pub use pipeline::EpochBatches;
pub use sampler::DistributedSampler;
pub use shard_loader::{DEFAULT_SHUFFLE_BUFFER, ShardInfo, ShardLoader, count_shards};
pub use stats::LoaderStats;
pub use training_loader::TrainingLoader;
