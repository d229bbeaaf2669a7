//! `swav export`: a checkpoint's weights as torchvision-compatible safetensors.

use anyhow::{Context, Result, anyhow};
use swav_nn::{ExportOptions, export_safetensors};

use crate::cli::ExportArgs;
use crate::model_loading::load_model;
use crate::train::weights_source::WeightsSource;

/// Runs `swav export`.
pub fn run(args: &ExportArgs) -> Result<()> {
    let weights = WeightsSource::read(&args.checkpoint)?;
    if !matches!(weights, WeightsSource::Checkpoint(_)) {
        anyhow::bail!(
            "{} is not a swav checkpoint (it has no swav format tag)",
            args.checkpoint.display()
        );
    }
    let mut b = swav_cpu::CpuBackend::new();
    let model = load_model(&mut b, &weights)?;
    let options = if args.official_layout {
        ExportOptions {
            prefix: Some("module.".into()),
            trunk_only: false,
        }
    } else {
        ExportOptions {
            prefix: None,
            trunk_only: true,
        }
    };
    let bytes =
        export_safetensors(&model, &mut b, &options).map_err(|e| anyhow!("exporting: {e}"))?;
    swav_nn::write_atomic(&args.output, &bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "wrote {} ({}, {} tensors)",
        args.output.display(),
        if args.official_layout {
            "official SwAV layout: module.-prefixed, head and prototypes"
        } else {
            "torchvision trunk"
        },
        safetensors::SafeTensors::deserialize(&bytes)
            .map(|t| t.len())
            .unwrap_or(0)
    );
    Ok(())
}
