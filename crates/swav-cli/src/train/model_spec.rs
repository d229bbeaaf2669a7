//! The network a run's configuration describes.

use swav_nn::{Arch, SwavConfig, TrunkConfig};

use crate::config::{ArchName, PretrainConfig};

/// The swav-nn configuration of a run's model.
pub fn model_config(config: &PretrainConfig) -> SwavConfig {
    let (arch, width) = match config.arch {
        ArchName::Resnet18 => (Arch::ResNet18, 1),
        ArchName::Resnet34 => (Arch::ResNet34, 1),
        ArchName::Resnet50 => (Arch::ResNet50, 1),
        ArchName::Resnet50w2 => (Arch::ResNet50, 2),
        ArchName::Resnet50w4 => (Arch::ResNet50, 4),
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
