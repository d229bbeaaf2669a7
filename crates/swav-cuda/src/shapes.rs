//! The geometry of convolutions and pooling over NHWC tensors: swav-nn's types, which the
//! model's `Backend` trait takes.

pub use swav_nn::{Conv2dShape, Pool2dShape};
