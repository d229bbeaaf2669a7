//! The optimiser step of a whole model on the CPU: the fused LARC + SGD pass of
//! [`CpuBackend`] against swav-core's per-tensor step, on the parameters of a real network,
//! alternated in one process.
//!
//! ```text
//! cargo run --release -p swav-cpu --example lars_step -- [--rounds 30]
//! ```
//!
//! For ResNet-50 with its SwAV head (about 28 M parameters in 161 tensors) and the
//! small-data preset's network (ResNet-18 at base width 16 with the small stem, 0.8 M in
//! 62 tensors), it prints the median time of each path and their ratio. Both paths give the
//! same bits (`tests/lars_step.rs`).

use std::time::Instant;

use swav_core::{Lars, LarsParam, MomentumState, ParamKind};
use swav_cpu::CpuBackend;
use swav_nn::{Arch, OptimizerOps, SwavConfig, SwavModel, TrunkConfig};

/// (name, model configuration) of each measured network.
fn networks() -> [(&'static str, SwavConfig); 2] {
    let trunk = |arch, base_width, small_stem| TrunkConfig {
        arch,
        width: 1,
        base_width,
        small_stem,
    };
    [
        (
            "resnet50 + head (2048-8192-128, 3000 prototypes)",
            SwavConfig {
                trunk: trunk(Arch::ResNet50, 64, false),
                hidden_dim: 8192,
                output_dim: 128,
                prototypes: 3000,
            },
        ),
        (
            "small-data network (resnet18/16, small stem, 512-64, 30 prototypes)",
            SwavConfig {
                trunk: trunk(Arch::ResNet18, 16, true),
                hidden_dim: 512,
                output_dim: 64,
                prototypes: 30,
            },
        ),
    ]
}

/// Each tensor's (value, gradient, momentum, state, kind), sized as the model's parameters.
type Tensors = Vec<(Vec<f32>, Vec<f32>, Vec<f32>, MomentumState, ParamKind)>;

fn tensors(model: &SwavModel<CpuBackend>) -> Tensors {
    model
        .params()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let value: Vec<f32> = p.value.iter().map(|v| v + 0.01).collect();
            let grad: Vec<f32> = (0..value.len())
                .map(|j| ((i * 31 + j) % 97) as f32 * 1e-5 - 4e-4)
                .collect();
            let len = value.len();
            (
                value,
                grad,
                vec![0.0; len],
                MomentumState::default(),
                p.kind,
            )
        })
        .collect()
}

fn table(tensors: &mut Tensors) -> Vec<LarsParam<'_, Vec<f32>>> {
    tensors
        .iter_mut()
        .map(|(param, grad, momentum, state, kind)| LarsParam {
            param,
            grad: Some(grad),
            momentum,
            state,
            kind: *kind,
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(30usize);
    let lars = Lars::default();
    for (name, config) in networks() {
        let mut b = CpuBackend::new();
        let model = SwavModel::new(&mut b, config, 0).expect("model");
        let (mut fused, mut per_tensor) = (tensors(&model), tensors(&model));
        let elements: usize = fused.iter().map(|t| t.0.len()).sum();
        let (mut a, mut r) = (Vec::new(), Vec::new());
        for round in 0..rounds + 2 {
            let started = Instant::now();
            b.lars_step(&lars, &mut table(&mut fused), 0.3)
                .expect("fused step");
            let fused_s = started.elapsed().as_secs_f64();
            let started = Instant::now();
            lars.step_all(&mut b, &mut table(&mut per_tensor), 0.3)
                .expect("per-tensor step");
            let per_tensor_s = started.elapsed().as_secs_f64();
            if round >= 2 {
                a.push(fused_s);
                r.push(per_tensor_s);
            }
        }
        let (a, r) = (median(a), median(r));
        println!(
            "{name}: {} tensors, {elements} values: fused {:.3} ms, per tensor {:.3} ms, fused / per tensor {:.3} (median of {rounds})",
            fused.len(),
            a * 1e3,
            r * 1e3,
            a / r
        );
    }
}
