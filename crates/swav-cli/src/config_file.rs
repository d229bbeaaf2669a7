//! A TOML configuration file (`--config`) laid over a base configuration: the file names
//! any subset of [`PretrainConfig`]'s keys, and may start from another preset with
//! `preset = "name"`.

use std::path::Path;

use crate::config::{PretrainConfig, PretrainConfigError};
use crate::presets::Preset;

/// Reads a TOML file over `base`: keys present in the file replace the base's values;
/// a `preset = "name"` key replaces the base by that preset first.
pub fn overlay_file(
    base: &PretrainConfig,
    path: &Path,
) -> Result<PretrainConfig, PretrainConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| PretrainConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    overlay_toml(base, &text).map_err(|message| PretrainConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

/// [`overlay_file`] on TOML text; the error is the parser's message.
fn overlay_toml(base: &PretrainConfig, text: &str) -> Result<PretrainConfig, String> {
    let mut file: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| one_line(&e.to_string()))?;
    let base = match file.remove("preset") {
        Some(toml::Value::String(name)) => Preset::from_name(&name)
            .ok_or_else(|| {
                format!(
                    "unknown preset `{name}` (known: {})",
                    Preset::names().join(", ")
                )
            })?
            .config(),
        Some(other) => {
            return Err(format!(
                "`preset` must be a string, found {}",
                other.type_str()
            ));
        }
        None => base.clone(),
    };
    let mut merged = toml::Table::try_from(&base).map_err(|e| e.to_string())?;
    for (key, value) in file {
        merged.insert(key, value);
    }
    toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| one_line(&e.to_string()))
}

/// The first line of a (multi-line) parser message, with the location kept.
fn one_line(message: &str) -> String {
    message
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_round_trips_through_toml() {
        for preset in Preset::all() {
            let config = preset.config();
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", preset.name()));
            let back = overlay_toml(&Preset::Demo.config(), &config.to_toml()).unwrap();
            assert_eq!(back, config, "{}", preset.name());
        }
    }

    #[test]
    fn configurations_written_before_the_synthetic_settings_read_as_the_full_dataset() {
        let text: String = Preset::Demo
            .config()
            .to_toml()
            .lines()
            .filter(|line| {
                !line.starts_with("synthetic_monochrome")
                    && !line.starts_with("synthetic_max_rotation_degrees")
                    && !line.starts_with("synthetic_plain_background")
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let old: PretrainConfig = toml::from_str(&text).expect("older configuration parses");
        assert!(!old.synthetic_monochrome && !old.synthetic_plain_background);
        assert_eq!(old.synthetic_max_rotation_degrees, 180);
    }

    #[test]
    fn a_file_overrides_only_its_keys_and_may_name_a_preset() {
        let base = Preset::Demo.config();
        let c = overlay_toml(&base, "epsilon = 0.03\nnmb_prototypes = 30\n").unwrap();
        assert_eq!(c.epsilon, 0.03);
        assert_eq!(c.nmb_prototypes, 30);
        assert_eq!(c.batch_size, base.batch_size);
        let c = overlay_toml(&base, "preset = \"imagenet-64gpu\"\nepochs = 5\n").unwrap();
        assert_eq!(c.epochs, 5);
        assert_eq!(c.base_lr, 4.8);
    }

    #[test]
    fn unknown_keys_wrong_types_and_bad_values_name_the_key() {
        let base = Preset::Demo.config();
        let e = overlay_toml(&base, "epsilonn = 0.05").unwrap_err();
        assert!(e.contains("epsilonn"), "{e}");
        let e = overlay_toml(&base, "epochs = \"ten\"").unwrap_err();
        assert!(e.contains("epochs") || e.contains("integer"), "{e}");
        let e = overlay_toml(&base, "preset = \"nope\"").unwrap_err();
        assert!(e.contains("nope"), "{e}");
        let mut c = base.clone();
        c.size_crops.push(64);
        assert!(c.validate().unwrap_err().to_string().contains("size_crops"));
        let mut c = base.clone();
        c.crops_for_assign = vec![0, 99];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("crops_for_assign")
        );
        let mut c = base;
        c.epsilon = 0.0;
        assert!(c.validate().unwrap_err().to_string().contains("epsilon"));
    }
}
