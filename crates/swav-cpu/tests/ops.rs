//! Every backend operation of `CpuBackend` against its definition and its finite-difference
//! gradient (the shared conformance checks of swav-nn).

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
