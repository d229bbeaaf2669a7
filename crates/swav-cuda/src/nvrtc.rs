//! The kernel sources and their run-time compilation with NVRTC.
//!
//! Kernels are CUDA C++ files under `kernels/`, embedded in the binary. Each module is the
//! shared `prelude.cuh` followed by its `.cu` file, compiled for the device's exact
//! architecture (`sm_90` on H100/H200) to both a CUBIN (machine code for that architecture)
//! and PTX (the fallback the driver compiles itself), once per process and architecture; the
//! modules compile in parallel. NVRTC needs no GPU, which is what lets CI compile every kernel
//! for `sm_90` on a machine without one (`tests/nvrtc_compile.rs`), and lets the build machine
//! ship the compiled kernels to a GPU machine (`kernel_dir.rs`).
//!
//! The CUBIN is what the backend loads: PTX from an NVRTC newer than the driver is refused
//! (`CUDA_ERROR_UNSUPPORTED_PTX_VERSION`), while a CUBIN needs no compilation by the driver.
//!
//! The kernels include `<cuda_bf16.h>`, which NVRTC does not carry: the folder holding it is
//! taken from `SWAV_CUDA_INCLUDE` (the `nvidia/cu13/include` folder of the
//! `nvidia-cuda-runtime` pip wheel, set by `scripts/gpu-env.sh`), else from the toolkit under
//! `CUDA_HOME`, `CUDA_PATH` or `/usr/local/cuda`.
//!
//! Numerics: no module uses `--use_fast_math`. Every kernel here is memory-bound, so the
//! approximate division, square root and exponential it enables buy no time, while they would
//! move results away from the CPU reference. The modules whose results are meant to match
//! `swav_core::SliceOps` operation for operation are compiled with `--fmad=false` so that no
//! multiply-add is contracted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use std::ffi::{CString, c_char};

use cudarc::nvrtc::result::{self, NvrtcError};

use crate::CudaError;
use crate::libraries::require_nvrtc;

/// The header every module starts with.
const PRELUDE: &str = include_str!("../kernels/prelude.cuh");

/// One kernel module: a `.cu` file under `kernels/`.
#[derive(Debug, Clone, Copy)]
pub struct KernelModule {
    /// The file's stem, e.g. `"batch_norm"`.
    pub name: &'static str,
    /// The file's contents.
    pub source: &'static str,
    /// Compiled with `--fmad=false` (results meant to match the host reference exactly).
    pub exact: bool,
}

/// The module of `kernels/<name>.cu`; `exact` as in [`KernelModule::exact`].
macro_rules! kernel_module {
    ($name:literal, exact: $exact:expr) => {
        KernelModule {
            name: $name,
            source: include_str!(concat!("../kernels/", $name, ".cu")),
            exact: $exact,
        }
    };
}

/// Every kernel module of the crate, each named after the Rust module that launches it.
pub const KERNEL_MODULES: &[KernelModule] = &[
    kernel_module!("elementwise", exact: true),
    kernel_module!("reduction", exact: true),
    kernel_module!("head", exact: true),
    kernel_module!("lars", exact: true),
    kernel_module!("batch_norm", exact: false),
    kernel_module!("pool", exact: false),
    kernel_module!("l2_normalize", exact: false),
    kernel_module!("linear", exact: false),
];

/// One module compiled to CUBIN and PTX, with the names of the kernels it defines.
#[derive(Debug, Clone)]
pub struct CompiledModule {
    /// The module's name (see [`KernelModule::name`]).
    pub name: &'static str,
    /// The machine code NVRTC produced for the architecture (an ELF image).
    pub cubin: Vec<u8>,
    /// The PTX NVRTC produced.
    pub ptx: String,
    /// The `extern "C"` kernels (`.entry` directives) of the PTX.
    pub kernels: Vec<String>,
    /// NVRTC's log (warnings; empty for a clean compile).
    pub log: String,
}

impl CompiledModule {
    /// One line for reports: the module, its kernels, and the sizes of its CUBIN and PTX.
    pub fn describe(&self) -> String {
        format!(
            "{:>14}: {:3} kernels, CUBIN {:7} bytes, PTX {:7} bytes",
            self.name,
            self.kernels.len(),
            self.cubin.len(),
            self.ptx.len()
        )
    }
}

/// The environment variable naming the folder(s) that hold `cuda_bf16.h` (`:`-separated).
pub const INCLUDE_ENV: &str = "SWAV_CUDA_INCLUDE";

/// The include folder NVRTC gets: the first candidate holding `cuda_bf16.h`.
pub fn cuda_include_dir() -> Result<String, CudaError> {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(list) = std::env::var(INCLUDE_ENV) {
        candidates.extend(list.split(':').filter(|s| !s.is_empty()).map(String::from));
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(root) = std::env::var(var) {
            candidates.push(format!("{root}/include"));
        }
    }
    candidates.push("/usr/local/cuda/include".to_string());
    candidates
        .iter()
        .find(|dir| Path::new(dir).join("cuda_bf16.h").is_file())
        .cloned()
        .ok_or_else(|| CudaError::MissingCudaHeaders {
            searched: candidates.join(", "),
        })
}

/// Compiles every module for `arch` (e.g. `"sm_90"`), in parallel. Needs NVRTC and the CUDA
/// headers, not a GPU.
pub fn compile_all(arch: &str) -> Result<Vec<CompiledModule>, CudaError> {
    require_nvrtc()?;
    let include = cuda_include_dir()?;
    std::thread::scope(|scope| {
        let jobs: Vec<_> = KERNEL_MODULES
            .iter()
            .map(|module| {
                let include = include.clone();
                scope.spawn(move || compile_module(module, arch, &include))
            })
            .collect();
        jobs.into_iter()
            .map(|job| job.join().expect("an NVRTC compile thread panicked"))
            .collect()
    })
}

/// [`compile_all`], done once per process and architecture.
pub(crate) fn compile_all_cached(arch: &str) -> Result<Arc<Vec<CompiledModule>>, CudaError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<CompiledModule>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    // Holding the lock while compiling makes concurrent first users wait for one compile.
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(modules) = cache.get(arch) {
        return Ok(modules.clone());
    }
    let modules = Arc::new(compile_all(arch)?);
    cache.insert(arch.to_string(), modules.clone());
    Ok(modules)
}

impl KernelModule {
    /// The text NVRTC compiles: the prelude, then the module's file.
    fn program_text(&self) -> String {
        format!("{PRELUDE}\n// ---- {}.cu ----\n{}", self.name, self.source)
    }

    /// NVRTC's options for `arch`, without the include folder (which only says where the
    /// CUDA headers are).
    fn options(&self, arch: &str) -> Vec<String> {
        let mut options = vec![
            format!("--gpu-architecture={arch}"),
            "--std=c++17".to_string(),
            "--generate-line-info".to_string(),
        ];
        if self.exact {
            options.push("--fmad=false".to_string());
        }
        options
    }

    /// A 64-bit FNV-1a digest of the program text and the options for `arch`, as 16 hex
    /// digits: compiled kernels carried from another machine are used only if it matches.
    pub fn fingerprint(&self, arch: &str) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let text = self.program_text();
        let options = self.options(arch).join(" ");
        for byte in text.bytes().chain([0]).chain(options.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

fn compile_module(
    module: &KernelModule,
    arch: &str,
    include: &str,
) -> Result<CompiledModule, CudaError> {
    let failed = |what: &str, e: NvrtcError| CudaError::Compile {
        module: module.name,
        message: format!("{what}: {e:?}"),
    };
    let source = CString::new(module.program_text()).expect("kernel sources contain no NUL byte");
    let name = CString::new(format!("{}.cu", module.name)).expect("module names contain no NUL");
    let mut options = module.options(arch);
    options.push(format!("--include-path={include}"));
    let program =
        Program(result::create_program(&source, Some(&name)).map_err(|e| failed("create", e))?);
    // SAFETY: the program is live until `program` drops; source and name outlive it.
    let compiled = unsafe { result::compile_program(program.0, &options) };
    // SAFETY: as above.
    let log = unsafe { result::get_program_log(program.0) }
        .map(|raw| text(&raw))
        .map_err(|e| failed("log", e))?;
    if let Err(e) = compiled {
        return Err(CudaError::Compile {
            module: module.name,
            message: format!("{e:?}\n{log}"),
        });
    }
    // SAFETY: as above; the program compiled.
    let ptx = text(&unsafe { result::get_ptx(program.0) }.map_err(|e| failed("PTX", e))?);
    // SAFETY: as above.
    let cubin = unsafe { cubin(program.0) }.map_err(|e| failed("CUBIN", e))?;
    let kernels = entry_names(&ptx);
    Ok(CompiledModule {
        name: module.name,
        cubin,
        ptx,
        kernels,
        log,
    })
}

/// The CUBIN of a compiled program (NVRTC makes one when the architecture is a real `sm_XX`).
///
/// # Safety
/// `program` is a live program that compiled.
unsafe fn cubin(program: cudarc::nvrtc::sys::nvrtcProgram) -> Result<Vec<u8>, NvrtcError> {
    use cudarc::nvrtc::sys::{nvrtcGetCUBIN, nvrtcGetCUBINSize};
    let mut size = 0usize;
    // SAFETY: the caller's promise; the call writes one size.
    unsafe { nvrtcGetCUBINSize(program, &mut size) }.result()?;
    let mut image = vec![0u8; size];
    // SAFETY: `image` holds the `size` bytes NVRTC writes.
    unsafe { nvrtcGetCUBIN(program, image.as_mut_ptr().cast()) }.result()?;
    Ok(image)
}

/// An NVRTC program, destroyed on drop.
struct Program(cudarc::nvrtc::sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: created by `create_program`, destroyed once; a failure leaks at worst.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// A NUL-terminated C character buffer as text.
fn text(raw: &[c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The kernel names of a PTX text: the identifiers after `.entry`.
fn entry_names(ptx: &str) -> Vec<String> {
    ptx.lines()
        .filter_map(|line| {
            let rest = line.split(".entry").nth(1)?;
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_read_from_ptx() {
        let ptx = ".visible .entry fill_f32(\n\t.param .u64 fill_f32_param_0\n)\n\
                   .visible .entry convert_f32_bf16(\n";
        assert_eq!(entry_names(ptx), vec!["fill_f32", "convert_f32_bf16"]);
    }

    #[test]
    fn every_module_is_listed_once() {
        let mut names: Vec<_> = KERNEL_MODULES.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KERNEL_MODULES.len());
    }
}
