//! The ResNet trunk: stem (7×7/2 convolution, batch norm, ReLU, 3×3/2 max pooling; or the
//! small-image 3×3/1 stem without pooling), four stages of residual blocks, global average
//! pooling. Training passes keep a [`TrunkCache`] per resolution group.

use alloc::format;
use alloc::vec::Vec;

use swav_core::Collective;

use super::config::TrunkConfig;
use super::conv_bn::{ConvBn, ConvBnCache, UnitInputGrad, UnitOutput, UnitOutputGrad, UnitSpec};
use super::grad_pool::GradPool;
use super::grad_ready::{GradReady, announce};
use super::residual_block::{BlockCache, BlockScratch, ResidualBlock};
use super::tensors::{Entry, EntryMut, Tensors};
use crate::init::Init;
use crate::{Backend, Conv2dShape, GlobalPoolShape, Pool2dShape, StepError};

/// Input channels (RGB).
pub(crate) const IN_CHANNELS: usize = 3;

/// The trunk's layers.
#[derive(Debug)]
pub(crate) struct Trunk<Buf> {
    pub(crate) config: TrunkConfig,
    pub(crate) stem: ConvBn<Buf>,
    pub(crate) blocks: Vec<ResidualBlock<Buf>>,
}

/// The spatial plan of one input size: every block's input size and the pooled output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    batch: usize,
    stem: Conv2dShape,
    pool: Option<Pool2dShape>,
    /// `(height, width)` at each block's input, then at the trunk output.
    sizes: Vec<(usize, usize)>,
}

/// What a training pass keeps, for one resolution group.
#[derive(Debug)]
pub(crate) struct TrunkCache<Buf> {
    plan: Plan,
    /// A copy of the input images (the stem's weight gradient needs them).
    input: Buf,
    stem: ConvBnCache<Buf>,
    stem_out: Buf,
    pooled_stem: Option<Buf>,
    blocks: Vec<BlockCache<Buf>>,
    /// The pooled features (`batch × feature_dim`).
    pub(crate) features: Buf,
    /// Their gradient, filled by the caller before the backward pass.
    pub(crate) d_features: Buf,
    /// The gradient with respect to the input images, when requested.
    pub(crate) input_grad: Option<Buf>,
}

impl<Buf> TrunkCache<Buf> {
    /// Images in the group.
    pub(crate) fn batch(&self) -> usize {
        self.plan.batch
    }
}

/// Scratch for evaluation passes.
#[derive(Debug)]
pub(crate) struct EvalWorkspace<Buf> {
    len: usize,
    channels: usize,
    scratch: BlockScratch<Buf>,
    ping: Buf,
    pong: Buf,
}

impl<Buf> Trunk<Buf> {
    /// The layers of `config`, initialised from `init`.
    pub(crate) fn new<B: Backend<Buf = Buf>>(
        b: &mut B,
        init: &mut Init,
        config: TrunkConfig,
    ) -> Result<Self, B::Error> {
        let c0 = config.stem_channels();
        let (kernel, stride, padding) = if config.small_stem {
            (3, 1, 1)
        } else {
            (7, 2, 3)
        };
        let stem = ConvBn::new(
            b,
            init,
            UnitSpec {
                conv_name: "conv1",
                bn_name: "bn1",
                in_channels: IN_CHANNELS,
                out_channels: c0,
                kernel,
                stride,
                padding,
            },
        )?;
        let mut blocks = Vec::new();
        let mut in_channels = c0;
        for (stage, &count) in config.arch.blocks().iter().enumerate() {
            let planes = c0 << stage;
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let block = ResidualBlock::new(
                    b,
                    init,
                    &format!("layer{}.{i}", stage + 1),
                    in_channels,
                    planes,
                    stride,
                    config.arch.bottleneck(),
                )?;
                in_channels = block.out_channels();
                blocks.push(block);
            }
        }
        Ok(Self {
            config,
            stem,
            blocks,
        })
    }

    /// The pooled feature dimension.
    pub(crate) fn feature_dim(&self) -> usize {
        self.config.feature_dim()
    }

    /// The global average pooling that turns the last block's output into features.
    fn feature_pool(&self, plan: &Plan) -> GlobalPoolShape {
        let (h, w) = plan.sizes[self.blocks.len()];
        GlobalPoolShape {
            batch: plan.batch,
            pixels: h * w,
            channels: self.feature_dim(),
        }
    }

    fn plan(&self, batch: usize, height: usize, width: usize) -> Plan {
        let stem = self.stem.conv.shape(batch, height, width);
        let (mut h, mut w) = (stem.out_height(), stem.out_width());
        let pool = (!self.config.small_stem).then_some(Pool2dShape {
            batch,
            in_height: h,
            in_width: w,
            channels: stem.out_channels,
            kernel: 3,
            stride: 2,
            padding: 1,
        });
        if let Some(p) = &pool {
            (h, w) = (p.out_height(), p.out_width());
        }
        let mut sizes = Vec::with_capacity(self.blocks.len() + 1);
        for block in &self.blocks {
            sizes.push((h, w));
            let (shapes, _) = block.shapes(batch, h, w);
            let last = shapes[shapes.len() - 1];
            (h, w) = (last.out_height(), last.out_width());
        }
        sizes.push((h, w));
        Plan {
            batch,
            stem,
            pool,
            sizes,
        }
    }

    /// The largest activation of a pass on this input, in elements.
    pub(crate) fn max_activation(&self, batch: usize, height: usize, width: usize) -> usize {
        let plan = self.plan(batch, height, width);
        let mut len = plan.stem.input_len().max(plan.stem.output_len());
        for (block, &(h, w)) in self.blocks.iter().zip(&plan.sizes) {
            len = len.max(block.max_activation(batch, h, w));
        }
        len
    }

    /// The largest batch-norm channel count.
    fn max_channels(&self) -> usize {
        self.blocks
            .iter()
            .map(ResidualBlock::max_channels)
            .max()
            .unwrap_or(0)
            .max(self.config.stem_channels())
    }

    /// Buffers for a training pass on `batch × height × width` images.
    pub(crate) fn alloc_cache<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        batch: usize,
        height: usize,
        width: usize,
        input_grad: bool,
    ) -> Result<TrunkCache<Buf>, B::Error> {
        let plan = self.plan(batch, height, width);
        let stem = self.stem.alloc_cache(b, &plan.stem)?;
        let stem_out = b.alloc_activation(plan.stem.output_len())?;
        let pooled_stem = match &plan.pool {
            Some(p) => Some(b.alloc_activation(p.output_len())?),
            None => None,
        };
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (block, &(h, w)) in self.blocks.iter().zip(&plan.sizes) {
            blocks.push(block.alloc_cache(b, batch, h, w)?);
        }
        let features = b.zeros(batch * self.feature_dim())?;
        let d_features = b.zeros(batch * self.feature_dim())?;
        let input_grad = if input_grad {
            Some(b.alloc_activation(plan.stem.input_len())?)
        } else {
            None
        };
        Ok(TrunkCache {
            input: b.alloc_activation(plan.stem.input_len())?,
            plan,
            stem,
            stem_out,
            pooled_stem,
            blocks,
            features,
            d_features,
            input_grad,
        })
    }

    /// Training forward of `images` (NHWC, the cache's size) into `cache.features`.
    pub(crate) fn forward_train<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        images: &Buf,
        cache: &mut TrunkCache<Buf>,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        let plan = &cache.plan;
        b.copy(images, 0, &mut cache.input, 0, plan.stem.input_len())
            .map_err(StepError::Device)?;
        self.stem.forward_train(
            b,
            comm,
            &cache.input,
            &mut cache.stem,
            UnitOutput::relu(&mut cache.stem_out),
        )?;
        if let (Some(p), Some(pooled)) = (&plan.pool, &mut cache.pooled_stem) {
            b.max_pool2d_forward(&cache.stem_out, p, pooled)
                .map_err(StepError::Device)?;
        }
        let stem_output = cache.pooled_stem.as_ref().unwrap_or(&cache.stem_out);
        for i in 0..self.blocks.len() {
            let (done, rest) = cache.blocks.split_at_mut(i);
            let input = if i == 0 {
                stem_output
            } else {
                &done[i - 1].out
            };
            self.blocks[i].forward_train(b, comm, input, &mut rest[0])?;
        }
        let last = &cache.blocks[self.blocks.len() - 1].out;
        b.global_avg_pool_forward(last, &self.feature_pool(plan), &mut cache.features)
            .map_err(StepError::Device)
    }

    /// Training backward from `cache.d_features`; accumulates every parameter gradient and,
    /// when the cache was built for it, writes the input-image gradient. `ready` hears of
    /// each block's parameters as soon as the block is done (pass it on the last resolution
    /// group only: earlier groups' gradients are not final).
    pub(crate) fn backward<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        cache: &mut TrunkCache<Buf>,
        pool: &mut GradPool<Buf>,
        mut ready: Option<&mut dyn GradReady<B>>,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        let plan = &cache.plan;
        b.global_avg_pool_backward(&cache.d_features, &self.feature_pool(plan), &mut pool.grad)
            .map_err(StepError::Device)?;
        let stem_output = cache.pooled_stem.as_ref().unwrap_or(&cache.stem_out);
        for i in (0..self.blocks.len()).rev() {
            let input = if i == 0 {
                stem_output
            } else {
                &cache.blocks[i - 1].out
            };
            self.blocks[i].backward(b, comm, input, &cache.blocks[i], pool)?;
            announce(b, &self.blocks[i], &mut ready);
        }
        let dy = match &plan.pool {
            Some(p) => {
                b.max_pool2d_backward(&pool.grad, &cache.stem_out, p, &mut pool.mid)
                    .map_err(StepError::Device)?;
                &pool.mid
            }
            None => &pool.grad,
        };
        self.stem.backward(
            b,
            comm,
            &cache.input,
            &cache.stem,
            UnitOutputGrad {
                dy,
                relu_output: Some(&cache.stem_out),
            },
            UnitInputGrad {
                dpre: &mut pool.pre,
                dx: cache.input_grad.as_mut().map(|g| (g, false)),
            },
        )?;
        announce(b, &self.stem, &mut ready);
        Ok(())
    }

    /// Scratch for evaluation passes on inputs up to this size.
    pub(crate) fn alloc_eval<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        batch: usize,
        height: usize,
        width: usize,
    ) -> Result<EvalWorkspace<Buf>, B::Error> {
        let len = self.max_activation(batch, height, width);
        let channels = self.max_channels();
        Ok(EvalWorkspace {
            len,
            channels,
            scratch: BlockScratch {
                pre: b.alloc_activation(len)?,
                saved: b.zeros(crate::batch_norm_saved_len(channels))?,
                outs: [b.alloc_activation(len)?, b.alloc_activation(len)?],
                identity: b.alloc_activation(len)?,
            },
            ping: b.alloc_activation(len)?,
            pong: b.alloc_activation(len)?,
        })
    }

    /// Whether `ws` is large enough for this input.
    pub(crate) fn eval_fits(
        &self,
        ws: &EvalWorkspace<Buf>,
        batch: usize,
        height: usize,
        width: usize,
    ) -> bool {
        ws.len >= self.max_activation(batch, height, width) && ws.channels >= self.max_channels()
    }

    /// Evaluation forward (running statistics) of `images` into `features`.
    pub(crate) fn forward_eval<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        images: &Buf,
        (batch, height, width): (usize, usize, usize),
        ws: &mut EvalWorkspace<Buf>,
        features: &mut Buf,
    ) -> Result<(), B::Error> {
        let plan = self.plan(batch, height, width);
        let sc = &mut ws.scratch;
        self.stem.forward_eval(
            b,
            images,
            &plan.stem,
            &mut sc.pre,
            &mut sc.saved,
            UnitOutput::relu(&mut ws.ping),
        )?;
        if let Some(p) = &plan.pool {
            b.max_pool2d_forward(&ws.ping, p, &mut ws.pong)?;
            core::mem::swap(&mut ws.ping, &mut ws.pong);
        }
        for (block, &(h, w)) in self.blocks.iter().zip(&plan.sizes) {
            block.forward_eval(b, &ws.ping, (batch, h, w), sc, &mut ws.pong)?;
            core::mem::swap(&mut ws.ping, &mut ws.pong);
        }
        b.global_avg_pool_forward(&ws.ping, &self.feature_pool(&plan), features)
    }
}

impl<Buf> Tensors<Buf> for Trunk<Buf> {
    fn entries<'a>(&'a self, out: &mut Vec<Entry<'a, Buf>>) {
        self.stem.entries(out);
        for block in &self.blocks {
            block.entries(out);
        }
    }

    fn entries_mut<'a>(&'a mut self, out: &mut Vec<EntryMut<'a, Buf>>) {
        self.stem.entries_mut(out);
        for block in &mut self.blocks {
            block.entries_mut(out);
        }
    }
}
