//! `swav bench --device cuda`: the training step of `swav pretrain --device cuda` on one
//! GPU, measured the way docs/performance.md ("Measuring on a GPU") asks, in one run:
//!
//! * the device's ceilings: copy rate and bf16 matrix-product rate ([`GpuCeilings`]),
//!   measured after the steps (the GPU warm, the step's memory figures taken);
//! * steps/s and samples/s (a sample is one image with all its crops) with the synthetic
//!   batch already on the GPU, the setting of the PyTorch baseline
//!   (`scripts/bench/gpu_swav_step.py`): `steps` steps after warm-up, timed from the host
//!   with the device synchronised before reading the clock;
//! * the same with every batch staged through pinned memory and the copy stream
//!   (`ActivationOps::stage_inputs`), overlapped with the previous step, as `swav pretrain` does;
//! * the peak of live device memory during the steady steps;
//! * where one step's GPU time goes, per category and per operation, from the backend's
//!   profiling mode (events around every operation).
//!
//! A readable report goes to stderr and one JSON line to stdout, for scripts that compare
//! with the PyTorch baseline.

use std::time::Instant;

use anyhow::{Result, anyhow};
use swav_cuda::{CudaError, OpCategory, ProfileReport};
use swav_nn::prelude::*;

use super::gpu_ceilings::GpuCeilings;
use super::step::{BenchStep, WARMUP_STEPS};
use crate::config::PretrainConfig;
use crate::device::open_cuda;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;
/// Operations listed in the report, the most expensive first.
const TOP_OPS: usize = 12;

/// Runs the CUDA benchmark of `config`'s step with `steps` timed steps per setting.
pub fn run(config: &PretrainConfig, steps: usize) -> Result<()> {
    let steps = steps.max(1);
    let mut b = open_cuda(0)?;
    let dev = |e: CudaError| anyhow!("device error: {e}");
    let info = b.device_info().clone();
    eprintln!(
        "device: {} ({}, {} SMs, {:.0} GiB)",
        info.name,
        info.arch(),
        info.multiprocessors,
        info.total_memory as f64 / GIB
    );

    let mut bench = BenchStep::new(&mut b, config)?;
    let crops = bench.crop_labels();
    eprintln!(
        "model: {} + head {}-{}-{} + {} prototypes, {:.1} M parameters; batch {} x ({}), bf16 mixed precision",
        config.arch.name(),
        config.hidden_mlp,
        config.hidden_mlp,
        config.feat_dim,
        config.nmb_prototypes,
        bench.param_count() as f64 / 1e6,
        config.batch_size,
        crops.join(" + ")
    );

    let start = Instant::now();
    let first_loss = bench.run(&mut b, 0)?;
    for _ in 1..WARMUP_STEPS {
        bench.run(&mut b, 0)?;
    }
    b.synchronize().map_err(dev)?;
    eprintln!(
        "warm-up: {} steps in {:.1} s (convolution algorithm search included)",
        WARMUP_STEPS,
        start.elapsed().as_secs_f64()
    );

    // Inputs already on the GPU.
    b.reset_memory_peak().map_err(dev)?;
    let start = Instant::now();
    let mut last_loss = first_loss;
    for _ in 0..steps {
        last_loss = bench.run(&mut b, 0)?;
    }
    b.synchronize().map_err(dev)?;
    let resident_s = start.elapsed().as_secs_f64() / steps as f64;
    let step_peak = b.memory_report().map_err(dev)?.pool_peak_used_bytes;

    // Every batch staged while the previous step computes: await batch i, stage batch
    // i + 1 into the other input set, run step i.
    bench.stage(&mut b, 0)?;
    let start = Instant::now();
    for i in 0..steps {
        b.await_staged_inputs().map_err(dev)?;
        bench.stage(&mut b, (i + 1) % 2)?;
        bench.run(&mut b, i % 2)?;
    }
    b.synchronize().map_err(dev)?;
    let staged_s = start.elapsed().as_secs_f64() / steps as f64;

    // One more staged step, profiled.
    b.start_profiling();
    let start = Instant::now();
    b.await_staged_inputs().map_err(dev)?;
    bench.stage(&mut b, (steps + 1) % 2)?;
    bench.run(&mut b, steps % 2)?;
    let profile = b.finish_profiling().map_err(dev)?;
    let profiled_s = start.elapsed().as_secs_f64();
    b.await_staged_inputs().map_err(dev)?;
    b.synchronize().map_err(dev)?;
    let memory = b.memory_report().map_err(dev)?;
    // Last, so that their buffers are not counted in the step's memory.
    drop(bench);
    let ceilings = GpuCeilings::measure(&mut b).map_err(dev)?;

    eprintln!(
        "ceilings: device-to-device copy {:.2} TB/s (read + write); bf16 product 8192^3 {:.0} TFLOP/s",
        ceilings.copy_tb_s, ceilings.bf16_matmul_tflops
    );
    let batch = config.batch_size as f64;
    let ln_k = (config.nmb_prototypes as f64).ln();
    eprintln!("loss: first {first_loss:.4} (ln K = {ln_k:.4}), last {last_loss:.4}");
    eprintln!(
        "step (inputs on the GPU): {:.2} ms = {:.2} steps/s = {:.0} samples/s",
        resident_s * 1e3,
        1.0 / resident_s,
        batch / resident_s
    );
    eprintln!(
        "step (each batch staged during the previous step): {:.2} ms = {:.2} steps/s = {:.0} samples/s",
        staged_s * 1e3,
        1.0 / staged_s,
        batch / staged_s
    );
    print_profile(&profile, profiled_s);
    eprintln!(
        "memory: steady step peak {:.2} GiB in live buffers (workspaces included); pool holds {:.2} GiB; device used {:.2} of {:.2} GiB; convolution workspace {:.0} MiB",
        step_peak as f64 / GIB,
        memory.pool_reserved_bytes as f64 / GIB,
        (memory.total_bytes - memory.free_bytes) as f64 / GIB,
        memory.total_bytes as f64 / GIB,
        memory.conv_workspace_bytes as f64 / MIB
    );

    let mut json = serde_json::json!({
        "device": info.name,
        "arch": config.arch.name(),
        "crops": crops,
        "batch": config.batch_size,
        "prototypes": config.nmb_prototypes,
        "steps": steps,
        "copy_tb_s": ceilings.copy_tb_s,
        "bf16_matmul_tflops": ceilings.bf16_matmul_tflops,
        "step_ms": resident_s * 1e3,
        "steps_per_s": 1.0 / resident_s,
        "samples_per_s": batch / resident_s,
        "upload_step_ms": staged_s * 1e3,
        "upload_steps_per_s": 1.0 / staged_s,
        "upload_samples_per_s": batch / staged_s,
        "first_loss": first_loss,
        "last_loss": last_loss,
        "ln_k": ln_k,
        "step_peak_gib": step_peak as f64 / GIB,
        "pool_reserved_gib": memory.pool_reserved_bytes as f64 / GIB,
        "device_used_gib": (memory.total_bytes - memory.free_bytes) as f64 / GIB,
        "conv_workspace_mib": memory.conv_workspace_bytes as f64 / MIB,
        "profiled_step_ms": profiled_s * 1e3,
        "profiled_gpu_busy_ms": profile.busy_ms(),
        "profiled_gpu_span_ms": profile.span_ms,
        "copy_stream_ms": profile.copy_stream_ms,
        "top_ops": profile.ops.iter().take(TOP_OPS).map(|op| serde_json::json!({
            "name": op.name, "category": op.category.name(), "calls": op.calls, "ms": op.ms,
        })).collect::<Vec<_>>(),
    });
    for category in OpCategory::ALL {
        json[format!("split_ms_{}", category.name())] = profile.ms(category).into();
    }
    println!("{json}");
    Ok(())
}

/// The split of the profiled step, on stderr.
fn print_profile(profile: &ProfileReport, wall_s: f64) {
    let busy = profile.busy_ms().max(1e-9);
    eprintln!(
        "split of one profiled step: {:.2} ms wall, GPU span {:.2} ms, compute stream busy {:.2} ms:",
        wall_s * 1e3,
        profile.span_ms,
        busy
    );
    for category in OpCategory::ALL {
        let ms = profile.ms(category);
        eprintln!(
            "  {:<20} {ms:8.2} ms {:5.1}%",
            category.name(),
            100.0 * ms / busy
        );
    }
    eprintln!(
        "  (copy stream: {:.2} ms of staged input copies, overlapped with the above)",
        profile.copy_stream_ms
    );
    eprintln!("most expensive operations:");
    for op in profile.ops.iter().take(TOP_OPS) {
        eprintln!(
            "  {:<28} {:<20} {:5} calls {:8.2} ms",
            op.name,
            op.category.name(),
            op.calls,
            op.ms
        );
    }
}
