//! The workload `swav bench` times: the training step of `swav pretrain` (model, optimiser,
//! [`SwavStep`]) for a run's configuration, on one synthetic batch.

use anyhow::{Result, anyhow};
use swav_core::{Lars, PrototypeFreeze, SingleProcess, SinkhornConfig, Stabilization};
use swav_nn::{Backend, SwavModel};
use swav_train::{Collectives, Iteration, StepPlan, SwavStep, TrainingState};

use crate::config::PretrainConfig;
use crate::train::input_feed::crop_groups;
use crate::train::model_spec::model_config;

/// Untimed steps before the timed ones (algorithm selection, memory pools, caches).
pub const WARMUP_STEPS: usize = 2;

/// The learning rate of benchmarked steps (that of the PyTorch baseline).
const LEARNING_RATE: f32 = 0.3;

/// A model, its optimiser and step buffers, a synthetic batch on the host and two sets of
/// device input buffers (one computed on while the other is staged).
pub struct BenchStep<B: Backend> {
    state: TrainingState<B>,
    step: SwavStep<B>,
    /// `(crops, side)` of each resolution group.
    groups: Vec<(usize, usize)>,
    /// The synthetic batch, one slice of NHWC values per resolution group.
    host: Vec<Vec<f32>>,
    inputs: [Vec<B::Buf>; 2],
    iteration: u64,
}

impl<B: Backend> BenchStep<B> {
    /// Builds the step of `config` (its model, crops, batch size and head) with the
    /// synthetic batch uploaded into input set 0.
    pub fn new(b: &mut B, config: &PretrainConfig) -> Result<Self> {
        let dev = |e: B::Error| anyhow!("device error: {e}");
        let model = SwavModel::new(b, model_config(config), config.seed)
            .map_err(|e| anyhow!("building the model: {e}"))?;
        let state = TrainingState::new(b, model, Lars::default()).map_err(dev)?;
        // The bench times the stable Sinkhorn with trainable prototypes, whatever the run's
        // Sinkhorn mode and freeze.
        let run = StepPlan::from(config);
        let plan = StepPlan {
            sinkhorn: SinkhornConfig {
                stabilization: Stabilization::Stable,
                ..run.sinkhorn
            },
            freeze: PrototypeFreeze { iterations: 0 },
            ..run
        };
        let step = SwavStep::new(b, plan, 0)?;
        let groups: Vec<(usize, usize)> = config
            .nmb_crops
            .iter()
            .copied()
            .zip(config.size_crops.iter().copied())
            .collect();
        let mut seed = 0x5eed_u64;
        let mut host = Vec::with_capacity(groups.len());
        let mut inputs: [Vec<B::Buf>; 2] = [Vec::new(), Vec::new()];
        for (g, &(crops, side)) in groups.iter().enumerate() {
            let len = crops * config.batch_size * side * side * 3;
            // Uniform in [-2, 2): the range of normalised images.
            let values: Vec<f32> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
                })
                .collect();
            for set in &mut inputs {
                set.push(b.alloc_activation(len).map_err(dev)?);
            }
            b.upload(&values, &mut inputs[0][g], 0).map_err(dev)?;
            host.push(values);
        }
        Ok(Self {
            state,
            step,
            groups,
            host,
            inputs,
            iteration: 0,
        })
    }

    /// The number of trained parameters.
    pub fn param_count(&self) -> usize {
        self.state.model.param_count()
    }

    /// `"2x224+6x96"`-style labels of the resolution groups.
    pub fn crop_labels(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|(crops, side)| format!("{crops}x{side}"))
            .collect()
    }

    /// Stages the synthetic batch into input set `set` ([`ActivationOps::stage_inputs`](swav_nn::ActivationOps::stage_inputs)).
    pub fn stage(&mut self, b: &mut B, set: usize) -> Result<()> {
        let groups: Vec<&[f32]> = self.host.iter().map(Vec::as_slice).collect();
        b.stage_inputs(&groups, &mut self.inputs[set])
            .map_err(|e| anyhow!("device error: {e}"))
    }

    /// Runs one training step on input set `set`; returns its loss.
    pub fn run(&mut self, b: &mut B, set: usize) -> Result<f64> {
        let groups = crop_groups(&self.inputs[set], &self.groups);
        let ranks = Collectives {
            all_ranks: &SingleProcess,
            batch_norm: &SingleProcess,
        };
        let at = Iteration {
            index: self.iteration,
            lr: LEARNING_RATE,
            diagnostics: false,
        };
        let report = self.step.run(b, &mut self.state, ranks, &groups, at)?;
        self.iteration += 1;
        Ok(report.loss)
    }
}
