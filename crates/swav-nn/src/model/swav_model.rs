//! [`SwavModel`]: trunk, projection head, L2 normalisation and prototypes, with the
//! multi-crop training forward (docs/algorithm.md §1.5), its backward pass, evaluation passes and
//! access to every named tensor.

use alloc::vec::Vec;

use swav_core::{Collective, NORMALIZE_EPS};

use super::config::SwavConfig;
use super::grad_pool::GradPool;
use super::grad_ready::{GradReady, announce};
use super::head::{HeadCache, ProjectionHead};
use super::linear::Linear;
use super::tensors::{BufferMut, BufferView, Entry, EntryMut, ParamMut, ParamView, Tensors};
use super::trunk::{EvalWorkspace, IN_CHANNELS, Trunk, TrunkCache};
use crate::init::Init;
use crate::{Backend, BuildError, L2NormalizeShape, StepError};

/// One resolution group of a multi-crop batch: `crops × batch` images of one size, NHWC
/// (`[crops·batch, height, width, 3]`), crop-major: image `n` of the group's crop `j` is at
/// position `j·batch + n`.
#[derive(Debug, Clone, Copy)]
pub struct CropGroup<'a, Buf> {
    /// The images.
    pub images: &'a Buf,
    /// Crops in the group.
    pub crops: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

/// Which training pass ran last (what a backward pass may follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    None,
    Features,
    Full,
}

/// Buffers of the training passes, kept from step to step while the shapes stay the same.
#[derive(Debug)]
struct TrainState<Buf> {
    /// `(images, height, width)` per group.
    layout: Vec<(usize, usize, usize)>,
    groups: Vec<TrunkCache<Buf>>,
    rows: usize,
    /// Pooled features of all groups, in crop order (`rows × feature_dim`).
    features: Buf,
    head: HeadCache<Buf>,
    /// L2-normalised embeddings (`rows × output_dim`).
    embeddings: Buf,
    /// Prototype scores (`rows × prototypes`).
    scores: Buf,
    d_embeddings: Buf,
    d_out: Buf,
    d_features: Buf,
    pool: GradPool<Buf>,
}

/// Buffers of the evaluation passes.
#[derive(Debug)]
struct EvalState<Buf> {
    trunk: Option<EvalWorkspace<Buf>>,
    head: Option<HeadCache<Buf>>,
}

/// The SwAV network on backend `B`: a ResNet trunk, the projection head, L2 normalisation
/// and the prototypes, with explicit forward and backward passes.
///
/// Parameters, gradients and running statistics are named and ordered as in the official
/// code's `state_dict` (torchvision names for the trunk), see [`SwavModel::params`].
pub struct SwavModel<B: Backend> {
    config: SwavConfig,
    trunk: Trunk<B::Buf>,
    head: ProjectionHead<B::Buf>,
    prototypes: Option<Linear<B::Buf>>,
    input_gradients: bool,
    pass: Pass,
    train: Option<TrainState<B::Buf>>,
    eval: EvalState<B::Buf>,
}

impl<B: Backend> core::fmt::Debug for SwavModel<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SwavModel")
            .field("config", &self.config)
            .field("parameters", &self.param_count())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> SwavModel<B> {
    /// Builds and initialises the model with the official recipe (docs/algorithm.md §1.1):
    /// convolutions Kaiming-normal (`fan_out`, ReLU gain), linear layers and prototypes
    /// PyTorch's default `U(±1/√fan_in)`, batch norm γ = 1, β = 0, running mean 0 and
    /// variance 1. The values come from one [`SplitMix64`](crate::SplitMix64) stream seeded
    /// with `seed`, drawn in `state_dict` order and PyTorch element order (normals by
    /// Box-Muller with `libm`), so the same seed gives the same weights on every machine and
    /// thread count.
    pub fn new(b: &mut B, config: SwavConfig, seed: u64) -> Result<Self, BuildError<B::Error>> {
        config.validate().map_err(BuildError::Config)?;
        let mut init = Init::new(seed);
        let dev = BuildError::Device;
        let trunk = Trunk::new(b, &mut init, config.trunk).map_err(dev)?;
        let head = ProjectionHead::new(
            b,
            &mut init,
            trunk.feature_dim(),
            config.hidden_dim,
            config.output_dim,
        )
        .map_err(dev)?;
        let prototypes = if config.prototypes > 0 {
            Some(
                Linear::new(
                    b,
                    &mut init,
                    "prototypes",
                    config.output_dim,
                    config.prototypes,
                    false,
                )
                .map_err(dev)?,
            )
        } else {
            None
        };
        let mut model = Self {
            config,
            trunk,
            head,
            prototypes,
            input_gradients: false,
            pass: Pass::None,
            train: None,
            eval: EvalState {
                trunk: None,
                head: None,
            },
        };
        let params = model.entries_mut().into_iter().filter_map(|e| match e {
            EntryMut::Param(p) => Some(p),
            _ => None,
        });
        for (index, p) in params.enumerate() {
            p.index = index;
        }
        Ok(model)
    }

    /// The configuration.
    pub fn config(&self) -> &SwavConfig {
        &self.config
    }

    /// The pooled trunk feature dimension (`2048·w` for ResNet-50).
    pub fn feature_dim(&self) -> usize {
        self.trunk.feature_dim()
    }

    /// Whether backward passes also compute the gradient with respect to the input images
    /// (off by default: training does not need it). See [`SwavModel::input_gradient`].
    pub fn set_input_gradients(&mut self, on: bool) {
        if on != self.input_gradients {
            self.input_gradients = on;
            self.train = None;
            self.pass = Pass::None;
        }
    }

    // ----- training -----

    /// The training forward pass up to the pooled trunk features: one trunk pass per
    /// resolution group (batch-norm statistics per group, summed over ranks by `bn_comm`),
    /// features concatenated in crop order ([`SwavModel::features`], `V·batch × feature_dim`).
    pub fn forward_train_features<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        groups: &[CropGroup<'_, B::Buf>],
        batch: usize,
        bn_comm: &C,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        self.pass = Pass::None;
        self.prepare_train(b, groups, batch)
            .map_err(StepError::Device)?;
        let state = self.train.as_mut().expect("prepared");
        let f = self.trunk.feature_dim();
        let mut row = 0;
        for (group, cache) in groups.iter().zip(&mut state.groups) {
            self.trunk.forward_train(b, bn_comm, group.images, cache)?;
            let n = cache.batch();
            b.copy(&cache.features, 0, &mut state.features, row * f, n * f)
                .map_err(StepError::Device)?;
            row += n;
        }
        self.pass = Pass::Features;
        Ok(())
    }

    /// The multi-crop training forward pass (docs/algorithm.md §1.5): trunk per resolution group,
    /// then the projection head once on all `V·batch` rows, L2 normalisation and the
    /// prototype scores. Results: [`SwavModel::embeddings`] (`V·batch × D`, unit rows, crop
    /// order) and [`SwavModel::scores`] (`V·batch × K` = `z·Wᵀ`).
    pub fn forward_train<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        groups: &[CropGroup<'_, B::Buf>],
        batch: usize,
        bn_comm: &C,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        self.forward_train_features(b, groups, batch, bn_comm)?;
        self.pass = Pass::None;
        let state = self.train.as_mut().expect("prepared");
        let dev = StepError::Device;
        self.head
            .forward_train(b, bn_comm, &state.features, &mut state.head)?;
        let (rows, d) = (state.rows, self.config.output_dim);
        b.l2_normalize_rows_forward(
            &state.head.out,
            &normalize_shape(rows, d),
            &mut state.embeddings,
        )
        .map_err(dev)?;
        if let Some(p) = &self.prototypes {
            p.forward(b, &state.embeddings, rows, &mut state.scores)
                .map_err(dev)?;
        }
        self.pass = Pass::Full;
        Ok(())
    }

    /// The backward pass of [`SwavModel::forward_train`] from `d_scores` (`V·batch × K`):
    /// accumulates the gradient of every parameter, the prototypes included (freezing them
    /// is the trainer's decision). Panics if the last pass was not a full training forward
    /// or the model has no prototypes.
    pub fn backward<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        d_scores: &B::Buf,
        bn_comm: &C,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        self.backward_with(b, d_scores, bn_comm, None)
    }

    /// [`SwavModel::backward`], telling `ready` of every parameter as soon as its gradient
    /// is final (see [`GradReady`]): a data-parallel trainer reduces finished gradients
    /// over ranks while the rest of the pass runs.
    pub fn backward_notifying<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        d_scores: &B::Buf,
        bn_comm: &C,
        ready: &mut dyn GradReady<B>,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        self.backward_with(b, d_scores, bn_comm, Some(ready))
    }

    fn backward_with<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        d_scores: &B::Buf,
        bn_comm: &C,
        mut ready: Option<&mut dyn GradReady<B>>,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        assert_eq!(self.pass, Pass::Full, "backward: run forward_train first");
        let state = self.train.as_mut().expect("forward ran");
        let prototypes = self
            .prototypes
            .as_mut()
            .expect("backward from scores needs prototypes");
        prototypes
            .backward(
                b,
                d_scores,
                &state.embeddings,
                state.rows,
                Some(&mut state.d_embeddings),
            )
            .map_err(StepError::Device)?;
        announce(b, &*prototypes, &mut ready);
        self.backward_head(b, bn_comm, ready)
    }

    /// The backward pass of [`SwavModel::forward_train`] from the gradient with respect to
    /// the embeddings (`V·batch × D`), for losses on `z` itself.
    pub fn backward_from_embeddings<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        d_embeddings: &B::Buf,
        bn_comm: &C,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        assert_eq!(self.pass, Pass::Full, "backward: run forward_train first");
        let state = self.train.as_mut().expect("forward ran");
        let len = state.rows * self.config.output_dim;
        b.copy(d_embeddings, 0, &mut state.d_embeddings, 0, len)
            .map_err(StepError::Device)?;
        self.backward_head(b, bn_comm, None)
    }

    /// The backward pass of [`SwavModel::forward_train_features`] (or of the trunk part of
    /// [`SwavModel::forward_train`]) from `d_features` (`V·batch × feature_dim`).
    pub fn backward_features<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        d_features: &B::Buf,
        bn_comm: &C,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        assert_ne!(
            self.pass,
            Pass::None,
            "backward: run a training forward first"
        );
        let state = self.train.as_mut().expect("forward ran");
        let len = state.rows * self.trunk.feature_dim();
        b.copy(d_features, 0, &mut state.d_features, 0, len)
            .map_err(StepError::Device)?;
        self.backward_trunk(b, bn_comm, None)
    }

    fn backward_head<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        bn_comm: &C,
        mut ready: Option<&mut dyn GradReady<B>>,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        let state = self.train.as_mut().expect("forward ran");
        let (rows, d) = (state.rows, self.config.output_dim);
        b.l2_normalize_rows_backward(
            &state.d_embeddings,
            &state.head.out,
            &state.embeddings,
            &normalize_shape(rows, d),
            &mut state.d_out,
        )
        .map_err(StepError::Device)?;
        self.head.backward(
            b,
            bn_comm,
            &state.features,
            &mut state.head,
            &state.d_out,
            &mut state.d_features,
        )?;
        announce(b, &self.head, &mut ready);
        self.backward_trunk(b, bn_comm, ready)
    }

    fn backward_trunk<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        bn_comm: &C,
        mut ready: Option<&mut dyn GradReady<B>>,
    ) -> Result<(), StepError<B::Error, C::Error>> {
        let state = self.train.as_mut().expect("forward ran");
        let f = self.trunk.feature_dim();
        let last = state.groups.len() - 1;
        let mut row = 0;
        for (g, cache) in state.groups.iter_mut().enumerate() {
            let n = cache.batch();
            b.copy(&state.d_features, row * f, &mut cache.d_features, 0, n * f)
                .map_err(StepError::Device)?;
            let ready = if g == last { ready.take() } else { None };
            self.trunk
                .backward(b, bn_comm, cache, &mut state.pool, ready)?;
            row += n;
        }
        self.pass = Pass::None;
        Ok(())
    }

    /// Allocates (or keeps) the training buffers for this layout.
    fn prepare_train(
        &mut self,
        b: &mut B,
        groups: &[CropGroup<'_, B::Buf>],
        batch: usize,
    ) -> Result<(), B::Error> {
        assert!(!groups.is_empty(), "forward_train: no crop groups");
        let layout: Vec<(usize, usize, usize)> = groups
            .iter()
            .map(|g| (g.crops * batch, g.height, g.width))
            .collect();
        for (g, &(n, h, w)) in groups.iter().zip(&layout) {
            assert!(
                b.buf_len(g.images) >= n * h * w * IN_CHANNELS,
                "forward_train: a group's image buffer is too short"
            );
        }
        if self.train.as_ref().is_some_and(|s| s.layout == layout) {
            return Ok(());
        }
        self.train = None;
        let mut caches = Vec::with_capacity(layout.len());
        let mut pool_len = 0;
        for &(n, h, w) in &layout {
            caches.push(self.trunk.alloc_cache(b, n, h, w, self.input_gradients)?);
            pool_len = pool_len.max(self.trunk.max_activation(n, h, w));
        }
        let rows: usize = layout.iter().map(|l| l.0).sum();
        let (f, d, k) = (
            self.trunk.feature_dim(),
            self.config.output_dim,
            self.config.prototypes,
        );
        self.train = Some(TrainState {
            groups: caches,
            rows,
            features: b.zeros(rows * f)?,
            head: self.head.alloc_cache(b, rows)?,
            embeddings: b.zeros(rows * d)?,
            scores: b.zeros(rows * k)?,
            d_embeddings: b.zeros(rows * d)?,
            d_out: b.zeros(rows * d)?,
            d_features: b.zeros(rows * f)?,
            pool: GradPool::new(b, pool_len)?,
            layout,
        });
        Ok(())
    }

    /// Rows of the last training pass (`V·batch`), 0 before any.
    pub fn rows(&self) -> usize {
        self.train.as_ref().map_or(0, |s| s.rows)
    }

    /// The pooled trunk features of the last training pass (`rows × feature_dim`).
    pub fn features(&self) -> Option<&B::Buf> {
        self.train.as_ref().map(|s| &s.features)
    }

    /// The L2-normalised embeddings of the last training pass (`rows × D`).
    pub fn embeddings(&self) -> Option<&B::Buf> {
        self.train.as_ref().map(|s| &s.embeddings)
    }

    /// The prototype scores of the last training pass (`rows × K`).
    pub fn scores(&self) -> Option<&B::Buf> {
        self.train
            .as_ref()
            .filter(|_| self.prototypes.is_some())
            .map(|s| &s.scores)
    }

    /// The gradient with respect to group `group`'s input images after a backward pass
    /// (NHWC, like the images), when [`SwavModel::set_input_gradients`] is on.
    pub fn input_gradient(&self, group: usize) -> Option<&B::Buf> {
        self.train
            .as_ref()
            .and_then(|s| s.groups.get(group))
            .and_then(|c| c.input_grad.as_ref())
    }

    // ----- evaluation -----

    /// Evaluation forward of the trunk (running statistics, nothing kept for a backward
    /// pass): the pooled features of `batch` NHWC images into `features`
    /// (`batch × feature_dim`).
    pub fn forward_eval_features(
        &mut self,
        b: &mut B,
        images: &B::Buf,
        batch: usize,
        height: usize,
        width: usize,
        features: &mut B::Buf,
    ) -> Result<(), B::Error> {
        let fits = self
            .eval
            .trunk
            .as_ref()
            .is_some_and(|ws| self.trunk.eval_fits(ws, batch, height, width));
        if !fits {
            self.eval.trunk = None;
            self.eval.trunk = Some(self.trunk.alloc_eval(b, batch, height, width)?);
        }
        let ws = self.eval.trunk.as_mut().expect("allocated");
        self.trunk
            .forward_eval(b, images, (batch, height, width), ws, features)
    }

    /// Evaluation forward of the head (running statistics): L2-normalised embeddings of
    /// `rows` feature rows into `embeddings` (`rows × D`) and, with prototypes, their scores
    /// into `scores` (`rows × K`).
    pub fn forward_eval_head(
        &mut self,
        b: &mut B,
        features: &B::Buf,
        rows: usize,
        embeddings: &mut B::Buf,
        scores: Option<&mut B::Buf>,
    ) -> Result<(), B::Error> {
        if self.eval.head.as_ref().is_none_or(|c| c.rows() != rows) {
            self.eval.head = None;
            self.eval.head = Some(self.head.alloc_cache(b, rows)?);
        }
        let cache = self.eval.head.as_mut().expect("allocated");
        self.head.forward_eval(b, features, cache)?;
        let shape = normalize_shape(rows, self.config.output_dim);
        b.l2_normalize_rows_forward(&cache.out, &shape, embeddings)?;
        if let (Some(p), Some(scores)) = (&self.prototypes, scores) {
            p.forward(b, embeddings, rows, scores)?;
        }
        Ok(())
    }

    // ----- tensors -----

    pub(crate) fn entries(&self) -> Vec<Entry<'_, B::Buf>> {
        let mut out = Vec::new();
        self.trunk.entries(&mut out);
        self.head.entries(&mut out);
        if let Some(p) = &self.prototypes {
            p.entries(&mut out);
        }
        out
    }

    pub(crate) fn entries_mut(&mut self) -> Vec<EntryMut<'_, B::Buf>> {
        let mut out = Vec::new();
        self.trunk.entries_mut(&mut out);
        self.head.entries_mut(&mut out);
        if let Some(p) = &mut self.prototypes {
            p.entries_mut(&mut out);
        }
        out
    }

    /// Every trainable parameter, in `state_dict` order.
    pub fn params(&self) -> Vec<ParamView<'_, B::Buf>> {
        self.entries()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Param(p) => Some(ParamView::from(p)),
                _ => None,
            })
            .collect()
    }

    /// Every trainable parameter, mutably, in `state_dict` order.
    pub fn params_mut(&mut self) -> Vec<ParamMut<'_, B::Buf>> {
        self.entries_mut()
            .into_iter()
            .filter_map(|e| match e {
                EntryMut::Param(p) => Some(ParamMut::from(p)),
                _ => None,
            })
            .collect()
    }

    /// Every non-trainable buffer (running statistics, batch counters), in `state_dict`
    /// order.
    pub fn buffers(&self) -> Vec<BufferView<'_, B::Buf>> {
        self.entries()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Stat(s) => Some(BufferView::RunningStat {
                    name: &s.name,
                    len: s.len,
                    value: &s.value,
                }),
                Entry::Counter(c) => Some(BufferView::BatchCount {
                    name: &c.name,
                    value: c.value,
                }),
                Entry::Param(_) => None,
            })
            .collect()
    }

    /// Every non-trainable buffer, mutably, in `state_dict` order.
    pub fn buffers_mut(&mut self) -> Vec<BufferMut<'_, B::Buf>> {
        self.entries_mut()
            .into_iter()
            .filter_map(|e| match e {
                EntryMut::Stat(s) => Some(BufferMut::RunningStat {
                    name: &s.name,
                    len: s.len,
                    value: &mut s.value,
                }),
                EntryMut::Counter(c) => Some(BufferMut::BatchCount {
                    name: &c.name,
                    value: &mut c.value,
                }),
                EntryMut::Param(_) => None,
            })
            .collect()
    }

    /// The number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params()
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self, b: &mut B) -> Result<(), B::Error> {
        for p in self.params_mut() {
            b.fill(p.grad, 0.0)?;
        }
        Ok(())
    }

    /// The prototype matrix (`K × D`, one prototype per row); `None` without prototypes.
    pub fn prototypes(&self) -> Option<&B::Buf> {
        self.prototypes.as_ref().map(|p| &p.weight.value)
    }

    /// The prototype matrix (`K × D`, one prototype per row), for
    /// [`swav_core::normalize_prototypes`] before each step; `None` without prototypes.
    pub fn prototypes_mut(&mut self) -> Option<&mut B::Buf> {
        self.prototypes.as_mut().map(|p| &mut p.weight.value)
    }
}

/// The row normalisation of `rows` head outputs of dimension `dim`, with the official
/// `F.normalize` floor.
fn normalize_shape(rows: usize, dim: usize) -> L2NormalizeShape {
    L2NormalizeShape {
        rows,
        cols: dim,
        eps: NORMALIZE_EPS as f32,
    }
}
