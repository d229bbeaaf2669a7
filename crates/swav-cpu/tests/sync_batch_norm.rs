//! Synchronised batch norm through the collective: two ranks with two images each behave
//! like one process with all four (statistics over the global batch and count, running
//! statistics with the global unbiased variance, gradients that sum to the single-process
//! ones).

use std::time::Duration;

use swav_core::{SingleProcess, ThreadGroup};
use swav_cpu::CpuBackend;
use swav_nn::{BufferView, CropGroup, SwavModel, hashed_uniform};

const SIDE: usize = 16;
const CROPS: usize = 2;

/// Image `n` of crop `c` (the same on every layout).
fn image(c: usize, n: usize) -> Vec<f32> {
    let len = SIDE * SIDE * 3;
    (0..len)
        .map(|i| hashed_uniform(70 + c as u64, (n * len + i) as u64))
        .collect()
}

/// A crop-major group holding images `first..first + batch` of every crop.
fn group_images(first: usize, batch: usize) -> Vec<f32> {
    (0..CROPS)
        .flat_map(|c| (first..first + batch).flat_map(move |n| image(c, n)))
        .collect()
}

/// The score cotangent of image `n`, crop `c` (`k` prototypes).
fn cotangent(c: usize, n: usize, k: usize) -> Vec<f32> {
    (0..k)
        .map(|j| hashed_uniform(80, ((c * 100 + n) * k + j) as u64))
        .collect()
}

struct Outcome {
    /// Embeddings per (crop, image).
    embeddings: Vec<((usize, usize), Vec<f32>)>,
    grads: Vec<Vec<f32>>,
    running: Vec<Vec<f32>>,
}

/// One training step on images `first..first + batch` with collective `comm`.
fn step<C: swav_core::Collective<Vec<f32>>>(first: usize, batch: usize, comm: &C) -> Outcome
where
    C::Error: std::fmt::Debug,
{
    let mut b = CpuBackend::new();
    let config = swav_nn::conformance::small_config();
    let (k, d) = (config.prototypes, config.output_dim);
    let mut model = SwavModel::new(&mut b, config, 5).unwrap();
    let images = group_images(first, batch);
    let groups = [CropGroup {
        images: &images,
        crops: CROPS,
        height: SIDE,
        width: SIDE,
    }];
    model.forward_train(&mut b, &groups, batch, comm).unwrap();
    let z = model.embeddings().unwrap();
    let mut embeddings = Vec::new();
    let mut d_scores = Vec::new();
    for c in 0..CROPS {
        for n in 0..batch {
            let row = c * batch + n;
            embeddings.push(((c, first + n), z[row * d..(row + 1) * d].to_vec()));
            d_scores.extend(cotangent(c, first + n, k));
        }
    }
    model.backward(&mut b, &d_scores, comm).unwrap();
    Outcome {
        embeddings,
        grads: model.params().iter().map(|p| p.grad.clone()).collect(),
        running: model
            .buffers()
            .into_iter()
            .filter_map(|buffer| match buffer {
                BufferView::RunningStat { value, .. } => Some(value.clone()),
                BufferView::BatchCount { .. } => None,
            })
            .collect(),
    }
}

/// Within `tol` of the largest magnitude, plus 1e-6 absolute (the rounding noise of
/// gradients that are zero in exact arithmetic, like a bias before batch norm).
fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale + 1e-6,
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

#[test]
fn two_ranks_match_one_process_with_the_whole_batch() {
    let whole = step(0, 4, &SingleProcess);
    let ranks = ThreadGroup::new(2, Duration::from_secs(120));
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .into_iter()
            .enumerate()
            .map(|(r, comm)| s.spawn(move || step(2 * r, 2, &comm)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for outcome in &outcomes {
        for (key, z) in &outcome.embeddings {
            let (_, want) = whole.embeddings.iter().find(|(k, _)| k == key).unwrap();
            close(z, want, 1e-4, &format!("embedding {key:?}"));
        }
    }
    // Every rank holds the same running statistics: those of the global batch.
    for (i, (a, b)) in outcomes[0]
        .running
        .iter()
        .zip(&outcomes[1].running)
        .enumerate()
    {
        assert_eq!(a, b, "running statistic {i} differs between ranks");
        close(
            a,
            &whole.running[i],
            1e-4,
            &format!("running statistic {i}"),
        );
    }
    // Gradients are local: their sum over ranks is the whole batch's.
    for (i, want) in whole.grads.iter().enumerate() {
        let sum: Vec<f32> = outcomes[0].grads[i]
            .iter()
            .zip(&outcomes[1].grads[i])
            .map(|(a, b)| a + b)
            .collect();
        close(&sum, want, 2e-3, &format!("gradient {i}"));
    }
}
