//! The feature queue, step by step, with the official semantics.

mod common;

use common::*;
use swav_core::{
    AssignmentInputs, AssignmentLayout, AssignmentWorkspace, FeatureQueue, MatrixOps,
    SingleProcess, SinkhornConfig, SliceOps, assign_codes,
};

#[test]
fn length_is_rounded_down_to_a_multiple_of_the_global_batch() {
    assert_eq!(FeatureQueue::<Vec<f32>>::rows_per_rank(3840, 64, 4), 960);
    assert_eq!(FeatureQueue::<Vec<f32>>::rows_per_rank(3840, 64, 1), 3840);
    assert_eq!(FeatureQueue::<Vec<f32>>::rows_per_rank(2560, 40, 64), 40);
    assert_eq!(
        FeatureQueue::<Vec<f32>>::rows_per_rank(1000, 64, 4),
        768 / 4
    );
    assert_eq!(FeatureQueue::<Vec<f32>>::rows_per_rank(100, 64, 4), 0);
    assert_eq!(FeatureQueue::<Vec<f32>>::rows_per_rank(0, 64, 1), 0);
}

fn rows_of(q: &[f32], row: usize, dim: usize) -> &[f32] {
    &q[row * dim..(row + 1) * dim]
}

#[test]
fn fills_newest_first_is_used_only_once_full_and_shifts_by_one_batch() {
    let mut ops = SliceOps;
    let (batch, dim, rows) = (2, 3, 6);
    let mut queue = FeatureQueue::new(&mut ops, 1, rows, dim, batch).unwrap();
    let batch_of = |step: usize| -> Vec<f32> {
        (0..batch * dim)
            .map(|i| (step * 100 + i + 1) as f32)
            .collect()
    };
    for step in 0..3 {
        assert!(
            !queue.should_use(&mut ops, 0).unwrap(),
            "not full before step {step}"
        );
        queue.push(&mut ops, 0, &batch_of(step), 0).unwrap();
        let host: Vec<f32> = queue.to_host(&mut ops).unwrap();
        // Newest batch on top, previous ones below, zeros at the bottom until full.
        assert_eq!(rows_of(&host, 0, dim), &batch_of(step)[..dim]);
        assert_eq!(rows_of(&host, 1, dim), &batch_of(step)[dim..]);
        if step > 0 {
            assert_eq!(rows_of(&host, 2, dim), &batch_of(step - 1)[..dim]);
        }
        if step < 2 {
            assert!(rows_of(&host, rows - 1, dim).iter().all(|v| *v == 0.0));
        }
    }
    assert!(
        queue.should_use(&mut ops, 0).unwrap(),
        "full after three batches"
    );
    // One more push drops the oldest batch.
    queue.push(&mut ops, 0, &batch_of(3), 0).unwrap();
    let host: Vec<f32> = queue.to_host(&mut ops).unwrap();
    assert_eq!(rows_of(&host, 4, dim), &batch_of(1)[..dim]);
    assert!(!host.contains(&batch_of(0)[0]));
    // A new epoch re-checks, and a full queue is used again at once.
    queue.start_epoch();
    assert!(!queue.in_use());
    assert!(queue.should_use(&mut ops, 0).unwrap());
}

#[test]
fn the_in_use_flag_is_shared_between_assignment_crops() {
    // Official: `if use_the_queue or not all(queue[i, -1] == 0)`; once crop 0 found its queue
    // full, crop 1 uses its queue too, even if that one is still (partly) zero.
    let mut ops = SliceOps;
    let mut queue = FeatureQueue::new(&mut ops, 2, 2, 1, 1).unwrap();
    queue.push(&mut ops, 0, &vec![1.0f32], 0).unwrap();
    queue.push(&mut ops, 0, &vec![2.0f32], 0).unwrap();
    assert!(queue.should_use(&mut ops, 0).unwrap());
    assert!(queue.should_use(&mut ops, 1).unwrap());
}

#[test]
fn checkpoint_round_trip_keeps_the_contents() {
    let mut ops = SliceOps;
    let mut queue = FeatureQueue::new(&mut ops, 2, 4, 2, 2).unwrap();
    queue
        .push(&mut ops, 0, &vec![1.0f64, 2.0, 3.0, 4.0], 0)
        .unwrap();
    queue
        .push(&mut ops, 1, &vec![5.0f64, 6.0, 7.0, 8.0, 9.0, 10.0], 1)
        .unwrap();
    let host = queue.to_host(&mut ops).unwrap();
    let restored = FeatureQueue::from_host(&mut ops, &host, 2, 4, 2, 2).unwrap();
    assert_eq!(restored.to_host(&mut ops).unwrap(), host);
    assert_eq!(&host[8..12], &[7.0, 8.0, 9.0, 10.0]);
}

#[test]
fn assignment_uses_queue_scores_with_the_current_prototypes() {
    // With the queue in use, the codes of the batch are the last rows of Sinkhorn run on
    // [queue · Wᵀ ; batch scores]: check against doing exactly that by hand.
    let mut rng = SplitMix64::new(21);
    let (bs, k, d, queue_rows) = (3, 5, 4, 6);
    let crops = [0usize];
    let layout = AssignmentLayout {
        batch: bs,
        prototypes: k,
        dim: d,
        crops_for_assign: &crops,
    };
    let mut ops = SliceOps;
    let w = unit_rows(&mut rng, k, d);
    let past = unit_rows(&mut rng, queue_rows, d);
    let z = unit_rows(&mut rng, 2 * bs, d);
    let mut scores = vec![0.0; 2 * bs * k];
    ops.matmul_nt(&z, &w, 2 * bs, k, d, &mut scores).unwrap();
    let mut queue = FeatureQueue::from_host(&mut ops, &past, 1, queue_rows, d, bs).unwrap();
    let mut ws = AssignmentWorkspace::new(&mut ops, &layout, queue_rows).unwrap();
    let mut codes = vec![vec![0.0; bs * k]];
    let config = SinkhornConfig::default();
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

    let mut stacked = vec![0.0; (queue_rows + bs) * k];
    ops.matmul_nt(&past, &w, queue_rows, k, d, &mut stacked)
        .unwrap();
    stacked[queue_rows * k..].copy_from_slice(&scores[..bs * k]);
    let (all, _) = run_sinkhorn(&stacked, queue_rows + bs, k, 0.05, 3, Default::default());
    assert!(max_rel_diff(&codes[0], &all[queue_rows * k..], 1e-15) < 1e-13);
    // And the queue now starts with this batch's crop-0 embeddings.
    let host = queue.to_host(&mut ops).unwrap();
    assert_eq!(&host[..bs * d], &z[..bs * d]);
    assert_eq!(&host[bs * d..], &past[..(queue_rows - bs) * d]);
}
