//! Every device-operation trait, for code that calls operations on a concrete backend type
//! (`use swav_nn::prelude::*;`). Generic code bound by [`Backend`] needs no import: the
//! families are its super-traits.

pub use crate::backend::{
    ActivationOps, Backend, BatchNormOps, ConvOps, L2NormalizeOps, LinearOps, OptimizerOps, PoolOps,
};
pub use swav_core::HeadOps;
