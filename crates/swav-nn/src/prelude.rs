//! Every device-operation trait, for code that calls operations on a concrete backend type
//! (`use swav_nn::prelude::*;`): the model's op families and swav-core's head op families.
//! Generic code bound by [`Backend`] needs no import: the families are its super-traits.

pub use crate::backend::{
    ActivationOps, Backend, BatchNormOps, ConvOps, L2NormalizeOps, LinearOps, OptimizerOps, PoolOps,
};
pub use swav_core::{
    BufferOps, ElementWiseOps, HeadOps, LogDomainOps, MatrixOps, ReduceOps, SgdOps,
};
