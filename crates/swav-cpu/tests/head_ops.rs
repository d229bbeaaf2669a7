//! `CpuBackend`'s `HeadOps` (its parallel versions included) against swav-core's `SliceOps`,
//! through the shared conformance check of swav-nn.

use swav_cpu::CpuBackend;

#[test]
fn head_ops_agree_with_slice_ops() {
    swav_nn::conformance::check_head_ops(&mut CpuBackend::new());
}
