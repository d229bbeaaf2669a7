//! The CUDA backend's `HeadOps<f32>`: swav-nn's shared check of every operation (and of
//! Sinkhorn and the swapped-prediction loss) against `swav_core::SliceOps`, then what only
//! this backend has: copies into bf16 buffers. (The fused multi-tensor LARS step is held to
//! `Lars::step_all` by the shared `optimizer_ops` test of `gpu_conformance.rs`.)
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::{Rng, download, gpu, upload};
use swav_core::BufferOps;
use swav_cuda::{CudaBackend, DType, Precision};

fn backend() -> Option<CudaBackend> {
    gpu(Precision::F32)
}

#[test]
fn head_ops_agree_with_slice_ops() {
    let Some(mut g) = backend() else { return };
    swav_nn::conformance::check_head_ops(&mut g);
}

#[test]
fn copies_into_bf16_round_to_nearest() {
    let Some(mut g) = backend() else { return };
    let x = Rng::new(2).vec(1000, 1.0, 0.0);
    let gx = upload(&mut g, &x);
    let mut b = g.alloc(1000, DType::Bf16).unwrap();
    g.copy(&gx, 0, &mut b, 0, 1000).unwrap();
    let back = download(&mut g, &b, 1000);
    assert_eq!(back, common::bf16_round(&x));
}
