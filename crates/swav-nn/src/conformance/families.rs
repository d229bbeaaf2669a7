//! One conformance entry point per op family of [`Backend`], and
//! [`backend_conformance_tests!`](crate::backend_conformance_tests), which registers them all
//! as `#[test]`s under the same names in every backend's test suite.

use alloc::vec;
use alloc::vec::Vec;

use swav_core::{Lars, LarsParam, MomentumState, ParamKind, SliceOps};

use super::harness::{assert_close, data, download, ok, upload};
use super::ops;
use crate::Backend;

/// [`ActivationOps`](crate::ActivationOps): activation buffers start at zero, and staged
/// input batches arrive intact once awaited, also when a second batch is staged into
/// another set of buffers before the first is read.
pub fn check_activation_ops<B: Backend>(b: &mut B) {
    let len = 1000;
    let fresh = ok(b.alloc_activation(len));
    assert!(
        download(b, &fresh, len).iter().all(|&v| v == 0.0),
        "alloc_activation: not zero-initialised"
    );
    let batches: Vec<[Vec<f32>; 2]> = (0..2u64)
        .map(|i| {
            [
                data(9000 + i, 3 * 96, 1.0, 0.0),
                data(9100 + i, 5 * 40, 1.0, 0.0),
            ]
        })
        .collect();
    let mut sets: Vec<Vec<B::Buf>> = (0..2)
        .map(|_| {
            vec![
                ok(b.alloc_activation(3 * 96)),
                ok(b.alloc_activation(5 * 40)),
            ]
        })
        .collect();
    for (batch, set) in batches.iter().zip(sets.iter_mut()) {
        let groups = [&batch[0][..], &batch[1][..]];
        ok(b.stage_inputs(&groups, set));
    }
    ok(b.await_staged_inputs());
    for (i, (batch, set)) in batches.iter().zip(&sets).enumerate() {
        for (g, (host, buf)) in batch.iter().zip(set).enumerate() {
            // Activations may be stored narrower (bf16): compare at that precision.
            let wide: Vec<f64> = host.iter().map(|&v| v as f64).collect();
            let got = download(b, buf, host.len());
            assert_close(
                &alloc::format!("staged batch {i}, group {g}"),
                &got,
                &wide,
                1e-2,
            );
        }
    }
}

/// [`ConvOps`](crate::ConvOps): every convolution direction on every ResNet geometry.
pub fn check_conv_ops<B: Backend>(b: &mut B) {
    ops::check_conv2d(b);
}

/// [`BatchNormOps`](crate::BatchNormOps): statistics, finalisation, application and both
/// backward halves in training and evaluation modes, and the ReLU backward.
pub fn check_batch_norm_ops<B: Backend>(b: &mut B) {
    ops::check_batch_norm(b);
    ops::check_relu_backward(b);
}

/// [`PoolOps`](crate::PoolOps): max pooling (with its tie rule) and global average pooling.
pub fn check_pool_ops<B: Backend>(b: &mut B) {
    ops::check_max_pool(b);
    ops::check_avg_pool(b);
}

/// [`LinearOps`](crate::LinearOps): forward, input, weight and bias gradients.
pub fn check_linear_ops<B: Backend>(b: &mut B) {
    ops::check_linear(b);
}

/// [`L2NormalizeOps`](crate::L2NormalizeOps): forward, the clamped zero row, and gradient.
pub fn check_l2_normalize_ops<B: Backend>(b: &mut B) {
    ops::check_l2_normalize(b);
}

/// [`OptimizerOps`](crate::OptimizerOps): three LARC + SGD steps of a weight spanning many
/// elements, a zero bias (the unscaled case), a norm parameter and a frozen tensor (no
/// gradient) equal [`Lars::step_all`] on host slices, momentum states included.
pub fn check_optimizer_ops<B: Backend>(b: &mut B) {
    let lars = Lars::<f32>::default();
    let lens = [200_000usize, 64, 64, 3000];
    let kinds = [
        ParamKind::Weight,
        ParamKind::BiasOrNorm,
        ParamKind::BiasOrNorm,
        ParamKind::Weight,
    ];
    let mut host: Vec<Vec<f32>> = (0..4u64)
        .map(|t| data(9200 + t, lens[t as usize], 0.1, 0.0))
        .collect();
    host[1].fill(0.0);
    let grads: Vec<Vec<f32>> = (0..4u64)
        .map(|t| data(9300 + t, lens[t as usize], 0.01, 0.0))
        .collect();
    let mut host_momentum: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
    let mut host_states = [MomentumState::default(); 4];
    let mut params: Vec<B::Buf> = host.iter().map(|p| upload(b, p)).collect();
    let device_grads: Vec<B::Buf> = grads.iter().map(|g| upload(b, g)).collect();
    let mut momentum: Vec<B::Buf> = lens.iter().map(|&n| ok(b.zeros(n))).collect();
    let mut states = [MomentumState::default(); 4];
    for (step, lr) in [0.3f32, 0.6, 0.45].into_iter().enumerate() {
        let mut reference: Vec<LarsParam<'_, Vec<f32>>> = host
            .iter_mut()
            .zip(host_momentum.iter_mut())
            .zip(host_states.iter_mut())
            .enumerate()
            .map(|(t, ((param, momentum), state))| LarsParam {
                param,
                grad: (t < 3).then(|| &grads[t]),
                momentum,
                state,
                kind: kinds[t],
            })
            .collect();
        ok(lars.step_all(&mut SliceOps, &mut reference, lr));
        let mut tested: Vec<LarsParam<'_, B::Buf>> = params
            .iter_mut()
            .zip(momentum.iter_mut())
            .zip(states.iter_mut())
            .enumerate()
            .map(|(t, ((param, momentum), state))| LarsParam {
                param,
                grad: (t < 3).then(|| &device_grads[t]),
                momentum,
                state,
                kind: kinds[t],
            })
            .collect();
        ok(b.lars_step(&lars, &mut tested, lr));
        for t in 0..4 {
            let want: Vec<f64> = host[t].iter().map(|&v| v as f64).collect();
            let got = download(b, &params[t], lens[t]);
            assert_close(
                &alloc::format!("lars step {step}, tensor {t}"),
                &got,
                &want,
                1e-6,
            );
        }
        assert_eq!(states, host_states, "lars step {step}: momentum states");
    }
}

/// Registers every op family's conformance check as a `#[test]` of the calling test crate,
/// with the same test names on every backend. `$open` is an expression giving
/// `Option<backend>`: `None` (no device) skips the test.
///
/// ```text
/// swav_nn::backend_conformance_tests!(Some(swav_cpu::CpuBackend::new()));
/// ```
#[macro_export]
macro_rules! backend_conformance_tests {
    ($open:expr) => {
        $crate::backend_conformance_tests!(@tests $open;
            activation_ops => check_activation_ops,
            conv_ops => check_conv_ops,
            batch_norm_ops => check_batch_norm_ops,
            pool_ops => check_pool_ops,
            linear_ops => check_linear_ops,
            l2_normalize_ops => check_l2_normalize_ops,
            optimizer_ops => check_optimizer_ops,
        );
    };
    (@tests $open:expr; $($name:ident => $check:ident,)*) => {
        $(
            #[test]
            fn $name() {
                if let Some(mut backend) = $open {
                    $crate::conformance::$check(&mut backend);
                }
            }
        )*
    };
}
