//! Which CUDA libraries this process can load, checked without ever panicking.
//!
//! cudarc loads each library lazily with `dlopen` and **panics** when a library it needs is
//! missing. Every entry point of this crate therefore asks [`LibraryStatus`] (cudarc's
//! non-panicking `is_culib_present` probes) before the first call into a library, and turns
//! an absent library into a [`CudaError`](crate::CudaError).

use std::fmt;

use crate::CudaError;

/// Whether each CUDA library the backend uses can be loaded (`dlopen` succeeds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibraryStatus {
    /// `libcuda.so.1`, from the NVIDIA driver.
    pub driver: bool,
    /// `libnvrtc.so.13`, the run-time compiler of the kernels.
    pub nvrtc: bool,
    /// `libcublas.so.13`.
    pub cublas: bool,
    /// `libcublasLt.so.13` (loaded by cuBLAS itself).
    pub cublaslt: bool,
    /// `libcudnn.so.9`.
    pub cudnn: bool,
    /// `libnccl.so` (the pip wheel ships only `libnccl.so.2`; see `scripts/gpu-env.sh`).
    pub nccl: bool,
}

impl LibraryStatus {
    /// Probes every library (each probe opens and closes the library once).
    pub fn probe() -> Self {
        // SAFETY: the probes only try to dlopen the library and close it again.
        unsafe {
            Self {
                driver: cudarc::driver::sys::is_culib_present(),
                nvrtc: cudarc::nvrtc::sys::is_culib_present(),
                cublas: cudarc::cublas::sys::is_culib_present(),
                cublaslt: cudarc::cublaslt::sys::is_culib_present(),
                cudnn: cudarc::cudnn::sys::is_culib_present(),
                nccl: cudarc::nccl::sys::is_culib_present(),
            }
        }
    }

    /// True when everything a training step on one GPU needs is present (NCCL excluded).
    pub fn can_train(&self) -> bool {
        self.driver && self.nvrtc && self.cublas && self.cublaslt && self.cudnn
    }
}

impl fmt::Display for LibraryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "driver={} nvrtc={} cublas={} cublaslt={} cudnn={} nccl={}",
            self.driver, self.nvrtc, self.cublas, self.cublaslt, self.cudnn, self.nccl
        )
    }
}

/// Fails with [`CudaError::NoDriver`] unless the driver library loads.
pub(crate) fn require_driver() -> Result<(), CudaError> {
    // SAFETY: see `LibraryStatus::probe`.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::NoDriver)
    }
}

/// Fails with [`CudaError::MissingLibrary`] unless NVRTC loads.
pub(crate) fn require_nvrtc() -> Result<(), CudaError> {
    // SAFETY: see `LibraryStatus::probe`.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::MissingLibrary { library: "nvrtc" })
    }
}

/// Fails with [`CudaError::MissingLibrary`] unless cuBLAS and cuBLASLt load.
pub(crate) fn require_cublas() -> Result<(), CudaError> {
    // SAFETY: see `LibraryStatus::probe`.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Err(CudaError::MissingLibrary { library: "cublas" });
    }
    // SAFETY: as above.
    if !unsafe { cudarc::cublaslt::sys::is_culib_present() } {
        return Err(CudaError::MissingLibrary {
            library: "cublasLt",
        });
    }
    Ok(())
}

/// Fails with [`CudaError::MissingLibrary`] unless cuDNN loads.
pub(crate) fn require_cudnn() -> Result<(), CudaError> {
    // SAFETY: see `LibraryStatus::probe`.
    if unsafe { cudarc::cudnn::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::MissingLibrary { library: "cudnn" })
    }
}

/// Fails with [`CudaError::MissingLibrary`] unless NCCL loads.
pub(crate) fn require_nccl() -> Result<(), CudaError> {
    // SAFETY: see `LibraryStatus::probe`.
    if unsafe { cudarc::nccl::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::MissingLibrary { library: "nccl" })
    }
}

/// The file-name prefixes of the CUDA libraries this crate loads, or that they load.
const CUDA_LIBRARY_PREFIXES: [&str; 7] = [
    "libcuda.",
    "libnvrtc",
    "libcublas",
    "libcudnn",
    "libnccl",
    "libcudart",
    "libnvJitLink",
];

/// The CUDA library files this process has mapped (from `/proc/self/maps`), each once, in
/// the order they appear: which copy of each library was actually loaded, when several
/// folders on the search path hold one. Empty where `/proc` is unavailable.
pub fn loaded_library_files() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut files: Vec<String> = Vec::new();
    for path in maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
    {
        let name = path.rsplit('/').next().unwrap_or(path);
        if CUDA_LIBRARY_PREFIXES.iter().any(|p| name.starts_with(p))
            && !files.iter().any(|f| f == path)
        {
            files.push(path.to_string());
        }
    }
    files
}

/// The files of `files` whose resolved path lies under none of `roots` (themselves
/// resolved): a copy of a library loaded from somewhere the set-up did not intend, such as a
/// toolkit's `libcublas.so` beating the wheel's. A file or root that cannot be resolved is
/// compared as written.
pub fn files_outside(files: &[String], roots: &[std::path::PathBuf]) -> Vec<String> {
    let resolve =
        |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let roots: Vec<std::path::PathBuf> = roots.iter().map(|r| resolve(r)).collect();
    files
        .iter()
        .filter(|f| {
            let path = resolve(std::path::Path::new(f.as_str()));
            !roots.iter().any(|root| path.starts_with(root))
        })
        .cloned()
        .collect()
}

/// The versions of the libraries that are present (absent ones are `None`), for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryVersions {
    /// The driver's CUDA version, e.g. 13000 for 13.0.
    pub driver: Option<i32>,
    /// NVRTC's (major, minor).
    pub nvrtc: Option<(i32, i32)>,
    /// cuDNN's version number, e.g. 91000 for 9.10.0.
    pub cudnn: Option<usize>,
    /// NCCL's version code, e.g. 22703 for 2.27.3.
    pub nccl: Option<i32>,
}

impl LibraryVersions {
    /// Asks each present library for its version.
    pub fn query(status: &LibraryStatus) -> Self {
        let driver = status.driver.then(|| {
            let mut version = 0;
            // SAFETY: the library is present; the call writes one int.
            let ok = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) };
            (ok == cudarc::driver::sys::CUresult::CUDA_SUCCESS).then_some(version)
        });
        let nvrtc = status.nvrtc.then(|| {
            let (mut major, mut minor) = (0, 0);
            // SAFETY: the library is present; the call writes two ints.
            let ok = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
            (ok == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
        });
        Self {
            driver: driver.flatten(),
            nvrtc: nvrtc.flatten(),
            cudnn: status.cudnn.then(cudarc::cudnn::result::get_version),
            nccl: status
                .nccl
                .then(|| cudarc::nccl::result::get_nccl_version().ok())
                .flatten(),
        }
    }
}

impl fmt::Display for LibraryVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn show<T: fmt::Debug>(v: &Option<T>) -> String {
            v.as_ref()
                .map_or_else(|| "absent".to_string(), |v| format!("{v:?}"))
        }
        write!(
            f,
            "driver(cuda)={} nvrtc={} cudnn={} nccl={}",
            show(&self.driver),
            show(&self.nvrtc),
            show(&self.cudnn),
            show(&self.nccl)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_outside_the_intended_folders_are_named() {
        let dir = std::env::temp_dir().join(format!("swav-libs-{}", std::process::id()));
        let (wheels, toolkit) = (dir.join("wheels"), dir.join("toolkit"));
        std::fs::create_dir_all(&wheels).unwrap();
        std::fs::create_dir_all(&toolkit).unwrap();
        let wheel_lib = wheels.join("libcublas.so.13");
        let toolkit_lib = toolkit.join("libcublas.so");
        std::fs::write(&wheel_lib, b"").unwrap();
        std::fs::write(&toolkit_lib, b"").unwrap();
        let files = [
            wheel_lib.display().to_string(),
            toolkit_lib.display().to_string(),
        ];
        assert_eq!(
            files_outside(&files, std::slice::from_ref(&wheels)),
            [files[1].clone()]
        );
        assert!(files_outside(&files, &[wheels, toolkit]).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
