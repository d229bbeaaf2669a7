//! One SwAV training iteration, in the official order (docs/algorithm.md §4.5): normalise the
//! prototypes, forward every crop group, Sinkhorn codes of the assignment crops (with the
//! queue), the swapped-prediction loss and its gradient, backward, average the gradients
//! over ranks (in buckets summed while backward runs), drop the prototypes' gradient while
//! they are frozen, and take the LARC step.

use swav_core::{
    AssignmentInputs, AssignmentLayout, AssignmentWorkspace, CollapseReport, Collective,
    LossWorkspace, SinkhornPath, SwappedPrediction, assign_codes, normalize_prototypes,
    swapped_prediction_loss,
};
use swav_nn::{Backend, CropGroup, SwavModel};

use crate::bucket_layout::BucketLayout;
use crate::bucket_transport::{BucketTransport, InlineTransport};
use crate::gradient_buckets::{BucketFeed, GradientBuckets, GradientCommunication};

use crate::diagnostics::{Diagnostics, embedding_variance, mean_pairwise_cosine, score_spread};
use crate::plan::StepPlan;
use crate::step_failure::StepFailure;
use crate::training_state::TrainingState;

/// The process groups a step communicates over.
pub struct Collectives<'a, C, G> {
    /// Every rank: Sinkhorn's sums, the logged loss and the gradient average.
    pub all_ranks: &'a C,
    /// The batch-norm synchronisation group.
    pub batch_norm: &'a G,
}

/// Which iteration a step is and what it does besides training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iteration {
    /// The global iteration (the prototype freeze counts it).
    pub index: u64,
    /// The learning rate of this iteration.
    pub lr: f32,
    /// Whether to measure the collapse report and [`Diagnostics`] (host copies, one
    /// all-reduce): at logging iterations.
    pub diagnostics: bool,
}

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The loss (this rank's batch).
    pub loss: f64,
    /// Collapse measures of the first assignment crop's codes, when asked for; its loss is
    /// the mean over all ranks (the global batch's loss).
    pub collapse: Option<CollapseReport>,
    /// Whether the queue's scores were used.
    pub queue_in_use: bool,
    /// Whether any Sinkhorn call took the log-domain path.
    pub log_domain: bool,
    /// What explains a collapse, measured with `collapse`.
    pub diagnostics: Option<Diagnostics>,
}

/// The per-step buffers, allocated once.
pub struct SwavStep<B: Backend> {
    plan: StepPlan,
    assignment: AssignmentWorkspace<B::Buf>,
    loss: LossWorkspace<B::Buf>,
    codes: Vec<B::Buf>,
    d_scores: B::Buf,
    host_codes: Vec<f32>,
    host_scores: Vec<f32>,
    host_embeddings: Vec<f32>,
    host_prototypes: Vec<f32>,
    gradients: GradientCommunication<B>,
    /// Made at the first step with more than one rank.
    buckets: Option<GradientBuckets<B>>,
}

fn device<E: std::fmt::Display>(e: E) -> StepFailure {
    StepFailure::Device(e.to_string())
}

impl<B: Backend> SwavStep<B> {
    /// Allocates the step's buffers; `queue_rows` is the per-rank queue length (0: none).
    pub fn new(b: &mut B, plan: StepPlan, queue_rows: usize) -> Result<Self, StepFailure> {
        let layout = AssignmentLayout {
            batch: plan.batch,
            prototypes: plan.prototypes,
            dim: plan.dim,
            crops_for_assign: &plan.crops_for_assign,
        };
        let assignment = AssignmentWorkspace::new(b, &layout, queue_rows).map_err(device)?;
        let loss = LossWorkspace::new(b, &loss_layout(&plan)).map_err(device)?;
        let mut codes = Vec::new();
        for _ in &plan.crops_for_assign {
            codes.push(b.zeros(plan.batch * plan.prototypes).map_err(device)?);
        }
        let d_scores = b
            .zeros(plan.crops * plan.batch * plan.prototypes)
            .map_err(device)?;
        let host_codes = vec![0.0; plan.batch * plan.prototypes];
        Ok(Self {
            host_scores: host_codes.clone(),
            host_embeddings: vec![0.0; plan.batch * plan.dim],
            host_prototypes: vec![0.0; plan.prototypes * plan.dim],
            plan,
            assignment,
            loss,
            codes,
            d_scores,
            host_codes,
            gradients: GradientCommunication::default(),
            buckets: None,
        })
    }

    /// The plan this step was built for.
    pub fn plan(&self) -> &StepPlan {
        &self.plan
    }

    /// Runs one iteration of `state` on the crop `groups` of one batch.
    pub fn run<C, G>(
        &mut self,
        b: &mut B,
        state: &mut TrainingState<B>,
        ranks: Collectives<'_, C, G>,
        groups: &[CropGroup<'_, B::Buf>],
        at: Iteration,
    ) -> Result<StepReport, StepFailure>
    where
        C: Collective<B::Buf>,
        G: Collective<B::Buf>,
    {
        let TrainingState {
            model,
            optimizer,
            queue,
        } = state;
        let (comm, bn_comm) = (ranks.all_ranks, ranks.batch_norm);
        let Iteration {
            index: iteration,
            lr,
            diagnostics,
        } = at;
        let plan = &self.plan;
        let (k, d) = (plan.prototypes, plan.dim);
        let prototypes = model.prototypes_mut().expect("a SwAV model has prototypes");
        normalize_prototypes(b, prototypes, k, d).map_err(device)?;
        model
            .forward_train(b, groups, plan.batch, bn_comm)
            .map_err(step_error)?;

        let layout = AssignmentLayout {
            batch: plan.batch,
            prototypes: k,
            dim: d,
            crops_for_assign: &plan.crops_for_assign,
        };
        let paths = {
            let scores = model.scores().expect("forward ran");
            let embeddings = model.embeddings().expect("forward ran");
            let prototypes = model.prototypes().expect("a SwAV model has prototypes");
            let inputs = AssignmentInputs {
                layout: &layout,
                scores,
                embeddings,
                prototypes,
            };
            assign_codes(
                b,
                comm,
                inputs,
                queue.as_mut(),
                &plan.sinkhorn,
                &mut self.assignment,
                &mut self.codes,
            )
            .map_err(|e| match e {
                swav_core::SinkhornError::Device(e) => device(e),
                swav_core::SinkhornError::Collective(e) => StepFailure::Collective(e.to_string()),
                swav_core::SinkhornError::NonFinite { row, column, count } => {
                    StepFailure::NonFiniteScores {
                        iteration,
                        row,
                        column,
                        count,
                    }
                }
                swav_core::SinkhornError::NonFiniteOnAnotherRank => {
                    StepFailure::NonFiniteScoresOnAnotherRank { iteration }
                }
                swav_core::SinkhornError::ScaledScoresOverflow => {
                    StepFailure::ScaledScoresOverflow { iteration }
                }
            })?
        };
        let queue_in_use = queue.as_ref().is_some_and(|q| q.in_use());
        let loss = {
            let scores = model.scores().expect("forward ran");
            swapped_prediction_loss(
                b,
                &loss_layout(plan),
                scores,
                &self.codes,
                &mut self.loss,
                Some(&mut self.d_scores),
            )
            .map_err(device)? as f64
        };
        if !loss.is_finite() {
            return Err(StepFailure::NonFiniteLoss { iteration, loss });
        }
        let collapse = if diagnostics {
            b.download(&self.codes[0], 0, &mut self.host_codes)
                .map_err(device)?;
            let logged = mean_over_ranks(b, comm, loss)?;
            Some(CollapseReport::new(logged, &self.host_codes, plan.batch, k))
        } else {
            None
        };
        let shape = if diagnostics {
            let crop = plan.crops_for_assign[0];
            let (scores, embeddings) = (
                model.scores().expect("forward ran"),
                model.embeddings().expect("forward ran"),
            );
            b.download(scores, crop * plan.batch * k, &mut self.host_scores)
                .map_err(device)?;
            b.download(embeddings, crop * plan.batch * d, &mut self.host_embeddings)
                .map_err(device)?;
            let prototypes = model.prototypes().expect("a SwAV model has prototypes");
            b.download(prototypes, 0, &mut self.host_prototypes)
                .map_err(device)?;
            Some((
                score_spread(&self.host_scores, plan.batch, k),
                mean_pairwise_cosine(&self.host_prototypes, k, d),
                embedding_variance(&self.host_embeddings, plan.batch, d),
            ))
        } else {
            None
        };

        model.zero_grad(b).map_err(device)?;
        let world = comm.world_size();
        if world > 1 {
            self.backward_averaged(b, model, comm, bn_comm)?;
        } else {
            model
                .backward(b, &self.d_scores, bn_comm)
                .map_err(step_error)?;
        }
        let frozen = self.plan.freeze.is_frozen(iteration);
        optimizer.step(b, model, lr, frozen).map_err(device)?;
        let diagnostics = match (collapse, shape) {
            (Some(c), Some((score_spread, prototype_cosine, embedding_variance))) => {
                Some(Diagnostics {
                    loss_minus_ln_k: c.loss - c.uniform_loss,
                    score_spread,
                    prototype_cosine,
                    embedding_variance,
                    relative_update: optimizer
                        .update_sizes(b, model, lr, frozen)
                        .map_err(device)?,
                })
            }
            _ => None,
        };
        Ok(StepReport {
            loss,
            collapse,
            queue_in_use,
            log_domain: paths.contains(&SinkhornPath::LogDomain),
            diagnostics,
        })
    }
}

impl<B: Backend> SwavStep<B> {
    /// Sets how gradients are averaged over ranks (the default: 25 MiB buckets reduced
    /// through the all-ranks collective during backward). Takes effect at the next step.
    pub fn set_gradient_communication(&mut self, gradients: GradientCommunication<B>) {
        self.gradients = gradients;
        self.buckets = None;
    }

    /// Gives back the gradient communication (for a later step), leaving the default.
    pub fn take_gradient_communication(&mut self) -> GradientCommunication<B> {
        self.buckets = None;
        std::mem::take(&mut self.gradients)
    }

    /// All-reduces per step for the gradients of `model` with more than one rank (the
    /// number of buckets).
    pub fn gradient_collectives(&self, model: &SwavModel<B>) -> usize {
        BucketLayout::new(&param_lens(model), self.bucket_cap()).len()
    }

    fn bucket_cap(&self) -> usize {
        BucketLayout::cap_elements(self.gradients.bucket_cap_mb)
    }

    /// Backward with every gradient averaged over the ranks of `comm`: buckets are summed
    /// as soon as backward completes them, and scaled by `1/world` after it.
    fn backward_averaged<C, G>(
        &mut self,
        b: &mut B,
        model: &mut SwavModel<B>,
        comm: &C,
        bn_comm: &G,
    ) -> Result<(), StepFailure>
    where
        C: Collective<B::Buf>,
        G: Collective<B::Buf>,
    {
        if self.buckets.is_none() {
            let buckets =
                GradientBuckets::new(b, &param_lens(model), self.bucket_cap()).map_err(device)?;
            self.buckets = Some(buckets);
        }
        let buckets = self.buckets.as_mut().expect("just made");
        let mut inline = InlineTransport { comm };
        let transport: &mut dyn BucketTransport<B> = match self.gradients.transport.as_mut() {
            Some(t) => t.as_mut(),
            None => &mut inline,
        };
        buckets.begin(transport)?;
        let mut feed = BucketFeed {
            buckets: &mut *buckets,
            transport: &mut *transport,
        };
        model
            .backward_notifying(b, &self.d_scores, bn_comm, &mut feed)
            .map_err(step_error)?;
        buckets.finish(b, transport, model.params_mut(), comm.world_size())
    }
}

/// Every parameter's length, in `params()` order.
fn param_lens<B: Backend>(model: &SwavModel<B>) -> Vec<usize> {
    model
        .params()
        .iter()
        .map(|p| p.shape.iter().product())
        .collect()
}

/// The mean of `value` over all ranks (the loss of the global batch).
fn mean_over_ranks<B: Backend, C: Collective<B::Buf>>(
    b: &mut B,
    comm: &C,
    value: f64,
) -> Result<f64, StepFailure> {
    let world = comm.world_size();
    if world == 1 {
        return Ok(value);
    }
    let mut buf = b.zeros(1).map_err(device)?;
    b.upload(&[value as f32], &mut buf, 0).map_err(device)?;
    comm.all_reduce_sum(&mut buf)
        .map_err(|e| StepFailure::Collective(e.to_string()))?;
    let mut host = [0.0f32];
    b.download(&buf, 0, &mut host).map_err(device)?;
    Ok(host[0] as f64 / world as f64)
}

fn loss_layout(plan: &StepPlan) -> SwappedPrediction<'_, f32> {
    SwappedPrediction {
        batch: plan.batch,
        crops: plan.crops,
        prototypes: plan.prototypes,
        crops_for_assign: &plan.crops_for_assign,
        temperature: plan.temperature,
    }
}

fn step_error<D: std::fmt::Display, C: std::fmt::Display>(
    e: swav_nn::StepError<D, C>,
) -> StepFailure {
    match e {
        swav_nn::StepError::Device(e) => device(e),
        swav_nn::StepError::Collective(e) => StepFailure::Collective(e.to_string()),
    }
}
