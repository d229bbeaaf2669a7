//! WebDataset shards: tar files whose members are grouped into samples by key
//! (`000123.jpg`, `000123.cls`, ...), the format large self-supervised runs stream from.
//!
//! * [`shard_list`]: which shards a `--data` value names (brace ranges as webdataset
//!   writes them, or a file listing shard paths);
//! * [`tar_samples`]: reading one shard's samples in order, and counting them from the tar
//!   headers alone;
//! * [`shuffle_buffer`]: the seeded buffer that shuffles a stream without an index;
//! * [`shard_writer`]: writing shards from any [`Dataset`](crate::dataset::Dataset).
//!
//! The training loader over shards is [`ShardLoader`](crate::loader::ShardLoader).

pub mod shard_list;
pub mod shard_writer;
pub mod shuffle_buffer;
pub mod tar_samples;

pub use shard_list::{is_shard_pattern, is_shard_spec, shard_paths};
pub use shard_writer::{ShardWriter, write_shards};
pub use shuffle_buffer::ShuffleBuffer;
pub use tar_samples::{RawSample, ShardCount, count_samples, read_samples};
