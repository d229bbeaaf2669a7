//! `swav-gpu-bench`: the SwAV ResNet-50 training step on one GPU, timed, with the device's
//! copy and bf16 matrix-product ceilings measured in the same run (PERFORMANCE.md §10).
//!
//! ```text
//! swav-gpu-bench [--batch 64] [--steps 20] [--warmup 3] [--prototypes 3000]
//!                [--large-crops 2] [--small-crops 6] [--json PATH]
//! ```
//!
//! Prints steps/s and SwAV samples/s (one sample = one image with all its crops) of the step
//! on synthetic inputs already on the GPU, the same with every batch uploaded through
//! `BatchUploader` (overlapped with the previous step), the split of one step's GPU time
//! into convolutions, batch norm / ReLU / pooling, head (+ Sinkhorn and loss), optimiser and
//! data, and the memory the step holds. `scripts/bench/gpu_swav_step.py` is the PyTorch
//! counterpart; `scripts/gpu-run.sh` runs both back to back.

mod resnet;
mod timeline;

use std::process::ExitCode;
use std::time::Instant;

use swav_core::{HeadOps, Lars};
use swav_cuda::{BatchUploader, CudaBackend, CudaError, DType};

use resnet::{GroupActs, Rng, SwavResNet50};
use timeline::{Category, Timeline};

struct Options {
    batch: usize,
    steps: usize,
    warmup: usize,
    prototypes: usize,
    large_crops: usize,
    small_crops: usize,
    json: Option<String>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        batch: 64,
        steps: 20,
        warmup: 3,
        prototypes: 3000,
        large_crops: 2,
        small_crops: 6,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--batch" => o.batch = number(value()?)?,
            "--steps" => o.steps = number(value()?)?,
            "--warmup" => o.warmup = number(value()?)?,
            "--prototypes" => o.prototypes = number(value()?)?,
            "--large-crops" => o.large_crops = number(value()?)?,
            "--small-crops" => o.small_crops = number(value()?)?,
            "--json" => o.json = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.large_crops < 2 || o.steps == 0 {
        return Err("need at least 2 large crops and 1 timed step".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("swav-gpu-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swav-gpu-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: &Options) -> Result<(), CudaError> {
    let mut b = CudaBackend::new(0)?;
    let info = b.device_info().clone();
    println!(
        "device: {} ({}, {} SMs)",
        info.name,
        info.arch(),
        info.multiprocessors
    );

    let copy_tbs = copy_ceiling(&mut b)?;
    let matmul_tflops = matmul_ceiling(&mut b)?;
    println!("ceiling: device-to-device copy {copy_tbs:.2} TB/s (read + write)");
    println!("ceiling: bf16 matrix product 8192^3 through cuBLAS {matmul_tflops:.0} TFLOP/s");

    let mut model = SwavResNet50::new(&mut b, o.prototypes)?;
    let params = model.parameter_count();
    let mut rng = Rng::new(7);
    let mut groups = vec![
        GroupActs::new(&mut b, &mut rng, o.large_crops * o.batch, 224)?,
        GroupActs::new(&mut b, &mut rng, o.small_crops * o.batch, 96)?,
    ];
    let crops = [o.large_crops, o.small_crops];
    let lars = Lars::<f32>::default();
    let mut timeline = Timeline::new(b.context(), b.stream());
    println!(
        "model: ResNet-50 + head 2048-2048-128 + {} prototypes, {:.1} M parameters; batch {} x ({}x224 + {}x96)",
        o.prototypes,
        params as f64 / 1e6,
        o.batch,
        o.large_crops,
        o.small_crops
    );

    let start = Instant::now();
    let mut first_loss = 0.0;
    for i in 0..o.warmup.max(1) {
        timeline.begin(false)?;
        let loss = model.step(&mut b, &mut groups, &crops, &lars, 0.3, &mut timeline)?;
        if i == 0 {
            first_loss = loss;
        }
    }
    b.synchronize()?;
    println!(
        "warm-up: {} steps in {:.1?} (algorithm search included)",
        o.warmup.max(1),
        start.elapsed()
    );

    // Steps on inputs already on the GPU (the PyTorch baseline's setting).
    b.reset_memory_peak()?;
    let start = Instant::now();
    let mut loss = 0.0;
    for _ in 0..o.steps {
        timeline.begin(false)?;
        loss = model.step(&mut b, &mut groups, &crops, &lars, 0.3, &mut timeline)?;
    }
    b.synchronize()?;
    let step_ms = start.elapsed().as_secs_f64() * 1e3 / o.steps as f64;
    let step_peak = b.memory_report()?.pool_peak_used_bytes;

    // Steps that upload every batch, overlapped with the previous step.
    let lens: Vec<usize> = groups.iter().map(GroupActs::input_len).collect();
    let mut uploader = BatchUploader::new(&b, &lens)?;
    let host: Vec<Vec<f32>> = lens.iter().map(|&n| rng.vec(n, 1.7)).collect();
    let host_slices: Vec<&[f32]> = host.iter().map(Vec::as_slice).collect();
    uploader.upload(&host_slices)?;
    let start = Instant::now();
    for _ in 0..o.steps {
        timeline.begin(false)?;
        {
            let mut inputs: Vec<_> = groups.iter_mut().map(|g| &mut g.input).collect();
            uploader.receive(&mut b, &mut inputs)?;
        }
        model.step(&mut b, &mut groups, &crops, &lars, 0.3, &mut timeline)?;
        uploader.upload(&host_slices)?;
    }
    b.synchronize()?;
    let upload_step_ms = start.elapsed().as_secs_f64() * 1e3 / o.steps as f64;

    // One step with events between the kinds of work.
    timeline.begin(true)?;
    {
        let mut inputs: Vec<_> = groups.iter_mut().map(|g| &mut g.input).collect();
        uploader.receive(&mut b, &mut inputs)?;
    }
    timeline.mark(Category::Data)?;
    model.step(&mut b, &mut groups, &crops, &lars, 0.3, &mut timeline)?;
    b.synchronize()?;
    let split = timeline.totals()?;
    let memory = b.memory_report()?;

    let samples = o.batch as f64 * 1e3;
    println!(
        "loss: first {first_loss:.4} (ln K = {:.4}), last {loss:.4}",
        (o.prototypes as f64).ln()
    );
    println!(
        "step (inputs on the GPU): {step_ms:.2} ms = {:.2} steps/s = {:.0} samples/s",
        1e3 / step_ms,
        samples / step_ms
    );
    println!(
        "step (uploading each batch): {upload_step_ms:.2} ms = {:.2} steps/s = {:.0} samples/s",
        1e3 / upload_step_ms,
        samples / upload_step_ms
    );
    let profiled: f64 = split.iter().sum();
    println!("split of one step with events ({profiled:.2} ms of GPU time):");
    for (category, ms) in Category::ALL.iter().zip(split) {
        println!(
            "  {:<20} {ms:8.2} ms {:5.1}%",
            category.name(),
            100.0 * ms / profiled
        );
    }
    println!(
        "memory: steady-state step peak {:.2} GiB in live buffers (workspaces included); pool holds {:.2} GiB, device used {:.2} GiB of {:.2} GiB, conv workspace {:.0} MiB",
        step_peak as f64 / GIB,
        memory.pool_reserved_bytes as f64 / GIB,
        (memory.total_bytes - memory.free_bytes) as f64 / GIB,
        memory.total_bytes as f64 / GIB,
        memory.conv_workspace_bytes as f64 / (1u64 << 20) as f64
    );
    if let Some(path) = &o.json {
        let mut fields = vec![
            format!("\"device\": {:?}", info.name),
            format!("\"batch\": {}", o.batch),
            format!("\"copy_tb_s\": {copy_tbs:.4}"),
            format!("\"bf16_matmul_tflops\": {matmul_tflops:.2}"),
            format!("\"step_ms\": {step_ms:.4}"),
            format!("\"steps_per_s\": {:.4}", 1e3 / step_ms),
            format!("\"samples_per_s\": {:.2}", samples / step_ms),
            format!("\"upload_step_ms\": {upload_step_ms:.4}"),
            format!("\"first_loss\": {first_loss:.6}"),
            format!("\"last_loss\": {loss:.6}"),
            format!(
                "\"pool_reserved_gib\": {:.4}",
                memory.pool_reserved_bytes as f64 / GIB
            ),
            format!("\"step_peak_gib\": {:.4}", step_peak as f64 / GIB),
        ];
        for (category, ms) in Category::ALL.iter().zip(split) {
            fields.push(format!("\"split_ms_{}\": {ms:.4}", category.name()));
        }
        let text = format!("{{\n  {}\n}}\n", fields.join(",\n  "));
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("swav-gpu-bench: cannot write {path}: {e}");
        }
    }
    Ok(())
}

const GIB: f64 = (1u64 << 30) as f64;

/// A large device-to-device copy: (bytes read + bytes written) / time, in TB/s.
fn copy_ceiling(b: &mut CudaBackend) -> Result<f64, CudaError> {
    let n = 1usize << 28; // 1 GiB of f32
    let src = b.zeros(n)?;
    let mut dst = b.zeros(n)?;
    b.copy(&src, 0, &mut dst, 0, n)?;
    b.synchronize()?;
    let reps = 20;
    let start = Instant::now();
    for _ in 0..reps {
        b.copy(&src, 0, &mut dst, 0, n)?;
    }
    b.synchronize()?;
    let seconds = start.elapsed().as_secs_f64() / reps as f64;
    Ok(2.0 * (n * 4) as f64 / seconds / 1e12)
}

/// An 8192³ bf16 product with f32 accumulation through the backend's linear layer (random
/// operands, as PERFORMANCE.md's measurement), in TFLOP/s.
fn matmul_ceiling(b: &mut CudaBackend) -> Result<f64, CudaError> {
    let n = 8192;
    let mut rng = Rng::new(3);
    let host = rng.vec(n * n, 1.0);
    let mut x = b.alloc(n * n, DType::Bf16)?;
    b.upload(&host, &mut x, 0)?;
    let mut w = b.zeros(n * n)?;
    b.upload(&host, &mut w, 0)?;
    let mut y = b.alloc(n * n, DType::Bf16)?;
    b.linear_forward(&x, &w, None, n, n, n, &mut y)?;
    b.synchronize()?;
    let reps = 10;
    let start = Instant::now();
    for _ in 0..reps {
        b.linear_forward(&x, &w, None, n, n, n, &mut y)?;
    }
    b.synchronize()?;
    let seconds = start.elapsed().as_secs_f64() / reps as f64;
    Ok(2.0 * (n as f64).powi(3) / seconds / 1e12)
}
