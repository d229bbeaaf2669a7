//! A folder of compiled kernels, made where NVRTC runs and carried to a GPU machine, so the
//! GPU machine needs neither NVRTC nor the CUDA headers, and its driver never compiles PTX.
//!
//! The folder holds, per module of [`KERNEL_MODULES`], `<module>.cubin` and `<module>.ptx`,
//! and a `manifest.txt`:
//!
//! ```text
//! swav-cuda kernels 1
//! arch sm_90
//! module elementwise 5d7c…(fingerprint) 61480 211022 fill_f32 convert_f32_bf16 …
//! ```
//!
//! one `module` line each: name, [`KernelModule::fingerprint`], CUBIN bytes, PTX bytes, the
//! kernels. [`read()`] accepts a folder only if it was made for the asked architecture from
//! exactly the sources embedded in this binary; otherwise it says why in one line, and the
//! backend compiles with NVRTC instead.
//!
//! `swav-cuda-kernels --output DIR` writes one ([`write()`]); the backend looks for it in
//! `SWAV_CUDA_KERNELS`, else in `kernels/` next to the folder of the running executable
//! (`gpu-carry/kernels` for the programs under `gpu-carry/bin` and `gpu-carry/tests`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::nvrtc::{CompiledModule, KERNEL_MODULES, KernelModule};

/// The environment variable naming the folder of compiled kernels.
pub const KERNELS_ENV: &str = "SWAV_CUDA_KERNELS";
/// The first line of a manifest.
const HEADER: &str = "swav-cuda kernels 1";
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.txt";
/// How every CUBIN starts.
const ELF_MAGIC: &[u8] = b"\x7fELF";
/// The smallest plausible CUBIN: ELF headers and sections alone exceed it.
pub const MIN_CUBIN_BYTES: usize = 1024;

/// Writes `modules`, compiled for `arch`, into `dir` (created if missing).
pub fn write(dir: &Path, arch: &str, modules: &[CompiledModule]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = format!("{HEADER}\narch {arch}\n");
    for module in modules {
        let source = source_of(module.name).expect("a compiled module is one of KERNEL_MODULES");
        std::fs::write(dir.join(format!("{}.cubin", module.name)), &module.cubin)?;
        std::fs::write(dir.join(format!("{}.ptx", module.name)), &module.ptx)?;
        writeln!(
            manifest,
            "module {} {} {} {} {}",
            module.name,
            source.fingerprint(arch),
            module.cubin.len(),
            module.ptx.len(),
            module.kernels.join(" ")
        )
        .expect("writing to a String");
    }
    std::fs::write(dir.join(MANIFEST), manifest)
}

/// Every module of `dir`, if it holds all of [`KERNEL_MODULES`] compiled for `arch` from
/// this binary's sources; else why not, in one line.
pub fn read(dir: &Path, arch: &str) -> Result<Vec<CompiledModule>, String> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("{} does not start with `{HEADER}`", path.display()));
    }
    let made_for = lines
        .next()
        .and_then(|l| l.strip_prefix("arch "))
        .unwrap_or("?");
    if made_for != arch {
        return Err(format!(
            "{} holds kernels for {made_for}, this device is {arch}",
            dir.display()
        ));
    }
    let mut modules = Vec::with_capacity(KERNEL_MODULES.len());
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [tag, name, fingerprint, cubin_len, ptx_len, kernels @ ..] = fields.as_slice() else {
            return Err(format!("{}: malformed line `{line}`", path.display()));
        };
        if *tag != "module" {
            return Err(format!("{}: malformed line `{line}`", path.display()));
        }
        let Some(source) = source_of(name) else {
            return Err(format!("{}: unknown module {name}", path.display()));
        };
        if *fingerprint != source.fingerprint(arch) {
            return Err(format!(
                "{}: module {name} was compiled from other sources than this binary's",
                path.display()
            ));
        }
        let cubin = read_sized(&dir.join(format!("{name}.cubin")), cubin_len)?;
        if !cubin.starts_with(ELF_MAGIC) || cubin.len() < MIN_CUBIN_BYTES {
            return Err(format!(
                "{name}.cubin is not an ELF image of at least {MIN_CUBIN_BYTES} bytes"
            ));
        }
        let ptx = read_sized(&dir.join(format!("{name}.ptx")), ptx_len)?;
        let ptx = String::from_utf8(ptx).map_err(|_| format!("{name}.ptx is not text"))?;
        modules.push(CompiledModule {
            name: source.name,
            cubin,
            ptx,
            kernels: kernels.iter().map(|k| k.to_string()).collect(),
            log: String::new(),
        });
    }
    if let Some(missing) = KERNEL_MODULES
        .iter()
        .find(|m| !modules.iter().any(|c| c.name == m.name))
    {
        return Err(format!("{} lacks module {}", path.display(), missing.name));
    }
    Ok(modules)
}

/// The folder the backend takes compiled kernels from: `SWAV_CUDA_KERNELS` if set, else
/// `../kernels` from the running executable's folder if that exists, else none.
pub fn locate() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(KERNELS_ENV) {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent()?.parent()?.join("kernels");
    beside.join(MANIFEST).is_file().then_some(beside)
}

fn source_of(name: &str) -> Option<&'static KernelModule> {
    KERNEL_MODULES.iter().find(|m| m.name == name)
}

/// The file at `path`, which the manifest says has `expected` bytes.
fn read_sized(path: &Path, expected: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if expected.parse::<usize>().ok() != Some(bytes.len()) || bytes.is_empty() {
        return Err(format!(
            "{} has {} bytes, the manifest says {expected}",
            path.display(),
            bytes.len()
        ));
    }
    Ok(bytes)
}
