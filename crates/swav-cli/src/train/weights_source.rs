//! Where a model's weights come from: a swav checkpoint (which records its configuration),
//! or a plain safetensors file with torchvision or official SwAV names (whose architecture
//! is read off the tensor shapes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use swav_nn::{
    Arch, Backend, ImportOptions, ImportReport, SwavConfig, SwavModel, TrunkConfig,
    import_safetensors,
};

use super::checkpoint_state::LoadedCheckpoint;
use super::model_spec::model_config;
use crate::config::PretrainConfig;

/// Weights to load into a model.
pub enum WeightsSource {
    /// A swav checkpoint.
    Checkpoint(LoadedCheckpoint),
    /// torchvision or official SwAV weights.
    Plain {
        /// The file.
        path: PathBuf,
        /// Its contents.
        bytes: Vec<u8>,
        /// Tensor shapes by name, `module.` prefixes stripped.
        shapes: BTreeMap<String, Vec<usize>>,
    },
}

/// The official checkpoints' DDP prefix.
const MODULE_PREFIX: &str = "module.";

impl WeightsSource {
    /// Reads `path`: a swav checkpoint if it carries swav's format tag, else plain weights.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read weights {}", path.display()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
            anyhow!(
                "{} is not a complete safetensors file (cut short, damaged or another format): {e}",
                path.display()
            )
        })?;
        let is_checkpoint = header
            .metadata()
            .as_ref()
            .is_some_and(|m| m.contains_key("swav.format"));
        if is_checkpoint {
            drop(bytes);
            return Ok(Self::Checkpoint(LoadedCheckpoint::read(path)?));
        }
        let parsed = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow!("{} is corrupt or truncated: {e}", path.display()))?;
        let shapes = parsed
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let name = name
                    .strip_prefix(MODULE_PREFIX)
                    .unwrap_or(&name)
                    .to_string();
                (name, view.shape().to_vec())
            })
            .collect();
        Ok(Self::Plain {
            path: path.to_path_buf(),
            bytes,
            shapes,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Self::Checkpoint(ck) => &ck.path,
            Self::Plain { path, .. } => path,
        }
    }

    /// The training configuration, for checkpoints.
    pub fn training_config(&self) -> Result<Option<PretrainConfig>> {
        match self {
            Self::Checkpoint(ck) => ck.config().map(Some),
            Self::Plain { .. } => Ok(None),
        }
    }

    /// The network these weights belong to.
    pub fn model_config(&self) -> Result<SwavConfig> {
        match self {
            Self::Checkpoint(ck) => Ok(model_config(&ck.config()?)),
            Self::Plain { path, shapes, .. } => {
                infer_config(shapes).map_err(|e| anyhow!("{}: {e}", path.display()))
            }
        }
    }

    /// Loads the weights into `model`. Plain files may lack the head and the prototypes (a
    /// torchvision trunk); torchvision's `fc.*` is ignored.
    pub fn load_into<B: Backend>(
        &self,
        b: &mut B,
        model: &mut SwavModel<B>,
    ) -> Result<ImportReport> {
        match self {
            Self::Checkpoint(ck) => {
                ck.load_model(b, model)?;
                Ok(ImportReport::default())
            }
            Self::Plain { path, bytes, .. } => {
                let options = ImportOptions {
                    ignore: vec!["fc.*".into()],
                    allow_missing: vec!["projection_head.*".into(), "prototypes.*".into()],
                    strip_prefix: Some(MODULE_PREFIX.into()),
                };
                import_safetensors(model, b, bytes, &options)
                    .map_err(|e| anyhow!("{}: {e}", path.display()))
            }
        }
    }
}

/// Reads the architecture off torchvision / SwAV tensor names and shapes.
fn infer_config(shapes: &BTreeMap<String, Vec<usize>>) -> Result<SwavConfig> {
    let stem = shapes
        .get("conv1.weight")
        .ok_or_else(|| anyhow!("no `conv1.weight`: not a ResNet state dict"))?;
    let [channels, 3, k, _] = stem[..] else {
        bail!("`conv1.weight` has shape {stem:?}, expected [C, 3, k, k]");
    };
    let bottleneck = shapes.contains_key("layer1.0.conv3.weight");
    let blocks: Vec<usize> = (1..=4)
        .map(|l| {
            (0..)
                .take_while(|b| shapes.contains_key(&format!("layer{l}.{b}.conv1.weight")))
                .count()
        })
        .collect();
    let arch = match (bottleneck, blocks.as_slice()) {
        (true, [3, 4, 6, 3]) => Arch::ResNet50,
        (false, [2, 2, 2, 2]) => Arch::ResNet18,
        (false, [3, 4, 6, 3]) => Arch::ResNet34,
        _ => bail!(
            "unsupported ResNet: blocks per stage {blocks:?} ({})",
            if bottleneck { "bottleneck" } else { "basic" }
        ),
    };
    let trunk = TrunkConfig {
        arch,
        width: 1,
        base_width: channels,
        small_stem: k == 3,
    };
    // Every size the model is built with must be backed by values in the file, checked here
    // before anything is allocated: a header may claim any shape for a tensor holding no
    // data (`[100000000, 0]`). These are shapes the import requires anyway; the largest
    // trunk tensor bounds the width, each head tensor its own sizes.
    let planes = 8 * channels;
    expect_shape(shapes, "layer4.0.conv2.weight", &[planes, planes, 3, 3])?;
    let features = trunk.feature_dim();
    let (hidden_dim, output_dim) = if let Some(w) = shapes.get("projection_head.0.weight") {
        let hidden = w[0];
        expect_shape(shapes, "projection_head.0.weight", &[hidden, features])?;
        let out = shapes.get("projection_head.3.weight").ok_or_else(|| {
            anyhow!("`projection_head.0.weight` without `projection_head.3.weight`")
        })?;
        expect_shape(shapes, "projection_head.3.weight", &[out[0], hidden])?;
        (hidden, out[0])
    } else if let Some(w) = shapes.get("projection_head.weight") {
        expect_shape(shapes, "projection_head.weight", &[w[0], features])?;
        (0, w[0])
    } else {
        (2048, 128)
    };
    let prototypes = match shapes.get("prototypes.weight") {
        Some(w) => {
            expect_shape(shapes, "prototypes.weight", &[w[0], output_dim])?;
            w[0]
        }
        None => 0,
    };
    Ok(SwavConfig {
        trunk,
        hidden_dim,
        output_dim,
        prototypes,
    })
}

/// Fails unless tensor `key` exists with exactly `shape` and holds at least one value.
fn expect_shape(shapes: &BTreeMap<String, Vec<usize>>, key: &str, shape: &[usize]) -> Result<()> {
    match shapes.get(key) {
        Some(found) if found == shape && !shape.contains(&0) => Ok(()),
        Some(found) => bail!("`{key}` has shape {found:?}, expected {shape:?}"),
        None => bail!("no `{key}`: not a ResNet state dict"),
    }
}
