//! The portable pseudo-random numbers (SplitMix64, [`mix64`], [`hashed_uniform`]) used for
//! initialisation and test data; they live in swav-core and are re-exported here.

pub use swav_core::{SplitMix64, hashed_uniform, mix64};
