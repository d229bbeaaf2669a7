//! Per-operation checks: forward results against the `f64` definitions, backward results by
//! central finite differences of the forward (and against the closed forms where the
//! function has kinks).

use alloc::vec;
use alloc::vec::Vec;

use super::harness::{
    Loss, abs_dot, assert_close, check_gradient, data, dot, download, ok, upload, upload_activation,
};
use super::reference::{self, Moments};
use crate::{
    Affine, AffineGrads, Backend, BatchNormBackward, BatchNormSettings, BatchNormShape,
    Conv2dShape, Epilogue, GlobalPoolShape, L2NormalizeShape, LinearShape, Pool2dShape,
    RunningStats, StatsOutput, batch_norm_saved_len, batch_norm_stats_len,
};

/// A value no operation writes: the tail of every output buffer holds it, and must still
/// hold it afterwards (operations only touch the prefix they are given).
const SENTINEL: f32 = 12345.0;

/// An activation buffer with `len` zeros followed by a sentinel tail.
fn output<B: Backend>(b: &mut B, len: usize) -> B::Buf {
    let mut host = vec![0.0f32; len + 3];
    host[len..].fill(SENTINEL);
    upload_activation(b, &host)
}

/// The first `len` elements, after checking the sentinel tail is intact.
fn read<B: Backend>(b: &mut B, buf: &B::Buf, len: usize, what: &str) -> Vec<f32> {
    let all = download(b, buf, len + 3);
    assert!(
        all[len..].iter().all(|&v| v == SENTINEL),
        "{what}: wrote past the end of its output"
    );
    all[..len].to_vec()
}

/// The convolution geometries checked: every ResNet case, odd sizes, and shapes large
/// enough to be tiled and split.
pub(crate) fn conv_shapes() -> Vec<Conv2dShape> {
    let s = |batch, h, w, c, o, kernel, stride, padding| Conv2dShape {
        batch,
        in_height: h,
        in_width: w,
        in_channels: c,
        out_channels: o,
        kernel,
        stride,
        padding,
    };
    vec![
        s(2, 7, 6, 5, 4, 3, 1, 1),
        s(2, 7, 6, 5, 4, 3, 2, 1),
        s(2, 5, 5, 6, 7, 1, 1, 0),
        s(2, 7, 5, 6, 7, 1, 2, 0),
        s(2, 11, 9, 3, 8, 7, 2, 3),
        s(1, 6, 6, 4, 3, 3, 1, 0),
        s(2, 20, 20, 32, 128, 3, 1, 1),
        s(2, 16, 16, 96, 80, 1, 1, 0),
        s(3, 12, 12, 64, 128, 3, 2, 1),
    ]
}

/// `⟨conv(x, w), r⟩`.
fn conv_loss<B: Backend>(b: &mut B, s: &Conv2dShape, x: &[f32], w: &[f32], r: &[f32]) -> Loss {
    let (xd, wd) = (upload_activation(b, x), upload(b, w));
    let mut y = ok(b.alloc_activation(s.output_len()));
    ok(b.conv2d_forward(&xd, &wd, s, &mut y, None));
    let y = download(b, &y, s.output_len());
    Loss {
        value: dot(&y, r),
        magnitude: abs_dot(&y, r),
    }
}

/// Convolution forward (with and without fused statistics), input gradient (overwrite and
/// accumulate) and weight gradient (accumulating).
pub(crate) fn check_conv2d<B: Backend>(b: &mut B) {
    for (case, s) in conv_shapes().iter().enumerate() {
        let what = alloc::format!("conv2d case {case} {s:?}");
        let x = data(100 + case as u64, s.input_len(), 1.0, 0.0);
        let w = data(200 + case as u64, s.weight_len(), 0.5, 0.0);
        let r = data(300 + case as u64, s.output_len(), 1.0, 0.0);
        let (xd, wd) = (upload_activation(b, &x), upload(b, &w));
        let want = reference::conv2d(&x, &w, s);

        let mut y = output(b, s.output_len());
        let mut stats = ok(b.zeros(batch_norm_stats_len(s.out_channels)));
        let shift = data(250 + case as u64, s.out_channels, 0.5, 0.0);
        let shift_d = upload(b, &shift);
        let target = StatsOutput {
            shift: &shift_d,
            stats: &mut stats,
        };
        ok(b.conv2d_forward(&xd, &wd, s, &mut y, Some(target)));
        let got = read(b, &y, s.output_len(), &what);
        assert_close(&alloc::format!("{what}: forward"), &got, &want, 2e-6);
        let mut plain = output(b, s.output_len());
        ok(b.conv2d_forward(&xd, &wd, s, &mut plain, None));
        assert_eq!(
            read(b, &plain, s.output_len(), &what),
            got,
            "{what}: statistics changed the output"
        );
        let stats = download(b, &stats, batch_norm_stats_len(s.out_channels));
        let c = s.out_channels;
        let mut want_stats = vec![0.0f64; 2 * c + 1];
        for (i, &v) in got.iter().enumerate() {
            let d = v as f64 - shift[i % c] as f64;
            want_stats[i % c] += d;
            want_stats[c + i % c] += d * d;
        }
        want_stats[2 * c] = s.output_pixels() as f64;
        assert_close(
            &alloc::format!("{what}: fused statistics"),
            &stats,
            &want_stats,
            1e-5,
        );

        // Input gradient, overwriting a buffer of garbage.
        let rd = upload_activation(b, &r);
        let mut garbage = data(400, s.input_len() + 3, 9.0, 0.0);
        garbage[s.input_len()..].fill(SENTINEL);
        let mut dx = upload_activation(b, &garbage);
        ok(b.conv2d_backward_data(&rd, &wd, s, &mut dx, false));
        let dx_got = read(b, &dx, s.input_len(), &what);
        check_gradient(
            &alloc::format!("{what}: input gradient"),
            &x,
            &dx_got,
            0.5,
            1e-3,
            |xv| conv_loss(b, s, xv, &w, &r),
        );
        // Accumulating onto an existing gradient.
        let base = data(500, s.input_len(), 1.0, 0.0);
        let mut acc = upload_activation(b, &base);
        ok(b.conv2d_backward_data(&rd, &wd, s, &mut acc, true));
        let acc = download(b, &acc, s.input_len());
        let want_acc: Vec<f64> = base
            .iter()
            .zip(&dx_got)
            .map(|(&a, &g)| a as f64 + g as f64)
            .collect();
        assert_close(
            &alloc::format!("{what}: accumulated input gradient"),
            &acc,
            &want_acc,
            1e-6,
        );

        // Weight gradient, accumulated onto a non-zero buffer.
        let base = data(600, s.weight_len(), 1.0, 0.0);
        let mut dw = upload(b, &base);
        ok(b.conv2d_backward_filter(&rd, &xd, s, &mut dw));
        let dw_got: Vec<f32> = download(b, &dw, s.weight_len())
            .iter()
            .zip(&base)
            .map(|(g, a)| g - a)
            .collect();
        check_gradient(
            &alloc::format!("{what}: weight gradient"),
            &w,
            &dw_got,
            0.5,
            2e-3,
            |wv| conv_loss(b, s, &x, wv, &r),
        );
    }
}

/// One batch-norm configuration.
#[derive(Clone, Copy)]
struct BnCase {
    rows: usize,
    channels: usize,
    train: bool,
    residual: bool,
    relu: bool,
}

/// The device state of one batch-norm layer for a check.
struct BnLayer<B: Backend> {
    weight: B::Buf,
    bias: B::Buf,
    running_mean: B::Buf,
    running_var: B::Buf,
}

const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;

/// Runs the forward pass; returns `y` and `saved` on the host.
fn bn_forward<B: Backend>(
    b: &mut B,
    layer: &mut BnLayer<B>,
    case: BnCase,
    x: &[f32],
    residual: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let (rows, c) = (case.rows, case.channels);
    let shape = BatchNormShape { rows, channels: c };
    let xd = upload_activation(b, x);
    let res = residual.map(|r| upload_activation(b, r));
    let mut saved = ok(b.zeros(batch_norm_saved_len(c)));
    if case.train {
        let mut stats = ok(b.zeros(batch_norm_stats_len(c)));
        ok(b.batch_norm_stats(&xd, &shape, &layer.running_mean, &mut stats));
        let settings = BatchNormSettings {
            eps: EPS,
            momentum: MOMENTUM,
        };
        let running = RunningStats {
            mean: &mut layer.running_mean,
            var: &mut layer.running_var,
        };
        ok(b.batch_norm_finalize(&stats, c, settings, running, &mut saved));
    } else {
        ok(b.batch_norm_frozen(&layer.running_mean, &layer.running_var, c, EPS, &mut saved));
    }
    let mut y = output(b, rows * c);
    let affine = Affine {
        weight: &layer.weight,
        bias: &layer.bias,
    };
    let epilogue = Epilogue {
        residual: res.as_ref(),
        relu: case.relu,
    };
    ok(b.batch_norm_apply(&xd, &shape, &saved, affine, epilogue, &mut y));
    let y = read(b, &y, rows * c, "batch_norm_apply");
    (y, download(b, &saved, batch_norm_saved_len(c)))
}

/// Batch norm in training and evaluation modes, with and without the fused residual and
/// ReLU: statistics, running-statistics update, output, and all gradients.
pub(crate) fn check_batch_norm<B: Backend>(b: &mut B) {
    let mut cases = Vec::new();
    for (rows, channels) in [(50, 12), (600, 20)] {
        for train in [true, false] {
            for (residual, relu) in [(false, false), (false, true), (true, true)] {
                cases.push(BnCase {
                    rows,
                    channels,
                    train,
                    residual,
                    relu,
                });
            }
        }
    }
    for (i, &case) in cases.iter().enumerate() {
        check_batch_norm_case(b, i as u64, case);
    }
}

fn check_batch_norm_case<B: Backend>(b: &mut B, id: u64, case: BnCase) {
    let (rows, c) = (case.rows, case.channels);
    let what = alloc::format!(
        "batch norm ({rows}×{c}, train {}, residual {}, relu {})",
        case.train,
        case.residual,
        case.relu
    );
    // Channels with different means and spreads.
    let x: Vec<f32> = data(700 + id, rows * c, 1.0, 0.0)
        .iter()
        .enumerate()
        .map(|(i, &u)| u * (0.5 + (i % c) as f32 * 0.2) + (i % c) as f32 * 0.3 - 1.0)
        .collect();
    let weight = data(710 + id, c, 0.5, 1.0);
    let bias = data(720 + id, c, 0.5, 0.0);
    let rm0 = data(730 + id, c, 0.5, 0.0);
    let rv0 = data(740 + id, c, 0.4, 1.0);
    let residual = case.residual.then(|| data(750 + id, rows * c, 1.0, 0.0));
    let mut layer = BnLayer {
        weight: upload(b, &weight),
        bias: upload(b, &bias),
        running_mean: upload(b, &rm0),
        running_var: upload(b, &rv0),
    };
    let (y, saved) = bn_forward(b, &mut layer, case, &x, residual.as_deref());

    // Forward against the definition, and the running statistics.
    let (mean, var) = if case.train {
        reference::moments(&x, rows, c)
    } else {
        (
            rm0.iter().map(|&v| v as f64).collect(),
            rv0.iter().map(|&v| v as f64).collect(),
        )
    };
    let moments = Moments {
        mean: &mean,
        var: &var,
        eps: EPS as f64,
    };
    let want = reference::batch_norm(
        &x,
        c,
        moments,
        &weight,
        &bias,
        residual.as_deref(),
        case.relu,
    );
    assert_close(&alloc::format!("{what}: output"), &y, &want, 1e-5);
    let want_invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + EPS as f64).sqrt()).collect();
    assert_close(
        &alloc::format!("{what}: saved mean"),
        &saved[..c],
        &mean,
        1e-5,
    );
    assert_close(
        &alloc::format!("{what}: saved invstd"),
        &saved[c..2 * c],
        &want_invstd,
        1e-5,
    );
    let rm = download(b, &layer.running_mean, c);
    let rv = download(b, &layer.running_var, c);
    if case.train {
        let m = MOMENTUM as f64;
        let n = rows as f64;
        let want_rm: Vec<f64> = (0..c)
            .map(|i| (1.0 - m) * rm0[i] as f64 + m * mean[i])
            .collect();
        let want_rv: Vec<f64> = (0..c)
            .map(|i| (1.0 - m) * rv0[i] as f64 + m * var[i] * n / (n - 1.0))
            .collect();
        assert_close(&alloc::format!("{what}: running mean"), &rm, &want_rm, 1e-5);
        assert_close(&alloc::format!("{what}: running var"), &rv, &want_rv, 1e-5);
        assert_eq!(saved[2 * c], rows as f32, "{what}: saved count");
    } else {
        assert_eq!(
            (rm, rv),
            (rm0.clone(), rv0.clone()),
            "{what}: eval changed running stats"
        );
    }

    // Backward against the closed form (the ReLU mask included).
    let dy = data(760 + id, rows * c, 1.0, 0.0);
    let (dyd, xd) = (upload_activation(b, &dy), upload_activation(b, &x));
    let yd = upload_activation(b, &y);
    let saved_d = upload(b, &saved);
    let relu_out = case.relu.then_some(&yd);
    let mut sums = ok(b.zeros(batch_norm_stats_len(c)));
    let (dw0, db0) = (data(770, c, 1.0, 0.0), data(780, c, 1.0, 0.0));
    let (mut dwd, mut dbd) = (upload(b, &dw0), upload(b, &db0));
    let shape = BatchNormShape { rows, channels: c };
    let inputs = BatchNormBackward {
        dy: &dyd,
        x: &xd,
        relu_output: relu_out,
        saved: &saved_d,
    };
    let grads = AffineGrads {
        weight: &mut dwd,
        bias: &mut dbd,
    };
    ok(b.batch_norm_backward_reduce(&inputs, &shape, &mut sums, grads));
    let mut dx = output(b, rows * c);
    let sums_arg = if case.train { Some(&sums) } else { None };
    ok(b.batch_norm_backward_apply(&inputs, &shape, &layer.weight, sums_arg, &mut dx));
    let dx = read(b, &dx, rows * c, &what);
    let dw: Vec<f32> = download(b, &dwd, c)
        .iter()
        .zip(&dw0)
        .map(|(a, b)| a - b)
        .collect();
    let db: Vec<f32> = download(b, &dbd, c)
        .iter()
        .zip(&db0)
        .map(|(a, b)| a - b)
        .collect();
    let (want_dx, want_dw, want_db) = reference::batch_norm_backward(
        &dy,
        &x,
        case.relu.then_some(&y[..]),
        c,
        moments,
        &weight,
        case.train,
    );
    assert_close(
        &alloc::format!("{what}: input gradient"),
        &dx,
        &want_dx,
        1e-4,
    );
    assert_close(
        &alloc::format!("{what}: weight gradient"),
        &dw,
        &want_dw,
        1e-4,
    );
    assert_close(
        &alloc::format!("{what}: bias gradient"),
        &db,
        &want_db,
        1e-4,
    );

    // The closed form is the derivative: finite differences where the function is smooth.
    if !case.relu {
        let mut loss = |xv: &[f32], wv: &[f32], bv: &[f32]| -> Loss {
            let mut l = BnLayer {
                weight: upload(b, wv),
                bias: upload(b, bv),
                running_mean: upload(b, &rm0),
                running_var: upload(b, &rv0),
            };
            let (y, _) = bn_forward(b, &mut l, case, xv, None);
            Loss {
                value: dot(&y, &dy),
                magnitude: abs_dot(&y, &dy),
            }
        };
        check_gradient(&alloc::format!("{what}: d/dx"), &x, &dx, 1e-2, 2e-3, |xv| {
            loss(xv, &weight, &bias)
        });
        check_gradient(
            &alloc::format!("{what}: d/dweight"),
            &weight,
            &dw,
            1e-2,
            2e-3,
            |wv| loss(&x, wv, &bias),
        );
        check_gradient(
            &alloc::format!("{what}: d/dbias"),
            &bias,
            &db,
            1e-2,
            2e-3,
            |bv| loss(&x, &weight, bv),
        );
    }
}

/// The ReLU mask: zero where the forward output is not positive.
pub(crate) fn check_relu_backward<B: Backend>(b: &mut B) {
    let n = 1000;
    let mut y = data(800, n, 1.0, 0.0);
    y[7] = 0.0;
    let dy = data(801, n, 1.0, 0.0);
    let (mut dyd, yd) = (upload_activation(b, &dy), upload_activation(b, &y));
    ok(b.relu_backward(&mut dyd, &yd, n));
    let got = download(b, &dyd, n);
    let want: Vec<f64> = dy
        .iter()
        .zip(&y)
        .map(|(&d, &v)| if v > 0.0 { d as f64 } else { 0.0 })
        .collect();
    assert_close("relu backward", &got, &want, 0.0);
}

/// Max pooling (3×3, stride 2, padding 1 and others): forward, the first-maximum tie rule,
/// and the gradient by finite differences on inputs without near-ties.
pub(crate) fn check_max_pool<B: Backend>(b: &mut B) {
    let shapes = [
        Pool2dShape {
            batch: 2,
            in_height: 7,
            in_width: 9,
            channels: 5,
            kernel: 3,
            stride: 2,
            padding: 1,
        },
        Pool2dShape {
            batch: 1,
            in_height: 8,
            in_width: 8,
            channels: 3,
            kernel: 2,
            stride: 2,
            padding: 0,
        },
    ];
    for (i, s) in shapes.iter().enumerate() {
        let what = alloc::format!("max pool {s:?}");
        // Distinct values 2/n apart in pseudo-random order: no window has a near-tie.
        let n = s.input_len();
        let mut x: Vec<f32> = (0..n).map(|j| j as f32 * 2.0 / n as f32 - 1.0).collect();
        for j in (1..n).rev() {
            let k = (crate::mix64(900 + i as u64 * 7919 + j as u64) % (j as u64 + 1)) as usize;
            x.swap(j, k);
        }
        let xd = upload_activation(b, &x);
        let mut y = output(b, s.output_len());
        ok(b.max_pool2d_forward(&xd, s, &mut y));
        let got = read(b, &y, s.output_len(), &what);
        assert_close(
            &alloc::format!("{what}: forward"),
            &got,
            &reference::max_pool(&x, s),
            0.0,
        );
        let r = data(910, s.output_len(), 1.0, 0.0);
        let rd = upload_activation(b, &r);
        let mut dx = output(b, n);
        ok(b.max_pool2d_backward(&rd, &xd, s, &mut dx));
        let dx = read(b, &dx, n, &what);
        check_gradient(
            &alloc::format!("{what}: gradient"),
            &x,
            &dx,
            0.2 / n as f32,
            1e-3,
            |xv| {
                let xd = upload_activation(b, xv);
                let mut y = ok(b.alloc_activation(s.output_len()));
                ok(b.max_pool2d_forward(&xd, s, &mut y));
                let y = download(b, &y, s.output_len());
                Loss {
                    value: dot(&y, &r),
                    magnitude: abs_dot(&y, &r),
                }
            },
        );
    }
    // Ties: a constant input sends each window's gradient to its first (top-left) pixel.
    let s = shapes[0];
    let xd = upload_activation(b, &vec![0.0f32; s.input_len()]);
    let ones = upload_activation(b, &vec![1.0f32; s.output_len()]);
    let mut dx = output(b, s.input_len());
    ok(b.max_pool2d_backward(&ones, &xd, &s, &mut dx));
    let dx = read(b, &dx, s.input_len(), "max pool ties");
    let mut want = vec![0.0f64; s.input_len()];
    for n in 0..s.batch {
        for oh in 0..s.out_height() {
            for ow in 0..s.out_width() {
                let ih = (oh * s.stride).saturating_sub(s.padding);
                let iw = (ow * s.stride).saturating_sub(s.padding);
                for c in 0..s.channels {
                    want[((n * s.in_height + ih) * s.in_width + iw) * s.channels + c] += 1.0;
                }
            }
        }
    }
    assert_close("max pool ties", &dx, &want, 0.0);
}

/// Global average pooling: forward and gradient.
pub(crate) fn check_avg_pool<B: Backend>(b: &mut B) {
    let (batch, pixels, c) = (3, 10, 7);
    let shape = GlobalPoolShape {
        batch,
        pixels,
        channels: c,
    };
    let x = data(1000, batch * pixels * c, 1.0, 0.0);
    let xd = upload_activation(b, &x);
    let mut y = output(b, batch * c);
    ok(b.global_avg_pool_forward(&xd, &shape, &mut y));
    let got = read(b, &y, batch * c, "avg pool");
    assert_close(
        "avg pool forward",
        &got,
        &reference::avg_pool(&x, batch, pixels, c),
        1e-6,
    );
    let r = data(1001, batch * c, 1.0, 0.0);
    let rd = upload_activation(b, &r);
    let mut dx = output(b, x.len());
    ok(b.global_avg_pool_backward(&rd, &shape, &mut dx));
    let dx = read(b, &dx, x.len(), "avg pool backward");
    check_gradient("avg pool gradient", &x, &dx, 0.5, 1e-3, |xv| {
        let xd = upload_activation(b, xv);
        let mut y = ok(b.alloc_activation(batch * c));
        ok(b.global_avg_pool_forward(&xd, &shape, &mut y));
        let y = download(b, &y, batch * c);
        Loss {
            value: dot(&y, &r),
            magnitude: abs_dot(&y, &r),
        }
    });
}

/// Linear layers with and without bias: forward, input, weight and bias gradients.
pub(crate) fn check_linear<B: Backend>(b: &mut B) {
    for (rows, inp, out, with_bias) in [(5, 7, 3, true), (70, 90, 130, true), (6, 33, 40, false)] {
        let what = alloc::format!("linear {rows}×{inp}→{out} bias {with_bias}");
        let shape = LinearShape {
            rows,
            in_features: inp,
            out_features: out,
        };
        let x = data(1100, rows * inp, 1.0, 0.0);
        let w = data(1101, out * inp, 0.3, 0.0);
        let bias = data(1102, out, 0.5, 0.0);
        let r = data(1103, rows * out, 1.0, 0.0);
        let (xd, wd, bd) = (upload_activation(b, &x), upload(b, &w), upload(b, &bias));
        let mut y = output(b, rows * out);
        ok(b.linear_forward(&xd, &wd, with_bias.then_some(&bd), &shape, &mut y));
        let got = read(b, &y, rows * out, &what);
        let want = reference::linear(&x, &w, with_bias.then_some(&bias[..]), rows, inp, out);
        assert_close(&alloc::format!("{what}: forward"), &got, &want, 2e-6);

        let rd = upload_activation(b, &r);
        let mut dx = output(b, rows * inp);
        ok(b.linear_backward_data(&rd, &wd, &shape, &mut dx));
        let dx = read(b, &dx, rows * inp, &what);
        let (dw0, db0) = (data(1104, out * inp, 1.0, 0.0), data(1105, out, 1.0, 0.0));
        let (mut dwd, mut dbd) = (upload(b, &dw0), upload(b, &db0));
        ok(b.linear_backward_weight(&rd, &xd, &shape, &mut dwd, with_bias.then_some(&mut dbd)));
        let dw: Vec<f32> = download(b, &dwd, out * inp)
            .iter()
            .zip(&dw0)
            .map(|(a, b)| a - b)
            .collect();
        let db: Vec<f32> = download(b, &dbd, out)
            .iter()
            .zip(&db0)
            .map(|(a, b)| a - b)
            .collect();
        let mut loss = |xv: &[f32], wv: &[f32], bv: &[f32]| -> Loss {
            let (xd, wd, bd) = (upload_activation(b, xv), upload(b, wv), upload(b, bv));
            let mut y = ok(b.alloc_activation(rows * out));
            ok(b.linear_forward(&xd, &wd, with_bias.then_some(&bd), &shape, &mut y));
            let y = download(b, &y, rows * out);
            Loss {
                value: dot(&y, &r),
                magnitude: abs_dot(&y, &r),
            }
        };
        check_gradient(&alloc::format!("{what}: d/dx"), &x, &dx, 0.5, 1e-3, |v| {
            loss(v, &w, &bias)
        });
        check_gradient(&alloc::format!("{what}: d/dw"), &w, &dw, 0.5, 1e-3, |v| {
            loss(&x, v, &bias)
        });
        if with_bias {
            check_gradient(
                &alloc::format!("{what}: d/db"),
                &bias,
                &db,
                0.5,
                1e-3,
                |v| loss(&x, &w, v),
            );
        } else {
            assert!(
                db.iter().all(|&v| v == 0.0),
                "{what}: bias gradient without bias"
            );
        }
    }
}

/// Row L2 normalisation: forward (including an all-zero row, clamped by eps) and gradient.
pub(crate) fn check_l2_normalize<B: Backend>(b: &mut B) {
    let (rows, cols, eps) = (9, 13, 1e-12f32);
    let shape = L2NormalizeShape { rows, cols, eps };
    let mut x = data(1200, rows * cols, 1.0, 0.0);
    x[4 * cols..5 * cols].fill(0.0);
    let xd = upload_activation(b, &x);
    let mut z = output(b, rows * cols);
    ok(b.l2_normalize_rows_forward(&xd, &shape, &mut z));
    let zh = read(b, &z, rows * cols, "l2 normalize");
    assert_close(
        "l2 normalize forward",
        &zh,
        &reference::l2_normalize(&x, cols, eps as f64),
        1e-6,
    );
    let r = data(1201, rows * cols, 1.0, 0.0);
    let rd = upload_activation(b, &r);
    let zd = upload_activation(b, &zh);
    let mut dx = output(b, rows * cols);
    ok(b.l2_normalize_rows_backward(&rd, &xd, &zd, &shape, &mut dx));
    let dx = read(b, &dx, rows * cols, "l2 normalize backward");
    // The zero row's gradient is dz/eps; check the others by finite differences.
    let want_zero: Vec<f64> = r[4 * cols..5 * cols]
        .iter()
        .map(|&g| g as f64 / eps as f64)
        .collect();
    assert_close(
        "l2 normalize: clamped row",
        &dx[4 * cols..5 * cols],
        &want_zero,
        1e-6,
    );
    let keep = |v: &[f32]| -> Vec<f32> {
        let mut v = v.to_vec();
        v[4 * cols..5 * cols].fill(0.0);
        v
    };
    let (xs, dxs) = (keep(&x), keep(&dx));
    let rs = keep(&r);
    check_gradient("l2 normalize gradient", &xs, &dxs, 1e-2, 2e-3, |xv| {
        let mut xv = xv.to_vec();
        xv[4 * cols..5 * cols].fill(0.0);
        let xd = upload_activation(b, &xv);
        let mut z = ok(b.alloc_activation(rows * cols));
        ok(b.l2_normalize_rows_forward(&xd, &shape, &mut z));
        let z = download(b, &z, rows * cols);
        Loss {
            value: dot(&z, &rs),
            magnitude: abs_dot(&z, &rs),
        }
    });
}
