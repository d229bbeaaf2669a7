//! Sinkhorn-Knopp properties: marginals, stabilisation exactness, extreme inputs, and the
//! distributed (two-rank) equivalence.

mod common;

use common::*;
use std::time::Duration;
use swav_core::{SinkhornPath, Stabilization, ThreadGroup};

fn marginals(codes: &[f64], rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
    let per_sample = codes.chunks(cols).map(|r| r.iter().sum()).collect();
    let per_prototype = (0..cols)
        .map(|j| (0..rows).map(|i| codes[i * cols + j]).sum())
        .collect();
    (per_sample, per_prototype)
}

#[test]
fn samples_sum_to_one_and_prototypes_are_near_equipartitioned() {
    let mut rng = SplitMix64::new(1);
    let (n, k) = (256, 64);
    let scores = cosine_scores(&mut rng, n, k, 16);
    let (codes, path) = run_sinkhorn(&scores, n, k, 0.05, 3, Stabilization::Stable);
    assert_eq!(path, SinkhornPath::Linear);
    let (per_sample, per_prototype) = marginals(&codes, n, k);
    for s in per_sample {
        assert!((s - 1.0).abs() < 1e-12, "sample mass {s}");
    }
    let target = n as f64 / k as f64;
    let deviation = |masses: &[f64]| {
        masses
            .iter()
            .map(|p| (p - target).abs() / target)
            .fold(0.0, f64::max)
    };
    let after_3 = deviation(&per_prototype);
    eprintln!("prototype mass deviation after 3 iterations: {after_3:.4}");
    assert!(
        after_3 < 0.5,
        "prototype mass deviation {after_3} after 3 iterations"
    );
    // More iterations: closer to exact equipartition.
    let mut previous = after_3;
    for iterations in [10, 30, 300] {
        let (codes, _) = run_sinkhorn(&scores, n, k, 0.05, iterations, Stabilization::Stable);
        let d = deviation(&marginals(&codes, n, k).1);
        eprintln!("after {iterations}: {d:.2e}");
        assert!(
            d < previous,
            "{iterations} iterations: deviation {d} did not shrink"
        );
        previous = d;
    }
    assert!(
        previous < 1e-6,
        "not equipartitioned after 300 iterations: {previous}"
    );
}

#[test]
fn global_max_subtraction_gives_the_plain_codes() {
    let mut rng = SplitMix64::new(2);
    let (n, k) = (64, 30);
    let scores = cosine_scores(&mut rng, n, k, 8);
    // (At ε = 0.02 the spread of these scores exceeds 80 ε: that case is the log-domain test's.)
    for eps in [0.05, 0.03] {
        let (plain, _) = run_sinkhorn(&scores, n, k, eps, 3, Stabilization::Plain);
        let (stable, path) = run_sinkhorn(&scores, n, k, eps, 3, Stabilization::Stable);
        assert_eq!(path, SinkhornPath::Linear);
        let d = max_rel_diff(&plain, &stable, 1e-30);
        assert!(d < 1e-12, "eps {eps}: f64 relative difference {d}");

        let s32: Vec<f32> = cast(&scores);
        let (plain, _) = run_sinkhorn(&s32, n, k, eps, 3, Stabilization::Plain);
        let (stable, _) = run_sinkhorn(&s32, n, k, eps, 3, Stabilization::Stable);
        // Codes are probabilities: compare absolutely (the floor of 1 makes it absolute).
        let d = max_rel_diff(&widen(&plain), &widen(&stable), 1.0);
        assert!(d < 1e-6, "eps {eps}: f32 difference {d}");
    }
}

#[test]
fn the_log_domain_path_agrees_with_the_plain_one() {
    // Spread of scores / eps = 1.1 / 0.0125 = 88 > 80: the stable mode takes the log-domain
    // path, while the plain exponentials (within e^±44) are still exact in f64 and f32.
    let mut rng = SplitMix64::new(3);
    let (n, k) = (40, 24);
    let scores: Vec<f64> = cosine_scores(&mut rng, n, k, 2)
        .iter()
        .map(|s| 0.55 * s)
        .collect();
    let spread = scores.iter().cloned().fold(f64::MIN, f64::max)
        - scores.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread / 0.0125 > 80.0, "test set-up: spread {spread}");
    let (plain, _) = run_sinkhorn(&scores, n, k, 0.0125, 3, Stabilization::Plain);
    let (stable, path) = run_sinkhorn(&scores, n, k, 0.0125, 3, Stabilization::Stable);
    assert_eq!(path, SinkhornPath::LogDomain);
    let d = max_rel_diff(&plain, &stable, 1e-12);
    assert!(d < 1e-9, "f64 difference {d}");

    let s32: Vec<f32> = cast(&scores);
    let (plain, _) = run_sinkhorn(&s32, n, k, 0.0125, 3, Stabilization::Plain);
    let (stable, _) = run_sinkhorn(&s32, n, k, 0.0125, 3, Stabilization::Stable);
    let d = max_rel_diff(&widen(&plain), &widen(&stable), 1.0);
    assert!(d < 1e-6, "f32 codes differ by {d} (absolute)");
}

#[test]
fn small_epsilon_and_unnormalised_scores_never_give_inf_or_nan() {
    let mut rng = SplitMix64::new(4);
    let (n, k) = (128, 50);
    let cosine = cosine_scores(&mut rng, n, k, 8);
    for (scale, eps) in [
        (1.0, 0.01),
        (1.0, 0.005),
        (1.0, 0.001),
        (40.0, 0.05),
        (1000.0, 0.005),
    ] {
        let scores: Vec<f32> = cosine.iter().map(|s| (s * scale) as f32).collect();
        // The official code overflows in these settings...
        let (plain, _) = run_sinkhorn(&scores, n, k, eps, 3, Stabilization::Plain);
        let max = scores.iter().cloned().fold(f32::MIN, f32::max) as f64;
        if max / eps > 89.0 {
            assert!(
                plain.iter().any(|v| !v.is_finite()),
                "plain should overflow at {scale}/{eps}"
            );
        }
        // ...the stable one never does.
        let (codes, _) = run_sinkhorn(&scores, n, k, eps, 3, Stabilization::Stable);
        assert!(
            codes.iter().all(|v| v.is_finite() && *v >= 0.0),
            "scale {scale} eps {eps}"
        );
        for row in codes.chunks(k) {
            let s: f32 = row.iter().sum();
            assert!(
                (s - 1.0).abs() < 1e-4,
                "row sum {s} at scale {scale} eps {eps}"
            );
        }
    }
}

#[test]
fn zero_iterations_return_the_normalised_exponentials_on_both_paths() {
    let mut rng = SplitMix64::new(5);
    let (n, k) = (10, 7);
    let scores = cosine_scores(&mut rng, n, k, 4);
    let (plain, _) = run_sinkhorn(&scores, n, k, 0.05, 0, Stabilization::Plain);
    let total: f64 = scores.iter().map(|s| (s / 0.05).exp()).sum();
    for (c, s) in plain.iter().zip(&scores) {
        assert!(((s / 0.05).exp() / total * n as f64 - c).abs() < 1e-12);
    }
    let wide: Vec<f64> = scores.iter().map(|s| s * 0.5).collect();
    let (plain, _) = run_sinkhorn(&wide, n, k, 0.006, 0, Stabilization::Plain);
    let (stable, path) = run_sinkhorn(&wide, n, k, 0.006, 0, Stabilization::Stable);
    assert_eq!(path, SinkhornPath::LogDomain);
    assert!(max_rel_diff(&plain, &stable, 1e-12) < 1e-9);
}

#[test]
fn two_ranks_give_the_codes_of_one_rank_holding_the_whole_batch() {
    let mut rng = SplitMix64::new(6);
    let (n, k) = (48, 20);
    for (eps, scale) in [(0.05, 1.0), (0.005, 1.0)] {
        let scores: Vec<f64> = cosine_scores(&mut rng, n, k, 8)
            .iter()
            .map(|s| s * scale)
            .collect();
        let (whole, whole_path) = run_sinkhorn(&scores, n, k, eps, 3, Stabilization::Stable);
        let ranks = ThreadGroup::new(2, Duration::from_secs(20));
        let halves: Vec<(Vec<f64>, SinkhornPath)> = std::thread::scope(|s| {
            let handles: Vec<_> = ranks
                .into_iter()
                .enumerate()
                .map(|(r, comm)| {
                    let part = scores[r * (n / 2) * k..(r + 1) * (n / 2) * k].to_vec();
                    s.spawn(move || {
                        run_sinkhorn_with(&comm, &part, n / 2, k, eps, 3, Stabilization::Stable)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let joined: Vec<f64> = halves.iter().flat_map(|(c, _)| c.clone()).collect();
        assert!(
            halves.iter().all(|(_, p)| *p == whole_path),
            "both ranks take the same path"
        );
        let d = max_rel_diff(&whole, &joined, 1e-15);
        assert!(d < 1e-12, "eps {eps}: distributed codes differ by {d}");
    }
}

#[test]
fn a_rank_that_leaves_makes_the_other_fail_instead_of_hanging() {
    let mut ranks = ThreadGroup::new(2, Duration::from_secs(30));
    let survivor = ranks.pop().unwrap();
    drop(ranks);
    let scores = vec![0.1f64; 12];
    let mut ops = swav_core::SliceOps;
    let config = swav_core::SinkhornConfig::<f64>::default();
    let mut ws = swav_core::SinkhornWorkspace::new(&mut ops, 3, 4).unwrap();
    let mut codes = vec![0.0; 12];
    let err = swav_core::sinkhorn(&mut ops, &survivor, &scores, &config, &mut ws, &mut codes)
        .unwrap_err();
    assert!(
        matches!(err, swav_core::SinkhornError::Collective(_)),
        "{err:?}"
    );
}

#[test]
fn a_rank_that_never_arrives_times_out() {
    let mut ranks = ThreadGroup::new(2, Duration::from_millis(200));
    let waiting = ranks.pop().unwrap();
    let absent = ranks.pop().unwrap();
    let mut data = vec![1.0f32; 3];
    let err = swav_core::Collective::<[f32]>::all_reduce_sum(&waiting, &mut data).unwrap_err();
    assert!(
        matches!(err, swav_core::ThreadGroupError::Timeout { .. }),
        "{err:?}"
    );
    drop(absent);
}
