//! The step a run's configuration describes.

use swav_core::{PrototypeFreeze, SinkhornConfig, Stabilization};
use swav_train::StepPlan;

use crate::config::{PretrainConfig, SinkhornMode};

impl From<&PretrainConfig> for StepPlan {
    /// The plan of every step of a run with `config`.
    fn from(config: &PretrainConfig) -> Self {
        Self {
            batch: config.batch_size,
            crops: config.total_crops(),
            prototypes: config.nmb_prototypes,
            dim: config.feat_dim,
            crops_for_assign: config.crops_for_assign.clone(),
            temperature: config.temperature as f32,
            sinkhorn: SinkhornConfig {
                epsilon: config.epsilon as f32,
                iterations: config.sinkhorn_iterations,
                stabilization: match config.sinkhorn_mode {
                    SinkhornMode::Stable => Stabilization::Stable,
                    SinkhornMode::Plain => Stabilization::Plain,
                },
            },
            freeze: PrototypeFreeze {
                iterations: config.freeze_prototypes_niters,
            },
        }
    }
}
