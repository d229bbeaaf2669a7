//! What a machine without a GPU sees: clear errors, never a panic. These checks run where the
//! CUDA driver library is absent (CI, the build machines) and say so where it is present.

use swav_cuda::{CudaBackend, CudaError, LibraryStatus, LibraryVersions, NcclId, device_count};

fn driver_present() -> bool {
    let present = LibraryStatus::probe().driver;
    if present {
        eprintln!("skipped: this machine has a CUDA driver; the no-driver paths are not reachable");
    }
    present
}

#[test]
fn opening_a_backend_without_a_driver_is_a_clear_error() {
    if driver_present() {
        return;
    }
    let err = CudaBackend::new(0).expect_err("no driver, yet the backend opened");
    assert!(matches!(err, CudaError::NoDriver), "{err:?}");
    let line = err.to_string();
    assert!(!line.contains('\n'), "the error is one line: {line}");
    assert!(line.starts_with("no CUDA driver"), "{line}");
}

#[test]
fn counting_devices_without_a_driver_is_a_clear_error() {
    if driver_present() {
        return;
    }
    assert!(matches!(device_count(), Err(CudaError::NoDriver)));
}

#[test]
fn probing_libraries_never_panics() {
    let status = LibraryStatus::probe();
    let versions = LibraryVersions::query(&status);
    eprintln!("{status}\n{versions}");
    assert_eq!(status.driver, versions.driver.is_some());
    if !status.cudnn {
        assert_eq!(versions.cudnn, None);
    }
}

#[test]
fn nccl_without_the_library_is_a_clear_error() {
    if LibraryStatus::probe().nccl {
        eprintln!("skipped: NCCL is loadable here");
        return;
    }
    let err = NcclId::new().expect_err("NCCL is absent, yet an id was made");
    assert!(
        matches!(err, CudaError::MissingLibrary { library: "nccl" }),
        "{err:?}"
    );
}
