//! `swav assign`: balanced cluster assignments with SwAV's Sinkhorn, of embeddings to
//! prototypes read from .npy files or of images to a trained model's prototypes.

use anyhow::{Result, bail};

use crate::assign::embeddings::{self, AssignSettings};
use crate::assign::images::{self, AssignImages};
use crate::cli::AssignArgs;

/// Runs `swav assign`.
pub fn run(args: &AssignArgs) -> Result<()> {
    let settings = AssignSettings {
        epsilon: args.epsilon,
        iterations: args.iterations,
        normalize: args.normalize,
        hard: args.hard,
    };
    match (
        &args.embeddings,
        &args.prototypes,
        &args.weights,
        &args.data,
    ) {
        (Some(e), Some(p), _, _) => embeddings::run(e, p, &args.output, settings),
        (_, _, Some(weights), Some(data)) => images::run(AssignImages {
            weights,
            data,
            output: &args.output,
            image_size: args.image_size,
            settings,
        }),
        _ => bail!("`swav assign` needs --embeddings and --prototypes, or --weights and --data"),
    }
}
