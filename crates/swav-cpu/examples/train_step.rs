//! Training-step throughput of the CPU backend, and where the time goes.
//!
//! ```text
//! cargo run --release -p swav-cpu --example train_step -- [SETTING ...] [--json]
//! ```
//!
//! Settings: `rn50_224`, `rn50_96` (ResNet-50, batch 8, 224 / 96 px) and `rn18_small_64`
//! (ResNet-18 with the small-image stem, batch 8, 64 px) and `rn18_demo_32` (the demo's trunk:
//! that network at base width 16, 128 crops of 32 px, i.e. the demo's batch of 64 images
//! with two crops each); all four by default. It reports
//! the median step and the fastest one (on a shared machine the fastest is the closest to an
//! unloaded one). A step is
//! what `scripts/bench/cpu_train_step.py` times in PyTorch: zero the gradients, training
//! forward to the pooled features, backward from a fixed gradient, SGD with momentum on
//! every parameter. It also measures the sgemm rate (a 2048³ product through the backend's
//! linear layer) against the 2-core build machine's FMA peak, and prints the time per
//! operation kind of one profiled step. `--json` prints one JSON object per line instead.

use std::time::Instant;

use swav_core::{LarsScaling, SgdStep, SingleProcess};
use swav_cpu::{CpuBackend, Profile};
use swav_nn::prelude::*;
use swav_nn::{Arch, CropGroup, LinearShape, SwavConfig, SwavModel, TrunkConfig, hashed_uniform};

/// The f32 FMA peak of the 2-core build machine at its 2.6 GHz base clock: AMD family 26
/// (Zen 5) cores with full-width AVX-512, 2 FMA pipes × 16 lanes × 2 FLOP per cycle each.
const PEAK_GFLOPS: f64 = 333.0;

struct Setting {
    name: &'static str,
    arch: Arch,
    small_stem: bool,
    base_width: usize,
    side: usize,
    batch: usize,
    steps: usize,
}

const SETTINGS: [Setting; 4] = [
    Setting {
        name: "rn50_224",
        arch: Arch::ResNet50,
        small_stem: false,
        base_width: 64,
        side: 224,
        batch: 8,
        steps: 6,
    },
    Setting {
        name: "rn50_96",
        arch: Arch::ResNet50,
        small_stem: false,
        base_width: 64,
        side: 96,
        batch: 8,
        steps: 10,
    },
    Setting {
        name: "rn18_small_64",
        arch: Arch::ResNet18,
        small_stem: true,
        base_width: 64,
        side: 64,
        batch: 8,
        steps: 12,
    },
    Setting {
        name: "rn18_demo_32",
        arch: Arch::ResNet18,
        small_stem: true,
        base_width: 16,
        side: 32,
        batch: 128,
        steps: 12,
    },
];

/// One optimiser state per parameter: SGD momentum buffers.
struct Sgd {
    momentum: Vec<Vec<f32>>,
    first: bool,
}

fn step(
    b: &mut CpuBackend,
    model: &mut SwavModel<CpuBackend>,
    sgd: &mut Sgd,
    images: &Vec<f32>,
    d_features: &Vec<f32>,
    setting: &Setting,
) {
    model.zero_grad(b).expect("zero");
    let group = [CropGroup {
        images,
        crops: 1,
        height: setting.side,
        width: setting.side,
    }];
    model
        .forward_train_features(b, &group, setting.batch, &SingleProcess)
        .expect("forward");
    model
        .backward_features(b, d_features, &SingleProcess)
        .expect("backward");
    let update = SgdStep {
        scaling: LarsScaling {
            grad_scale: 1.0,
            weight_decay: 1e-4,
        },
        lr: 0.1,
        momentum: 0.9,
        first: sgd.first,
    };
    for (p, m) in model.params_mut().into_iter().zip(&mut sgd.momentum) {
        b.sgd_momentum_step(p.value, p.grad, m, update)
            .expect("sgd");
    }
    sgd.first = false;
}

/// The median and the fastest of `times`.
fn median_and_best(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn run(setting: &Setting, json: bool) {
    let mut b = CpuBackend::new();
    let config = SwavConfig {
        trunk: TrunkConfig {
            arch: setting.arch,
            width: 1,
            base_width: setting.base_width,
            small_stem: setting.small_stem,
        },
        hidden_dim: 0,
        output_dim: 1,
        prototypes: 0,
    };
    let mut model = SwavModel::new(&mut b, config, 0).expect("model");
    let mut sgd = Sgd {
        momentum: model
            .params()
            .iter()
            .map(|p| vec![0.0; p.value.len()])
            .collect(),
        first: true,
    };
    let n = setting.batch * setting.side * setting.side * 3;
    let images: Vec<f32> = (0..n as u64).map(|i| hashed_uniform(1, i)).collect();
    let f = model.feature_dim() * setting.batch;
    let d_features: Vec<f32> = (0..f as u64).map(|i| hashed_uniform(2, i) / 64.0).collect();

    step(&mut b, &mut model, &mut sgd, &images, &d_features, setting); // warm-up
    let mut times = Vec::new();
    for _ in 0..setting.steps {
        let t = Instant::now();
        step(&mut b, &mut model, &mut sgd, &images, &d_features, setting);
        times.push(t.elapsed().as_secs_f64());
    }
    let (median, best) = median_and_best(times);
    b.enable_profiling();
    step(&mut b, &mut model, &mut sgd, &images, &d_features, setting);
    let profile = b.take_profile().expect("profiling on");
    report(setting, median, best, &profile, json);
}

fn report(setting: &Setting, seconds: f64, best: f64, profile: &Profile, json: bool) {
    let images_per_second = setting.batch as f64 / seconds;
    let best_images_per_second = setting.batch as f64 / best;
    let conv_flops: f64 = profile
        .ops
        .iter()
        .filter(|(k, _)| k.starts_with("conv"))
        .map(|(_, s)| s.flops)
        .sum();
    if json {
        let ops: Vec<String> = profile
            .ops
            .iter()
            .map(|(k, s)| {
                format!(
                    "\"{k}\": {{\"calls\": {}, \"seconds\": {:.6}, \"flops\": {:.0}}}",
                    s.calls, s.seconds, s.flops
                )
            })
            .collect();
        println!(
            "{{\"setting\": \"{}\", \"images_per_second\": {images_per_second:.4}, \
             \"best_images_per_second\": {best_images_per_second:.4}, \
             \"step_seconds\": {seconds:.5}, \"conv_gflop\": {:.3}, \"ops\": {{{}}}}}",
            setting.name,
            conv_flops / 1e9,
            ops.join(", ")
        );
        return;
    }
    println!(
        "{}: {images_per_second:.2} images/s, best step {best_images_per_second:.2} \
         ({seconds:.3} s per step of {}; convolutions {:.1} GFLOP, {:.0} GFLOP/s over the step)",
        setting.name,
        setting.batch,
        conv_flops / 1e9,
        conv_flops / seconds / 1e9
    );
    let total = profile.total_seconds();
    let mut ops: Vec<_> = profile.ops.iter().collect();
    ops.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
    for (name, s) in ops {
        let rate = if s.flops > 0.0 {
            format!("{:6.1} GFLOP/s", s.flops / s.seconds / 1e9)
        } else {
            String::new()
        };
        println!(
            "  {name:28} {:8.1} ms {:5.1} %  {:5} calls {rate}",
            s.seconds * 1e3,
            100.0 * s.seconds / total,
            s.calls
        );
    }
}

/// The rate of a 2048³ product through the backend's (block-parallel sgemm) linear layer.
fn sgemm_rate(json: bool) {
    let mut b = CpuBackend::new();
    let n = 2048;
    let x: Vec<f32> = (0..(n * n) as u64).map(|i| hashed_uniform(3, i)).collect();
    let w: Vec<f32> = (0..(n * n) as u64).map(|i| hashed_uniform(4, i)).collect();
    let mut y = b.alloc_activation(n * n).expect("alloc");
    let mut best = f64::MAX;
    for _ in 0..4 {
        let t = Instant::now();
        let shape = LinearShape {
            rows: n,
            in_features: n,
            out_features: n,
        };
        b.linear_forward(&x, &w, None, &shape, &mut y)
            .expect("linear");
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gflops = 2.0 * (n * n * n) as f64 / best / 1e9;
    if json {
        println!("{{\"sgemm_gflops\": {gflops:.2}, \"peak_gflops\": {PEAK_GFLOPS}}}");
    } else {
        println!(
            "sgemm 2048³ on {} threads: {gflops:.1} GFLOP/s ({:.0} % of the {PEAK_GFLOPS} GFLOP/s FMA peak)",
            rayon::current_num_threads(),
            100.0 * gflops / PEAK_GFLOPS
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let names: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    sgemm_rate(json);
    for setting in &SETTINGS {
        if names.is_empty() || names.contains(&setting.name) {
            run(setting, json);
        }
    }
    if let Some(unknown) = names
        .iter()
        .find(|n| !SETTINGS.iter().any(|s| s.name == **n))
    {
        eprintln!(
            "unknown setting {unknown}; known: rn50_224, rn50_96, rn18_small_64, rn18_demo_32"
        );
        std::process::exit(2);
    }
}
