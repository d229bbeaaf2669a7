//! Building a model on a backend from a weights file.

use anyhow::{Result, anyhow};
use swav_nn::{Backend, SwavModel};

use crate::train::weights_source::WeightsSource;

/// The network `weights` describes, on `b`, with the weights loaded.
pub fn load_model<B: Backend>(b: &mut B, weights: &WeightsSource) -> Result<SwavModel<B>> {
    let config = weights.model_config()?;
    let mut model = SwavModel::new(b, config, 0)
        .map_err(|e| anyhow!("building the model for {}: {e}", weights.path().display()))?;
    let report = weights.load_into(b, &mut model)?;
    if !report.missing.is_empty() {
        eprintln!(
            "note: {} has no {} (kept randomly initialised)",
            weights.path().display(),
            summarise(&report.missing)
        );
    }
    Ok(model)
}

fn summarise(keys: &[String]) -> String {
    match keys {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [first, rest @ ..] => format!("`{first}` and {} more tensors", rest.len()),
    }
}
