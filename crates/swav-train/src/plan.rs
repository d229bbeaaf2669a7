//! The fixed shape and hyper-parameters a [`SwavStep`](crate::SwavStep) is built for.

use swav_core::{PrototypeFreeze, SinkhornConfig};

/// The fixed shape and hyper-parameters of every step of a run.
#[derive(Debug, Clone)]
pub struct StepPlan {
    /// Images per rank.
    pub batch: usize,
    /// Crops per image (`V`).
    pub crops: usize,
    /// Prototypes (`K`).
    pub prototypes: usize,
    /// Embedding dimension (`D`).
    pub dim: usize,
    /// Assignment crops.
    pub crops_for_assign: Vec<usize>,
    /// Softmax temperature.
    pub temperature: f32,
    /// Sinkhorn settings.
    pub sinkhorn: SinkhornConfig<f32>,
    /// The prototype freeze.
    pub freeze: PrototypeFreeze,
}
