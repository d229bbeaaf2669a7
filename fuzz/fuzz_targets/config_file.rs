//! A `--config` TOML file laid over a preset, then validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swav_cli::config_file::overlay_file;
use swav_cli::presets::Preset;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("swav-fuzz-{}-config.toml", std::process::id()));
    std::fs::write(&path, data).expect("writing the scratch file");
    if let Ok(config) = overlay_file(&Preset::Demo.config(), &path) {
        let _ = config.validate();
    }
});
