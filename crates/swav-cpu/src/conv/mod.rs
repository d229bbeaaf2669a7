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

use core::convert::Infallible;

use swav_nn::{Conv2dShape, ConvOps, StatsOutput};

use crate::CpuBackend;
use crate::gemm;
use crate::profile::OpScope;
use backward_data::conv_backward_data;
use backward_filter::conv_backward_filter;
use forward::{ForwardScratch, conv_forward};

/// The buffers the convolutions reuse between calls (they grow to the largest layer once).
#[derive(Debug, Default)]
pub(crate) struct ConvScratch {
    /// Flipped weights for stride-1 input gradients, patch gradients for strided ones.
    flipped: Vec<f32>,
    /// Partial weight gradients of the slots of a weight-gradient product.
    filter_partials: Vec<f32>,
    /// The forward kernel's buffers (input gradients run it too).
    forward: ForwardScratch,
}

impl ConvOps for CpuBackend {
    fn conv2d_forward(
        &mut self,
        x: &Vec<f32>,
        weight: &Vec<f32>,
        shape: &Conv2dShape,
        y: &mut Vec<f32>,
        stats: Option<StatsOutput<'_, Vec<f32>>>,
    ) -> Result<(), Infallible> {
        let flops = 2.0 * shape.macs() as f64;
        let _op = OpScope::new(&mut self.profile, "conv_forward", flops);
        let (k, oc) = (shape.patch_len(), shape.out_channels);
        let b = gemm::view(weight, k, oc, 1, k);
        let stats = stats.map(|s| (&s.shift[..], &mut s.stats[..]));
        conv_forward(x, shape, &b, 0.0, y, stats, &mut self.conv.forward);
        Ok(())
    }

    fn conv2d_backward_data(
        &mut self,
        dy: &Vec<f32>,
        weight: &Vec<f32>,
        shape: &Conv2dShape,
        dx: &mut Vec<f32>,
        accumulate: bool,
    ) -> Result<(), Infallible> {
        let flops = 2.0 * shape.macs() as f64;
        let _op = OpScope::new(&mut self.profile, "conv_backward_data", flops);
        let ConvScratch {
            flipped, forward, ..
        } = &mut self.conv;
        conv_backward_data(dy, weight, shape, dx, accumulate, flipped, forward);
        Ok(())
    }

    fn conv2d_backward_filter(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        shape: &Conv2dShape,
        dweight: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let flops = 2.0 * shape.macs() as f64;
        let _op = OpScope::new(&mut self.profile, "conv_backward_filter", flops);
        conv_backward_filter(dy, x, shape, dweight, &mut self.conv.filter_partials);
        Ok(())
    }
}
