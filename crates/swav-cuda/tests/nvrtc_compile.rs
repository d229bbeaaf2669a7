//! CI's GPU-less checks: every kernel module compiles with NVRTC for sm_90 (H100/H200),
//! without a single warning, to PTX and to a CUBIN; and a folder of kernels compiled ahead of
//! time (what `swav-cuda-kernels` writes for the GPU machine) reads back complete, and is
//! refused, with a one-line reason, when it was made for another architecture, from other
//! sources, or lost a file.
//!
//! Runs wherever NVRTC and the CUDA headers are installed (`scripts/ci/install-nvrtc.sh`
//! installs both from NVIDIA's pip wheels); no GPU or driver is needed. Where NVRTC is absent
//! the tests print why they skipped; `SWAV_REQUIRE_NVRTC=1` turns that skip into a failure.

use std::path::PathBuf;
use std::sync::OnceLock;

use swav_cuda::kernel_dir::{self, MANIFEST, MIN_CUBIN_BYTES};
use swav_cuda::loaded_library_files;
use swav_cuda::nvrtc::{CompiledModule, KERNEL_MODULES, compile_all};

/// The modules compiled for sm_90 (once for both tests), or `None` (after saying why)
/// where NVRTC is absent.
fn compiled_for_sm_90() -> Option<&'static [CompiledModule]> {
    static MODULES: OnceLock<Option<Vec<CompiledModule>>> = OnceLock::new();
    MODULES.get_or_init(compile_or_skip).as_deref()
}

fn compile_or_skip() -> Option<Vec<CompiledModule>> {
    // SAFETY: only tries to dlopen libnvrtc and closes it again.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        let message = "skipped: libnvrtc.so.13 is not loadable \
                       (run scripts/ci/install-nvrtc.sh and export what it prints)";
        assert!(
            std::env::var("SWAV_REQUIRE_NVRTC").as_deref() != Ok("1"),
            "SWAV_REQUIRE_NVRTC=1 but {message}"
        );
        eprintln!("{message}");
        return None;
    }
    Some(compile_all("sm_90").unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn every_kernel_module_compiles_for_sm_90() {
    let start = std::time::Instant::now();
    let Some(modules) = compiled_for_sm_90() else {
        return;
    };
    assert_eq!(modules.len(), KERNEL_MODULES.len());
    for module in modules {
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
        assert!(
            module.ptx.contains(".target sm_90"),
            "{} was not compiled for sm_90",
            module.name
        );
        assert!(
            module.cubin.starts_with(b"\x7fELF") && module.cubin.len() >= MIN_CUBIN_BYTES,
            "{}: the CUBIN is not an ELF image of at least {MIN_CUBIN_BYTES} bytes ({} bytes)",
            module.name,
            module.cubin.len()
        );
        eprintln!("{}", module.describe());
    }
    eprintln!(
        "compiled {} modules for sm_90 in {:.2?}",
        modules.len(),
        start.elapsed()
    );
    let loaded = loaded_library_files();
    assert!(
        loaded.iter().any(|f| f.contains("libnvrtc")),
        "NVRTC compiled, yet /proc/self/maps names no libnvrtc: {loaded:?}"
    );
}

/// A fresh folder under the target directory's temporary space.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_kernel_folder_reads_back_and_is_refused_when_it_does_not_match() {
    let Some(modules) = compiled_for_sm_90() else {
        return;
    };
    let dir = scratch_dir("kernels-sm_90");
    kernel_dir::write(&dir, "sm_90", modules).unwrap();
    let read = kernel_dir::read(&dir, "sm_90").unwrap_or_else(|why| panic!("{why}"));
    assert_eq!(read.len(), modules.len());
    for (got, want) in read.iter().zip(modules) {
        assert_eq!(got.name, want.name);
        assert_eq!(got.kernels, want.kernels, "{}", got.name);
        assert!(
            got.cubin == want.cubin && got.ptx == want.ptx,
            "{}",
            got.name
        );
    }

    let refusals = [
        ("another architecture", {
            let d = scratch_dir("kernels-other-arch");
            kernel_dir::write(&d, "sm_80", modules).unwrap();
            d
        }),
        ("other sources", {
            let d = scratch_dir("kernels-other-sources");
            kernel_dir::write(&d, "sm_90", modules).unwrap();
            let manifest = std::fs::read_to_string(d.join(MANIFEST)).unwrap();
            let fingerprint = KERNEL_MODULES[0].fingerprint("sm_90");
            std::fs::write(
                d.join(MANIFEST),
                manifest.replace(&fingerprint, "0123456789abcdef"),
            )
            .unwrap();
            d
        }),
        ("a missing CUBIN", {
            let d = scratch_dir("kernels-missing-cubin");
            kernel_dir::write(&d, "sm_90", modules).unwrap();
            std::fs::remove_file(d.join(format!("{}.cubin", modules[0].name))).unwrap();
            d
        }),
        ("a CUBIN that is not an ELF image", {
            let d = scratch_dir("kernels-not-elf");
            kernel_dir::write(&d, "sm_90", modules).unwrap();
            let path = d.join(format!("{}.cubin", modules[2].name));
            std::fs::write(&path, vec![0u8; modules[2].cubin.len()]).unwrap();
            d
        }),
        ("a truncated CUBIN", {
            let d = scratch_dir("kernels-truncated-cubin");
            kernel_dir::write(&d, "sm_90", modules).unwrap();
            std::fs::write(d.join(format!("{}.cubin", modules[1].name)), b"\x7fELF").unwrap();
            d
        }),
    ];
    for (what, dir) in refusals {
        let why = kernel_dir::read(&dir, "sm_90")
            .map(|_| ())
            .expect_err(&format!("a folder with {what} was accepted"));
        assert!(!why.contains('\n'), "{what}: {why}");
        eprintln!("{what}: {why}");
    }
}
