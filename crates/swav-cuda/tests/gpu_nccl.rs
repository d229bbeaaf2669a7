//! The NCCL collective with a world of one: reductions are identities computed by NCCL,
//! Sinkhorn through it gives the same codes as through `SingleProcess`, and the gradient
//! buckets' communication stream (its events, its own stream, NCCL on it) runs step after
//! step and hands every bucket back whole.
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::{Rng, download, gpu, upload};
use swav_core::{
    BufferOps, Collective, MatrixOps, SingleProcess, SinkhornConfig, SinkhornWorkspace, sinkhorn,
};
use swav_cuda::{DType, NcclBucketStream, NcclCollective, NcclId, Precision};

#[test]
fn single_rank_collective_is_the_identity() {
    let Some(mut g) = gpu(Precision::F32) else {
        return;
    };
    let comm = NcclCollective::single(&g).expect("NCCL must load on the GPU machine (gpu-env.sh)");
    assert_eq!((comm.rank(), comm.world_size()), (0, 1));
    let mut rng = Rng::new(21);
    let x = rng.vec(10_001, 1.0, 0.0);
    let mut buf = upload(&mut g, &x);
    comm.all_reduce_sum(&mut buf).unwrap();
    comm.all_reduce_max(&mut buf).unwrap();
    assert_eq!(download(&mut g, &buf, x.len()), x);

    let mut half = g.alloc(x.len(), DType::Bf16).unwrap();
    g.copy(&buf, 0, &mut half, 0, x.len()).unwrap();
    let before = download(&mut g, &half, x.len());
    let mut other = upload(&mut g, &x);
    comm.all_reduce_sum_many(&mut [&mut half, &mut other])
        .unwrap();
    assert_eq!(download(&mut g, &half, x.len()), before);
    assert_eq!(download(&mut g, &other, x.len()), x);
}

#[test]
fn the_bucket_stream_is_ordered_with_the_compute_stream() {
    let Some(mut g) = gpu(Precision::F32) else {
        return;
    };
    let world = NcclCollective::single(&g).expect("NCCL must load on the GPU machine (gpu-env.sh)");
    let mut buckets_stream =
        NcclBucketStream::new(&mut g, &world).expect("the communication stream");
    let mut rng = Rng::new(5);
    // Three steps of three 4 M-value buckets, filled on the compute stream, summed on the
    // communication stream, read back on the compute stream: the events, the second stream
    // and NCCL on it must work, and the sums come back whole. With one rank a sum is the
    // bucket itself, so a missing wait cannot change a value here: that takes two ranks.
    for step in 0..3 {
        let sources: Vec<Vec<f32>> = (0..3).map(|_| rng.vec(1 << 22, 1.0, 0.0)).collect();
        let staged: Vec<_> = sources.iter().map(|s| upload(&mut g, s)).collect();
        let mut buckets: Vec<_> = (0..3)
            .map(|_| g.alloc(1 << 22, DType::F32).unwrap())
            .collect();
        for (from, bucket) in staged.iter().zip(&mut buckets) {
            // Enqueued on the compute stream; the launch must wait for it.
            g.copy(from, 0, bucket, 0, 1 << 22).unwrap();
            buckets_stream.launch(&g, bucket).unwrap();
        }
        buckets_stream.join(&g).unwrap();
        // The compute stream now reads each sum (with a world of one, the bucket itself).
        let mut read = g.alloc(1 << 22, DType::F32).unwrap();
        for (source, bucket) in sources.iter().zip(&buckets) {
            g.copy(bucket, 0, &mut read, 0, 1 << 22).unwrap();
            assert!(
                download(&mut g, &read, 1 << 22) == *source,
                "step {step}: a bucket differs"
            );
        }
    }
}

#[test]
fn sinkhorn_through_nccl_matches_single_process() {
    let Some(mut g) = gpu(Precision::F32) else {
        return;
    };
    let comm = NcclCollective::single(&g).unwrap();
    let mut rng = Rng::new(22);
    let (n, k, d) = (64, 100, 16);
    let z = rng.unit_rows(n, d);
    let w = rng.unit_rows(k, d);
    let (gz, gw) = (upload(&mut g, &z), upload(&mut g, &w));
    let mut scores = g.zeros(n * k).unwrap();
    g.matmul_nt(&gz, &gw, n, k, d, &mut scores).unwrap();
    let config = SinkhornConfig::default();
    let mut run = |through_nccl: bool| {
        let mut codes = g.zeros(n * k).unwrap();
        let mut ws = SinkhornWorkspace::new(&mut g, n, k).unwrap();
        if through_nccl {
            sinkhorn(&mut g, &comm, &scores, &config, &mut ws, &mut codes).unwrap();
        } else {
            sinkhorn(
                &mut g,
                &SingleProcess,
                &scores,
                &config,
                &mut ws,
                &mut codes,
            )
            .unwrap();
        }
        download(&mut g, &codes, n * k)
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn ids_round_trip_through_bytes() {
    let Some(_g) = gpu(Precision::F32) else {
        return;
    };
    let id = NcclId::new().unwrap();
    let again = NcclId::from_bytes(id.to_bytes());
    assert_eq!(id.to_bytes(), again.to_bytes());
}
