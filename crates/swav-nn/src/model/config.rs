//! What model to build: the ResNet trunk, the projection head and the prototypes.

use crate::ConfigError;

/// The ResNet depth (torchvision v1.5: the stride of a downsampling block sits on its 3×3
/// convolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// ResNet-18: basic blocks `[2, 2, 2, 2]`.
    ResNet18,
    /// ResNet-34: basic blocks `[3, 4, 6, 3]`.
    ResNet34,
    /// ResNet-50: bottleneck blocks `[3, 4, 6, 3]`.
    ResNet50,
}

impl Arch {
    /// Blocks per stage.
    pub fn blocks(self) -> [usize; 4] {
        match self {
            Self::ResNet18 => [2, 2, 2, 2],
            Self::ResNet34 | Self::ResNet50 => [3, 4, 6, 3],
        }
    }

    /// Whether the blocks are bottlenecks (1×1, 3×3, 1×1, expansion 4).
    pub fn bottleneck(self) -> bool {
        self == Self::ResNet50
    }

    /// Output channels per stage-width unit: 4 for bottlenecks, 1 for basic blocks.
    pub fn expansion(self) -> usize {
        if self.bottleneck() { 4 } else { 1 }
    }
}

/// The trunk: a ResNet up to and including global average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrunkConfig {
    /// The depth.
    pub arch: Arch,
    /// The width multiplier `w` (SwAV's `widen`): stem and stage widths are
    /// `base_width·w·2^i`.
    pub width: usize,
    /// Channels of the stem and the first stage at width 1: 64 for torchvision's ResNets;
    /// smaller values give narrow ResNets for small images and CPU runs.
    pub base_width: usize,
    /// The small-image stem (3×3 convolution, stride 1, no max pooling) for 32-96 px
    /// inputs, instead of the 7×7 stride-2 convolution and max pooling.
    pub small_stem: bool,
}

impl TrunkConfig {
    /// The standard trunk of `arch` (width 1, ImageNet stem).
    pub fn new(arch: Arch) -> Self {
        Self {
            arch,
            width: 1,
            base_width: 64,
            small_stem: false,
        }
    }

    /// Channels after the stem: `base_width·w`.
    pub fn stem_channels(&self) -> usize {
        self.base_width * self.width
    }

    /// The pooled feature dimension: `8·base_width·w·expansion` (2048 for ResNet-50).
    pub fn feature_dim(&self) -> usize {
        8 * self.stem_channels() * self.arch.expansion()
    }
}

/// The whole SwAV network: trunk, projection head, L2 normalisation and prototypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwavConfig {
    /// The trunk.
    pub trunk: TrunkConfig,
    /// The projection head's hidden width (`hidden_mlp`; 0: the head is one linear layer).
    pub hidden_dim: usize,
    /// The embedding dimension `D` (`feat_dim`).
    pub output_dim: usize,
    /// The number of prototypes `K` (`nmb_prototypes`; 0: none, and no scores).
    pub prototypes: usize,
}

impl SwavConfig {
    /// The official SwAV ImageNet model: ResNet-50, head 2048 → 2048 → 128, 3000 prototypes.
    pub fn resnet50() -> Self {
        Self {
            trunk: TrunkConfig::new(Arch::ResNet50),
            hidden_dim: 2048,
            output_dim: 128,
            prototypes: 3000,
        }
    }

    /// Checks the configuration can be built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.trunk.width == 0 || self.trunk.base_width == 0 {
            return Err(ConfigError::ZeroWidth);
        }
        if self.output_dim == 0 {
            return Err(ConfigError::ZeroOutputDim);
        }
        Ok(())
    }
}
