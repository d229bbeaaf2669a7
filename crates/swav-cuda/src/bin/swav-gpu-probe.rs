//! `swav-gpu-probe`: what this machine offers the CUDA backend, in `key: value` lines.
//!
//! Prints whether each CUDA library loads and its version, the NVRTC include folder, the
//! folder of compiled kernels the backend takes (or NVRTC), every device, then opens a
//! backend on GPU 0 and checks, one line each: kernel loading for the device's architecture,
//! that the memory pool keeps freed memory, a cuBLAS product, an NHWC bf16 convolution in
//! each direction through cuDNN. It then times ResNet-50's 3-channel stem against the same
//! convolution with its input padded to 8 channels (bf16, batch 64, 224 px: whether the stem
//! gets a tensor-core kernel; informational, it never fails the probe), and lists the library
//! files the process actually loaded (from `/proc/self/maps`), failing when one lies outside
//! the folders `SWAV_GPU_LIBRARY_ROOTS` names (set by `scripts/gpu-env.sh`). NCCL is left to
//! its own stage (`tests/gpu_nccl.rs`).
//! Exits with status 1 when something a training step needs is missing or failing.

use std::process::ExitCode;
use std::time::Instant;

use swav_cuda::{
    Conv2dShape, CudaBackend, CudaBuffer, CudaConfig, CudaError, LibraryStatus, LibraryVersions,
    device_count, files_outside, kernel_dir, loaded_library_files, nvrtc,
};
use swav_nn::LinearShape;
use swav_nn::prelude::*;

fn main() -> ExitCode {
    let status = LibraryStatus::probe();
    println!("libraries: {status}");
    println!("versions: {}", LibraryVersions::query(&status));
    match nvrtc::cuda_include_dir() {
        Ok(dir) => println!("nvrtc include: {dir}"),
        Err(e) => println!("nvrtc include: MISSING ({e})"),
    }
    match kernel_dir::locate() {
        Some(dir) => match kernel_dir::read(&dir, "sm_90") {
            Ok(modules) => println!(
                "kernels: {} precompiled sm_90 modules in {}",
                modules.len(),
                dir.display()
            ),
            Err(why) => println!("kernels: {} not usable for sm_90 ({why})", dir.display()),
        },
        None => println!("kernels: no precompiled folder; NVRTC compiles them at start"),
    }
    let count = match device_count() {
        Ok(n) => n,
        Err(e) => {
            println!("devices: none ({e})");
            return ExitCode::FAILURE;
        }
    };
    println!("devices: {count}");
    if count == 0 {
        return ExitCode::FAILURE;
    }
    let mut ok = true;
    let mut check = |what: &str, result: Result<Finding, CudaError>| match result {
        Ok(Finding::Right(detail)) => println!("{what}: ok {detail}"),
        Ok(Finding::Wrong(detail)) => {
            ok = false;
            println!("{what}: WRONG {detail}");
        }
        Err(e) => {
            ok = false;
            println!("{what}: FAILED {e}");
        }
    };

    let start = Instant::now();
    let config = match CudaConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            println!("configuration: FAILED {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "configuration: {:?}, convolutions {:?}",
        config.precision, config.convolution
    );
    let backend = CudaBackend::with_config(0, config);
    let mut backend = match backend {
        Ok(b) => b,
        Err(e) => {
            println!("backend: FAILED {e}");
            return ExitCode::FAILURE;
        }
    };
    let info = backend.device_info().clone();
    println!(
        "device 0: {} (sm_{}{}, {} SMs, {:.1} GiB)",
        info.name,
        info.compute_capability.0,
        info.compute_capability.1,
        info.multiprocessors,
        info.total_memory as f64 / (1u64 << 30) as f64
    );
    println!(
        "backend: ok (kernels compiled for {} and loaded in {:.2?})",
        info.arch(),
        start.elapsed()
    );

    check("memory pool keeps freed memory", pool_check(&mut backend));
    check("cublas bf16 product", product_check(&mut backend));
    check("cudnn nhwc bf16 convolutions", conv_check(&mut backend));
    // Informational: whether padding the stem pays, and which algorithms it gets. A stem
    // without a deterministic algorithm trains on a non-deterministic one (with a note), so
    // a failure here does not fail the probe.
    match stem_check(&mut backend) {
        Ok(Finding::Right(detail) | Finding::Wrong(detail)) => {
            println!("stem 3 vs 8 channels (bf16, 64x224x224), informational: {detail}")
        }
        Err(e) => {
            println!("stem 3 vs 8 channels (bf16, 64x224x224), informational: not measured ({e})")
        }
    }
    match backend.memory_report() {
        Ok(m) => println!(
            "memory: free {:.1} GiB of {:.1} GiB, pool holds {:.1} MiB, conv workspace {:.1} MiB",
            m.free_bytes as f64 / (1u64 << 30) as f64,
            m.total_bytes as f64 / (1u64 << 30) as f64,
            m.pool_reserved_bytes as f64 / (1u64 << 20) as f64,
            m.conv_workspace_bytes as f64 / (1u64 << 20) as f64
        ),
        Err(e) => println!("memory: FAILED {e}"),
    }
    let loaded = loaded_library_files();
    for file in &loaded {
        println!("loaded: {file}");
    }
    // scripts/gpu-env.sh names the folders the libraries must come from: the wheels' and
    // the driver's.
    if let Ok(roots) = std::env::var("SWAV_GPU_LIBRARY_ROOTS") {
        let roots: Vec<std::path::PathBuf> = std::env::split_paths(&roots).collect();
        let outside = files_outside(&loaded, &roots);
        if outside.is_empty() {
            println!("library origins: ok (every CUDA library from SWAV_GPU_LIBRARY_ROOTS)");
        } else {
            ok = false;
            println!(
                "library origins: WRONG {} loaded from outside SWAV_GPU_LIBRARY_ROOTS: {}",
                outside.len(),
                outside.join(", ")
            );
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The outcome of a check that ran.
enum Finding {
    Right(String),
    Wrong(String),
}

fn pool_check(b: &mut CudaBackend) -> Result<Finding, CudaError> {
    let bytes = 1usize << 30;
    let buffer = b.zeros(bytes / 4)?;
    drop(buffer);
    b.synchronize()?;
    let held = b.memory_report()?.pool_reserved_bytes;
    let detail = format!("({} MiB held after a 1 GiB free and a sync)", held >> 20);
    Ok(if held as usize >= bytes {
        Finding::Right(detail)
    } else {
        Finding::Wrong(detail)
    })
}

fn product_check(b: &mut CudaBackend) -> Result<Finding, CudaError> {
    let (rows, features) = (256, 512);
    let mut x = b.alloc_activation(rows * features)?;
    b.fill(&mut x, 0.5)?;
    let mut w = b.zeros(features * features)?;
    b.fill(&mut w, 0.25)?;
    let mut y = b.zeros(rows * features)?;
    let shape = LinearShape {
        rows,
        in_features: features,
        out_features: features,
    };
    b.linear_forward(&x, &w, None, &shape, &mut y)?;
    let mut out = [0.0f32];
    b.download(&y, 0, &mut out)?;
    let want = 0.5 * 0.25 * features as f32;
    let detail = format!("({} for {want})", out[0]);
    Ok(if out[0] == want {
        Finding::Right(detail)
    } else {
        Finding::Wrong(detail)
    })
}

fn conv_check(b: &mut CudaBackend) -> Result<Finding, CudaError> {
    let shape = Conv2dShape {
        batch: 8,
        in_height: 28,
        in_width: 28,
        in_channels: 64,
        out_channels: 64,
        kernel: 3,
        stride: 1,
        padding: 1,
    };
    let (x, w, mut y) = constant_operands(b, &shape, 1.0, 0.125)?;
    b.conv2d_forward(&x, &w, &shape, &mut y, None)?;
    let mut dx = b.alloc_activation(shape.input_len())?;
    b.conv2d_backward_data(&y, &w, &shape, &mut dx, false)?;
    let mut dw = b.zeros(shape.weight_len())?;
    b.conv2d_backward_filter(&y, &x, &shape, &mut dw)?;
    // The centre output sees all 3x3x64 inputs: 576 · 0.125 = 72.
    let centre = ((shape.out_height() / 2) * shape.out_width() + shape.out_width() / 2) * 64;
    let mut out = [0.0f32];
    b.download(&y, centre, &mut out)?;
    let detail = format!(
        "(y centre {} for 72; algorithms: {})",
        out[0],
        b.convolution_algorithms().join("; ")
    );
    Ok(if out[0] == 72.0 {
        Finding::Right(detail)
    } else {
        Finding::Wrong(detail)
    })
}

/// An input filled with `x`, a weight filled with `w` and an output buffer for `shape`.
fn constant_operands(
    b: &mut CudaBackend,
    shape: &Conv2dShape,
    x: f32,
    w: f32,
) -> Result<(CudaBuffer, CudaBuffer, CudaBuffer), CudaError> {
    let mut input = b.alloc_activation(shape.input_len())?;
    b.fill(&mut input, x)?;
    let mut weight = b.zeros(shape.weight_len())?;
    b.fill(&mut weight, w)?;
    Ok((input, weight, b.alloc_activation(shape.output_len())?))
}

/// Times ResNet-50's stem (7×7, stride 2, 3 → 64 channels) at batch 64 and 224 px in the
/// backend's precision, once as is and once with the input and weight padded with zero
/// channels to 8 (the same result), and reports both with the algorithms cuDNN chose.
/// Without a tensor-core kernel the 3-channel stem is about as slow as its padded twin or
/// slower, although that one reads and multiplies 8/3 as much.
fn stem_check(b: &mut CudaBackend) -> Result<Finding, CudaError> {
    const REPEATS: u32 = 10;
    let mut times = Vec::new();
    for channels in [3, 8] {
        let shape = Conv2dShape {
            batch: 64,
            in_height: 224,
            in_width: 224,
            in_channels: channels,
            out_channels: 64,
            kernel: 7,
            stride: 2,
            padding: 3,
        };
        let (x, w, mut y) = constant_operands(b, &shape, 0.5, 0.01)?;
        let mut dw = b.zeros(shape.weight_len())?;
        // The first calls choose the algorithms.
        b.conv2d_forward(&x, &w, &shape, &mut y, None)?;
        b.conv2d_backward_filter(&y, &x, &shape, &mut dw)?;
        b.synchronize()?;
        let start = Instant::now();
        for _ in 0..REPEATS {
            b.conv2d_forward(&x, &w, &shape, &mut y, None)?;
        }
        b.synchronize()?;
        let forward = start.elapsed() / REPEATS;
        let start = Instant::now();
        for _ in 0..REPEATS {
            b.conv2d_backward_filter(&y, &x, &shape, &mut dw)?;
        }
        b.synchronize()?;
        times.push((channels, forward, start.elapsed() / REPEATS));
    }
    let stem: Vec<String> = b
        .convolution_algorithms()
        .into_iter()
        .filter(|line| line.contains("224x224"))
        .collect();
    Ok(Finding::Right(format!(
        "({}; algorithms: {})",
        times
            .iter()
            .map(|(c, f, w)| format!("{c} channels: forward {f:.2?}, weight gradient {w:.2?}"))
            .collect::<Vec<_>>()
            .join("; "),
        stem.join("; ")
    )))
}
