//! The optimiser state of a run: one momentum buffer per parameter and whether it exists
//! yet, stepped with LARC + SGD (`swav_core::Lars`) through the backend.

use swav_core::{Lars, LarsParam, MomentumState};
use swav_nn::{Backend, SwavModel};

use crate::param_group::{ParamGroup, is_prototype};
use crate::update_sizes::{UpdateNorms, UpdateSizes};

/// The momentum buffers, in the model's parameter order.
pub struct Optimizer<B: Backend> {
    lars: Lars<f32>,
    momentum: Vec<B::Buf>,
    states: Vec<MomentumState>,
}

impl<B: Backend> Optimizer<B> {
    /// Zero momentum buffers, none initialised yet.
    pub fn new(b: &mut B, model: &SwavModel<B>, lars: Lars<f32>) -> Result<Self, B::Error> {
        let params = model.params();
        let mut momentum = Vec::with_capacity(params.len());
        for p in &params {
            momentum.push(b.zeros(p.shape.iter().product())?);
        }
        Ok(Self {
            lars,
            states: vec![MomentumState::default(); momentum.len()],
            momentum,
        })
    }

    /// One LARC + SGD step of every parameter at `lr`; with `freeze_prototypes` the
    /// prototypes are skipped entirely (no update, no decay, no momentum), as the official
    /// code does by discarding their gradient.
    pub fn step(
        &mut self,
        b: &mut B,
        model: &mut SwavModel<B>,
        lr: f32,
        freeze_prototypes: bool,
    ) -> Result<(), B::Error> {
        let mut params = model.params_mut();
        let mut table: Vec<LarsParam<'_, B::Buf>> = params
            .iter_mut()
            .zip(self.momentum.iter_mut().zip(self.states.iter_mut()))
            .map(|(p, (momentum, state))| {
                let frozen = freeze_prototypes && is_prototype(p.name);
                LarsParam {
                    param: &mut *p.value,
                    grad: (!frozen).then_some(&*p.grad),
                    momentum,
                    state,
                    kind: p.kind,
                }
            })
            .collect();
        b.lars_step(&self.lars, &mut table, lr)
    }

    /// `‖Δw‖ / ‖w‖` per parameter group of the step just taken at `lr`: SGD moved each
    /// parameter by `lr · buf`, except the prototypes while `prototypes_frozen`.
    pub fn update_sizes(
        &self,
        b: &mut B,
        model: &SwavModel<B>,
        lr: f32,
        prototypes_frozen: bool,
    ) -> Result<UpdateSizes, B::Error> {
        let mut norms = UpdateNorms::default();
        for (p, momentum) in model.params().iter().zip(&self.momentum) {
            let moved = !(prototypes_frozen && is_prototype(p.name));
            let weight_sq = b.sum_squares(p.value)? as f64;
            let update_sq = if moved {
                (lr as f64).powi(2) * b.sum_squares(momentum)? as f64
            } else {
                0.0
            };
            norms.add(ParamGroup::of(p.name), weight_sq, update_sq);
        }
        Ok(norms.sizes())
    }

    /// The momentum buffers and their states, in parameter order (for checkpoints).
    pub fn buffers(&self) -> impl Iterator<Item = (&B::Buf, MomentumState)> {
        self.momentum.iter().zip(self.states.iter().copied())
    }

    /// Restores buffer `index` from host values (a checkpoint).
    pub fn restore(
        &mut self,
        b: &mut B,
        index: usize,
        values: &[f32],
        state: MomentumState,
    ) -> Result<(), B::Error> {
        b.upload(values, &mut self.momentum[index], 0)?;
        self.states[index] = state;
        Ok(())
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        self.momentum.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.momentum.is_empty()
    }
}
