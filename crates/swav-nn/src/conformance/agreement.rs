//! Agreement with a reference backend: every model operation run through two backends on the
//! same inputs (a GPU backend against the CPU one), outputs compared within a stated
//! tolerance.
//!
//! This is how a reduced-precision backend is checked: the checks against the definitions
//! (`ops.rs`) hold at f32 tolerances, which bf16 activations cannot meet. Each operation is
//! checked in isolation, on identical inputs: an activation input is uploaded to the tested
//! backend first and read back, and both backends receive what the tested one holds (its
//! bf16 rounding, under mixed precision), so the comparison measures the operation's own
//! error and not the rounding of its inputs. Under [`Agreement::BF16`] the reference also
//! multiplies bf16-rounded weights, as a mixed-precision backend multiplies bf16 copies of
//! its f32 master weights. Every output is compared as `max |tested - reference| <=
//! relative · max |reference|`.

use alloc::format;
use alloc::vec::Vec;

use super::harness::{assert_close, data, download, ok, upload, upload_activation};
use super::ops::conv_shapes;
use crate::{
    Affine, AffineGrads, Backend, BatchNormBackward, BatchNormSettings, BatchNormShape,
    Conv2dShape, Epilogue, GlobalPoolShape, L2NormalizeShape, LinearShape, Pool2dShape,
    RunningStats, StatsOutput, batch_norm_saved_len, batch_norm_stats_len,
};

/// How closely a tested backend must agree with the reference backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// The largest error of an output, relative to the largest magnitude of the reference's
    /// output.
    pub relative: f64,
    /// Whether the tested backend multiplies bf16 copies of the weights of convolutions and
    /// linear layers; the reference then multiplies the same roundings.
    pub bf16_weights: bool,
}

impl Agreement {
    /// Two f32 backends: the same operations with sums in another order.
    pub const F32: Agreement = Agreement {
        relative: 5e-5,
        bf16_weights: false,
    };
    /// bf16 activations and weight copies with f32 accumulation against f32: one bf16
    /// rounding of a stored output is at most 2⁻⁹ of its magnitude; the tolerance allows
    /// about five such roundings relative to the largest output value.
    pub const BF16: Agreement = Agreement {
        relative: 1e-2,
        bf16_weights: true,
    };
}

/// Rounds to the nearest bf16 value (ties to even), as a bf16 store does.
fn round_to_bf16(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) & 0xFFFF_0000;
    f32::from_bits(rounded)
}

/// Both backends and the agreement they are held to.
struct Pair<'a, R: Backend, T: Backend> {
    reference: &'a mut R,
    tested: &'a mut T,
    agreement: Agreement,
}

/// One tensor on both backends.
struct Both<R: Backend, T: Backend> {
    reference: R::Buf,
    tested: T::Buf,
}

impl<R: Backend, T: Backend> Pair<'_, R, T> {
    /// An activation on both backends holding what the tested backend stores for `values`;
    /// returns those values too.
    fn activation(&mut self, values: &[f32]) -> (Both<R, T>, Vec<f32>) {
        let tested = upload_activation(self.tested, values);
        let held = download(self.tested, &tested, values.len());
        let reference = upload_activation(self.reference, &held);
        (Both { reference, tested }, held)
    }

    /// An activation output buffer of `len` zeros on both backends.
    fn activation_output(&mut self, len: usize) -> Both<R, T> {
        Both {
            reference: ok(self.reference.alloc_activation(len)),
            tested: ok(self.tested.alloc_activation(len)),
        }
    }

    /// An f32 (parameter-class) buffer holding `values` on both backends.
    fn param(&mut self, values: &[f32]) -> Both<R, T> {
        Both {
            reference: upload(self.reference, values),
            tested: upload(self.tested, values),
        }
    }

    /// The weight of a convolution or linear layer: f32 on both backends, rounded to bf16
    /// for the reference when the tested backend multiplies bf16 copies.
    fn weight(&mut self, values: &[f32]) -> Both<R, T> {
        let tested = upload(self.tested, values);
        let reference = if self.agreement.bf16_weights {
            let rounded: Vec<f32> = values.iter().map(|&v| round_to_bf16(v)).collect();
            upload(self.reference, &rounded)
        } else {
            upload(self.reference, values)
        };
        Both { reference, tested }
    }

    /// Compares the first `len` elements of `buf` on both backends.
    fn compare(&mut self, what: &str, buf: &Both<R, T>, len: usize) {
        let want: Vec<f64> = download(self.reference, &buf.reference, len)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let got = download(self.tested, &buf.tested, len);
        assert_close(what, &got, &want, self.agreement.relative);
    }

    /// The tested backend's values of `buf` as an activation on both backends (so that a
    /// following operation starts from identical inputs).
    fn held(&mut self, buf: &Both<R, T>, len: usize) -> (Both<R, T>, Vec<f32>) {
        let values = download(self.tested, &buf.tested, len);
        self.activation(&values)
    }
}

/// Every model operation of `tested` against `reference` on the same inputs: convolutions
/// (forward with fused statistics, both gradients, overwrite and accumulate), batch norm
/// (statistics, running statistics, apply with residual and ReLU, both backward passes, in
/// training and evaluation modes), ReLU backward, max and average pooling, linear layers
/// (with f32 outputs as the head uses them) and L2 normalisation, within `agreement`.
pub fn check_agreement<R: Backend, T: Backend>(
    reference: &mut R,
    tested: &mut T,
    agreement: Agreement,
) {
    let mut pair = Pair {
        reference,
        tested,
        agreement,
    };
    agree_conv2d(&mut pair);
    agree_batch_norm(&mut pair);
    agree_pooling(&mut pair);
    agree_linear(&mut pair);
    agree_l2_normalize(&mut pair);
}

fn agree_conv2d<R: Backend, T: Backend>(p: &mut Pair<'_, R, T>) {
    let mut shapes = conv_shapes();
    // ResNet-50's stem and a bottleneck's 3×3 at realistic sizes.
    shapes.push(Conv2dShape {
        batch: 2,
        in_height: 32,
        in_width: 32,
        in_channels: 3,
        out_channels: 64,
        kernel: 7,
        stride: 2,
        padding: 3,
    });
    shapes.push(Conv2dShape {
        batch: 2,
        in_height: 14,
        in_width: 14,
        in_channels: 256,
        out_channels: 256,
        kernel: 3,
        stride: 1,
        padding: 1,
    });
    for (case, s) in shapes.iter().enumerate() {
        let what = format!("conv2d case {case} {s:?}");
        let id = case as u64;
        let (x, _) = p.activation(&data(2000 + id, s.input_len(), 1.0, 0.0));
        let w = p.weight(&data(2100 + id, s.weight_len(), 0.5, 0.0));
        let shift = p.param(&data(2200 + id, s.out_channels, 0.5, 0.0));
        let stats_len = batch_norm_stats_len(s.out_channels);
        let mut stats = p.param(&alloc::vec![0.0; stats_len]);
        let mut y = p.activation_output(s.output_len());
        ok(p.reference.conv2d_forward(
            &x.reference,
            &w.reference,
            s,
            &mut y.reference,
            Some(StatsOutput {
                shift: &shift.reference,
                stats: &mut stats.reference,
            }),
        ));
        ok(p.tested.conv2d_forward(
            &x.tested,
            &w.tested,
            s,
            &mut y.tested,
            Some(StatsOutput {
                shift: &shift.tested,
                stats: &mut stats.tested,
            }),
        ));
        p.compare(&format!("{what}: forward"), &y, s.output_len());
        p.compare(&format!("{what}: fused statistics"), &stats, stats_len);

        // Activation operands in f32 (parameter-class) buffers, as the model passes them
        // where an input or output is shared with the head.
        let x_values = download(p.tested, &x.tested, s.input_len());
        let x32 = p.param(&x_values);
        let mut y32 = p.param(&alloc::vec![0.0; s.output_len()]);
        ok(p.reference
            .conv2d_forward(&x32.reference, &w.reference, s, &mut y32.reference, None));
        ok(p.tested
            .conv2d_forward(&x32.tested, &w.tested, s, &mut y32.tested, None));
        p.compare(
            &format!("{what}: forward, f32 buffers"),
            &y32,
            s.output_len(),
        );

        let (dy, _) = p.activation(&data(2300 + id, s.output_len(), 1.0, 0.0));
        for accumulate in [false, true] {
            let (mut dx, _) = p.activation(&data(2400 + id, s.input_len(), 1.0, 0.0));
            ok(p.reference.conv2d_backward_data(
                &dy.reference,
                &w.reference,
                s,
                &mut dx.reference,
                accumulate,
            ));
            ok(p.tested
                .conv2d_backward_data(&dy.tested, &w.tested, s, &mut dx.tested, accumulate));
            p.compare(
                &format!("{what}: input gradient, accumulate {accumulate}"),
                &dx,
                s.input_len(),
            );
        }
        let mut dw = p.param(&data(2500 + id, s.weight_len(), 1.0, 0.0));
        ok(p.reference
            .conv2d_backward_filter(&dy.reference, &x.reference, s, &mut dw.reference));
        ok(p.tested
            .conv2d_backward_filter(&dy.tested, &x.tested, s, &mut dw.tested));
        p.compare(
            &format!("{what}: weight gradient, accumulated"),
            &dw,
            s.weight_len(),
        );
    }
}

fn agree_batch_norm<R: Backend, T: Backend>(p: &mut Pair<'_, R, T>) {
    const EPS: f32 = 1e-5;
    const SETTINGS: BatchNormSettings = BatchNormSettings {
        eps: EPS,
        momentum: 0.1,
    };
    let mut id = 0u64;
    for (rows, c) in [(50usize, 12usize), (600, 20), (2 * 28 * 28, 64)] {
        for train in [true, false] {
            for (with_residual, relu) in [(false, false), (false, true), (true, true)] {
                id += 1;
                let what = format!(
                    "batch norm ({rows}×{c}, train {train}, residual {with_residual}, relu {relu})"
                );
                let x_host: Vec<f32> = data(3000 + id, rows * c, 1.0, 0.0)
                    .iter()
                    .enumerate()
                    .map(|(i, &u)| u * (0.5 + (i % c) as f32 * 0.05) + (i % c) as f32 * 0.1 - 1.0)
                    .collect();
                let (x, _) = p.activation(&x_host);
                let weight = p.param(&data(3100 + id, c, 0.5, 1.0));
                let bias = p.param(&data(3200 + id, c, 0.5, 0.0));
                let mut mean = p.param(&data(3300 + id, c, 0.5, 0.0));
                let mut var = p.param(&data(3400 + id, c, 0.4, 1.0));
                let residual =
                    with_residual.then(|| p.activation(&data(3500 + id, rows * c, 1.0, 0.0)).0);
                let shape = BatchNormShape { rows, channels: c };
                let saved_len = batch_norm_saved_len(c);
                let mut saved = p.param(&alloc::vec![0.0; saved_len]);
                if train {
                    let stats_len = batch_norm_stats_len(c);
                    let mut stats = p.param(&alloc::vec![0.0; stats_len]);
                    ok(p.reference.batch_norm_stats(
                        &x.reference,
                        &shape,
                        &mean.reference,
                        &mut stats.reference,
                    ));
                    ok(p.tested.batch_norm_stats(
                        &x.tested,
                        &shape,
                        &mean.tested,
                        &mut stats.tested,
                    ));
                    p.compare(&format!("{what}: statistics"), &stats, stats_len);
                    let running = RunningStats {
                        mean: &mut mean.reference,
                        var: &mut var.reference,
                    };
                    ok(p.reference.batch_norm_finalize(
                        &stats.reference,
                        c,
                        SETTINGS,
                        running,
                        &mut saved.reference,
                    ));
                    let running = RunningStats {
                        mean: &mut mean.tested,
                        var: &mut var.tested,
                    };
                    ok(p.tested.batch_norm_finalize(
                        &stats.tested,
                        c,
                        SETTINGS,
                        running,
                        &mut saved.tested,
                    ));
                    p.compare(&format!("{what}: running mean"), &mean, c);
                    p.compare(&format!("{what}: running var"), &var, c);
                } else {
                    ok(p.reference.batch_norm_frozen(
                        &mean.reference,
                        &var.reference,
                        c,
                        EPS,
                        &mut saved.reference,
                    ));
                    ok(p.tested.batch_norm_frozen(
                        &mean.tested,
                        &var.tested,
                        c,
                        EPS,
                        &mut saved.tested,
                    ));
                }
                p.compare(&format!("{what}: saved statistics"), &saved, saved_len);

                let mut y = p.activation_output(rows * c);
                let affine = Affine {
                    weight: &weight.reference,
                    bias: &bias.reference,
                };
                let epilogue = Epilogue {
                    residual: residual.as_ref().map(|r| &r.reference),
                    relu,
                };
                ok(p.reference.batch_norm_apply(
                    &x.reference,
                    &shape,
                    &saved.reference,
                    affine,
                    epilogue,
                    &mut y.reference,
                ));
                let affine = Affine {
                    weight: &weight.tested,
                    bias: &bias.tested,
                };
                let epilogue = Epilogue {
                    residual: residual.as_ref().map(|r| &r.tested),
                    relu,
                };
                ok(p.tested.batch_norm_apply(
                    &x.tested,
                    &shape,
                    &saved.tested,
                    affine,
                    epilogue,
                    &mut y.tested,
                ));
                p.compare(&format!("{what}: output"), &y, rows * c);

                // Backward from identical inputs: the tested backend's output is the ReLU
                // mask of both.
                let (y_held, _) = p.held(&y, rows * c);
                let relu_output = relu.then_some(&y_held);
                let (dy, _) = p.activation(&data(3600 + id, rows * c, 1.0, 0.0));
                let mut sums = p.param(&alloc::vec![0.0; batch_norm_stats_len(c)]);
                let mut dweight = p.param(&data(3700 + id, c, 1.0, 0.0));
                let mut dbias = p.param(&data(3800 + id, c, 1.0, 0.0));
                let inputs_reference = BatchNormBackward {
                    dy: &dy.reference,
                    x: &x.reference,
                    relu_output: relu_output.map(|y| &y.reference),
                    saved: &saved.reference,
                };
                let grads = AffineGrads {
                    weight: &mut dweight.reference,
                    bias: &mut dbias.reference,
                };
                ok(p.reference.batch_norm_backward_reduce(
                    &inputs_reference,
                    &shape,
                    &mut sums.reference,
                    grads,
                ));
                let inputs_tested = BatchNormBackward {
                    dy: &dy.tested,
                    x: &x.tested,
                    relu_output: relu_output.map(|y| &y.tested),
                    saved: &saved.tested,
                };
                let grads = AffineGrads {
                    weight: &mut dweight.tested,
                    bias: &mut dbias.tested,
                };
                ok(p.tested.batch_norm_backward_reduce(
                    &inputs_tested,
                    &shape,
                    &mut sums.tested,
                    grads,
                ));
                p.compare(&format!("{what}: backward sums"), &sums, 2 * c);
                p.compare(&format!("{what}: weight gradient"), &dweight, c);
                p.compare(&format!("{what}: bias gradient"), &dbias, c);
                let mut dx = p.activation_output(rows * c);
                ok(p.reference.batch_norm_backward_apply(
                    &inputs_reference,
                    &shape,
                    &weight.reference,
                    train.then_some(&sums.reference),
                    &mut dx.reference,
                ));
                ok(p.tested.batch_norm_backward_apply(
                    &inputs_tested,
                    &shape,
                    &weight.tested,
                    train.then_some(&sums.tested),
                    &mut dx.tested,
                ));
                p.compare(&format!("{what}: input gradient"), &dx, rows * c);

                if relu {
                    let (mut masked, _) = p.activation(&data(3900 + id, rows * c, 1.0, 0.0));
                    ok(p.reference.relu_backward(
                        &mut masked.reference,
                        &y_held.reference,
                        rows * c,
                    ));
                    ok(p.tested
                        .relu_backward(&mut masked.tested, &y_held.tested, rows * c));
                    p.compare(&format!("{what}: relu backward"), &masked, rows * c);
                }
            }
        }
    }
}

fn agree_pooling<R: Backend, T: Backend>(p: &mut Pair<'_, R, T>) {
    let shapes = [
        Pool2dShape {
            batch: 2,
            in_height: 9,
            in_width: 9,
            channels: 8,
            kernel: 3,
            stride: 2,
            padding: 1,
        },
        Pool2dShape {
            batch: 2,
            in_height: 32,
            in_width: 32,
            channels: 64,
            kernel: 3,
            stride: 2,
            padding: 1,
        },
    ];
    for (case, s) in shapes.iter().enumerate() {
        let what = format!("max pool {s:?}");
        let id = case as u64;
        // Coarse values make ties common, which exercises the first-maximum rule.
        let coarse: Vec<f32> = data(4000 + id, s.input_len(), 4.0, 0.0)
            .iter()
            .map(|v| libm::roundf(*v))
            .collect();
        let (x, _) = p.activation(&coarse);
        let mut y = p.activation_output(s.output_len());
        ok(p.reference
            .max_pool2d_forward(&x.reference, s, &mut y.reference));
        ok(p.tested.max_pool2d_forward(&x.tested, s, &mut y.tested));
        p.compare(&format!("{what}: forward"), &y, s.output_len());
        let (dy, _) = p.activation(&data(4100 + id, s.output_len(), 1.0, 0.0));
        let (mut dx, _) = p.activation(&data(4200 + id, s.input_len(), 7.0, 0.0));
        ok(p.reference
            .max_pool2d_backward(&dy.reference, &x.reference, s, &mut dx.reference));
        ok(p.tested
            .max_pool2d_backward(&dy.tested, &x.tested, s, &mut dx.tested));
        p.compare(&format!("{what}: backward"), &dx, s.input_len());
    }

    for (batch, pixels, c) in [(3usize, 13usize, 40usize), (4, 49, 2048)] {
        let what = format!("average pool {batch}×{pixels}×{c}");
        let shape = GlobalPoolShape {
            batch,
            pixels,
            channels: c,
        };
        let (x, _) = p.activation(&data(4300, batch * pixels * c, 1.0, 0.2));
        let mut y = p.activation_output(batch * c);
        ok(p.reference
            .global_avg_pool_forward(&x.reference, &shape, &mut y.reference));
        ok(p.tested
            .global_avg_pool_forward(&x.tested, &shape, &mut y.tested));
        p.compare(&format!("{what}: forward"), &y, batch * c);
        let (dy, _) = p.activation(&data(4400, batch * c, 1.0, 0.0));
        let mut dx = p.activation_output(batch * pixels * c);
        ok(p.reference
            .global_avg_pool_backward(&dy.reference, &shape, &mut dx.reference));
        ok(p.tested
            .global_avg_pool_backward(&dy.tested, &shape, &mut dx.tested));
        p.compare(&format!("{what}: backward"), &dx, batch * pixels * c);
    }
}

fn agree_linear<R: Backend, T: Backend>(p: &mut Pair<'_, R, T>) {
    for (case, (rows, inp, out, with_bias)) in [
        (5usize, 7usize, 3usize, true),
        (48, 72, 40, true),
        (70, 90, 130, false),
        (64, 2048, 128, true),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("linear {rows}×{inp}→{out} bias {with_bias}");
        let shape = LinearShape {
            rows,
            in_features: inp,
            out_features: out,
        };
        let id = case as u64;
        let (x, _) = p.activation(&data(5000 + id, rows * inp, 1.0, 0.0));
        let w = p.weight(&data(5100 + id, out * inp, 0.3, 0.0));
        let bias = p.param(&data(5200 + id, out, 0.5, 0.0));
        // An activation output, and an f32 one (the head writes f32 features).
        let mut y = p.activation_output(rows * out);
        let mut y32 = p.param(&alloc::vec![0.0; rows * out]);
        for (target, label) in [(&mut y, "activation"), (&mut y32, "f32")] {
            ok(p.reference.linear_forward(
                &x.reference,
                &w.reference,
                with_bias.then_some(&bias.reference),
                &shape,
                &mut target.reference,
            ));
            ok(p.tested.linear_forward(
                &x.tested,
                &w.tested,
                with_bias.then_some(&bias.tested),
                &shape,
                &mut target.tested,
            ));
            p.compare(&format!("{what}: forward into {label}"), target, rows * out);
        }

        let (dy, _) = p.activation(&data(5300 + id, rows * out, 1.0, 0.0));
        let mut dx = p.activation_output(rows * inp);
        ok(p.reference.linear_backward_data(
            &dy.reference,
            &w.reference,
            &shape,
            &mut dx.reference,
        ));
        ok(p.tested
            .linear_backward_data(&dy.tested, &w.tested, &shape, &mut dx.tested));
        p.compare(&format!("{what}: input gradient"), &dx, rows * inp);

        let mut dw = p.param(&data(5400 + id, out * inp, 1.0, 0.0));
        let mut db = p.param(&data(5500 + id, out, 1.0, 0.0));
        ok(p.reference.linear_backward_weight(
            &dy.reference,
            &x.reference,
            &shape,
            &mut dw.reference,
            with_bias.then_some(&mut db.reference),
        ));
        ok(p.tested.linear_backward_weight(
            &dy.tested,
            &x.tested,
            &shape,
            &mut dw.tested,
            with_bias.then_some(&mut db.tested),
        ));
        p.compare(&format!("{what}: weight gradient"), &dw, out * inp);
        p.compare(&format!("{what}: bias gradient"), &db, out);
    }
}

fn agree_l2_normalize<R: Backend, T: Backend>(p: &mut Pair<'_, R, T>) {
    let (rows, cols, eps) = (37usize, 128usize, 1e-12f32);
    let shape = L2NormalizeShape { rows, cols, eps };
    let what = format!("l2 normalize {rows}×{cols}");
    let mut values = data(6000, rows * cols, 1.0, 0.0);
    values[..cols].fill(0.0); // a zero row takes the eps branch
    let (x, _) = p.activation(&values);
    // The head normalises into f32 buffers.
    let mut z = p.param(&alloc::vec![0.0; rows * cols]);
    ok(p.reference
        .l2_normalize_rows_forward(&x.reference, &shape, &mut z.reference));
    ok(p.tested
        .l2_normalize_rows_forward(&x.tested, &shape, &mut z.tested));
    p.compare(&format!("{what}: forward"), &z, rows * cols);

    let z_values = download(p.tested, &z.tested, rows * cols);
    let z_held = p.param(&z_values);
    let (dz, _) = p.activation(&data(6100, rows * cols, 1.0, 0.0));
    let mut dx = p.activation_output(rows * cols);
    ok(p.reference.l2_normalize_rows_backward(
        &dz.reference,
        &x.reference,
        &z_held.reference,
        &shape,
        &mut dx.reference,
    ));
    ok(p.tested.l2_normalize_rows_backward(
        &dz.tested,
        &x.tested,
        &z_held.tested,
        &shape,
        &mut dx.tested,
    ));
    // The clamped row's gradient is dz/eps (about 1e12): compared on its own scale.
    let want: Vec<f64> = download(p.reference, &dx.reference, rows * cols)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let got = download(p.tested, &dx.tested, rows * cols);
    let tol = p.agreement.relative;
    assert_close(
        &format!("{what}: backward, clamped row"),
        &got[..cols],
        &want[..cols],
        tol,
    );
    assert_close(
        &format!("{what}: backward"),
        &got[cols..],
        &want[cols..],
        tol,
    );
}
