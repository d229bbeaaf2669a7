//! Input batches staged through pinned memory and the copy stream (`stage_inputs` and
//! `await_staged_inputs`, the swav-nn `Backend` methods): they arrive intact, converted to
//! the activation type and in order while the next one is staged; batches staged back to
//! back, with no download between them to hold the host back, each arrive intact (a
//! staging slot is not rewritten while its last copy still reads it); a staged copy waits
//! for the work that still reads its input buffers; and a batch of another size gets new
//! staging memory.
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::{Rng, bf16_round, download, gpu, upload};
use swav_cuda::{CudaBackend, CudaBuffer, Precision};
use swav_nn::prelude::*;

fn as_slices(batch: &[Vec<f32>]) -> Vec<&[f32]> {
    batch.iter().map(Vec::as_slice).collect()
}

fn input_set(g: &mut CudaBackend, lens: &[usize]) -> Vec<CudaBuffer> {
    lens.iter()
        .map(|&n| g.alloc_activation(n).unwrap())
        .collect()
}

#[test]
fn staged_batches_arrive_in_order_and_converted() {
    let Some(mut g) = gpu(Precision::MixedBf16) else {
        return;
    };
    let lens = [2 * 4 * 32 * 32 * 3, 6 * 4 * 16 * 16 * 3];
    let mut rng = Rng::new(31);
    let batches: Vec<Vec<Vec<f32>>> = (0..5)
        .map(|_| lens.iter().map(|&n| rng.vec(n, 2.0, 0.0)).collect())
        .collect();
    let mut sets = [input_set(&mut g, &lens), input_set(&mut g, &lens)];

    g.stage_inputs(&as_slices(&batches[0]), &mut sets[0])
        .unwrap();
    for step in 0..batches.len() {
        g.await_staged_inputs().unwrap();
        if step + 1 < batches.len() {
            g.stage_inputs(&as_slices(&batches[step + 1]), &mut sets[(step + 1) % 2])
                .unwrap();
        }
        for (group, input) in sets[step % 2].iter().enumerate() {
            let got = download(&mut g, input, lens[group]);
            assert_eq!(
                got,
                bf16_round(&batches[step][group]),
                "step {step}, group {group}"
            );
        }
    }
}

#[test]
fn back_to_back_batches_arrive_intact_without_a_download_between() {
    let Some(mut g) = gpu(Precision::F32) else {
        return;
    };
    // Keep the compute stream busy (about 0.1 s of device copies at H200 rates, several times
    // what the host needs to stage the batches) so that every staged conversion, and behind
    // it every later host-to-device copy on the copy stream, is held up while the host stages
    // the next batches: a slot whose pinned memory were rewritten before its copy ran would
    // deliver the newer batch.
    let busy_len = 1 << 26;
    let busy = g.zeros(busy_len).unwrap();
    let mut sink = g.zeros(busy_len).unwrap();
    let len = 1 << 22;
    let batches: Vec<Vec<f32>> = (0..6)
        .map(|k| {
            (0..len)
                .map(|i| (k * 1_000_003 + i % 65_521) as f32)
                .collect()
        })
        .collect();
    let mut sets: Vec<Vec<CudaBuffer>> = (0..batches.len())
        .map(|_| vec![g.zeros(len).unwrap()])
        .collect();
    g.synchronize().unwrap();
    for _ in 0..1000 {
        g.copy(&busy, 0, &mut sink, 0, busy_len).unwrap();
    }
    for (batch, set) in batches.iter().zip(sets.iter_mut()) {
        g.stage_inputs(&[batch], set).unwrap();
        g.await_staged_inputs().unwrap();
    }
    g.synchronize().unwrap();
    for (k, (batch, set)) in batches.iter().zip(&sets).enumerate() {
        let got = download(&mut g, &set[0], len);
        let wrong = got.iter().zip(batch).filter(|(a, b)| a != b).count();
        assert_eq!(
            wrong, 0,
            "batch {k}: {wrong} of {len} values are not the batch staged"
        );
    }
}

#[test]
fn a_staged_copy_waits_for_earlier_readers() {
    let Some(mut g) = gpu(Precision::F32) else {
        return;
    };
    // 256 MB of input that the compute stream keeps reading for a while after staging starts.
    let n = 1 << 26;
    let old: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let new: Vec<f32> = (0..n).map(|i| -((i % 777) as f32)).collect();
    let mut inputs = vec![upload(&mut g, &old)];
    let mut read = g.zeros(n).unwrap();
    // Both staging slots allocated beforehand, so that staging is quick below.
    for _ in 0..2 {
        let mut scratch = vec![g.zeros(n).unwrap()];
        g.stage_inputs(&[&old], &mut scratch).unwrap();
        g.await_staged_inputs().unwrap();
    }
    g.synchronize().unwrap();
    // About 0.2 s of copies (at ~3 TB/s) that read the inputs, still running while the
    // host stages the next batch (a host copy and a 256 MB transfer, a few tens of ms).
    for _ in 0..1000 {
        g.copy(&inputs[0], 0, &mut read, 0, n).unwrap();
    }
    g.stage_inputs(&[&new], &mut inputs).unwrap();
    g.await_staged_inputs().unwrap();
    assert!(
        download(&mut g, &read, n) == old,
        "the staged batch overwrote the inputs while earlier work still read them"
    );
    assert!(
        download(&mut g, &inputs[0], n) == new,
        "the staged batch did not arrive"
    );
}

#[test]
fn batches_of_another_size_get_new_staging_memory() {
    let Some(mut g) = gpu(Precision::MixedBf16) else {
        return;
    };
    let mut rng = Rng::new(32);
    for lens in [
        [3 * 8 * 8 * 3, 0],
        [5 * 16 * 16 * 3, 7 * 4 * 4 * 3],
        [12, 34],
    ] {
        for _ in 0..3 {
            let batch: Vec<Vec<f32>> = lens.iter().map(|&n| rng.vec(n, 1.0, 0.0)).collect();
            let mut inputs = input_set(&mut g, &lens);
            g.stage_inputs(&as_slices(&batch), &mut inputs).unwrap();
            g.await_staged_inputs().unwrap();
            for (group, input) in inputs.iter().enumerate() {
                assert_eq!(
                    download(&mut g, input, lens[group]),
                    bf16_round(&batch[group]),
                    "lens {lens:?}, group {group}"
                );
            }
        }
    }
}
