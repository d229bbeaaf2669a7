//! `swav`: SwAV self-supervised pretraining (Caron et al., NeurIPS 2020) in Rust.
//!
//! This facade re-exports the workspace's library crates under one name and owns the
//! workspace-level end-to-end tests in `tests/`. See docs/usage.md for the `swav` binary.

pub use swav_augment;
pub use swav_core;
pub use swav_train;
