//! Any weights file `--weights` accepts, read and loaded into the network it describes on
//! the CPU backend: a swav checkpoint, or torchvision / official SwAV safetensors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swav_cli::model_loading::load_model;
use swav_cli::train::weights_source::WeightsSource;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("swav-fuzz-{}-weights", std::process::id()));
    std::fs::write(&path, data).expect("writing the scratch file");
    if let Ok(weights) = WeightsSource::read(&path) {
        let _ = load_model(&mut swav_cpu::CpuBackend::new(), &weights);
    }
});
