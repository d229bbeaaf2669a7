//! Named starting points for a run: the official recipes and the small-scale ones.

use crate::config::{ArchName, Device, OnCollapse, PretrainConfig, SinkhornMode, SyncBn};

/// A named configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The argparse defaults of the official `main_swav.py` (2×224 crops, 100 epochs,
    /// lr 4.8, no queue).
    Defaults,
    /// `swav_800ep_pretrain.sh`: 64 GPUs × 64 images, 2×224 + 6×96, 800 epochs, lr 4.8 →
    /// 0.0048 after 10 warm-up epochs from 0.3, SyncBN in groups of 8 (75.3 % linear top-1).
    #[value(name = "imagenet-64gpu")]
    Imagenet64Gpu,
    /// `swav_400ep_bs256_pretrain.sh`: 4 GPUs × 64 images (batch 256), 2×224 + 6×96,
    /// 400 epochs, lr 0.6 → 0.0006 without warm-up, prototypes frozen 5005 iterations,
    /// a 3840 queue from epoch 15 (74.3 %).
    #[value(name = "imagenet-bs256")]
    ImagenetBs256,
    /// CIFAR / ImageNet-100 scale (32-96 px): ResNet-18 with the small stem, 2×32 + 4×16
    /// crops, softer colour distortion, fewer prototypes (set `nmb_prototypes` to about
    /// 10× the number of classes), a queue, batch 256.
    Small,
    /// The built-in demo: a narrow ResNet-18 on the synthetic dataset at full difficulty (grey
    /// shapes in any orientation on textured, cluttered backgrounds), every crop rotated by a
    /// random angle so that orientation stops being what two crops share, 60 epochs, about
    /// 4 minutes on two CPU cores (k-NN 33.1 % against 17.7 % for a random network; the
    /// recipe search is in docs/demo-recipe.md). `demo-hard` is its former name.
    #[value(alias = "demo-hard")]
    Demo,
    /// The first demo: the same network and recipe on the easiest setting of the built-in
    /// dataset (grey shapes within ±15° of upright on plain backgrounds, no rotated crops),
    /// 30 epochs, about 2 minutes (k-NN 51.2 % against 37.8 % for a random network).
    #[value(name = "demo-easy")]
    DemoEasy,
    /// `demo` on the colour images (random colours, any orientation, textured
    /// backgrounds): nine crops in ten greyed and milder colour jitter (strength 1), so that
    /// colour stops being what two crops share and the grey-against-colour pairs teach the
    /// network to ignore it, 120 epochs (k-NN 32.9 % against 13.9 % for a random network;
    /// docs/demo-recipe.md).
    #[value(name = "demo-colour")]
    DemoColour,
    /// Your own small dataset (thousands of images, 28-96 px): the demo's narrow ResNet-18
    /// with a plain two-crop recipe (2×32 crops of 20-100 % of the image, mild colour jitter,
    /// no blur or rotation, τ 0.1, 30 prototypes, lr 0.3 → 0.0003, 80 epochs) that learns on
    /// Fashion-MNIST. It first probes four variants of it for 200 iterations each and trains
    /// the one whose features have the highest effective rank, without labels
    /// (docs/recipe-choice.md), and it adapts on collapse, so a dataset on which the recipe
    /// collapses escapes instead of training on at ln K (docs/collapse.md).
    #[value(name = "small-data")]
    SmallData,
}

impl Preset {
    /// Every preset, in the order they are documented.
    pub fn all() -> [Preset; 8] {
        [
            Self::Defaults,
            Self::Imagenet64Gpu,
            Self::ImagenetBs256,
            Self::Small,
            Self::SmallData,
            Self::Demo,
            Self::DemoEasy,
            Self::DemoColour,
        ]
    }

    /// The preset's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Defaults => "defaults",
            Self::Imagenet64Gpu => "imagenet-64gpu",
            Self::ImagenetBs256 => "imagenet-bs256",
            Self::Small => "small",
            Self::Demo => "demo",
            Self::DemoEasy => "demo-easy",
            Self::DemoColour => "demo-colour",
            Self::SmallData => "small-data",
        }
    }

    /// All preset names.
    pub fn names() -> Vec<&'static str> {
        Self::all().iter().map(|p| p.name()).collect()
    }

    /// The preset with this name or one of its aliases (`demo-hard`, the former name of
    /// `demo`), exactly as `--preset` reads it.
    pub fn from_name(name: &str) -> Option<Preset> {
        <Self as clap::ValueEnum>::from_str(name, false).ok()
    }

    /// The configuration this preset stands for.
    pub fn config(self) -> PretrainConfig {
        match self {
            Self::Defaults => official_defaults(),
            Self::Imagenet64Gpu => PretrainConfig {
                epochs: 800,
                final_lr: 0.0048,
                start_warmup: 0.3,
                sync_bn: SyncBn::Groups,
                device: Device::Cuda,
                ..multi_crop(official_defaults())
            },
            Self::ImagenetBs256 => PretrainConfig {
                epochs: 400,
                base_lr: 0.6,
                final_lr: 0.0006,
                warmup_epochs: 0,
                start_warmup: 0.0,
                freeze_prototypes_niters: 5005,
                queue_length: 3840,
                epoch_queue_starts: 15,
                device: Device::Cuda,
                ..multi_crop(official_defaults())
            },
            Self::Small => PretrainConfig {
                nmb_crops: vec![2, 4],
                size_crops: vec![32, 16],
                min_scale_crops: vec![0.2, 0.08],
                max_scale_crops: vec![1.0, 0.4],
                color_jitter_strength: 0.5,
                epochs: 400,
                batch_size: 256,
                base_lr: 0.6,
                final_lr: 0.0006,
                warmup_epochs: 10,
                start_warmup: 0.0,
                freeze_prototypes_niters: 400,
                nmb_prototypes: 100,
                queue_length: 3840,
                epoch_queue_starts: 30,
                arch: ArchName::Resnet18,
                small_stem: true,
                hidden_mlp: 512,
                ..official_defaults()
            },
            Self::Demo => PretrainConfig {
                synthetic_max_rotation_degrees: 180,
                synthetic_plain_background: false,
                rotation_probability: 1.0,
                rotation_degrees: 180.0,
                epochs: 60,
                ..demo_easy()
            },
            Self::DemoEasy => demo_easy(),
            Self::DemoColour => PretrainConfig {
                synthetic_monochrome: false,
                color_jitter_strength: 1.0,
                grayscale_probability: 0.9,
                epochs: 120,
                ..Self::Demo.config()
            },
            Self::SmallData => PretrainConfig {
                rotation_probability: 0.0,
                min_scale_crops: vec![0.2],
                color_jitter_strength: 0.5,
                temperature: 0.1,
                base_lr: 0.3,
                final_lr: 0.0003,
                hidden_mlp: 512,
                feat_dim: 64,
                warmup_epochs: 2,
                freeze_prototypes_niters: 100,
                epochs: 80,
                on_collapse: OnCollapse::Adapt,
                recipe_probe_iterations: 200,
                time_budget_minutes: 15.0,
                ..Self::Demo.config()
            },
        }
    }
}

/// `main_swav.py`'s argparse defaults, on the CPU.
fn official_defaults() -> PretrainConfig {
    PretrainConfig {
        data: None,
        synthetic_classes: 10,
        synthetic_images_per_class: 200,
        synthetic_image_size: 32,
        synthetic_monochrome: false,
        synthetic_max_rotation_degrees: 180,
        synthetic_plain_background: false,
        synthetic_seed: 0,
        strict_data: false,
        data_images_per_class: 0,
        eval_images_per_class: 0,
        shuffle_buffer: swav_augment::loader::DEFAULT_SHUFFLE_BUFFER,
        nmb_crops: vec![2],
        size_crops: vec![224],
        min_scale_crops: vec![0.14],
        max_scale_crops: vec![1.0],
        color_jitter_strength: 1.0,
        blur_probability: 0.5,
        grayscale_probability: 0.2,
        rotation_probability: 0.0,
        rotation_degrees: 180.0,
        crops_for_assign: vec![0, 1],
        temperature: 0.1,
        epsilon: 0.05,
        sinkhorn_iterations: 3,
        sinkhorn_mode: SinkhornMode::Stable,
        feat_dim: 128,
        nmb_prototypes: 3000,
        queue_length: 0,
        epoch_queue_starts: 15,
        epochs: 100,
        batch_size: 64,
        base_lr: 4.8,
        final_lr: 0.0,
        freeze_prototypes_niters: 313,
        wd: 1e-6,
        warmup_epochs: 10,
        start_warmup: 0.0,
        momentum: 0.9,
        lars_trust: 0.001,
        lars_exclude_bias_and_norm: false,
        lars_clip: false,
        arch: ArchName::Resnet50,
        base_width: 64,
        small_stem: false,
        hidden_mlp: 2048,
        device: Device::Cpu,
        workers: 10,
        seed: 31,
        checkpoint_freq: 25,
        checkpoint_every_iters: 0,
        sync_bn: SyncBn::Global,
        syncbn_process_group_size: 8,
        log_every: 50,
        eval_knn: false,
        eval_knn_every: 0,
        on_collapse: OnCollapse::Warn,
        collapse_adaptations: Vec::new(),
        recipe_probe_iterations: 0,
        chosen_recipe: String::new(),
        time_budget_minutes: 0.0,
    }
}

/// The official 2×224 (0.14, 1) + 6×96 (0.05, 0.14) multi-crop on top of `base`.
fn multi_crop(base: PretrainConfig) -> PretrainConfig {
    PretrainConfig {
        nmb_crops: vec![2, 6],
        size_crops: vec![224, 96],
        min_scale_crops: vec![0.14, 0.05],
        max_scale_crops: vec![1.0, 0.14],
        ..base
    }
}

/// The first demo's recipe, which `demo` builds on (see docs/demo-recipe.md for how it was
/// found): the synthetic dataset's monochrome, near-upright, plain-background setting; two
/// 32 px crops of at least half the image with strong brightness/contrast jitter; τ = 0.5,
/// which keeps the loss off ln K at batch 64; lr 0.6 for 930 steps.
fn demo_easy() -> PretrainConfig {
    PretrainConfig {
        synthetic_classes: 10,
        synthetic_images_per_class: 200,
        synthetic_image_size: 32,
        synthetic_monochrome: true,
        synthetic_max_rotation_degrees: 15,
        synthetic_plain_background: true,
        nmb_crops: vec![2],
        size_crops: vec![32],
        min_scale_crops: vec![0.5],
        max_scale_crops: vec![1.0],
        color_jitter_strength: 1.5,
        blur_probability: 0.0,
        temperature: 0.5,
        epochs: 30,
        batch_size: 64,
        base_lr: 0.6,
        final_lr: 0.0006,
        warmup_epochs: 1,
        start_warmup: 0.0,
        freeze_prototypes_niters: 30,
        nmb_prototypes: 30,
        arch: ArchName::Resnet18,
        base_width: 16,
        small_stem: true,
        hidden_mlp: 256,
        workers: 2,
        log_every: 10,
        eval_knn: true,
        ..official_defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_the_easy_demo_network_on_the_hardest_data_with_rotated_crops() {
        let (demo, hard) = (Preset::DemoEasy.config(), Preset::Demo.config());
        assert_eq!(Preset::from_name("demo-easy"), Some(Preset::DemoEasy));
        // The former name of `demo` still works, in config files and on the command line.
        assert_eq!(Preset::from_name("demo-hard"), Some(Preset::Demo));
        assert_eq!(
            <Preset as clap::ValueEnum>::from_str("demo-hard", false),
            Ok(Preset::Demo)
        );
        assert_eq!(hard.synthetic_max_rotation_degrees, 180);
        assert!(!hard.synthetic_plain_background && hard.synthetic_monochrome);
        assert_eq!(
            (hard.rotation_probability, hard.rotation_degrees),
            (1.0, 180.0)
        );
        assert_eq!(hard.epochs, 60);
        let same_otherwise = PretrainConfig {
            synthetic_max_rotation_degrees: demo.synthetic_max_rotation_degrees,
            synthetic_plain_background: demo.synthetic_plain_background,
            rotation_probability: demo.rotation_probability,
            epochs: demo.epochs,
            ..hard.clone()
        };
        assert_eq!(same_otherwise, demo);
        hard.validate().expect("valid");
    }

    #[test]
    fn small_data_is_the_plain_two_crop_recipe_that_adapts_on_collapse() {
        let c = Preset::SmallData.config();
        assert_eq!(Preset::from_name("small-data"), Some(Preset::SmallData));
        assert_eq!(
            (c.nmb_crops.clone(), c.size_crops.clone()),
            (vec![2], vec![32])
        );
        assert_eq!((c.min_scale_crops[0], c.rotation_probability), (0.2, 0.0));
        assert_eq!(
            (c.temperature, c.epsilon, c.nmb_prototypes),
            (0.1, 0.05, 30)
        );
        assert_eq!((c.base_lr, c.final_lr, c.epochs), (0.3, 0.0003, 80));
        assert_eq!(c.on_collapse, OnCollapse::Adapt);
        assert_eq!(
            (c.recipe_probe_iterations, c.chosen_recipe.as_str()),
            (200, "")
        );
        c.validate().expect("valid");
    }

    #[test]
    fn demo_colour_is_the_demo_on_colour_images_with_mostly_grey_crops() {
        let (hard, colour) = (Preset::Demo.config(), Preset::DemoColour.config());
        assert_eq!(Preset::from_name("demo-colour"), Some(Preset::DemoColour));
        assert!(!colour.synthetic_monochrome && !colour.synthetic_plain_background);
        assert_eq!(colour.synthetic_max_rotation_degrees, 180);
        assert_eq!(
            (colour.color_jitter_strength, colour.grayscale_probability),
            (1.0, 0.9)
        );
        assert_eq!(colour.epochs, 120);
        let same_otherwise = PretrainConfig {
            synthetic_monochrome: hard.synthetic_monochrome,
            color_jitter_strength: hard.color_jitter_strength,
            grayscale_probability: hard.grayscale_probability,
            epochs: hard.epochs,
            ..colour.clone()
        };
        assert_eq!(same_otherwise, hard);
        colour.validate().expect("valid");
    }
}
