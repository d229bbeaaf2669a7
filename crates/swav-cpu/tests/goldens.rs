//! PyTorch parity of the model on `CpuBackend` (goldens made by
//! `scripts/goldens/model_goldens.py`).

use swav_cpu::CpuBackend;
use swav_nn::conformance;

#[test]
fn resnet18_matches_torchvision() {
    conformance::check_golden_resnet18(&mut CpuBackend::new());
}

#[test]
fn resnet50_matches_torchvision() {
    conformance::check_golden_resnet50(&mut CpuBackend::new());
}

#[test]
fn swav_network_matches_the_official_multi_crop_forward() {
    conformance::check_golden_swav(&mut CpuBackend::new());
}
