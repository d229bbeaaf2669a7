//! Every op family of `CpuBackend` against its definition and its finite-difference
//! gradient (the shared conformance checks of swav-nn), and the agreement check with itself.

use swav_cpu::CpuBackend;
use swav_nn::conformance;

// One test per op family, named as in every backend's suite.
swav_nn::backend_conformance_tests!(Some(CpuBackend::new()));

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
