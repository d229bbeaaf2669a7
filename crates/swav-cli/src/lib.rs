//! The `swav` command-line tool: SwAV pretraining, evaluation, feature extraction, cluster
//! assignment and weight export/import, composed from the workspace's crates.

pub mod app;
pub mod checkpoint_file;
pub mod cli;
pub mod commands;
pub mod config;
pub mod device;
pub mod distributed;
pub mod eval;
pub mod launcher;
pub mod metrics;
pub mod npy;
pub mod presets;
pub mod resolve;
pub mod train;
pub mod weights_source;
