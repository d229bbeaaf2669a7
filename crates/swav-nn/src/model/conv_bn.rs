//! The ResNet building unit: a bias-free convolution followed by batch norm, with the
//! block's residual addition and ReLU fused into the normalisation.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use swav_core::{Collective, ParamKind};

use super::batch_norm::BatchNorm;
use super::tensors::{Entry, EntryMut, Layout, Param, Tensors};
use crate::init::Init;
use crate::{Backend, BatchNormBackward, Conv2dShape, Epilogue, StatsOutput, StepError};

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

/// Where a unit's result goes: `out = relu?(bn(conv(x)) + residual?)`.
#[derive(Debug)]
pub(crate) struct UnitOutput<'a, Buf> {
    /// The residual added and the ReLU applied after the batch norm.
    pub(crate) epilogue: Epilogue<'a, Buf>,
    /// The buffer written.
    pub(crate) out: &'a mut Buf,
}

impl<'a, Buf> UnitOutput<'a, Buf> {
    /// `out = bn(conv(x))`, nothing after it (a projection shortcut).
    pub(crate) fn plain(out: &'a mut Buf) -> Self {
        Self::with(None, false, out)
    }

    /// `out = relu(bn(conv(x)))`.
    pub(crate) fn relu(out: &'a mut Buf) -> Self {
        Self::with(None, true, out)
    }

    /// `out = relu?(bn(conv(x)) + residual?)`.
    pub(crate) fn with(residual: Option<&'a Buf>, relu: bool, out: &'a mut Buf) -> Self {
        Self {
            epilogue: Epilogue { residual, relu },
            out,
        }
    }
}

/// The gradient arriving at a unit's output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnitOutputGrad<'a, Buf> {
    /// The gradient at the batch-norm output.
    pub(crate) dy: &'a Buf,
    /// The unit's output when its ReLU still has to mask `dy` (`None` when `dy` is already
    /// masked or the unit has no ReLU).
    pub(crate) relu_output: Option<&'a Buf>,
}

/// Where a unit's backward pass writes: scratch for the pre-activation gradient and,
/// when asked, the input gradient (added when its flag is set).
#[derive(Debug)]
pub(crate) struct UnitInputGrad<'a, Buf> {
    /// Scratch of at least the convolution output's length.
    pub(crate) dpre: &'a mut Buf,
    /// The input gradient and whether to add to it.
    pub(crate) dx: Option<(&'a mut Buf, bool)>,
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
    /// The convolution's geometry on the crop group this cache serves.
    pub(crate) shape: Conv2dShape,
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
            shape: *shape,
            pre: b.alloc_activation(shape.output_len())?,
            saved: self.bn.alloc_saved(b)?,
        })
    }

    /// Training forward on the cache's shape: `out = relu?(bn(conv(x)) + residual?)`, batch
    /// statistics (summed over ranks by `comm`), running statistics updated.
    pub(crate) fn forward_train<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        x: &Buf,
        cache: &mut ConvBnCache<Buf>,
        output: UnitOutput<'_, Buf>,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        b.conv2d_forward(
            x,
            &self.conv.weight.value,
            &cache.shape,
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
                cache.shape.output_pixels(),
                &cache.saved,
                output.epilogue,
                output.out,
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
        output: UnitOutput<'_, Buf>,
    ) -> Result<(), B::Error> {
        b.conv2d_forward(x, &self.conv.weight.value, shape, pre, None)?;
        self.bn.frozen_stats(b, saved)?;
        let rows = shape.output_pixels();
        self.bn
            .apply(b, pre, rows, saved, output.epilogue, output.out)
    }

    /// Training backward on the cache's shape from the gradient at the batch-norm output.
    /// Accumulates the parameter gradients and writes the input gradient when asked.
    pub(crate) fn backward<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        x: &Buf,
        cache: &ConvBnCache<Buf>,
        upstream: UnitOutputGrad<'_, Buf>,
        grads: UnitInputGrad<'_, Buf>,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        let shape = &cache.shape;
        let inputs = BatchNormBackward {
            dy: upstream.dy,
            x: &cache.pre,
            relu_output: upstream.relu_output,
            saved: &cache.saved,
        };
        let dpre = grads.dpre;
        self.bn
            .backward(b, comm, &inputs, shape.output_pixels(), dpre)?;
        b.conv2d_backward_filter(dpre, x, shape, &mut self.conv.weight.grad)
            .map_err(StepError::Device)?;
        if let Some((dx, accumulate)) = grads.dx {
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
