//! A whole small ResNet (multi-crop, head, L2 norm, prototypes) by finite differences on
//! `CpuBackend`.

use swav_cpu::CpuBackend;

#[test]
fn small_resnet_gradients_match_finite_differences() {
    swav_nn::conformance::check_model_gradients(&mut CpuBackend::new());
}

#[test]
fn single_linear_head_gradients_match_finite_differences() {
    swav_nn::conformance::check_linear_head_gradients(&mut CpuBackend::new());
}
