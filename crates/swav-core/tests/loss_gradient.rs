//! The swapped-prediction loss gradient against central finite differences (f64).

mod common;

use common::*;
use swav_core::{
    LossWorkspace, SingleProcess, SinkhornConfig, SinkhornWorkspace, SliceOps, SwappedPrediction,
    sinkhorn, swapped_prediction_loss,
};

fn codes_for(scores: &[f64], layout: &SwappedPrediction<'_, f64>) -> Vec<Vec<f64>> {
    let (bs, k) = (layout.batch, layout.prototypes);
    let mut ops = SliceOps;
    let mut ws = SinkhornWorkspace::new(&mut ops, bs, k).unwrap();
    layout
        .crops_for_assign
        .iter()
        .map(|&a| {
            let block = scores[a * bs * k..(a + 1) * bs * k].to_vec();
            let mut q = vec![0.0; bs * k];
            sinkhorn(
                &mut ops,
                &SingleProcess,
                &block,
                &SinkhornConfig::default(),
                &mut ws,
                &mut q,
            )
            .unwrap();
            q
        })
        .collect()
}

fn loss_and_grad(
    scores: &[f64],
    codes: &[Vec<f64>],
    layout: &SwappedPrediction<'_, f64>,
) -> (f64, Vec<f64>) {
    let mut ops = SliceOps;
    let mut ws = LossWorkspace::new(&mut ops, layout).unwrap();
    let mut grad = vec![0.0; scores.len()];
    let loss = swapped_prediction_loss(
        &mut ops,
        layout,
        &scores.to_vec(),
        codes,
        &mut ws,
        Some(&mut grad),
    )
    .unwrap();
    (loss, grad)
}

#[test]
fn gradient_matches_finite_differences() {
    let mut rng = SplitMix64::new(11);
    for (batch, crops, k, assign) in [
        (3, 4, 9, vec![0, 1]),
        (2, 3, 5, vec![2]),
        (4, 2, 7, vec![0, 1]),
    ] {
        let layout = SwappedPrediction {
            batch,
            crops,
            prototypes: k,
            crops_for_assign: &assign,
            temperature: 0.1,
        };
        let scores = cosine_scores(&mut rng, batch * crops, k, 4);
        // Codes are constants of the loss (computed under no-grad).
        let codes = codes_for(&scores, &layout);
        let (_, grad) = loss_and_grad(&scores, &codes, &layout);
        let h = 1e-6;
        for i in 0..scores.len() {
            let mut plus = scores.clone();
            plus[i] += h;
            let mut minus = scores.clone();
            minus[i] -= h;
            let numeric = (loss_and_grad(&plus, &codes, &layout).0
                - loss_and_grad(&minus, &codes, &layout).0)
                / (2.0 * h);
            let err = (numeric - grad[i]).abs() / numeric.abs().max(1e-3);
            assert!(
                err < 1e-6,
                "entry {i}: analytic {} numeric {numeric}",
                grad[i]
            );
        }
    }
}

#[test]
fn uniform_codes_and_scores_give_ln_k() {
    let (batch, crops, k) = (4, 3, 3000);
    let assign = [0, 1];
    let layout = SwappedPrediction {
        batch,
        crops,
        prototypes: k,
        crops_for_assign: &assign,
        temperature: 0.1,
    };
    let scores = vec![0.25; batch * crops * k];
    let codes = vec![vec![1.0 / k as f64; batch * k]; 2];
    let (loss, grad) = loss_and_grad(&scores, &codes, &layout);
    assert!((loss - (k as f64).ln()).abs() < 1e-9, "loss {loss}");
    assert!((loss - 8.0064).abs() < 1e-4);
    assert!(
        grad.iter().all(|g| g.abs() < 1e-15),
        "the uniform solution is stationary"
    );
}

#[test]
fn the_loss_without_gradient_is_the_same_value() {
    let mut rng = SplitMix64::new(12);
    let assign = [0, 1];
    let layout = SwappedPrediction {
        batch: 5,
        crops: 4,
        prototypes: 11,
        crops_for_assign: &assign,
        temperature: 0.1,
    };
    let scores = cosine_scores(&mut rng, 20, 11, 3);
    let codes = codes_for(&scores, &layout);
    let (with_grad, _) = loss_and_grad(&scores, &codes, &layout);
    let mut ops = SliceOps;
    let mut ws = LossWorkspace::new(&mut ops, &layout).unwrap();
    let without =
        swapped_prediction_loss(&mut ops, &layout, &scores, &codes, &mut ws, None).unwrap();
    assert_eq!(with_grad, without);
}

#[test]
fn invalid_layouts_are_reported() {
    let assign = [0, 3];
    let bad = SwappedPrediction {
        batch: 2,
        crops: 3,
        prototypes: 4,
        crops_for_assign: &assign,
        temperature: 0.1f32,
    };
    assert!(bad.validate().is_err());
    let one_crop = SwappedPrediction {
        crops: 1,
        crops_for_assign: &[0],
        ..bad
    };
    assert!(one_crop.validate().is_err());
    let cold = SwappedPrediction {
        temperature: 0.0,
        crops_for_assign: &[0],
        ..bad
    };
    assert!(cold.validate().is_err());
    let good = SwappedPrediction {
        crops_for_assign: &[0, 1],
        ..bad
    };
    assert!(good.validate().is_ok());
}
