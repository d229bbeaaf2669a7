//! Resolving a run's configuration: preset, then `--config` file, then flags.

use crate::cli::{Overrides, PretrainArgs};
use crate::config::{PretrainConfig, PretrainConfigError};
use crate::config_file::overlay_file;
use crate::presets::Preset;

impl Overrides {
    /// Writes every flag that was given into `config`.
    pub fn apply_to(&self, config: &mut PretrainConfig) {
        if let Some(recipe) = self.recipe {
            recipe.apply(config);
        }
        macro_rules! set {
            ($($field:ident),* $(,)?) => {
                $(if let Some(v) = &self.$field { config.$field = v.clone(); })*
            };
        }
        set!(
            nmb_crops,
            size_crops,
            min_scale_crops,
            max_scale_crops,
            color_jitter_strength,
            blur_probability,
            grayscale_probability,
            rotation_probability,
            rotation_degrees,
            crops_for_assign,
            temperature,
            epsilon,
            sinkhorn_iterations,
            sinkhorn_mode,
            feat_dim,
            nmb_prototypes,
            queue_length,
            epoch_queue_starts,
            epochs,
            batch_size,
            base_lr,
            final_lr,
            freeze_prototypes_niters,
            wd,
            warmup_epochs,
            start_warmup,
            momentum,
            lars_trust,
            lars_exclude_bias_and_norm,
            lars_clip,
            arch,
            base_width,
            small_stem,
            hidden_mlp,
            device,
            workers,
            seed,
            checkpoint_freq,
            checkpoint_every_iters,
            sync_bn,
            syncbn_process_group_size,
            log_every,
            eval_knn,
            eval_knn_every,
            on_collapse,
            recipe_probe_iterations,
            time_budget_minutes,
            synthetic_classes,
            synthetic_images_per_class,
            synthetic_image_size,
            synthetic_monochrome,
            synthetic_max_rotation_degrees,
            synthetic_plain_background,
            synthetic_seed,
            data_images_per_class,
            eval_images_per_class,
            shuffle_buffer,
        );
        if self.epochs.is_some() && self.time_budget_minutes.is_none() {
            // Epochs asked for on the command line are trained, not replaced by a budget.
            config.time_budget_minutes = 0.0;
        }
        if self.strict_data {
            config.strict_data = true;
        }
    }
}

/// The configuration `swav pretrain` runs with: the preset (`demo` when neither `--data`
/// nor `--config` is given, `defaults` otherwise), the `--config` file over it, then the
/// flags; validated.
pub fn resolve_pretrain_config(args: &PretrainArgs) -> Result<PretrainConfig, PretrainConfigError> {
    let preset = args
        .preset
        .unwrap_or(if args.data.is_none() && args.config.is_none() {
            Preset::Demo
        } else {
            Preset::Defaults
        });
    overlay_args(preset.config(), args)
}

/// `base` with the `--config` file over it, then `--data` and the flags; validated.
pub fn overlay_args(
    base: PretrainConfig,
    args: &PretrainArgs,
) -> Result<PretrainConfig, PretrainConfigError> {
    let mut config = base;
    if let Some(path) = &args.config {
        config = overlay_file(&config, path)?;
    }
    if let Some(data) = &args.data {
        config.data = Some(data.clone());
    }
    args.overrides.apply_to(&mut config);
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn pretrain_args(argv: &[&str]) -> PretrainArgs {
        let cli = Cli::try_parse_from([&["swav", "pretrain"], argv].concat()).unwrap();
        match cli.command {
            Command::Pretrain(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn no_arguments_is_the_demo() {
        let c = resolve_pretrain_config(&pretrain_args(&[])).unwrap();
        assert_eq!(c, Preset::Demo.config());
    }

    #[test]
    fn data_without_preset_starts_from_the_official_defaults() {
        let c = resolve_pretrain_config(&pretrain_args(&["--data", "/imagenet/train"])).unwrap();
        assert_eq!(c.base_lr, 4.8);
        assert_eq!(c.nmb_prototypes, 3000);
        assert_eq!(
            c.data.as_deref(),
            Some(std::path::Path::new("/imagenet/train"))
        );
    }

    #[test]
    fn flags_override_the_preset_in_both_spellings() {
        let c = resolve_pretrain_config(&pretrain_args(&[
            "--preset",
            "imagenet-64gpu",
            "--nmb_prototypes",
            "1000",
            "--epsilon",
            "0.03",
            "--nmb-crops",
            "2",
            "4",
            "--size-crops",
            "160",
            "96",
        ]))
        .unwrap();
        assert_eq!((c.nmb_prototypes, c.epsilon), (1000, 0.03));
        assert_eq!(
            (c.nmb_crops.clone(), c.size_crops.clone()),
            (vec![2, 4], vec![160, 96])
        );
        assert_eq!(c.epochs, 800);
    }

    #[test]
    fn epochs_on_the_command_line_turn_a_presets_time_budget_off() {
        let budget = |argv: &[&str]| {
            let c = resolve_pretrain_config(&pretrain_args(
                &[&["--preset", "small-data"], argv].concat(),
            ))
            .unwrap();
            (c.epochs, c.time_budget_minutes)
        };
        assert_eq!(budget(&[]), (80, 15.0));
        assert_eq!(budget(&["--epochs", "30"]), (30, 0.0));
        assert_eq!(budget(&["--epochs", "30", "--time-budget", "5"]), (30, 5.0));
        assert_eq!(budget(&["--time-budget", "0"]), (80, 0.0));
    }

    #[test]
    fn a_bad_flag_value_names_the_key() {
        let e = resolve_pretrain_config(&pretrain_args(&["--temperature=-1"])).unwrap_err();
        assert!(e.to_string().contains("temperature"), "{e}");
        let e =
            resolve_pretrain_config(&pretrain_args(&["--nmb-crops", "2", "6", "4"])).unwrap_err();
        assert!(e.to_string().contains("size_crops"), "{e}");
    }
}
