//! Non-finite scores are refused with their place, on one rank or several, on both
//! stabilisation paths, and the codes are left untouched.

mod common;

use common::*;
use std::time::Duration;
use swav_core::{
    AssignmentInputs, AssignmentLayout, AssignmentWorkspace, SingleProcess, SinkhornConfig,
    SinkhornError, SinkhornWorkspace, SliceOps, Stabilization, ThreadGroup, assign_codes, sinkhorn,
};

type Error<C> = SinkhornError<core::convert::Infallible, C>;

fn run<C: swav_core::Collective<Vec<f32>>>(
    comm: &C,
    scores: &[f32],
    rows: usize,
    cols: usize,
    stabilization: Stabilization,
) -> (Result<swav_core::SinkhornPath, Error<C::Error>>, Vec<f32>) {
    let mut ops = SliceOps;
    let config = SinkhornConfig {
        stabilization,
        ..SinkhornConfig::default()
    };
    let mut ws = SinkhornWorkspace::new(&mut ops, rows, cols).unwrap();
    let mut codes = vec![-1.0f32; rows * cols];
    let result = sinkhorn(
        &mut ops,
        comm,
        &scores.to_vec(),
        &config,
        &mut ws,
        &mut codes,
    );
    (result, codes)
}

fn scores(rows: usize, cols: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(11);
    cast(&cosine_scores(&mut rng, rows, cols, 8))
}

#[test]
fn a_single_bad_score_is_reported_with_its_row_column_and_count() {
    let (n, k) = (40, 6);
    for stabilization in [Stabilization::Stable, Stabilization::Plain] {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut s = scores(n, k);
            s[7 * k + 2] = bad;
            let (result, codes) = run(&SingleProcess, &s, n, k, stabilization);
            assert_eq!(
                result,
                Err(SinkhornError::NonFinite {
                    row: 7,
                    column: 2,
                    count: 1
                }),
                "{bad} under {stabilization:?}"
            );
            assert!(codes.iter().all(|&c| c == -1.0), "codes left untouched");
        }
    }
}

#[test]
fn the_first_bad_value_in_row_major_order_is_named_and_all_are_counted() {
    let (n, k) = (300, 7); // more than one scan block
    let mut s = scores(n, k);
    for at in [299 * k + 6, 250 * k, 123 * k + 4, 123 * k + 5] {
        s[at] = f32::NAN;
    }
    let (result, _) = run(&SingleProcess, &s, n, k, Stabilization::Stable);
    let err = result.unwrap_err();
    assert_eq!(
        err,
        SinkhornError::NonFinite {
            row: 123,
            column: 4,
            count: 4
        }
    );
    assert_eq!(
        err.to_string(),
        "sinkhorn: 4 score(s) are NaN or infinite, the first at row 123, column 4"
    );
}

#[test]
fn finite_scores_are_never_mistaken_for_bad_ones_and_overflow_is_refused_not_spread() {
    let (n, k) = (8, 3);
    // Up to |s| = 1.7e37, s / 0.05 is a finite f32: the log domain gives finite codes even
    // though the spread (max - min) / ε overflows.
    for big in [1.0e30f32, 1.0e37, 1.7e37] {
        let mut s = scores(n, k);
        s[0] = big;
        s[1] = -big;
        let (result, codes) = run(&SingleProcess, &s, n, k, Stabilization::Stable);
        assert_eq!(result, Ok(swav_core::SinkhornPath::LogDomain), "{big}");
        assert!(codes.iter().all(|c| c.is_finite()), "{big}");
    }
    // Beyond it s / ε is infinite: refused rather than returned as NaN codes.
    for big in [1.72e37f32, 3.0e38] {
        let mut s = scores(n, k);
        s[4] = -big;
        let (result, codes) = run(&SingleProcess, &s, n, k, Stabilization::Stable);
        assert_eq!(result, Err(SinkhornError::ScaledScoresOverflow), "{big}");
        assert!(codes.iter().all(|&c| c == -1.0), "codes left untouched");
    }
}

#[test]
fn every_rank_refuses_when_one_rank_has_a_nan_and_none_waits_forever() {
    let (n, k) = (24, 5);
    let all = scores(2 * n, k);
    for stabilization in [Stabilization::Stable, Stabilization::Plain] {
        let ranks = ThreadGroup::new(2, Duration::from_secs(20));
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranks
                .into_iter()
                .enumerate()
                .map(|(r, comm)| {
                    let mut part = all[r * n * k..(r + 1) * n * k].to_vec();
                    if r == 1 {
                        part[3 * k + 4] = f32::NAN;
                    }
                    scope.spawn(move || run(&comm, &part, n, k, stabilization).0)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results[0],
            Err(SinkhornError::NonFiniteOnAnotherRank),
            "{stabilization:?}"
        );
        assert_eq!(
            results[1],
            Err(SinkhornError::NonFinite {
                row: 3,
                column: 4,
                count: 1
            }),
            "{stabilization:?}"
        );
    }
}

#[test]
fn assign_codes_stops_on_a_non_finite_embedding_instead_of_spreading_it() {
    let (bs, k, d) = (16, 4, 3);
    let mut rng = SplitMix64::new(3);
    let mut embeddings: Vec<f32> = cast(&unit_rows(&mut rng, 2 * bs, d));
    let prototypes: Vec<f32> = cast(&unit_rows(&mut rng, k, d));
    embeddings[(bs + 5) * d + 1] = f32::NAN; // crop 1, sample 5
    let mut ops = SliceOps;
    let mut scores = vec![0.0f32; 2 * bs * k];
    swav_core::MatrixOps::matmul_nt(
        &mut ops,
        &embeddings,
        &prototypes,
        2 * bs,
        k,
        d,
        &mut scores,
    )
    .unwrap();
    let crops = [0, 1];
    let layout = AssignmentLayout {
        batch: bs,
        prototypes: k,
        dim: d,
        crops_for_assign: &crops,
    };
    let mut ws = AssignmentWorkspace::new(&mut ops, &layout, 0).unwrap();
    let mut codes = vec![vec![0.0f32; bs * k]; 2];
    let inputs = AssignmentInputs {
        layout: &layout,
        scores: &scores,
        embeddings: &embeddings,
        prototypes: &prototypes,
    };
    let err = assign_codes(
        &mut ops,
        &SingleProcess,
        inputs,
        None,
        &SinkhornConfig::default(),
        &mut ws,
        &mut codes,
    )
    .unwrap_err();
    // The row counts the crop's batch: sample 5, and all of its k scores are NaN.
    assert_eq!(
        err,
        SinkhornError::NonFinite {
            row: 5,
            column: 0,
            count: k
        }
    );
}
