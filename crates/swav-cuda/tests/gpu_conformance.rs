//! swav-nn's backend conformance checks on the GPU.
//!
//! * In f32 (TF32 off), the checks the CPU backend passes, at the same tolerances: every
//!   op family (one test each, registered by `backend_conformance_tests!`) against its f64
//!   definition and its gradients by finite differences, a whole
//!   small SwAV network by finite differences, and ResNet-18, ResNet-50 and the SwAV network
//!   against PyTorch's goldens.
//! * In both precisions, every model operation against the CPU backend on identical inputs
//!   (`check_agreement`): within 5e-5 of the largest output in f32, within 1e-2 (a few bf16
//!   roundings) under bf16 mixed precision.
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::gpu;
use swav_cpu::CpuBackend;
use swav_cuda::Precision;
use swav_nn::conformance::{self, Agreement};

// One test per op family in f32, named as in every backend's suite.
swav_nn::backend_conformance_tests!(gpu(Precision::F32));

#[test]
fn f32_model_gradients_match_finite_differences() {
    if let Some(mut g) = gpu(Precision::F32) {
        conformance::check_model_gradients(&mut g);
    }
}

#[test]
fn f32_resnet18_matches_pytorch() {
    if let Some(mut g) = gpu(Precision::F32) {
        conformance::check_golden_resnet18(&mut g);
    }
}

#[test]
fn f32_resnet50_matches_pytorch() {
    if let Some(mut g) = gpu(Precision::F32) {
        conformance::check_golden_resnet50(&mut g);
    }
}

#[test]
fn f32_swav_network_matches_pytorch() {
    if let Some(mut g) = gpu(Precision::F32) {
        conformance::check_golden_swav(&mut g);
    }
}

#[test]
fn f32_operations_agree_with_the_cpu() {
    if let Some(mut g) = gpu(Precision::F32) {
        conformance::check_agreement(&mut CpuBackend::new(), &mut g, Agreement::F32);
    }
}

#[test]
fn bf16_operations_agree_with_the_cpu() {
    if let Some(mut g) = gpu(Precision::MixedBf16) {
        conformance::check_agreement(&mut CpuBackend::new(), &mut g, Agreement::BF16);
        eprintln!("{}", g.convolution_algorithms().join("\n"));
    }
}
