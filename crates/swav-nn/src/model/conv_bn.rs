//! The ResNet building unit: a bias-free convolution followed by batch norm, with the
//! block's residual addition and ReLU fused into the normalisation.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use swav_core::{Collective, ParamKind};

use super::batch_norm::BatchNorm;
use super::tensors::{Entry, EntryMut, Layout, Param, Tensors};
use crate::init::Init;
use crate::{Backend, Conv2dShape, StatsOutput, StepError};

/// A square-kernel convolution without bias.
#[derive(Debug)]
pub(crate) struct Conv<Buf> {
    pub(crate) weight: Param<Buf>,
    pub(crate) in_channels: usize,
    pub(crate) out_channels: usize,
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) padding: usize,
}

impl<Buf> Conv<Buf> {
    /// The geometry on a `batch × height × width` input.
    pub(crate) fn shape(&self, batch: usize, height: usize, width: usize) -> Conv2dShape {
        Conv2dShape {
            batch,
            in_height: height,
            in_width: width,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
        }
    }
}

/// The geometry of one convolution unit in a network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnitSpec<'a> {
    /// The convolution's state-dict key without `.weight`.
    pub conv_name: &'a str,
    /// The batch norm's state-dict prefix.
    pub bn_name: &'a str,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// Convolution + batch norm.
#[derive(Debug)]
pub(crate) struct ConvBn<Buf> {
    pub(crate) conv: Conv<Buf>,
    pub(crate) bn: BatchNorm<Buf>,
}

/// What the training forward of one unit keeps for its backward pass.
#[derive(Debug)]
pub(crate) struct ConvBnCache<Buf> {
    /// The convolution output (batch-norm input).
    pub(crate) pre: Buf,
    /// The statistics the batch norm used.
    pub(crate) saved: Buf,
}

impl<Buf> ConvBn<Buf> {
    /// Kaiming-normal convolution, identity batch norm.
    pub(crate) fn new<B: Backend<Buf = Buf>>(
        b: &mut B,
        init: &mut Init,
        spec: UnitSpec<'_>,
    ) -> Result<Self, B::Error> {
        let (o, i, k) = (spec.out_channels, spec.in_channels, spec.kernel);
        let w = init.conv(o, i, k);
        let weight = Param::new(
            b,
            format!("{}.weight", spec.conv_name),
            vec![o, i, k, k],
            ParamKind::Weight,
            Layout::Ohwi,
            &w,
        )?;
        Ok(Self {
            conv: Conv {
                weight,
                in_channels: i,
                out_channels: o,
                kernel: k,
                stride: spec.stride,
                padding: spec.padding,
            },
            bn: BatchNorm::new(b, spec.bn_name, o)?,
        })
    }

    /// Buffers for one training pass on `shape`.
    pub(crate) fn alloc_cache<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        shape: &Conv2dShape,
    ) -> Result<ConvBnCache<Buf>, B::Error> {
        Ok(ConvBnCache {
            pre: b.alloc_activation(shape.output_len())?,
            saved: self.bn.alloc_saved(b)?,
        })
    }

    /// Training forward: `out = relu?(bn(conv(x)) + residual?)`, batch statistics (summed
    /// over ranks by `comm`), running statistics updated.
    pub(crate) fn forward_train<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        x: &Buf,
        shape: &Conv2dShape,
        cache: &mut ConvBnCache<Buf>,
        residual: Option<&Buf>,
        relu: bool,
        out: &mut Buf,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        b.conv2d_forward(
            x,
            &self.conv.weight.value,
            shape,
            &mut cache.pre,
            Some(StatsOutput {
                shift: &self.bn.running_mean.value,
                stats: &mut self.bn.stats,
            }),
        )
        .map_err(StepError::Device)?;
        self.bn.finish_train_stats(b, comm, &mut cache.saved)?;
        self.bn
            .apply(
                b,
                &cache.pre,
                shape.output_pixels(),
                &cache.saved,
                residual,
                relu,
                out,
            )
            .map_err(StepError::Device)
    }

    /// Evaluation forward with the running statistics; `pre` and `saved` are scratch.
    pub(crate) fn forward_eval<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        x: &Buf,
        shape: &Conv2dShape,
        pre: &mut Buf,
        saved: &mut Buf,
        residual: Option<&Buf>,
        relu: bool,
        out: &mut Buf,
    ) -> Result<(), B::Error> {
        b.conv2d_forward(x, &self.conv.weight.value, shape, pre, None)?;
        self.bn.frozen_stats(b, saved)?;
        self.bn
            .apply(b, pre, shape.output_pixels(), saved, residual, relu, out)
    }

    /// Training backward from `dy`, the gradient at the batch-norm output (already masked by
    /// the ReLU when `relu_output` is `None`; masked here by `relu_output` otherwise).
    /// Accumulates the parameter gradients; `dpre` is scratch; the input gradient goes to
    /// `dx` (added when its flag is set) when asked.
    pub(crate) fn backward<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        x: &Buf,
        shape: &Conv2dShape,
        cache: &ConvBnCache<Buf>,
        dy: &Buf,
        relu_output: Option<&Buf>,
        dpre: &mut Buf,
        dx: Option<(&mut Buf, bool)>,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        self.bn.backward(
            b,
            comm,
            dy,
            &cache.pre,
            relu_output,
            shape.output_pixels(),
            &cache.saved,
            dpre,
        )?;
        b.conv2d_backward_filter(dpre, x, shape, &mut self.conv.weight.grad)
            .map_err(StepError::Device)?;
        if let Some((dx, accumulate)) = dx {
            b.conv2d_backward_data(dpre, &self.conv.weight.value, shape, dx, accumulate)
                .map_err(StepError::Device)?;
        }
        Ok(())
    }
}

impl<Buf> Tensors<Buf> for ConvBn<Buf> {
    fn entries<'a>(&'a self, out: &mut Vec<Entry<'a, Buf>>) {
        out.push(Entry::Param(&self.conv.weight));
        self.bn.entries(out);
    }

    fn entries_mut<'a>(&'a mut self, out: &mut Vec<EntryMut<'a, Buf>>) {
        out.push(EntryMut::Param(&mut self.conv.weight));
        self.bn.entries_mut(out);
    }
}
