//! Every backend operation of `CpuBackend` against its definition and its finite-difference
//! gradient (the shared conformance checks of swav-nn), and the agreement check with itself.

use swav_cpu::CpuBackend;
use swav_nn::conformance;

#[test]
fn convolution() {
    conformance::check_conv2d(&mut CpuBackend::new());
}

#[test]
fn batch_norm() {
    conformance::check_batch_norm(&mut CpuBackend::new());
}

#[test]
fn relu_backward() {
    conformance::check_relu_backward(&mut CpuBackend::new());
}

#[test]
fn max_pool() {
    conformance::check_max_pool(&mut CpuBackend::new());
}

#[test]
fn avg_pool() {
    conformance::check_avg_pool(&mut CpuBackend::new());
}

#[test]
fn linear() {
    conformance::check_linear(&mut CpuBackend::new());
}

#[test]
fn l2_normalize() {
    conformance::check_l2_normalize(&mut CpuBackend::new());
}

/// The agreement check that holds reduced-precision backends to this one, run against itself:
/// identical results in f32, and within the bf16 tolerance when the reference multiplies
/// bf16-rounded weights.
#[test]
fn agreement_with_itself() {
    conformance::check_agreement(
        &mut CpuBackend::new(),
        &mut CpuBackend::new(),
        conformance::Agreement::F32,
    );
    conformance::check_agreement(
        &mut CpuBackend::new(),
        &mut CpuBackend::new(),
        conformance::Agreement::BF16,
    );
}
