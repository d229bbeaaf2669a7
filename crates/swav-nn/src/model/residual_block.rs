//! A residual block: a chain of convolution units (two 3×3 for the basic block; 1×1, 3×3,
//! 1×1 for the bottleneck, stride on the 3×3 as in torchvision v1.5) plus the identity or a
//! 1×1 projection shortcut, summed before the final ReLU.

use alloc::format;
use alloc::vec::Vec;

use swav_core::Collective;

use super::conv_bn::{ConvBn, ConvBnCache, UnitInputGrad, UnitOutput, UnitOutputGrad, UnitSpec};
use super::grad_pool::GradPool;
use super::tensors::{Entry, EntryMut, Tensors};
use crate::init::Init;
use crate::{Backend, Conv2dShape, StepError};

/// One residual block.
#[derive(Debug)]
pub(crate) struct ResidualBlock<Buf> {
    pub(crate) units: Vec<ConvBn<Buf>>,
    pub(crate) shortcut: Option<ConvBn<Buf>>,
}

/// What a block's training forward keeps.
#[derive(Debug)]
pub(crate) struct BlockCache<Buf> {
    units: Vec<ConvBnCache<Buf>>,
    /// The ReLU outputs of every unit but the last.
    outs: Vec<Buf>,
    /// The projection shortcut's cache and output.
    shortcut: Option<(ConvBnCache<Buf>, Buf)>,
    /// The block output.
    pub(crate) out: Buf,
}

/// Scratch for evaluation passes, as long as the largest activation.
#[derive(Debug)]
pub(crate) struct BlockScratch<Buf> {
    pub(crate) pre: Buf,
    pub(crate) saved: Buf,
    pub(crate) outs: [Buf; 2],
    pub(crate) identity: Buf,
}

impl<Buf> ResidualBlock<Buf> {
    /// Block `prefix` (e.g. `layer2.0`) from `in_channels` with stage width `planes`.
    pub(crate) fn new<B: Backend<Buf = Buf>>(
        b: &mut B,
        init: &mut Init,
        prefix: &str,
        in_channels: usize,
        planes: usize,
        stride: usize,
        bottleneck: bool,
    ) -> Result<Self, B::Error> {
        let out_channels = if bottleneck { 4 * planes } else { planes };
        // (in, out, kernel, stride, padding) per unit.
        let geometry: Vec<(usize, usize, usize, usize, usize)> = if bottleneck {
            alloc::vec![
                (in_channels, planes, 1, 1, 0),
                (planes, planes, 3, stride, 1),
                (planes, out_channels, 1, 1, 0),
            ]
        } else {
            alloc::vec![
                (in_channels, planes, 3, stride, 1),
                (planes, planes, 3, 1, 1)
            ]
        };
        let mut units = Vec::with_capacity(geometry.len());
        for (i, &(cin, cout, kernel, s, padding)) in geometry.iter().enumerate() {
            let conv_name = format!("{prefix}.conv{}", i + 1);
            let bn_name = format!("{prefix}.bn{}", i + 1);
            units.push(ConvBn::new(
                b,
                init,
                UnitSpec {
                    conv_name: &conv_name,
                    bn_name: &bn_name,
                    in_channels: cin,
                    out_channels: cout,
                    kernel,
                    stride: s,
                    padding,
                },
            )?);
        }
        let shortcut = if stride != 1 || in_channels != out_channels {
            let conv_name = format!("{prefix}.downsample.0");
            let bn_name = format!("{prefix}.downsample.1");
            Some(ConvBn::new(
                b,
                init,
                UnitSpec {
                    conv_name: &conv_name,
                    bn_name: &bn_name,
                    in_channels,
                    out_channels,
                    kernel: 1,
                    stride,
                    padding: 0,
                },
            )?)
        } else {
            None
        };
        Ok(Self { units, shortcut })
    }

    /// The unit geometries on a `batch × height × width` input, and the shortcut's.
    pub(crate) fn shapes(
        &self,
        batch: usize,
        height: usize,
        width: usize,
    ) -> (Vec<Conv2dShape>, Option<Conv2dShape>) {
        let mut shapes = Vec::with_capacity(self.units.len());
        let (mut h, mut w) = (height, width);
        for unit in &self.units {
            let s = unit.conv.shape(batch, h, w);
            (h, w) = (s.out_height(), s.out_width());
            shapes.push(s);
        }
        let shortcut = self
            .shortcut
            .as_ref()
            .map(|sc| sc.conv.shape(batch, height, width));
        (shapes, shortcut)
    }

    /// The largest activation of the block on this input, in elements.
    pub(crate) fn max_activation(&self, batch: usize, height: usize, width: usize) -> usize {
        let (shapes, _) = self.shapes(batch, height, width);
        shapes
            .iter()
            .map(|s| s.input_len().max(s.output_len()))
            .max()
            .unwrap_or(0)
    }

    /// The largest channel count of its batch norms.
    pub(crate) fn max_channels(&self) -> usize {
        self.units
            .iter()
            .map(|u| u.conv.out_channels)
            .max()
            .unwrap_or(0)
    }

    /// Output channels.
    pub(crate) fn out_channels(&self) -> usize {
        self.units.last().map_or(0, |u| u.conv.out_channels)
    }

    /// Buffers for a training pass on this input.
    pub(crate) fn alloc_cache<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        batch: usize,
        height: usize,
        width: usize,
    ) -> Result<BlockCache<Buf>, B::Error> {
        let (shapes, sc_shape) = self.shapes(batch, height, width);
        let mut units = Vec::with_capacity(shapes.len());
        let mut outs = Vec::with_capacity(shapes.len() - 1);
        for (i, (unit, s)) in self.units.iter().zip(&shapes).enumerate() {
            units.push(unit.alloc_cache(b, s)?);
            if i + 1 < shapes.len() {
                outs.push(b.alloc_activation(s.output_len())?);
            }
        }
        let shortcut = match (&self.shortcut, sc_shape) {
            (Some(sc), Some(s)) => {
                Some((sc.alloc_cache(b, &s)?, b.alloc_activation(s.output_len())?))
            }
            _ => None,
        };
        let last = shapes[shapes.len() - 1];
        Ok(BlockCache {
            units,
            outs,
            shortcut,
            out: b.alloc_activation(last.output_len())?,
        })
    }

    /// Training forward of input `x` (of the shape the cache was built for) into `cache.out`.
    pub(crate) fn forward_train<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        x: &Buf,
        cache: &mut BlockCache<Buf>,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        let last = self.units.len() - 1;
        for i in 0..last {
            let (done, rest) = cache.outs.split_at_mut(i);
            let input = if i == 0 { x } else { &done[i - 1] };
            self.units[i].forward_train(
                b,
                comm,
                input,
                &mut cache.units[i],
                UnitOutput::relu(&mut rest[0]),
            )?;
        }
        let residual = match (&mut self.shortcut, &mut cache.shortcut) {
            (Some(sc), Some((sc_cache, identity))) => {
                sc.forward_train(b, comm, x, sc_cache, UnitOutput::plain(identity))?;
                &*identity
            }
            _ => x,
        };
        self.units[last].forward_train(
            b,
            comm,
            &cache.outs[last - 1],
            &mut cache.units[last],
            UnitOutput::with(Some(residual), true, &mut cache.out),
        )
    }

    /// Evaluation forward of `x` into `out`, with the running statistics.
    pub(crate) fn forward_eval<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        x: &Buf,
        (batch, height, width): (usize, usize, usize),
        scratch: &mut BlockScratch<Buf>,
        out: &mut Buf,
    ) -> Result<(), B::Error> {
        let (shapes, sc_shape) = self.shapes(batch, height, width);
        let last = self.units.len() - 1;
        for i in 0..last {
            let (done, rest) = scratch.outs.split_at_mut(i);
            let input = if i == 0 { x } else { &done[i - 1] };
            self.units[i].forward_eval(
                b,
                input,
                &shapes[i],
                &mut scratch.pre,
                &mut scratch.saved,
                UnitOutput::relu(&mut rest[0]),
            )?;
        }
        let residual = match (&self.shortcut, sc_shape) {
            (Some(sc), Some(s)) => {
                sc.forward_eval(
                    b,
                    x,
                    &s,
                    &mut scratch.pre,
                    &mut scratch.saved,
                    UnitOutput::plain(&mut scratch.identity),
                )?;
                &scratch.identity
            }
            _ => x,
        };
        self.units[last].forward_eval(
            b,
            &scratch.outs[last - 1],
            &shapes[last],
            &mut scratch.pre,
            &mut scratch.saved,
            UnitOutput::with(Some(residual), true, out),
        )
    }

    /// Training backward. On entry `pool.grad` holds the gradient at the block output; on
    /// return it holds the gradient at the block input `x`.
    pub(crate) fn backward<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        x: &Buf,
        cache: &BlockCache<Buf>,
        pool: &mut GradPool<Buf>,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        let last = self.units.len() - 1;
        // The final ReLU, once: its masked gradient feeds both the last unit and the shortcut.
        b.relu_backward(
            &mut pool.grad,
            &cache.out,
            cache.units[last].shape.output_len(),
        )
        .map_err(StepError::Device)?;
        self.units[last].backward(
            b,
            comm,
            &cache.outs[last - 1],
            &cache.units[last],
            UnitOutputGrad {
                dy: &pool.grad,
                relu_output: None,
            },
            UnitInputGrad {
                dpre: &mut pool.pre,
                dx: Some((&mut pool.mid, false)),
            },
        )?;
        for i in (0..last).rev() {
            let input = if i == 0 { x } else { &cache.outs[i - 1] };
            self.units[i].backward(
                b,
                comm,
                input,
                &cache.units[i],
                UnitOutputGrad {
                    dy: &pool.mid,
                    relu_output: Some(&cache.outs[i]),
                },
                UnitInputGrad {
                    dpre: &mut pool.pre,
                    dx: Some((&mut pool.next, false)),
                },
            )?;
            if i > 0 {
                core::mem::swap(&mut pool.mid, &mut pool.next);
            }
        }
        match (&mut self.shortcut, &cache.shortcut) {
            (Some(sc), Some((sc_cache, _))) => sc.backward(
                b,
                comm,
                x,
                sc_cache,
                UnitOutputGrad {
                    dy: &pool.grad,
                    relu_output: None,
                },
                UnitInputGrad {
                    dpre: &mut pool.pre,
                    dx: Some((&mut pool.next, true)),
                },
            )?,
            _ => b
                .axpy(
                    1.0,
                    &pool.grad,
                    0,
                    &mut pool.next,
                    0,
                    cache.units[0].shape.input_len(),
                )
                .map_err(StepError::Device)?,
        }
        core::mem::swap(&mut pool.grad, &mut pool.next);
        Ok(())
    }
}

impl<Buf> Tensors<Buf> for ResidualBlock<Buf> {
    fn entries<'a>(&'a self, out: &mut Vec<Entry<'a, Buf>>) {
        for u in &self.units {
            u.entries(out);
        }
        if let Some(sc) = &self.shortcut {
            sc.entries(out);
        }
    }

    fn entries_mut<'a>(&'a mut self, out: &mut Vec<EntryMut<'a, Buf>>) {
        for u in &mut self.units {
            u.entries_mut(out);
        }
        if let Some(sc) = &mut self.shortcut {
            sc.entries_mut(out);
        }
    }
}
