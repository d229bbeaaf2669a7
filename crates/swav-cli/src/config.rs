//! The pretraining configuration: every hyper-parameter of the official `main_swav.py`
//! (docs/algorithm.md §4.6) under its official name, plus what a Rust run needs on top.
//!
//! A configuration is built in three layers: a [preset](crate::presets), then an optional
//! TOML file ([`crate::config_file`]: `--config`, same keys, any subset, `preset = "..."`
//! allowed), then the command-line flags. Unknown keys and invalid values are errors that
//! name the key.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use swav_core::{Lars, LrSchedule};

/// The architecture to pretrain under its official name (`resnet50w2`, ...), as the
/// command line and configuration files spell it: a [`swav_nn::Arch`] and a width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ArchName {
    /// ResNet-18 (basic blocks, 512-d features).
    Resnet18,
    /// ResNet-34 (basic blocks, 512-d features).
    Resnet34,
    /// ResNet-50 v1.5 (bottlenecks, 2048-d features): the SwAV default.
    Resnet50,
    /// ResNet-50 with width ×2 (4096-d features).
    Resnet50w2,
    /// ResNet-50 with width ×4 (8192-d features).
    Resnet50w4,
}

impl ArchName {
    /// The official name (`resnet50w2`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Resnet18 => "resnet18",
            Self::Resnet34 => "resnet34",
            Self::Resnet50 => "resnet50",
            Self::Resnet50w2 => "resnet50w2",
            Self::Resnet50w4 => "resnet50w4",
        }
    }
}

/// Where the training step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The CPU reference backend (f32, deterministic).
    Cpu,
    /// The CUDA backend (bf16 trunk, f32 head, Sinkhorn and loss).
    Cuda,
}

/// How Sinkhorn guards its exponentials (see `swav_core::Stabilization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SinkhornMode {
    /// Global-max subtraction with an exact log-domain fallback: never inf or NaN.
    Stable,
    /// The official code as is: overflows for ε below about 0.0113 with cosine scores.
    Plain,
}

/// What a run does when it sees collapse (`crate::train::collapse_watch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnCollapse {
    /// Stop with the last checkpoint intact.
    Stop,
    /// Say so, with the likely cause and the knobs, and train on.
    #[default]
    Warn,
    /// Go back to the last healthy epoch, change the setting the diagnosis points to, and
    /// train on (at most three times).
    Adapt,
}

/// Batch-norm synchronisation across ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SyncBn {
    /// Statistics over all ranks (PyTorch `SyncBatchNorm`, the official default; the
    /// official name `pytorch` is accepted).
    #[value(alias = "pytorch")]
    #[serde(alias = "pytorch")]
    Global,
    /// Statistics over groups of `syncbn_process_group_size` ranks (apex SyncBN; the
    /// official name `apex` is accepted).
    #[value(alias = "apex")]
    #[serde(alias = "apex")]
    Groups,
    /// Per-rank statistics.
    Off,
}

/// Every setting of a pretraining run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    // ----- data -----
    /// An image folder (ImageFolder layout or flat), an MNIST-format IDX folder, or WebDataset
    /// shards (a brace pattern, a `.tar` or a list file); `None`: the built-in synthetic
    /// dataset.
    pub data: Option<PathBuf>,
    /// Synthetic dataset: number of classes (shapes).
    pub synthetic_classes: usize,
    /// Synthetic dataset: training images per class.
    pub synthetic_images_per_class: usize,
    /// Synthetic dataset: image side in pixels.
    pub synthetic_image_size: usize,
    /// Synthetic dataset: grey levels instead of colours (absent from older
    /// configurations: false).
    #[serde(default)]
    pub synthetic_monochrome: bool,
    /// Synthetic dataset: shapes turn within ± this many degrees (180: any orientation,
    /// also for older configurations that lack the field).
    #[serde(default = "any_orientation")]
    pub synthetic_max_rotation_degrees: u32,
    /// Synthetic dataset: one flat background, no texture, clutter or noise (absent from
    /// older configurations: false).
    #[serde(default)]
    pub synthetic_plain_background: bool,
    /// Synthetic dataset: the seed of its images, train and validation alike (absent from
    /// older configurations: 0, the built-in dataset).
    #[serde(default)]
    pub synthetic_seed: u64,
    /// Stop on the first unreadable image instead of skipping it with a warning.
    pub strict_data: bool,
    /// `data` only: train on the first N images of each class, in the dataset's order (file
    /// order for IDX files, torchvision's order for an ImageFolder); 0: every image. Also the
    /// k-NN memory of the run's evaluation. Absent from older configurations: 0.
    #[serde(default)]
    pub data_images_per_class: usize,
    /// `data` only: the k-NN validation images (an IDX folder's `t10k` split, or `val/`) are
    /// the first N of each class; 0: every image. Absent from older configurations: 0.
    #[serde(default)]
    pub eval_images_per_class: usize,
    /// `data` shards only: samples held by the shuffle buffer each rank streams through
    /// (absent from older configurations: 1000).
    #[serde(default = "default_shuffle_buffer")]
    pub shuffle_buffer: usize,

    // ----- multi-crop (official names) -----
    /// Crops per resolution group (`--nmb_crops`; SwAV recipe: 2 6).
    pub nmb_crops: Vec<usize>,
    /// Crop side per group (`--size_crops`; 224 96).
    pub size_crops: Vec<usize>,
    /// RandomResizedCrop minimum scale per group (`--min_scale_crops`; 0.14 0.05).
    pub min_scale_crops: Vec<f64>,
    /// RandomResizedCrop maximum scale per group (`--max_scale_crops`; 1 0.14).
    pub max_scale_crops: Vec<f64>,
    /// Colour-distortion strength s (jitter 0.8·s, hue 0.2·s; official 1.0).
    pub color_jitter_strength: f64,
    /// Probability of the Gaussian blur (official 0.5).
    pub blur_probability: f64,
    /// Probability of converting a crop to greyscale (official 0.2).
    pub grayscale_probability: f64,
    /// Probability of rotating a crop (RandomRotation, bilinear, black fill; not in the
    /// official recipe: 0, also for older configurations).
    #[serde(default)]
    pub rotation_probability: f64,
    /// A rotated crop turns by a uniform angle within ± this many degrees (0..=180; absent
    /// from older configurations: 180).
    #[serde(default = "any_rotation")]
    pub rotation_degrees: f64,

    // ----- SwAV -----
    /// Crops whose codes are targets (`--crops_for_assign`; 0 1).
    pub crops_for_assign: Vec<usize>,
    /// Softmax temperature τ (0.1).
    pub temperature: f64,
    /// Sinkhorn ε (0.05).
    pub epsilon: f64,
    /// Sinkhorn iterations (3).
    pub sinkhorn_iterations: usize,
    /// Sinkhorn numerics.
    pub sinkhorn_mode: SinkhornMode,
    /// Embedding dimension D (`--feat_dim`; 128).
    pub feat_dim: usize,
    /// Number of prototypes K (`--nmb_prototypes`; 3000).
    pub nmb_prototypes: usize,
    /// Total queue length over all ranks, rounded down to a multiple of the global batch;
    /// 0: no queue (`--queue_length`).
    pub queue_length: usize,
    /// Epoch from which the queue exists (`--epoch_queue_starts`; 15).
    pub epoch_queue_starts: u64,

    // ----- optimisation -----
    /// Training epochs (100).
    pub epochs: u64,
    /// Images per rank per step (`--batch_size`; 64).
    pub batch_size: usize,
    /// Peak learning rate, absolute (`--base_lr`; 4.8).
    pub base_lr: f64,
    /// Final learning rate of the cosine (`--final_lr`; 0).
    pub final_lr: f64,
    /// Iterations during which prototypes get no update (`--freeze_prototypes_niters`; 313).
    pub freeze_prototypes_niters: u64,
    /// Weight decay (`--wd`; 1e-6).
    pub wd: f64,
    /// Linear warm-up epochs (`--warmup_epochs`; 10).
    pub warmup_epochs: u64,
    /// First learning rate of the warm-up (`--start_warmup`; 0).
    pub start_warmup: f64,
    /// SGD momentum (0.9).
    pub momentum: f64,
    /// LARC trust coefficient (0.001).
    pub lars_trust: f64,
    /// Exclude biases and norm parameters from LARC and weight decay (official: no).
    pub lars_exclude_bias_and_norm: bool,
    /// apex LARC's `clip`: the adapted rate never exceeds the scheduled one, λ = min(λ/lr, 1)
    /// (official SwAV: off; solo-learn's CIFAR recipe: on). Absent from older
    /// configurations: off.
    #[serde(default)]
    pub lars_clip: bool,

    // ----- model -----
    /// Trunk architecture (`--arch`; resnet50).
    pub arch: ArchName,
    /// Stem/stage channel count of the first stage (64 for torchvision ResNets). Smaller
    /// values give narrow ResNets for small data and CPU runs.
    pub base_width: usize,
    /// A 3×3 stride-1 stem without max-pool, for 32-96 px images.
    pub small_stem: bool,
    /// Hidden width of the projection head (`--hidden_mlp`; 2048). 0: one linear layer.
    pub hidden_mlp: usize,

    // ----- run -----
    /// Backend.
    pub device: Device,
    /// Data-loading threads (`--workers`; official 10).
    pub workers: usize,
    /// Seed of the initialisation, the shuffles and the augmentations (31).
    pub seed: u64,
    /// Keep a numbered copy of the checkpoint every N epochs (`--checkpoint_freq`; 25).
    pub checkpoint_freq: u64,
    /// Also checkpoint every N iterations (0: only at epoch ends).
    pub checkpoint_every_iters: u64,
    /// BN synchronisation across ranks (`--sync_bn`; official pytorch = global).
    pub sync_bn: SyncBn,
    /// Ranks per SyncBN group with `sync_bn = groups` (8).
    pub syncbn_process_group_size: usize,
    /// Log a metrics line every N iterations (official: 50).
    pub log_every: u64,
    /// After training, report k-NN accuracy of the trained and of a random network.
    pub eval_knn: bool,
    /// Evaluate k-NN top-1 of the trained network every N epochs while training (0: never),
    /// on the synthetic splits or `train/` and `val/` under `data`; the points go to
    /// `knn.jsonl` and into the curves. Absent from older configurations: 0.
    #[serde(default)]
    pub eval_knn_every: u64,

    // ----- collapse -----
    /// What the run does when it sees collapse: `stop`, `warn` or `adapt` (absent from older
    /// configurations: warn).
    #[serde(default)]
    pub on_collapse: OnCollapse,
    /// The settings changes an adapting run has made to escape collapse, oldest first
    /// (`epsilon 0.05 -> 0.025`); empty when none was needed. Not a setting: a record.
    #[serde(default)]
    pub collapse_adaptations: Vec<String>,

    // ----- recipe choice -----
    /// Before training, probe every candidate recipe for this many iterations each and train
    /// the one with the best label-free score (`crate::train::recipe_choice`); 0: train this
    /// configuration as it is. One process only. Absent from older configurations: 0.
    #[serde(default)]
    pub recipe_probe_iterations: u64,
    /// The candidate recipe applied to this configuration (chosen by the probes or by
    /// `--recipe`); empty when none was. Not a setting: a record.
    #[serde(default)]
    pub chosen_recipe: String,
    /// With the recipe probes: minutes of wall time, from the command's start, for the whole
    /// run; the probes' measured speed then sets `epochs` to what fits
    /// (`crate::train::time_budget`). 0: train `epochs`. Absent from older configurations: 0.
    #[serde(default)]
    pub time_budget_minutes: f64,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum PretrainConfigError {
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: `{key}` {problem}")]
    Invalid {
        /// The offending key.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML file does not parse or has an unknown key or a wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key and line).
        message: String,
    },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> PretrainConfigError {
    PretrainConfigError::Invalid {
        key,
        problem: problem.into(),
    }
}

/// The synthetic dataset's full rotation range, the default of configurations written
/// before the setting existed.
fn any_orientation() -> u32 {
    180
}

fn default_shuffle_buffer() -> usize {
    swav_augment::loader::DEFAULT_SHUFFLE_BUFFER
}

fn any_rotation() -> f64 {
    180.0
}

impl PretrainConfig {
    /// The configuration as TOML (written next to every run and into checkpoints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a configuration always serialises")
    }

    /// Total crops per image (`V`).
    pub fn total_crops(&self) -> usize {
        self.nmb_crops.iter().sum()
    }

    /// The run's LARC + SGD settings.
    pub fn lars(&self) -> Lars<f32> {
        Lars {
            trust_coefficient: self.lars_trust as f32,
            weight_decay: self.wd as f32,
            momentum: self.momentum as f32,
            exclude_bias_and_norm: self.lars_exclude_bias_and_norm,
            clip: self.lars_clip,
            ..Lars::default()
        }
    }

    /// The run's learning-rate schedule over epochs of `iters_per_epoch` iterations.
    pub fn lr_schedule(&self, iters_per_epoch: u64) -> LrSchedule {
        LrSchedule {
            base_lr: self.base_lr,
            final_lr: self.final_lr,
            start_warmup: self.start_warmup,
            warmup_epochs: self.warmup_epochs,
            epochs: self.epochs,
            iters_per_epoch,
        }
    }

    /// Checks every value and every cross-constraint.
    pub fn validate(&self) -> Result<(), PretrainConfigError> {
        let groups = self.nmb_crops.len();
        if groups == 0 {
            return Err(invalid("nmb_crops", "is empty"));
        }
        for (key, len) in [
            ("size_crops", self.size_crops.len()),
            ("min_scale_crops", self.min_scale_crops.len()),
            ("max_scale_crops", self.max_scale_crops.len()),
        ] {
            if len != groups {
                return Err(invalid(
                    key,
                    format!("has {len} entries but nmb_crops has {groups}"),
                ));
            }
        }
        if self.nmb_crops.contains(&0) {
            return Err(invalid("nmb_crops", "has a group of 0 crops"));
        }
        if self.total_crops() < 2 {
            return Err(invalid("nmb_crops", "must give at least 2 crops per image"));
        }
        if let Some(s) = self.size_crops.iter().find(|&&s| s < 8) {
            return Err(invalid(
                "size_crops",
                format!("{s} is smaller than 8 pixels"),
            ));
        }
        for (i, (&lo, &hi)) in self
            .min_scale_crops
            .iter()
            .zip(&self.max_scale_crops)
            .enumerate()
        {
            if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
                return Err(invalid(
                    "min_scale_crops",
                    format!("group {i}: need 0 < min ({lo}) <= max ({hi}) <= 1"),
                ));
            }
        }
        if self.crops_for_assign.is_empty() {
            return Err(invalid("crops_for_assign", "is empty"));
        }
        if let Some(a) = self
            .crops_for_assign
            .iter()
            .find(|&&a| a >= self.total_crops())
        {
            return Err(invalid(
                "crops_for_assign",
                format!(
                    "crop {a} does not exist ({} crops per image)",
                    self.total_crops()
                ),
            ));
        }
        let positive = [
            ("temperature", self.temperature),
            ("epsilon", self.epsilon),
            ("base_lr", self.base_lr),
            ("lars_trust", self.lars_trust),
        ];
        for (key, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(invalid(key, format!("must be positive, got {v}")));
            }
        }
        let non_negative = [
            ("final_lr", self.final_lr),
            ("start_warmup", self.start_warmup),
            ("wd", self.wd),
            ("color_jitter_strength", self.color_jitter_strength),
        ];
        for (key, v) in non_negative {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(invalid(key, format!("must be >= 0, got {v}")));
            }
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(invalid(
                "momentum",
                format!("must be in [0, 1), got {}", self.momentum),
            ));
        }
        if !(0.0..=1.0).contains(&self.blur_probability) {
            return Err(invalid("blur_probability", "must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.grayscale_probability) {
            return Err(invalid("grayscale_probability", "must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.rotation_probability) {
            return Err(invalid("rotation_probability", "must be in [0, 1]"));
        }
        if !(0.0..=180.0).contains(&self.rotation_degrees) {
            return Err(invalid(
                "rotation_degrees",
                format!("must be in [0, 180], got {}", self.rotation_degrees),
            ));
        }
        for (key, v) in [
            ("batch_size", self.batch_size),
            ("feat_dim", self.feat_dim),
            ("nmb_prototypes", self.nmb_prototypes),
            ("sinkhorn_iterations", self.sinkhorn_iterations),
            ("base_width", self.base_width),
            ("workers", self.workers),
            ("syncbn_process_group_size", self.syncbn_process_group_size),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be positive"));
            }
        }
        if self.epochs == 0 {
            return Err(invalid("epochs", "must be positive"));
        }
        if self.warmup_epochs > self.epochs {
            return Err(invalid(
                "warmup_epochs",
                format!("({}) exceeds epochs ({})", self.warmup_epochs, self.epochs),
            ));
        }
        if self.data.is_none() {
            for (key, n) in [
                ("data_images_per_class", self.data_images_per_class),
                ("eval_images_per_class", self.eval_images_per_class),
            ] {
                if n > 0 {
                    return Err(invalid(
                        key,
                        "applies to --data folders; the built-in dataset's size is synthetic_images_per_class",
                    ));
                }
            }
            if self.synthetic_classes < 2 {
                return Err(invalid("synthetic_classes", "must be at least 2"));
            }
            if self.synthetic_images_per_class == 0 {
                return Err(invalid("synthetic_images_per_class", "must be positive"));
            }
            if self.synthetic_image_size < 8 {
                return Err(invalid("synthetic_image_size", "must be at least 8"));
            }
            if self.synthetic_max_rotation_degrees > 180 {
                return Err(invalid(
                    "synthetic_max_rotation_degrees",
                    "must be within 0..=180",
                ));
            }
        }
        if self.log_every == 0 {
            return Err(invalid("log_every", "must be positive"));
        }
        if !(self.time_budget_minutes.is_finite() && self.time_budget_minutes >= 0.0) {
            return Err(invalid(
                "time_budget_minutes",
                "must be a number of minutes, 0 or more (0: no budget)",
            ));
        }
        if !self.chosen_recipe.is_empty() && self.recipe_probe_iterations > 0 {
            return Err(invalid(
                "recipe_probe_iterations",
                format!(
                    "probes the candidate recipes, but the recipe is already chosen (`{}`); give --recipe or --recipe-probe-iterations, not both",
                    self.chosen_recipe
                ),
            ));
        }
        Ok(())
    }
}
