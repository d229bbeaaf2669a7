//! `swav import`: torchvision or official SwAV weights (safetensors) as a swav checkpoint,
//! usable with `--weights`, `--init-weights` and `swav export`.

use anyhow::{Result, anyhow, bail};
use swav_core::Lars;
use swav_nn::Arch;
use swav_train::TrainingState;

use crate::cli::ImportArgs;
use crate::config::{ArchName, PretrainConfig};
use crate::model_loading::load_model;
use crate::presets::Preset;
use crate::train::checkpoint_state::{RunPosition, RunRecord, save_run};
use crate::train::weights_source::WeightsSource;

/// Runs `swav import`.
pub fn run(args: &ImportArgs) -> Result<()> {
    let weights = WeightsSource::read(&args.weights)?;
    if matches!(weights, WeightsSource::Checkpoint(_)) {
        bail!("{} is already a swav checkpoint", args.weights.display());
    }
    let model_config = weights.model_config()?;
    let trunk = model_config.trunk;
    let mut config = PretrainConfig {
        arch: match trunk.arch {
            Arch::ResNet18 => ArchName::Resnet18,
            Arch::ResNet34 => ArchName::Resnet34,
            Arch::ResNet50 => ArchName::Resnet50,
        },
        base_width: trunk.base_width * trunk.width,
        small_stem: trunk.small_stem,
        hidden_mlp: model_config.hidden_dim,
        feat_dim: model_config.output_dim,
        ..Preset::Defaults.config()
    };
    if model_config.prototypes > 0 {
        config.nmb_prototypes = model_config.prototypes;
    }
    let mut b = swav_cpu::CpuBackend::new();
    let model = {
        let imported = WeightsSource::Plain {
            path: args.weights.clone(),
            bytes: match &weights {
                WeightsSource::Plain { bytes, .. } => bytes.clone(),
                WeightsSource::Checkpoint(_) => unreachable!("rejected above"),
            },
            shapes: match &weights {
                WeightsSource::Plain { shapes, .. } => {
                    let mut shapes = shapes.clone();
                    if model_config.prototypes == 0 {
                        shapes.insert(
                            "prototypes.weight".into(),
                            vec![config.nmb_prototypes, config.feat_dim],
                        );
                    }
                    shapes
                }
                WeightsSource::Checkpoint(_) => unreachable!("rejected above"),
            },
        };
        load_model(&mut b, &imported)?
    };
    let state = TrainingState::new(&mut b, model, Lars::default()).map_err(|e| anyhow!("{e}"))?;
    let record = RunRecord {
        position: RunPosition::default(),
        config: &config,
        world_size: 1,
        queues: None,
    };
    save_run(&args.output, &mut b, &state, &record)?;
    eprintln!(
        "imported {} as {} ({}, feature dim {})",
        args.weights.display(),
        args.output.display(),
        config.arch.name(),
        state.model.feature_dim()
    );
    Ok(())
}
