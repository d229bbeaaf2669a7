//! 2-d convolution on NHWC tensors with OHWI weights: forward, input gradient and weight
//! gradient, as tiled sgemm products over patch matrices, and on CPUs with AVX-512 the
//! forward pass (and the input gradients computed as forward passes) and most weight
//! gradients by register kernels.

mod avx512;
mod avx512_filter;
mod backward_data;
mod backward_filter;
mod forward;
mod im2col;
#[cfg(test)]
mod reference;

pub(crate) use backward_data::conv_backward_data;
pub(crate) use backward_filter::conv_backward_filter;
pub(crate) use forward::conv_forward;
