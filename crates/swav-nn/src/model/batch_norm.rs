//! A batch-norm layer (2-d over NHWC rows, or the head's 1-d): parameters, running
//! statistics, and its training (optionally synchronised) and evaluation passes.

use alloc::format;
use alloc::string::String;

use swav_core::{Collective, ParamKind};

use super::tensors::{Counter, Entry, EntryMut, Layout, Param, Stat, Tensors};
use crate::{
    Affine, AffineGrads, Backend, BatchNormBackward, BatchNormSettings, BatchNormShape, Epilogue,
    RunningStats, StepError, batch_norm_saved_len, batch_norm_stats_len,
};

/// PyTorch's default `eps`.
pub const BN_EPS: f32 = 1e-5;

/// PyTorch's default `momentum` for the running statistics.
pub const BN_MOMENTUM: f32 = 0.1;

/// One batch-norm layer.
#[derive(Debug)]
pub(crate) struct BatchNorm<Buf> {
    pub(crate) channels: usize,
    pub(crate) weight: Param<Buf>,
    pub(crate) bias: Param<Buf>,
    pub(crate) running_mean: Stat<Buf>,
    pub(crate) running_var: Stat<Buf>,
    pub(crate) batches: Counter,
    /// The statistics of the current pass (forward), or the backward sums; all-reduced in
    /// place. Kept between calls.
    pub(crate) stats: Buf,
}

impl<Buf> BatchNorm<Buf> {
    /// γ = 1, β = 0, running mean 0, running variance 1; names `{prefix}.weight`, ….
    pub(crate) fn new<B: Backend<Buf = Buf>>(
        b: &mut B,
        prefix: &str,
        channels: usize,
    ) -> Result<Self, B::Error> {
        let ones = alloc::vec![1.0f32; channels];
        let zeros = alloc::vec![0.0f32; channels];
        let vector = |suffix: &str| -> (String, alloc::vec::Vec<usize>) {
            (format!("{prefix}.{suffix}"), alloc::vec![channels])
        };
        let (wn, ws) = vector("weight");
        let (bn, bs) = vector("bias");
        let mut running_mean = b.zeros(channels)?;
        b.upload(&zeros, &mut running_mean, 0)?;
        let mut running_var = b.zeros(channels)?;
        b.upload(&ones, &mut running_var, 0)?;
        Ok(Self {
            channels,
            weight: Param::new(b, wn, ws, ParamKind::BiasOrNorm, Layout::Plain, &ones)?,
            bias: Param::new(b, bn, bs, ParamKind::BiasOrNorm, Layout::Plain, &zeros)?,
            running_mean: Stat {
                name: format!("{prefix}.running_mean"),
                len: channels,
                value: running_mean,
            },
            running_var: Stat {
                name: format!("{prefix}.running_var"),
                len: channels,
                value: running_var,
            },
            batches: Counter {
                name: format!("{prefix}.num_batches_tracked"),
                value: 0,
            },
            stats: b.zeros(batch_norm_stats_len(channels))?,
        })
    }

    /// A buffer for the statistics a pass normalised with.
    pub(crate) fn alloc_saved<B: Backend<Buf = Buf>>(&self, b: &mut B) -> Result<Buf, B::Error> {
        b.zeros(batch_norm_saved_len(self.channels))
    }

    /// Training mode, once the local statistics (shifted by the running mean) are in
    /// `self.stats`: sums them over ranks,
    /// writes the batch statistics to `saved`, updates the running statistics and counts
    /// the batch.
    pub(crate) fn finish_train_stats<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        saved: &mut Buf,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        comm.all_reduce_sum(&mut self.stats)
            .map_err(StepError::Collective)?;
        let settings = BatchNormSettings {
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
        };
        let running = RunningStats {
            mean: &mut self.running_mean.value,
            var: &mut self.running_var.value,
        };
        b.batch_norm_finalize(&self.stats, self.channels, settings, running, saved)
            .map_err(StepError::Device)?;
        self.batches.value += 1;
        Ok(())
    }

    /// Training mode from `x` (`rows × channels`): local statistics, then
    /// [`Self::finish_train_stats`].
    pub(crate) fn train_stats<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        x: &Buf,
        rows: usize,
        saved: &mut Buf,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        b.batch_norm_stats(
            x,
            &self.shape(rows),
            &self.running_mean.value,
            &mut self.stats,
        )
        .map_err(StepError::Device)?;
        self.finish_train_stats(b, comm, saved)
    }

    /// Evaluation mode: the running statistics into `saved`.
    pub(crate) fn frozen_stats<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        saved: &mut Buf,
    ) -> Result<(), B::Error> {
        b.batch_norm_frozen(
            &self.running_mean.value,
            &self.running_var.value,
            self.channels,
            BN_EPS,
            saved,
        )
    }

    /// The shape of this layer over `rows` rows.
    pub(crate) fn shape(&self, rows: usize) -> BatchNormShape {
        BatchNormShape {
            rows,
            channels: self.channels,
        }
    }

    /// `y = bn(x)`, then the epilogue's residual and ReLU, with the statistics in `saved`.
    pub(crate) fn apply<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        x: &Buf,
        rows: usize,
        saved: &Buf,
        epilogue: Epilogue<'_, Buf>,
        y: &mut Buf,
    ) -> Result<(), B::Error> {
        let affine = Affine {
            weight: &self.weight.value,
            bias: &self.bias.value,
        };
        b.batch_norm_apply(x, &self.shape(rows), saved, affine, epilogue, y)
    }

    /// Training-mode backward: accumulates γ and β gradients, writes `dx`. `dy` is masked by
    /// `inputs.relu_output` when the forward applied a ReLU that the caller has not undone.
    pub(crate) fn backward<B, C>(
        &mut self,
        b: &mut B,
        comm: &C,
        inputs: &BatchNormBackward<'_, Buf>,
        rows: usize,
        dx: &mut Buf,
    ) -> Result<(), StepError<B::Error, C::Error>>
    where
        B: Backend<Buf = Buf>,
        C: Collective<Buf>,
    {
        let shape = self.shape(rows);
        let grads = AffineGrads {
            weight: &mut self.weight.grad,
            bias: &mut self.bias.grad,
        };
        b.batch_norm_backward_reduce(inputs, &shape, &mut self.stats, grads)
            .map_err(StepError::Device)?;
        comm.all_reduce_sum(&mut self.stats)
            .map_err(StepError::Collective)?;
        b.batch_norm_backward_apply(inputs, &shape, &self.weight.value, Some(&self.stats), dx)
            .map_err(StepError::Device)
    }
}

impl<Buf> Tensors<Buf> for BatchNorm<Buf> {
    fn entries<'a>(&'a self, out: &mut alloc::vec::Vec<Entry<'a, Buf>>) {
        out.push(Entry::Param(&self.weight));
        out.push(Entry::Param(&self.bias));
        out.push(Entry::Stat(&self.running_mean));
        out.push(Entry::Stat(&self.running_var));
        out.push(Entry::Counter(&self.batches));
    }

    fn entries_mut<'a>(&'a mut self, out: &mut alloc::vec::Vec<EntryMut<'a, Buf>>) {
        out.push(EntryMut::Param(&mut self.weight));
        out.push(EntryMut::Param(&mut self.bias));
        out.push(EntryMut::Stat(&mut self.running_mean));
        out.push(EntryMut::Stat(&mut self.running_var));
        out.push(EntryMut::Counter(&mut self.batches));
    }
}
