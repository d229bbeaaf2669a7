//! `swav-cuda-kernels`: compiles every kernel module with NVRTC, ahead of time, into a
//! folder the backend loads on a GPU machine (`swav_cuda::kernel_dir`), and checks what it
//! wrote.
//!
//! ```text
//! swav-cuda-kernels --output DIR [--arch sm_90]
//! ```
//!
//! Needs NVRTC and the CUDA headers (`scripts/ci/install-nvrtc.sh`), no GPU. Prints one
//! line per module (kernels, CUBIN and PTX bytes); exits with status 1 on any failure, or if
//! the folder does not read back as a complete set of kernels for the architecture (every
//! CUBIN an ELF image of a plausible size, see `kernel_dir::read`).

use std::path::PathBuf;
use std::process::ExitCode;

use swav_cuda::{kernel_dir, nvrtc};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("swav-cuda-kernels: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut output = None;
    let mut arch = "sm_90".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--output" => output = Some(PathBuf::from(value(&mut args, "--output")?)),
            "--arch" => arch = value(&mut args, "--arch")?,
            other => {
                return Err(format!(
                    "unknown argument {other} (usage: swav-cuda-kernels --output DIR [--arch sm_90])"
                ));
            }
        }
    }
    let output = output.ok_or("--output DIR is required")?;
    let modules = nvrtc::compile_all(&arch).map_err(|e| e.to_string())?;
    kernel_dir::write(&output, &arch, &modules)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    let read = kernel_dir::read(&output, &arch)?;
    for module in &read {
        println!("{}", module.describe());
    }
    println!("{} modules for {arch} in {}", read.len(), output.display());
    Ok(())
}

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, String> {
    args.next().ok_or_else(|| format!("{flag} needs a value"))
}
