//! The subcommands, one file each with its `run(args)`; what they share lives beside them
//! ([`crate::assign`], [`crate::bench`], [`crate::model_loading`], [`crate::train`], ...).

pub mod assign;
pub mod bench;
pub mod eval_knn;
pub mod eval_linear;
pub mod eval_semisup;
pub mod export;
pub mod extract;
pub mod import;
pub mod pretrain;
pub mod report;
pub mod shard;
pub mod supervised;
