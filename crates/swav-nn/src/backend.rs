//! The [`Backend`] trait: every device operation the SwAV model needs.

use swav_core::{HeadOps, Lars, LarsParam};

use crate::shapes::{Conv2dShape, Pool2dShape};

/// Where a convolution writes the batch-norm statistics of its output (see
/// [`Backend::batch_norm_stats`]).
#[derive(Debug)]
pub struct StatsOutput<'a, Buf> {
    /// The per-channel shift `k` (the batch norm's running mean).
    pub shift: &'a Buf,
    /// The statistics, `[Σ(y-k), Σ(y-k)², rows]`.
    pub stats: &'a mut Buf,
}

/// The length of a batch-norm statistics buffer for `channels` channels: `[Σ(x-k) (C),
/// Σ(x-k)² (C), count (1)]` with `k` the per-channel shift (the running mean), or in
/// backward `[Σg (C), Σg·x̂ (C), unused (1)]`.
pub const fn batch_norm_stats_len(channels: usize) -> usize {
    2 * channels + 1
}

/// The length of a batch-norm "saved" buffer for `channels` channels: `[mean (C),
/// 1/√(var + eps) (C), count (1)]`, the statistics a normalisation used.
pub const fn batch_norm_saved_len(channels: usize) -> usize {
    2 * channels + 1
}

/// Device operations for a ResNet trunk, the SwAV projection head and the prototypes.
///
/// Conventions (on top of [`HeadOps`]'s):
/// * activations are NHWC (`[batch, height, width, channels]`, channels fastest), so a
///   tensor is also a `rows × channels` matrix with `rows = batch·height·width`; matrices
///   are row-major; convolution weights are OHWI and linear weights `[out, in]`;
/// * shapes are passed explicitly. Buffers may be longer than an operation needs: only
///   their prefix is read or written, so a pool of large buffers can serve every layer;
/// * an output "overwrites" its buffer unless the method says it accumulates (`+=`); all
///   gradients of *parameters* accumulate, so multi-crop groups add up naturally;
/// * results must be deterministic: the same inputs give bit-identical outputs whatever
///   the number of threads or streams;
/// * batch norm is split into local reductions, a caller-side all-reduce through a
///   [`Collective`](swav_core::Collective) and element-wise application, so that
///   synchronised batch norm is a matter of the collective passed in;
/// * a device failure is an `Err`; a shape mistake is a programming error and may panic.
///
/// Parameters, gradients, optimiser state, batch-norm statistics and head scores live in
/// [`HeadOps::zeros`] buffers (always `f32`). Activations and their gradients come from
/// [`Backend::alloc_activation`], which a GPU backend may store in a narrower type; an
/// operation may then receive both kinds (the pooled features the trunk writes, for one,
/// are `f32` head inputs), so such a backend tags its buffers with their element type.
pub trait Backend: HeadOps<f32> {
    /// Allocates an activation buffer of `len` elements, zero-initialised.
    fn alloc_activation(&mut self, len: usize) -> Result<Self::Buf, Self::Error>;

    // ----- convolution -----

    /// `y = conv(x, weight)`. When `stats` is given, it also receives the per-channel
    /// statistics of `y` as [`Backend::batch_norm_stats`] computes them, so that a following
    /// batch norm can skip its reduction pass.
    fn conv2d_forward(
        &mut self,
        x: &Self::Buf,
        weight: &Self::Buf,
        shape: &Conv2dShape,
        y: &mut Self::Buf,
        stats: Option<StatsOutput<'_, Self::Buf>>,
    ) -> Result<(), Self::Error>;

    /// The input gradient: `dx = convᵀ(dy, weight)`, added to `dx` when `accumulate`.
    fn conv2d_backward_data(
        &mut self,
        dy: &Self::Buf,
        weight: &Self::Buf,
        shape: &Conv2dShape,
        dx: &mut Self::Buf,
        accumulate: bool,
    ) -> Result<(), Self::Error>;

    /// The weight gradient, accumulated: `dweight += Σ dyᵀ · patches(x)`.
    fn conv2d_backward_filter(
        &mut self,
        dy: &Self::Buf,
        x: &Self::Buf,
        shape: &Conv2dShape,
        dweight: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    // ----- batch norm -----

    /// The local per-channel statistics of `x` (`rows × channels`), shifted by `shift`
    /// (`C` values, the running mean, which every rank holds identically):
    /// `stats = [Σ(x-k), Σ(x-k)², rows]` (see [`batch_norm_stats_len`]). The shift keeps
    /// the variance free of cancellation once the running mean tracks the batch mean. Sum
    /// the statistics over ranks with the collective before
    /// [`Backend::batch_norm_finalize`].
    fn batch_norm_stats(
        &mut self,
        x: &Self::Buf,
        rows: usize,
        channels: usize,
        shift: &Self::Buf,
        stats: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Turns globally summed `stats` (shifted by `running_mean`) into the batch mean and
    /// `1/√(var + eps)` (biased variance) in `saved`, then updates the running statistics
    /// with the unbiased variance over the global count: `r = (1 - momentum)·r +
    /// momentum·v`.
    fn batch_norm_finalize(
        &mut self,
        stats: &Self::Buf,
        channels: usize,
        eps: f32,
        momentum: f32,
        running_mean: &mut Self::Buf,
        running_var: &mut Self::Buf,
        saved: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Evaluation mode: fills `saved` from the running statistics (count 0).
    fn batch_norm_frozen(
        &mut self,
        running_mean: &Self::Buf,
        running_var: &Self::Buf,
        channels: usize,
        eps: f32,
        saved: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `y = (x - mean)·invstd·weight + bias`, then `+ residual` if given, then ReLU if
    /// `relu`; `mean` and `invstd` come from `saved`.
    fn batch_norm_apply(
        &mut self,
        x: &Self::Buf,
        rows: usize,
        channels: usize,
        saved: &Self::Buf,
        weight: &Self::Buf,
        bias: &Self::Buf,
        residual: Option<&Self::Buf>,
        relu: bool,
        y: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// The local reductions of the backward pass. With `g = dy` masked by `relu_output > 0`
    /// when the forward applied a ReLU (pass its output), and `x̂ = (x - mean)·invstd`:
    /// `sums = [Σg, Σg·x̂, 0]` (local; all-reduce them for synchronised batch norm), and
    /// the parameter gradients accumulate the local sums: `dbias += Σg`, `dweight += Σg·x̂`.
    fn batch_norm_backward_reduce(
        &mut self,
        dy: &Self::Buf,
        x: &Self::Buf,
        relu_output: Option<&Self::Buf>,
        rows: usize,
        channels: usize,
        saved: &Self::Buf,
        sums: &mut Self::Buf,
        dweight: &mut Self::Buf,
        dbias: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// The input gradient. With batch statistics (`sums` = the globally summed
    /// [`Backend::batch_norm_backward_reduce`] output, `N` = the global count in `saved`):
    /// `dx = weight·invstd·(g - Σg/N - x̂·Σg·x̂/N)`. With frozen statistics (`sums` is
    /// `None`): `dx = weight·invstd·g`.
    fn batch_norm_backward_apply(
        &mut self,
        dy: &Self::Buf,
        x: &Self::Buf,
        relu_output: Option<&Self::Buf>,
        rows: usize,
        channels: usize,
        saved: &Self::Buf,
        weight: &Self::Buf,
        sums: Option<&Self::Buf>,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    // ----- element-wise -----

    /// ReLU backward in place: `dy[i] = 0` where `relu_output[i] <= 0`.
    fn relu_backward(
        &mut self,
        dy: &mut Self::Buf,
        relu_output: &Self::Buf,
        len: usize,
    ) -> Result<(), Self::Error>;

    // ----- pooling -----

    /// Max pooling; ties go to the first maximum in window order, NaN propagates.
    fn max_pool2d_forward(
        &mut self,
        x: &Self::Buf,
        shape: &Pool2dShape,
        y: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Max-pooling backward: each `dy` goes to its window's first maximum of `x`.
    fn max_pool2d_backward(
        &mut self,
        dy: &Self::Buf,
        x: &Self::Buf,
        shape: &Pool2dShape,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Global average pooling: `y[n, c] = Σ_p x[n, p, c] / pixels`.
    fn global_avg_pool_forward(
        &mut self,
        x: &Self::Buf,
        batch: usize,
        pixels: usize,
        channels: usize,
        y: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Global average pooling backward: `dx[n, p, c] = dy[n, c] / pixels`.
    fn global_avg_pool_backward(
        &mut self,
        dy: &Self::Buf,
        batch: usize,
        pixels: usize,
        channels: usize,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    // ----- linear layers -----

    /// `y = x · weightᵀ (+ bias)`, with `x` `rows × in_features` and `weight`
    /// `out_features × in_features`.
    fn linear_forward(
        &mut self,
        x: &Self::Buf,
        weight: &Self::Buf,
        bias: Option<&Self::Buf>,
        rows: usize,
        in_features: usize,
        out_features: usize,
        y: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `dx = dy · weight`.
    fn linear_backward_data(
        &mut self,
        dy: &Self::Buf,
        weight: &Self::Buf,
        rows: usize,
        in_features: usize,
        out_features: usize,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `dweight += dyᵀ · x` and, when given, `dbias += Σ_rows dy`.
    fn linear_backward_weight(
        &mut self,
        dy: &Self::Buf,
        x: &Self::Buf,
        rows: usize,
        in_features: usize,
        out_features: usize,
        dweight: &mut Self::Buf,
        dbias: Option<&mut Self::Buf>,
    ) -> Result<(), Self::Error>;

    // ----- L2 normalisation -----

    /// `z[r, :] = x[r, :] / max(‖x[r, :]‖₂, eps)`, PyTorch's `F.normalize(dim=1)`.
    fn l2_normalize_rows_forward(
        &mut self,
        x: &Self::Buf,
        rows: usize,
        cols: usize,
        eps: f32,
        z: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// Backward of [`Backend::l2_normalize_rows_forward`]: with `n = ‖x[r, :]‖`,
    /// `dx = (dz - z·⟨z, dz⟩)/n` when `n > eps`, else `dx = dz/eps`.
    fn l2_normalize_rows_backward(
        &mut self,
        dz: &Self::Buf,
        x: &Self::Buf,
        z: &Self::Buf,
        rows: usize,
        cols: usize,
        eps: f32,
        dx: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    // ----- input batches -----

    /// Starts moving one input batch to the device: `groups[g]` (host values, NHWC) into
    /// the activation buffer `inputs[g]`. The host slices may be reused as soon as this
    /// returns. The default uploads synchronously ([`HeadOps::upload`]).
    ///
    /// A backend may instead return while the copy is still in flight, so that it overlaps
    /// work already enqueued. The copy then waits for all work enqueued before this call
    /// (which may still read `inputs`), and work enqueued later sees the new values only
    /// after [`Backend::await_staged_inputs`]. A training loop therefore keeps two sets of
    /// input buffers: it awaits batch `i`, stages batch `i + 1` into the other set, then
    /// runs step `i`, whose first synchronising read comes after the copy has started.
    fn stage_inputs(
        &mut self,
        groups: &[&[f32]],
        inputs: &mut [Self::Buf],
    ) -> Result<(), Self::Error> {
        assert_eq!(groups.len(), inputs.len(), "one input buffer per group");
        for (group, input) in groups.iter().zip(inputs.iter_mut()) {
            self.upload(group, input, 0)?;
        }
        Ok(())
    }

    /// Makes all work enqueued from now on wait until every batch staged so far by
    /// [`Backend::stage_inputs`] has arrived. The default has nothing to wait for.
    fn await_staged_inputs(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    // ----- optimiser -----

    /// One LARC + SGD step of every parameter in `params` (those without a gradient are
    /// skipped). The default runs [`Lars::step_all`], one tensor after the other; a backend
    /// may fuse it, reproducing the same arithmetic.
    fn lars_step(
        &mut self,
        lars: &Lars<f32>,
        params: &mut [LarsParam<'_, Self::Buf>],
        lr: f32,
    ) -> Result<(), Self::Error> {
        lars.step_all(self, params, lr)
    }
}
