//! The fused LARC + SGD step of every parameter equals swav-core's per-tensor step to the
//! last bit: norms, scalings, momentum buffers and parameters, over tensors of every size
//! class (empty, a few values, many chunks), zero gradients and parameters, a frozen tensor
//! without a gradient, the first step and the later ones, and both LARC modes.

use swav_core::{Lars, LarsParam, MomentumState, ParamKind};
use swav_cpu::CpuBackend;
use swav_nn::OptimizerOps;

/// A tensor's parameter, gradient (if any), momentum buffer, state and kind.
type Tensor = (
    Vec<f32>,
    Option<Vec<f32>>,
    Vec<f32>,
    MomentumState,
    ParamKind,
);

fn values(len: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            scale * ((x % 20_001) as f32 / 10_000.0 - 1.0)
        })
        .collect()
}

fn tensors() -> Vec<Tensor> {
    let lens = [0, 1, 7, 64, 16_384, 16_385, 100_003];
    let mut out: Vec<Tensor> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let kind = if len < 100 {
                ParamKind::BiasOrNorm
            } else {
                ParamKind::Weight
            };
            let grad = Some(values(len, 7 + i as u32, 1e-3));
            (
                values(len, 1 + i as u32, 0.1),
                grad,
                vec![0.0; len],
                MomentumState::default(),
                kind,
            )
        })
        .collect();
    // A zero gradient (no adaptation, no decay), a zero parameter, and a frozen tensor.
    out.push((
        values(50, 40, 0.1),
        Some(vec![0.0; 50]),
        vec![0.0; 50],
        Default::default(),
        ParamKind::Weight,
    ));
    out.push((
        vec![0.0; 30],
        Some(values(30, 41, 1e-3)),
        vec![0.0; 30],
        Default::default(),
        ParamKind::Weight,
    ));
    out.push((
        values(20, 42, 0.1),
        None,
        vec![0.0; 20],
        Default::default(),
        ParamKind::Weight,
    ));
    out
}

fn params(tensors: &mut [Tensor]) -> Vec<LarsParam<'_, Vec<f32>>> {
    tensors
        .iter_mut()
        .map(|(param, grad, momentum, state, kind)| LarsParam {
            param,
            grad: grad.as_ref(),
            momentum,
            state,
            kind: *kind,
        })
        .collect()
}

fn bits(tensors: &[Tensor]) -> Vec<(Vec<u32>, Vec<u32>, bool)> {
    tensors
        .iter()
        .map(|(p, _, m, s, _)| {
            let b = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect();
            (b(p), b(m), s.initialised)
        })
        .collect()
}

#[test]
fn the_fused_step_equals_the_per_tensor_step_bit_for_bit() {
    for lars in [
        Lars::default(),
        Lars {
            clip: true,
            exclude_bias_and_norm: true,
            ..Lars::default()
        },
        Lars::plain_sgd(0.9, 1e-4),
    ] {
        let (mut fused, mut reference) = (tensors(), tensors());
        let mut b = CpuBackend::new();
        for (step, lr) in [0.3f32, 0.25, 0.1].into_iter().enumerate() {
            b.lars_step(&lars, &mut params(&mut fused), lr).unwrap();
            lars.step_all(&mut b, &mut params(&mut reference), lr)
                .unwrap();
            assert_eq!(bits(&fused), bits(&reference), "step {step} of {lars:?}");
        }
        let frozen = &fused[fused.len() - 1];
        assert!(
            !frozen.3.initialised,
            "a tensor without a gradient is left alone"
        );
        assert_eq!(frozen.2, vec![0.0; 20]);
    }
}
