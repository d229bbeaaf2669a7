//! Training a network with labels: the trunk on the backend, a linear head on the host
//! ([`Classifier`]), one cross-entropy step at a time. `swav supervised` (the yardstick) and
//! `swav eval semisup` (the fine-tuning protocol) both step through it.

use std::fmt::Display;

use anyhow::{Result, anyhow, bail};
use ndarray::ArrayView2;
use swav_core::{Lars, SingleProcess};
use swav_nn::{Backend, CropGroup, SwavModel};
use swav_train::Optimizer;

use super::classifier::Classifier;

/// The trunk's optimiser, the head, and the host and device buffers of one step's features.
pub struct LabelledTraining<B: Backend> {
    optimizer: Optimizer<B>,
    lars: Lars<f32>,
    head: Classifier,
    host_features: Vec<f32>,
    d_features: B::Buf,
}

impl<B: Backend> LabelledTraining<B> {
    /// Training of `model` with a new head of `classes` outputs (seeded by `seed`), both
    /// stepped by `lars`, on steps of `rows` feature rows (crops × images).
    pub fn new(
        b: &mut B,
        model: &SwavModel<B>,
        lars: Lars<f32>,
        classes: usize,
        seed: u64,
        rows: usize,
    ) -> Result<Self> {
        let dev = |e: B::Error| anyhow!("device error: {e}");
        let dim = model.feature_dim();
        Ok(Self {
            optimizer: Optimizer::new(b, model, lars).map_err(dev)?,
            lars,
            head: Classifier::new(classes, dim, seed),
            host_features: vec![0.0; rows * dim],
            d_features: b.zeros(rows * dim).map_err(dev)?,
        })
    }

    /// The head.
    pub fn head(&self) -> &Classifier {
        &self.head
    }

    /// One step on `groups` (`batch` images): the forward pass in training mode, the head's
    /// cross-entropy step on `row_labels` (one per feature row) at `head_lr`, the backward
    /// pass and the trunk's step at `trunk_lr`. Returns the loss and the rows' accuracy; a
    /// loss that is not finite stops before any update, with an error ending in `at`.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        b: &mut B,
        model: &mut SwavModel<B>,
        groups: &[CropGroup<'_, B::Buf>],
        batch: usize,
        row_labels: &[usize],
        (head_lr, trunk_lr): (f32, f32),
        at: &dyn Display,
    ) -> Result<(f64, f64)> {
        let dev = |e: B::Error| anyhow!("device error: {e}");
        model
            .forward_train_features(b, groups, batch, &SingleProcess)
            .map_err(|e| anyhow!("forward pass: {e}"))?;
        let features = model.features().expect("forward ran");
        b.download(features, 0, &mut self.host_features)
            .map_err(dev)?;
        let dim = model.feature_dim();
        let features = ArrayView2::from_shape((row_labels.len(), dim), &self.host_features)?;
        let (loss, accuracy, d_host) = self.head.step(features, row_labels, &self.lars, head_lr);
        if !loss.is_finite() {
            bail!("the loss became {loss} {at}");
        }
        b.upload(
            d_host.as_slice().expect("standard layout"),
            &mut self.d_features,
            0,
        )
        .map_err(dev)?;
        model.zero_grad(b).map_err(dev)?;
        model
            .backward_features(b, &self.d_features, &SingleProcess)
            .map_err(|e| anyhow!("backward pass: {e}"))?;
        self.optimizer
            .step(b, model, trunk_lr, false)
            .map_err(dev)?;
        Ok((loss, accuracy))
    }
}
