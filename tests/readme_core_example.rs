//! The swav-core example of docs/usage.md ("swav-core on your own embeddings"), kept
//! compiling and correct. (The file's name dates from when the example was in the README.)

use swav::swav_core::{
    MatrixOps, SingleProcess, SinkhornConfig, SinkhornWorkspace, SliceOps, sinkhorn,
};

#[test]
fn readme_sinkhorn_example_splits_the_batch_evenly() {
    let (n, k, d) = (4, 2, 2);
    let z = vec![1.0f32, 0.0, 0.8, 0.6, 0.0, 1.0, 0.6, 0.8];
    let prototypes = vec![1.0f32, 0.0, 0.0, 1.0];
    let mut ops = SliceOps;
    let mut scores = vec![0.0f32; n * k];
    ops.matmul_nt(&z, &prototypes, n, k, d, &mut scores)
        .unwrap();
    let mut codes = vec![0.0f32; n * k];
    let mut ws = SinkhornWorkspace::new(&mut ops, n, k).unwrap();
    sinkhorn(
        &mut ops,
        &SingleProcess,
        &scores,
        &SinkhornConfig::default(),
        &mut ws,
        &mut codes,
    )
    .unwrap();
    // Samples 0 and 1 lean to prototype 0, samples 2 and 3 to prototype 1.
    assert!(codes[0] > 0.5 && codes[2] > 0.5);
    assert!(codes[5] > 0.5 && codes[7] > 0.5);
    let mass0: f32 = codes.iter().step_by(2).sum();
    assert!(
        (mass0 - 2.0).abs() < 0.05,
        "prototype 0 receives half the batch: {mass0}"
    );
}
