//! swav-core against PyTorch golden values (made by scripts/goldens/core_goldens.py, which
//! restates the official SwAV code and apex's LARC). f64 results must match to ~1e-10,
//! f32 results to float precision.

mod common;

use common::*;
use serde_json::Value;
use swav_core::{
    AssignmentInputs, AssignmentLayout, AssignmentWorkspace, FeatureQueue, Lars, LarsParam,
    LossWorkspace, LrSchedule, MomentumState, ParamKind, SingleProcess, SinkhornConfig, SliceOps,
    Stabilization, SwappedPrediction, assign_codes, swapped_prediction_loss,
};

fn goldens() -> Value {
    let text = include_str!("goldens/core_goldens.json");
    serde_json::from_str(text).expect("core_goldens.json parses")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Inputs were rounded to f32 by the script and written with 9 significant digits: rounding
/// them through f32 recovers the exact values PyTorch used.
fn f32_exact(v: &Value) -> Vec<f64> {
    floats(v).iter().map(|&x| x as f32 as f64).collect()
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().expect("integer") as usize
}

/// `|a - b| <= rel · max(|a|, |b|) + abs` everywhere.
fn assert_close(what: &str, ours: &[f64], golden: &[f64], rel: f64, abs: f64) {
    assert_eq!(ours.len(), golden.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(golden).enumerate() {
        let tol = rel * a.abs().max(b.abs()) + abs;
        assert!((a - b).abs() <= tol, "{what}[{i}]: ours {a} vs golden {b}");
    }
}

#[test]
fn sinkhorn_matches_pytorch() {
    let g = goldens();
    for case in g["sinkhorn"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (n, k) = (usize_of(&case["rows"]), usize_of(&case["cols"]));
        let eps = case["epsilon"].as_f64().unwrap();
        let iters = usize_of(&case["iterations"]);
        let scores = f32_exact(&case["scores"]);
        for mode in [Stabilization::Plain, Stabilization::Stable] {
            let (codes, _) = run_sinkhorn(&scores, n, k, eps, iters, mode);
            assert_close(
                &format!("{name} f64 {mode:?}"),
                &codes,
                &floats(&case["codes_f64"]),
                1e-10,
                1e-300,
            );
            let s32: Vec<f32> = cast(&scores);
            let (codes, _) = run_sinkhorn(&s32, n, k, eps, iters, mode);
            assert_close(
                &format!("{name} f32 {mode:?}"),
                &widen(&codes),
                &floats(&case["codes_f32"]),
                2e-5,
                1e-9,
            );
        }
    }
}

#[test]
fn loss_and_gradient_match_pytorch_autograd() {
    let g = goldens();
    let case = &g["loss"];
    let assign: Vec<usize> = case["crops_for_assign"]
        .as_array()
        .unwrap()
        .iter()
        .map(usize_of)
        .collect();
    let layout64 = SwappedPrediction {
        batch: usize_of(&case["batch"]),
        crops: usize_of(&case["crops"]),
        prototypes: usize_of(&case["prototypes"]),
        crops_for_assign: &assign,
        temperature: case["temperature"].as_f64().unwrap(),
    };
    let scores = f32_exact(&case["scores"]);
    let (bs, k) = (layout64.batch, layout64.prototypes);

    // f64: our Sinkhorn codes, loss and gradient against autograd.
    let codes: Vec<Vec<f64>> = assign
        .iter()
        .map(|&a| {
            run_sinkhorn(
                &scores[a * bs * k..(a + 1) * bs * k],
                bs,
                k,
                0.05,
                3,
                Stabilization::Stable,
            )
            .0
        })
        .collect();
    for (i, q) in codes.iter().enumerate() {
        assert_close(
            "loss codes f64",
            q,
            &floats(&case["codes_f64"][i]),
            1e-10,
            1e-300,
        );
    }
    let mut ops = SliceOps;
    let mut ws = LossWorkspace::new(&mut ops, &layout64).unwrap();
    let mut grad = vec![0.0; scores.len()];
    let loss = swapped_prediction_loss(
        &mut ops,
        &layout64,
        &scores,
        &codes,
        &mut ws,
        Some(&mut grad),
    )
    .unwrap();
    assert_close(
        "loss f64",
        &[loss],
        &[case["loss_f64"].as_f64().unwrap()],
        1e-12,
        0.0,
    );
    assert_close("grad f64", &grad, &floats(&case["grad_f64"]), 1e-9, 1e-15);

    // f32, from the same inputs.
    let layout32 = SwappedPrediction {
        batch: layout64.batch,
        crops: layout64.crops,
        prototypes: layout64.prototypes,
        crops_for_assign: &assign,
        temperature: layout64.temperature as f32,
    };
    let s32: Vec<f32> = cast(&scores);
    let codes32: Vec<Vec<f32>> = assign
        .iter()
        .map(|&a| {
            run_sinkhorn(
                &s32[a * bs * k..(a + 1) * bs * k],
                bs,
                k,
                0.05,
                3,
                Stabilization::Stable,
            )
            .0
        })
        .collect();
    let mut ws = LossWorkspace::new(&mut ops, &layout32).unwrap();
    let mut grad = vec![0.0f32; s32.len()];
    let loss = swapped_prediction_loss(
        &mut ops,
        &layout32,
        &s32,
        &codes32,
        &mut ws,
        Some(&mut grad),
    )
    .unwrap();
    assert_close(
        "loss f32",
        &[loss as f64],
        &[case["loss_f32"].as_f64().unwrap()],
        1e-6,
        0.0,
    );
    assert_close(
        "grad f32",
        &widen(&grad),
        &floats(&case["grad_f32"]),
        1e-4,
        1e-7,
    );
}

#[test]
fn queue_iterations_match_the_official_loop() {
    let g = goldens();
    let case = &g["queue"];
    let (bs, crops, k, d) = (
        usize_of(&case["batch"]),
        usize_of(&case["crops"]),
        usize_of(&case["prototypes"]),
        usize_of(&case["dim"]),
    );
    let queue_rows = usize_of(&case["queue_rows"]);
    let assign: Vec<usize> = case["crops_for_assign"]
        .as_array()
        .unwrap()
        .iter()
        .map(usize_of)
        .collect();
    let w = f32_exact(&case["prototype_weights"]);
    let layout = AssignmentLayout {
        batch: bs,
        prototypes: k,
        dim: d,
        crops_for_assign: &assign,
    };
    let mut ops = SliceOps;
    let mut queue = FeatureQueue::new(&mut ops, assign.len(), queue_rows, d, bs).unwrap();
    let mut ws = AssignmentWorkspace::new(&mut ops, &layout, queue_rows).unwrap();
    let config = SinkhornConfig {
        epsilon: case["epsilon"].as_f64().unwrap(),
        ..Default::default()
    };
    for (step_index, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let z = f32_exact(&step["embeddings"]);
        let mut scores = vec![0.0; crops * bs * k];
        swav_core::MatrixOps::matmul_nt(&mut ops, &z, &w, crops * bs, k, d, &mut scores).unwrap();
        let mut codes = vec![vec![0.0; bs * k]; assign.len()];
        assign_codes(
            &mut ops,
            &SingleProcess,
            AssignmentInputs {
                layout: &layout,
                scores: &scores,
                embeddings: &z,
                prototypes: &w,
            },
            Some(&mut queue),
            &config,
            &mut ws,
            &mut codes,
        )
        .unwrap();
        let used: Vec<bool> = step["used_queue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect();
        assert_eq!(
            queue.in_use(),
            *used.last().unwrap(),
            "step {step_index}: queue in use"
        );
        for (i, q) in codes.iter().enumerate() {
            assert_close(
                &format!("step {step_index} crop {i} codes"),
                q,
                &floats(&step["codes"][i]),
                1e-10,
                1e-300,
            );
        }
        assert_close(
            &format!("step {step_index} queue"),
            &queue.to_host(&mut ops).unwrap(),
            &f32_exact(&step["queue"]),
            0.0,
            0.0,
        );
    }
}

#[test]
fn larc_sgd_matches_apex_semantics() {
    let g = goldens();
    let case = &g["lars"];
    let wd = case["weight_decay"].as_f64().unwrap();
    let lrs = floats(&case["lrs"]);
    let lars = Lars {
        weight_decay: wd,
        ..Lars::<f64>::default()
    };
    let mut params: Vec<Vec<f64>> = case["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(f32_exact)
        .collect();
    let mut bufs: Vec<Vec<f64>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
    let mut states = vec![MomentumState::default(); params.len()];
    let mut ops = SliceOps;
    for (step, grads) in case["grads"].as_array().unwrap().iter().enumerate() {
        for (i, grad) in grads.as_array().unwrap().iter().enumerate() {
            if grad.is_null() {
                continue; // frozen: no gradient, no decay, no momentum
            }
            let g = f32_exact(grad);
            lars.step(
                &mut ops,
                &mut LarsParam {
                    param: &mut params[i],
                    grad: Some(&g),
                    momentum: &mut bufs[i],
                    state: &mut states[i],
                    kind: ParamKind::Weight,
                },
                lrs[step],
            )
            .unwrap();
        }
        let expected = &case["after_step"][step];
        for (i, p) in params.iter().enumerate() {
            assert_close(
                &format!("step {step} param {i}"),
                p,
                &floats(&expected[i]),
                1e-12,
                1e-15,
            );
        }
    }
}

#[test]
fn schedule_matches_the_official_array() {
    let g = goldens();
    for case in g["schedule"].as_array().unwrap() {
        let s = LrSchedule {
            base_lr: case["base_lr"].as_f64().unwrap(),
            final_lr: case["final_lr"].as_f64().unwrap(),
            start_warmup: case["start_warmup"].as_f64().unwrap(),
            warmup_epochs: case["warmup_epochs"].as_u64().unwrap(),
            epochs: case["epochs"].as_u64().unwrap(),
            iters_per_epoch: case["iters_per_epoch"].as_u64().unwrap(),
        };
        let values = floats(&case["values"]);
        assert_eq!(values.len() as u64, s.len());
        let ours: Vec<f64> = (0..s.len()).map(|t| s.lr(t)).collect();
        assert_close("schedule", &ours, &values, 1e-13, 1e-15);
    }
}
