//! The projection head (docs/algorithm.md §1.2): `Linear → BatchNorm1d → ReLU → Linear` (module
//! indices 0, 1, 3), or a single `Linear` when the hidden width is 0.

use alloc::vec::Vec;

use swav_core::Collective;

use super::batch_norm::BatchNorm;
use super::linear::Linear;
use super::tensors::{Entry, EntryMut, Tensors};
use crate::init::Init;
use crate::{Backend, BatchNormBackward, Epilogue, StepError};

/// The projection head's layers.
// One head per model: the variants' size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum ProjectionHead<Buf> {
    /// `projection_head.{0,1,3}`.
    Mlp {
        first: Linear<Buf>,
        norm: BatchNorm<Buf>,
        second: Linear<Buf>,
    },
    /// `projection_head` alone.
    Single(Linear<Buf>),
}

/// Activations of the head (training: kept for the backward pass; evaluation: scratch).
#[derive(Debug)]
pub(crate) struct HeadCache<Buf> {
    rows: usize,
    /// First linear output (batch-norm input), `rows × hidden`.
    hidden: Buf,
    saved: Buf,
    /// ReLU output, `rows × hidden`.
    act: Buf,
    /// Gradient scratch, `rows × hidden` each.
    d_act: Buf,
    d_hidden: Buf,
    /// The head output, `rows × output_dim`.
    pub(crate) out: Buf,
}

impl<Buf> HeadCache<Buf> {
    /// Rows it was built for.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }
}

impl<Buf> ProjectionHead<Buf> {
    /// The head from `in_features` through `hidden` (0: single layer) to `out_features`.
    pub(crate) fn new<B: Backend<Buf = Buf>>(
        b: &mut B,
        init: &mut Init,
        in_features: usize,
        hidden: usize,
        out_features: usize,
    ) -> Result<Self, B::Error> {
        if hidden == 0 {
            return Ok(Self::Single(Linear::new(
                b,
                init,
                "projection_head",
                in_features,
                out_features,
                true,
            )?));
        }
        Ok(Self::Mlp {
            first: Linear::new(b, init, "projection_head.0", in_features, hidden, true)?,
            norm: BatchNorm::new(b, "projection_head.1", hidden)?,
            second: Linear::new(b, init, "projection_head.3", hidden, out_features, true)?,
        })
    }

    fn hidden(&self) -> usize {
        match self {
            Self::Mlp { norm, .. } => norm.channels,
            Self::Single(_) => 0,
        }
    }

    fn out_features(&self) -> usize {
        match self {
            Self::Mlp { second, .. } => second.out_features,
            Self::Single(l) => l.out_features,
        }
    }

    /// Buffers for `rows` rows.
    pub(crate) fn alloc_cache<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        rows: usize,
    ) -> Result<HeadCache<Buf>, B::Error> {
        let h = self.hidden();
        Ok(HeadCache {
            rows,
            hidden: b.alloc_activation(rows * h)?,
            saved: b.zeros(crate::batch_norm_saved_len(h))?,
            act: b.alloc_activation(rows * h)?,
            d_act: b.alloc_activation(rows * h)?,
            d_hidden: b.alloc_activation(rows * h)?,
            out: b.zeros(rows * self.out_features())?,
        })
    }

    /// Training forward of `features` (`rows × in`) into `cache.out`; the batch norm uses
    /// the statistics of all rows (every crop of every resolution), summed over ranks.
    pub(crate) fn forward_train<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        features: &Buf,
        cache: &mut HeadCache<Buf>,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        let rows = cache.rows;
        let dev = StepError::Device;
        match self {
            Self::Single(l) => l.forward(b, features, rows, &mut cache.out).map_err(dev),
            Self::Mlp {
                first,
                norm,
                second,
            } => {
                first
                    .forward(b, features, rows, &mut cache.hidden)
                    .map_err(dev)?;
                norm.train_stats(b, comm, &cache.hidden, rows, &mut cache.saved)?;
                norm.apply(
                    b,
                    &cache.hidden,
                    rows,
                    &cache.saved,
                    Epilogue::relu(),
                    &mut cache.act,
                )
                .map_err(dev)?;
                second
                    .forward(b, &cache.act, rows, &mut cache.out)
                    .map_err(dev)
            }
        }
    }

    /// Evaluation forward (running statistics) into `cache.out`.
    pub(crate) fn forward_eval<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        features: &Buf,
        cache: &mut HeadCache<Buf>,
    ) -> Result<(), B::Error> {
        let rows = cache.rows;
        match self {
            Self::Single(l) => l.forward(b, features, rows, &mut cache.out),
            Self::Mlp {
                first,
                norm,
                second,
            } => {
                first.forward(b, features, rows, &mut cache.hidden)?;
                norm.frozen_stats(b, &mut cache.saved)?;
                norm.apply(
                    b,
                    &cache.hidden,
                    rows,
                    &cache.saved,
                    Epilogue::relu(),
                    &mut cache.act,
                )?;
                second.forward(b, &cache.act, rows, &mut cache.out)
            }
        }
    }

    /// Training backward from `d_out`; accumulates the head's gradients and writes
    /// `d_features`.
    pub(crate) fn backward<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        features: &Buf,
        cache: &mut HeadCache<Buf>,
        d_out: &Buf,
        d_features: &mut Buf,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        let rows = cache.rows;
        let dev = StepError::Device;
        match self {
            Self::Single(l) => l
                .backward(b, d_out, features, rows, Some(d_features))
                .map_err(dev),
            Self::Mlp {
                first,
                norm,
                second,
            } => {
                second
                    .backward(b, d_out, &cache.act, rows, Some(&mut cache.d_act))
                    .map_err(dev)?;
                let inputs = BatchNormBackward {
                    dy: &cache.d_act,
                    x: &cache.hidden,
                    relu_output: Some(&cache.act),
                    saved: &cache.saved,
                };
                norm.backward(b, comm, &inputs, rows, &mut cache.d_hidden)?;
                first
                    .backward(b, &cache.d_hidden, features, rows, Some(d_features))
                    .map_err(dev)
            }
        }
    }
}

impl<Buf> Tensors<Buf> for ProjectionHead<Buf> {
    fn entries<'a>(&'a self, out: &mut Vec<Entry<'a, Buf>>) {
        match self {
            Self::Single(l) => l.entries(out),
            Self::Mlp {
                first,
                norm,
                second,
            } => {
                first.entries(out);
                norm.entries(out);
                second.entries(out);
            }
        }
    }

    fn entries_mut<'a>(&'a mut self, out: &mut Vec<EntryMut<'a, Buf>>) {
        match self {
            Self::Single(l) => l.entries_mut(out),
            Self::Mlp {
                first,
                norm,
                second,
            } => {
                first.entries_mut(out);
                norm.entries_mut(out);
                second.entries_mut(out);
            }
        }
    }
}
