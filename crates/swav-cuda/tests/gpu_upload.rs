//! The double-buffered batch upload: batches arrive intact and in order, converted to the
//! activation type, while the host stages the next one.
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::{Rng, bf16_round, download, gpu};
use swav_cuda::{BatchUploader, Precision};

fn as_slices(batch: &[Vec<f32>]) -> Vec<&[f32]> {
    batch.iter().map(Vec::as_slice).collect()
}

#[test]
fn batches_arrive_in_order_and_converted() {
    let Some(mut g) = gpu(Precision::MixedBf16) else {
        return;
    };
    let lens = [2 * 4 * 32 * 32 * 3, 6 * 4 * 16 * 16 * 3];
    let mut uploader = BatchUploader::new(&g, &lens).unwrap();
    let mut rng = Rng::new(31);
    let batches: Vec<Vec<Vec<f32>>> = (0..5)
        .map(|_| lens.iter().map(|&n| rng.vec(n, 2.0, 0.0)).collect())
        .collect();
    let mut inputs: Vec<_> = lens
        .iter()
        .map(|&n| g.alloc_activation(n).unwrap())
        .collect();

    uploader.upload(&as_slices(&batches[0])).unwrap();
    for step in 0..batches.len() {
        {
            let mut targets: Vec<_> = inputs.iter_mut().collect();
            uploader.receive(&mut g, &mut targets).unwrap();
        }
        if step + 1 < batches.len() {
            // Staged through the zero-copy path for odd steps, the copying one for even.
            if step % 2 == 0 {
                uploader.upload(&as_slices(&batches[step + 1])).unwrap();
            } else {
                let mut staged = uploader.stage().unwrap();
                for (dst, src) in staged
                    .groups_mut()
                    .unwrap()
                    .into_iter()
                    .zip(&batches[step + 1])
                {
                    dst.copy_from_slice(src);
                }
                staged.submit().unwrap();
            }
        }
        for (group, input) in inputs.iter().enumerate() {
            let got = download(&mut g, input, lens[group]);
            assert_eq!(
                got,
                bf16_round(&batches[step][group]),
                "step {step}, group {group}"
            );
        }
    }
}
