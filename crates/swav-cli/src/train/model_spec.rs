//! The network a run's configuration describes.

use swav_nn::{Arch as NnArch, SwavConfig, TrunkConfig};

use crate::config::{Arch, PretrainConfig};

/// The swav-nn configuration of a run's model.
pub fn model_config(config: &PretrainConfig) -> SwavConfig {
    let (arch, width) = match config.arch {
        Arch::Resnet18 => (NnArch::ResNet18, 1),
        Arch::Resnet34 => (NnArch::ResNet34, 1),
        Arch::Resnet50 => (NnArch::ResNet50, 1),
        Arch::Resnet50w2 => (NnArch::ResNet50, 2),
        Arch::Resnet50w4 => (NnArch::ResNet50, 4),
    };
    SwavConfig {
        trunk: TrunkConfig {
            arch,
            width,
            base_width: config.base_width,
            small_stem: config.small_stem,
        },
        hidden_dim: config.hidden_mlp,
        output_dim: config.feat_dim,
        prototypes: config.nmb_prototypes,
    }
}
