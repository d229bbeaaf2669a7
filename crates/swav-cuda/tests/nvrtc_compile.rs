//! CI's GPU-less check: every kernel module compiles with NVRTC for sm_90 (H100/H200),
//! without a single warning.
//!
//! Runs wherever NVRTC and the CUDA headers are installed (`scripts/ci/install-nvrtc.sh`
//! installs both from NVIDIA's pip wheels); no GPU or driver is needed. Where NVRTC is absent
//! the test prints why it skipped; `SWAV_REQUIRE_NVRTC=1` turns that skip into a failure.

use swav_cuda::nvrtc::{KERNEL_MODULES, compile_all};

#[test]
fn every_kernel_module_compiles_for_sm_90() {
    // SAFETY: only tries to dlopen libnvrtc and closes it again.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        let message = "skipped: libnvrtc.so.13 is not loadable \
                       (run scripts/ci/install-nvrtc.sh and export what it prints)";
        assert!(
            std::env::var("SWAV_REQUIRE_NVRTC").as_deref() != Ok("1"),
            "SWAV_REQUIRE_NVRTC=1 but {message}"
        );
        eprintln!("{message}");
        return;
    }
    let start = std::time::Instant::now();
    let modules = compile_all("sm_90").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(modules.len(), KERNEL_MODULES.len());
    for module in &modules {
        assert!(
            !module.kernels.is_empty(),
            "{} defines no kernel",
            module.name
        );
        assert!(
            module.log.trim().is_empty(),
            "NVRTC reported for {}:\n{}",
            module.name,
            module.log
        );
        let ptx = module.ptx.to_src();
        assert!(
            ptx.contains(".target sm_90"),
            "{} was not compiled for sm_90",
            module.name
        );
        eprintln!(
            "{:>14}: {:3} kernels, {:7} bytes of PTX",
            module.name,
            module.kernels.len(),
            ptx.len()
        );
    }
    eprintln!(
        "compiled {} modules for sm_90 in {:.2?}",
        modules.len(),
        start.elapsed()
    );
}
