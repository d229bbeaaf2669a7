//! What a SwAV run trains and carries from one step to the next.

use swav_core::{FeatureQueue, Lars};
use swav_nn::{Backend, SwavModel};

use crate::optimizer::Optimizer;

/// The model, its optimiser state and the feature queue: everything a step updates and a
/// checkpoint stores besides the run's position.
pub struct TrainingState<B: Backend> {
    /// The network.
    pub model: SwavModel<B>,
    /// Its momentum buffers.
    pub optimizer: Optimizer<B>,
    /// The queue of past embeddings, once it has started (`None`: no queue yet, or none).
    pub queue: Option<FeatureQueue<B::Buf>>,
}

impl<B: Backend> TrainingState<B> {
    /// `model` with fresh optimiser state for `lars` and no queue.
    pub fn new(b: &mut B, model: SwavModel<B>, lars: Lars<f32>) -> Result<Self, B::Error> {
        let optimizer = Optimizer::new(b, &model, lars)?;
        Ok(Self {
            model,
            optimizer,
            queue: None,
        })
    }
}
