//! swav-nn (work in progress)
#![no_std]

extern crate alloc;

mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
mod hash_rng;
mod shapes;

pub use backend::{Backend, batch_norm_saved_len, batch_norm_stats_len};
pub use hash_rng::{SplitMix64, hashed_uniform, mix64};
pub use shapes::{Conv2dShape, Pool2dShape};
