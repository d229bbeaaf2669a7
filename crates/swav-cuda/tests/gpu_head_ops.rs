//! The CUDA backend's `HeadOps<f32>`: swav-nn's shared check of every operation (and of
//! Sinkhorn and the swapped-prediction loss) against `swav_core::SliceOps`, then what only
//! this backend has: copies into bf16 buffers and the fused multi-tensor LARS step, against
//! `Lars::step` one tensor at a time.
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::{Rng, assert_close, download, gpu, upload, wide};
use swav_core::{HeadOps, Lars, LarsParam, MomentumState, ParamKind, SliceOps};
use swav_cuda::{CudaBackend, DType, Precision};
use swav_nn::prelude::*;

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

#[test]
fn multi_tensor_lars_matches_single_tensor_steps() {
    let Some(mut g) = backend() else { return };
    let mut c = SliceOps;
    let mut rng = Rng::new(8);
    let lars = Lars::<f32>::default();
    // A conv-like weight spanning several chunks, a bias at zero (the unscaled corner case),
    // a small norm parameter, and a frozen tensor (no gradient).
    let lens = [200_000usize, 64, 64, 3000];
    let kinds = [
        ParamKind::Weight,
        ParamKind::BiasOrNorm,
        ParamKind::BiasOrNorm,
        ParamKind::Weight,
    ];
    let mut hp: Vec<Vec<f32>> = lens.iter().map(|&n| rng.vec(n, 0.1, 0.0)).collect();
    hp[1].iter_mut().for_each(|v| *v = 0.0);
    let hg: Vec<Vec<f32>> = lens.iter().map(|&n| rng.vec(n, 0.01, 0.0)).collect();
    let mut hb: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
    let mut hs = vec![MomentumState::default(); 4];
    let mut gp: Vec<_> = hp.iter().map(|p| upload(&mut g, p)).collect();
    let gg: Vec<_> = hg.iter().map(|x| upload(&mut g, x)).collect();
    let mut gb: Vec<_> = lens.iter().map(|&n| g.zeros(n).unwrap()).collect();
    let mut gs = vec![MomentumState::default(); 4];

    for (step, lr) in [0.3f32, 0.6, 0.45].into_iter().enumerate() {
        for t in 0..3 {
            let mut tensor = LarsParam {
                param: &mut hp[t],
                grad: Some(&hg[t]),
                momentum: &mut hb[t],
                state: &mut hs[t],
                kind: kinds[t],
            };
            lars.step(&mut c, &mut tensor, lr).unwrap();
        }
        let mut params: Vec<LarsParam<'_, swav_cuda::CudaBuffer>> = gp
            .iter_mut()
            .zip(gb.iter_mut())
            .zip(gs.iter_mut())
            .enumerate()
            .map(|(t, ((param, momentum), state))| LarsParam {
                param,
                grad: (t < 3).then(|| &gg[t]),
                momentum,
                state,
                kind: kinds[t],
            })
            .collect();
        g.lars_step(&lars, &mut params, lr).unwrap();
        for t in 0..4 {
            assert_close(
                &format!("step {step}, tensor {t}"),
                &download(&mut g, &gp[t], lens[t]),
                &wide(&hp[t]),
                1e-6,
            );
        }
        assert_eq!(gs, hs, "momentum states after step {step}");
    }
}
