//! The learning-rate schedule's endpoints and LARC's corner cases.

use swav_core::{
    Lars, LarsParam, LrSchedule, MomentumState, ParamKind, ReduceOps, SliceOps,
    iterations_per_epoch,
};

#[test]
fn schedule_endpoints_follow_the_official_array() {
    let s = LrSchedule {
        base_lr: 4.8,
        final_lr: 0.0048,
        start_warmup: 0.3,
        warmup_epochs: 10,
        epochs: 800,
        iters_per_epoch: 312,
    };
    assert_eq!(s.lr(0), 0.3);
    // The warm-up's last value is base_lr, and so is the cosine's first.
    assert_eq!(s.lr(3119), 4.8);
    assert_eq!(s.lr(3120), 4.8);
    assert!(s.lr(3121) < 4.8);
    // The last value is slightly above final_lr; past the end it stays there.
    let last = s.lr(s.len() - 1);
    assert!(last > 0.0048 && last - 0.0048 < 1e-8, "{last}");
    assert_eq!(s.lr(s.len() + 10), last);
    // Monotone decay after the warm-up.
    let mut prev = f64::INFINITY;
    for t in (3120..s.len()).step_by(97) {
        assert!(s.lr(t) <= prev);
        prev = s.lr(t);
    }
}

#[test]
fn no_warmup_starts_at_base_lr() {
    let s = LrSchedule {
        base_lr: 0.6,
        final_lr: 0.0006,
        start_warmup: 0.0,
        warmup_epochs: 0,
        epochs: 200,
        iters_per_epoch: 5004,
    };
    assert_eq!(s.lr(0), 0.6);
    let mid = s.lr(s.len() / 2);
    assert!((mid - (0.0006 + 0.5 * (0.6 - 0.0006))).abs() < 1e-12);
}

#[test]
fn iterations_per_epoch_match_the_official_table() {
    let imagenet = 1_281_167;
    assert_eq!(iterations_per_epoch(imagenet, 64, 64), 312);
    assert_eq!(iterations_per_epoch(imagenet, 64, 40), 500);
    assert_eq!(iterations_per_epoch(imagenet, 4, 64), 5004);
    assert_eq!(iterations_per_epoch(imagenet, 8, 32), 5004);
    assert_eq!(iterations_per_epoch(imagenet, 1, 64), 20018);
    assert_eq!(iterations_per_epoch(10, 1, 64), 0);
}

#[test]
fn zero_norm_parameters_get_an_unscaled_undecayed_step() {
    let lars = Lars::<f64>::default();
    let s = lars.scaling(0.0, 3.0, ParamKind::BiasOrNorm, 0.3);
    assert_eq!((s.grad_scale, s.weight_decay), (1.0, 0.0));
    let s = lars.scaling(2.0, 0.0, ParamKind::Weight, 0.3);
    assert_eq!((s.grad_scale, s.weight_decay), (1.0, 0.0));

    let mut ops = SliceOps;
    let mut p = vec![0.0f64; 3];
    let g = vec![1.0, -2.0, 0.5];
    let mut buf = vec![0.0; 3];
    let mut state = MomentumState::default();
    lars.step(
        &mut ops,
        &mut LarsParam {
            param: &mut p,
            grad: Some(&g),
            momentum: &mut buf,
            state: &mut state,
            kind: ParamKind::BiasOrNorm,
        },
        0.3,
    )
    .unwrap();
    assert_eq!(p, vec![-0.3, 0.6, -0.15]);
    assert!(state.initialised);
}

#[test]
fn trust_ratio_scales_the_decayed_gradient() {
    let lars = Lars::<f64>::default();
    let s = lars.scaling(2.0, 4.0, ParamKind::Weight, 1.0);
    let expected = 0.001 * 2.0 / (4.0 + 2.0 * 1e-6 + 1e-8);
    assert!((s.grad_scale - expected).abs() < 1e-18);
    assert_eq!(s.weight_decay, 1e-6);
    // Clip mode caps the effective rate at the schedule's.
    let clipped = Lars { clip: true, ..lars };
    assert_eq!(
        clipped
            .scaling(2.0, 4.0, ParamKind::Weight, 1e-6)
            .grad_scale,
        1.0
    );
    assert!(
        (clipped.scaling(2.0, 4.0, ParamKind::Weight, 1.0).grad_scale - expected).abs() < 1e-18
    );
    // Excluding biases and norms: no adaptation, no decay, for those only.
    let excluding = Lars {
        exclude_bias_and_norm: true,
        ..lars
    };
    let s = excluding.scaling(2.0, 4.0, ParamKind::BiasOrNorm, 1.0);
    assert_eq!((s.grad_scale, s.weight_decay), (1.0, 0.0));
    assert_eq!(
        excluding.scaling(2.0, 4.0, ParamKind::Weight, 1.0),
        lars.scaling(2.0, 4.0, ParamKind::Weight, 1.0)
    );
}

#[test]
fn momentum_accumulates_after_the_first_step() {
    let lars = Lars {
        trust_coefficient: 1.0,
        weight_decay: 0.0,
        eps: 0.0,
        ..Lars::<f64>::default()
    };
    let mut ops = SliceOps;
    let mut p = vec![3.0, 4.0]; // norm 5
    let g = vec![0.6, 0.8]; // norm 1: λ = 5
    let mut buf = vec![0.0; 2];
    let mut state = MomentumState::default();
    let mut tensor = LarsParam {
        param: &mut p,
        grad: Some(&g),
        momentum: &mut buf,
        state: &mut state,
        kind: ParamKind::Weight,
    };
    lars.step(&mut ops, &mut tensor, 0.1).unwrap();
    assert_eq!(*tensor.momentum, vec![3.0, 4.0]);
    let after_first = tensor.param.clone();
    assert!((after_first[0] - 2.7).abs() < 1e-12 && (after_first[1] - 3.6).abs() < 1e-12);
    lars.step(&mut ops, &mut tensor, 0.1).unwrap();
    // λ = ‖p‖ / ‖g‖ = 4.5; buf = 0.9·[3, 4] + 4.5·[0.6, 0.8].
    assert!((buf[0] - (2.7 + 2.7)).abs() < 1e-12 && (buf[1] - (3.6 + 3.6)).abs() < 1e-12);
    let _ = ops.sum_squares(&p).unwrap();
}

#[test]
fn step_all_skips_tensors_without_gradient() {
    let lars = Lars::<f64>::default();
    let mut ops = SliceOps;
    let (mut p1, mut p2) = (vec![1.0, 2.0], vec![3.0]);
    let (mut m1, mut m2) = (vec![0.0; 2], vec![0.0]);
    let (mut s1, mut s2) = (MomentumState::default(), MomentumState::default());
    let g1 = vec![0.5, -0.5];
    let mut params = [
        LarsParam {
            param: &mut p1,
            grad: Some(&g1),
            momentum: &mut m1,
            state: &mut s1,
            kind: ParamKind::Weight,
        },
        LarsParam {
            param: &mut p2,
            grad: None,
            momentum: &mut m2,
            state: &mut s2,
            kind: ParamKind::Weight,
        },
    ];
    lars.step_all(&mut ops, &mut params, 0.1).unwrap();
    assert!(s1.initialised && !s2.initialised);
    assert_ne!(p1, vec![1.0, 2.0]);
    assert_eq!((p2, m2), (vec![3.0], vec![0.0]));
}

#[test]
fn plain_sgd_is_torch_sgd_with_momentum_and_decay() {
    let lars = Lars::<f64>::plain_sgd(0.9, 0.01);
    let mut ops = SliceOps;
    let (mut p, mut buf, mut state) = (vec![3.0, 4.0], vec![0.0; 2], MomentumState::default());
    let g = vec![0.5, -0.25];
    // torch.optim.SGD: d = g + wd·p; buf = d (first step), then 0.9·buf + d; p -= lr·buf.
    let (mut tp, mut tbuf) = (p.clone(), vec![0.0; 2]);
    for (step, lr) in [0.1, 0.05, 0.0].into_iter().enumerate() {
        let mut tensor = LarsParam {
            param: &mut p,
            grad: Some(&g),
            momentum: &mut buf,
            state: &mut state,
            kind: ParamKind::Weight,
        };
        lars.step(&mut ops, &mut tensor, lr).unwrap();
        for i in 0..2 {
            let d = g[i] + 0.01 * tp[i];
            tbuf[i] = if step == 0 { d } else { 0.9 * tbuf[i] + d };
            tp[i] -= lr * tbuf[i];
        }
        for i in 0..2 {
            assert!((p[i] - tp[i]).abs() < 1e-12, "step {step}: {p:?} vs {tp:?}");
            assert!((buf[i] - tbuf[i]).abs() < 1e-12);
        }
    }
}
