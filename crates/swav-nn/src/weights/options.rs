//! What to load and how keys are spelled: ignore and allow-missing patterns, the DDP
//! `module.` prefix, trunk-only export.

use alloc::string::String;
use alloc::vec::Vec;

/// How [`import_safetensors`](super::import_safetensors) matches file keys to the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// File keys to skip, as patterns where `*` matches any run of characters (e.g. `fc.*`
    /// for torchvision's classifier).
    pub ignore: Vec<String>,
    /// Model keys that may be absent from the file; they keep their current values (e.g.
    /// `projection_head.*` and `prototypes.*` when loading a plain trunk).
    pub allow_missing: Vec<String>,
    /// A prefix removed from file keys that carry it (e.g. `module.` in the official SwAV
    /// checkpoints).
    pub strip_prefix: Option<String>,
}

impl ImportOptions {
    /// Exact key match, every key required, nothing extra: PyTorch's `strict=True`.
    pub fn strict() -> Self {
        Self::default()
    }

    /// A torchvision ResNet `state_dict` into the model: its `fc.*` ignored, the head and
    /// prototypes kept as they are.
    pub fn torchvision_trunk() -> Self {
        Self {
            ignore: alloc::vec!["fc.*".into()],
            allow_missing: alloc::vec!["projection_head*".into(), "prototypes*".into()],
            strip_prefix: None,
        }
    }

    /// A released or training SwAV checkpoint (keys prefixed `module.`).
    pub fn swav_checkpoint() -> Self {
        Self {
            strip_prefix: Some("module.".into()),
            ..Self::default()
        }
    }
}

/// How [`export_safetensors`](super::export_safetensors) names and selects tensors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// A prefix added to every key (e.g. `module.`, the official checkpoints' layout).
    pub prefix: Option<String>,
    /// Only the trunk (no `projection_head.*`, no `prototypes.*`): a torchvision ResNet
    /// `state_dict` without `fc`, loadable with `strict=False`.
    pub trunk_only: bool,
}

/// Whether `key` matches `pattern`, where `*` matches any run of characters.
pub(crate) fn matches(pattern: &str, key: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = key.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether `key` matches any of `patterns`.
pub(crate) fn matches_any(patterns: &[String], key: &str) -> bool {
    patterns.iter().any(|p| matches(p, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_shell_globs() {
        assert!(matches("fc.*", "fc.weight"));
        assert!(!matches("fc.*", "layer1.fc.weight"));
        assert!(matches("*.num_batches_tracked", "bn1.num_batches_tracked"));
        assert!(matches("layer*.bn1.*", "layer4.1.bn1.bias"));
        assert!(matches("prototypes*", "prototypes.weight"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(matches("*", "anything"));
    }
}
