//! bf16 mixed precision against f32 on the GPU itself, at the shapes of training: every
//! distinct convolution of ResNet-50 (forward, input gradient, weight gradient) and every
//! distinct batch norm (statistics, normalisation with residual and ReLU, both backward
//! halves) at batch 64 and 224 px. The small shapes of the conformance checks make cuDNN
//! choose other algorithms than training does; these are the shapes where a wrong layout,
//! a bad algorithm or an overflowing index would show.
//!
//! The stem is also checked padded to 8 channels (`ConvPolicy::pad_stem`).
//!
//! Both backends get identical inputs, already rounded to bf16, so that the difference is
//! only what mixed precision itself adds: bf16 storage of the outputs (half a unit in the
//! last place, 2⁻⁸ relative) and another summation order. Each comparison prints the error
//! per element (largest and root-mean-square, relative to the f32 value) and fails when the
//! largest error exceeds 1 % of the largest f32 value (the bound of the bf16 agreement
//! checks) or the root-mean-square relative error exceeds 4·10⁻³ (four times what bf16
//! rounding alone gives).
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::{Rng, bf16_round, download, gpu, upload};
use swav_cuda::{Conv2dShape, ConvPolicy, CudaBackend, CudaBuffer, CudaConfig, Precision};
use swav_nn::prelude::*;
use swav_nn::{
    Affine, AffineGrads, BatchNormBackward, BatchNormSettings, BatchNormShape, Epilogue,
    RunningStats,
};
use swav_nn::{batch_norm_saved_len, batch_norm_stats_len};

const BATCH: usize = 64;
/// The largest error allowed, as a fraction of the largest f32 value.
const MAX_TOL: f64 = 1e-2;
/// The root-mean-square error allowed, relative to the f32 values' root mean square.
const RMS_TOL: f64 = 4e-3;

/// `(side, in, out, kernel, stride)` of every distinct convolution of ResNet-50 at 224 px
/// (torchvision's v1.5: the stride on the 3×3 convolution, 1×1 downsampling).
const RESNET50_CONVS: [(usize, usize, usize, usize, usize); 23] = [
    (224, 3, 64, 7, 2),
    (56, 64, 64, 1, 1),
    (56, 64, 64, 3, 1),
    (56, 64, 256, 1, 1),
    (56, 256, 64, 1, 1),
    (56, 256, 128, 1, 1),
    (56, 128, 128, 3, 2),
    (28, 128, 512, 1, 1),
    (56, 256, 512, 1, 2),
    (28, 512, 128, 1, 1),
    (28, 128, 128, 3, 1),
    (28, 512, 256, 1, 1),
    (28, 256, 256, 3, 2),
    (14, 256, 1024, 1, 1),
    (28, 512, 1024, 1, 2),
    (14, 1024, 256, 1, 1),
    (14, 256, 256, 3, 1),
    (14, 1024, 512, 1, 1),
    (14, 512, 512, 3, 2),
    (7, 512, 2048, 1, 1),
    (14, 1024, 2048, 1, 2),
    (7, 2048, 512, 1, 1),
    (7, 512, 512, 3, 1),
];

/// The convolution `(side, in, out, kernel, stride)` at [`BATCH`], padded to keep the size
/// (divided by the stride).
fn conv_shape(
    (side, inp, out, kernel, stride): (usize, usize, usize, usize, usize),
) -> Conv2dShape {
    Conv2dShape {
        batch: BATCH,
        in_height: side,
        in_width: side,
        in_channels: inp,
        out_channels: out,
        kernel,
        stride,
        padding: kernel / 2,
    }
}

/// `(side, channels)` of every distinct batch norm of ResNet-50 at 224 px.
const RESNET50_BATCH_NORMS: [(usize, usize); 12] = [
    (112, 64),
    (56, 64),
    (56, 128),
    (56, 256),
    (28, 128),
    (28, 256),
    (28, 512),
    (14, 256),
    (14, 512),
    (14, 1024),
    (7, 512),
    (7, 2048),
];

/// The two backends of one comparison.
struct Pair {
    f32: CudaBackend,
    bf16: CudaBackend,
}

impl Pair {
    /// The bf16 backend with the default convolution policy, or `policy`.
    fn open(policy: Option<ConvPolicy>) -> Option<Self> {
        Some(Self {
            f32: gpu(Precision::F32)?,
            bf16: CudaBackend::open_gpu_0_or_skip(CudaConfig {
                precision: Precision::MixedBf16,
                convolution: policy.unwrap_or_default(),
            })?,
        })
    }

    /// Runs `shape`'s convolution in its three directions on random bf16 operands on both
    /// backends and compares the results; returns the failure lines.
    fn compare_conv(&mut self, shape: &Conv2dShape, rng: &mut Rng) -> Vec<String> {
        let (inp, k) = (shape.in_channels, shape.kernel);
        let name = format!(
            "conv {0}x{0}x{inp} -> {1} (k{k} s{2})",
            shape.in_height, shape.out_channels, shape.stride
        );
        let fan_in = (inp * k * k) as f32;
        let x = bf16_round(&rng.vec(shape.input_len(), 1.0, 0.0));
        let w = bf16_round(&rng.vec(shape.weight_len(), (3.0 / fan_in).sqrt(), 0.0));
        let dy = bf16_round(&rng.vec(shape.output_len(), 1.0, 0.0));
        let want = conv_run(&mut self.f32, [&x, &w, &dy], shape);
        let got = conv_run(&mut self.bf16, [&x, &w, &dy], shape);
        let mut pairs = vec![
            ("forward", (want.y, got.y), shape.output_len()),
            ("weight gradient", (want.dw, got.dw), shape.weight_len()),
        ];
        if let (Some(want_dx), Some(got_dx)) = (want.dx, got.dx) {
            pairs.push(("input gradient", (want_dx, got_dx), shape.input_len()));
        }
        pairs
            .into_iter()
            .filter_map(|(what, pair, n)| self.compare(&format!("{name} {what}"), &pair, n))
            .collect()
    }

    /// Compares the first `len` values of a buffer pair; returns a failure line, if any.
    fn compare(
        &mut self,
        what: &str,
        bufs: &(CudaBuffer, CudaBuffer),
        len: usize,
    ) -> Option<String> {
        let want = download(&mut self.f32, &bufs.0, len);
        let got = download(&mut self.bf16, &bufs.1, len);
        let e = ErrorStats::of(&got, &want);
        eprintln!(
            "{what}: max |err| {:.2e} = {:.2e} of max |f32| {:.3e}; per element: max {:.2e}, rms {:.2e} relative",
            e.max_abs,
            e.max_abs / e.scale,
            e.scale,
            e.max_rel,
            e.rms_rel
        );
        (e.max_abs > MAX_TOL * e.scale || e.rms_rel > RMS_TOL).then(|| {
            format!(
                "{what}: max {:.2e} of scale, rms {:.2e}",
                e.max_abs / e.scale,
                e.rms_rel
            )
        })
    }
}

/// How far bf16 results are from f32 ones.
struct ErrorStats {
    /// `max |got - want|` (infinite where either is NaN).
    max_abs: f64,
    /// `max |want|` (at least the smallest normal f32).
    scale: f64,
    /// `max |got - want| / |want|` over elements whose `|want|` is at least 1 % of `scale`.
    max_rel: f64,
    /// `√(Σ(got - want)² / Σ want²)`.
    rms_rel: f64,
}

impl ErrorStats {
    fn of(got: &[f32], want: &[f32]) -> Self {
        let scale = want
            .iter()
            .fold(0.0f64, |m, &w| m.max((w as f64).abs()))
            .max(f32::MIN_POSITIVE as f64);
        let (mut max_abs, mut max_rel, mut err2, mut want2) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (&g, &w) in got.iter().zip(want) {
            let (g, w) = (g as f64, w as f64);
            let err = if (g - w).is_nan() {
                f64::INFINITY
            } else {
                (g - w).abs()
            };
            max_abs = max_abs.max(err);
            if w.abs() >= 1e-2 * scale {
                max_rel = max_rel.max(err / w.abs());
            }
            err2 += err * err;
            want2 += w * w;
        }
        Self {
            max_abs,
            scale,
            max_rel,
            rms_rel: (err2 / want2.max(f64::MIN_POSITIVE)).sqrt(),
        }
    }
}

/// An activation buffer holding `values`.
fn activation(b: &mut CudaBackend, values: &[f32]) -> CudaBuffer {
    let mut buf = b.alloc_activation(values.len()).unwrap();
    b.upload(values, &mut buf, 0).unwrap();
    buf
}

/// The results of one convolution in its three directions on one backend.
struct ConvRun {
    y: CudaBuffer,
    /// `None` for the stem, whose input gradient training never computes (its input is the
    /// image).
    dx: Option<CudaBuffer>,
    dw: CudaBuffer,
}

/// `shape`'s convolution of `x` by `w`, its input gradient and weight gradient for `dy`.
fn conv_run(b: &mut CudaBackend, [x, w, dy]: [&[f32]; 3], shape: &Conv2dShape) -> ConvRun {
    let (x, dy) = (activation(b, x), activation(b, dy));
    let w = upload(b, w);
    let mut y = b.alloc_activation(shape.output_len()).unwrap();
    b.conv2d_forward(&x, &w, shape, &mut y, None).unwrap();
    let dx = (shape.in_channels != 3).then(|| {
        let mut dx = b.alloc_activation(shape.input_len()).unwrap();
        b.conv2d_backward_data(&dy, &w, shape, &mut dx, false)
            .unwrap();
        dx
    });
    let mut dw = b.zeros(shape.weight_len()).unwrap();
    b.conv2d_backward_filter(&dy, &x, shape, &mut dw).unwrap();
    ConvRun { y, dx, dw }
}

#[test]
fn resnet50_convolutions_in_bf16_match_f32_at_batch_64() {
    let Some(mut p) = Pair::open(None) else {
        return;
    };
    let mut rng = Rng::new(64);
    let mut failures = Vec::new();
    for conv in RESNET50_CONVS {
        failures.extend(p.compare_conv(&conv_shape(conv), &mut rng));
    }
    eprintln!(
        "bf16 algorithms:\n{}",
        p.bf16.convolution_algorithms().join("\n")
    );
    assert!(failures.is_empty(), "bf16 beyond tolerance: {failures:#?}");
}

/// The buffers of one batch norm, forward and backward, on one backend.
struct BatchNormRun {
    saved: CudaBuffer,
    running_var: CudaBuffer,
    y: CudaBuffer,
    dweight: CudaBuffer,
    dbias: CudaBuffer,
    dx: CudaBuffer,
}

/// Training-mode batch norm of `x` (`rows × channels`) with a residual and ReLU, then its
/// backward for `dy`, on `b`.
fn batch_norm_run(
    b: &mut CudaBackend,
    [x, residual, dy, weight, bias]: [&[f32]; 5],
    rows: usize,
    channels: usize,
) -> BatchNormRun {
    let (x, residual, dy) = (activation(b, x), activation(b, residual), activation(b, dy));
    let (weight, bias) = (upload(b, weight), upload(b, bias));
    let mut stats = b.zeros(batch_norm_stats_len(channels)).unwrap();
    let mut sums = b.zeros(batch_norm_stats_len(channels)).unwrap();
    let mut saved = b.zeros(batch_norm_saved_len(channels)).unwrap();
    let mut running_mean = b.zeros(channels).unwrap();
    let mut running_var = b.zeros(channels).unwrap();
    let mut dweight = b.zeros(channels).unwrap();
    let mut dbias = b.zeros(channels).unwrap();
    let mut y = b.alloc_activation(rows * channels).unwrap();
    let mut dx = b.alloc_activation(rows * channels).unwrap();
    let shape = BatchNormShape { rows, channels };
    b.batch_norm_stats(&x, &shape, &running_mean, &mut stats)
        .unwrap();
    let settings = BatchNormSettings {
        eps: 1e-5,
        momentum: 0.1,
    };
    let running = RunningStats {
        mean: &mut running_mean,
        var: &mut running_var,
    };
    b.batch_norm_finalize(&stats, channels, settings, running, &mut saved)
        .unwrap();
    let affine = Affine {
        weight: &weight,
        bias: &bias,
    };
    let epilogue = Epilogue {
        residual: Some(&residual),
        relu: true,
    };
    b.batch_norm_apply(&x, &shape, &saved, affine, epilogue, &mut y)
        .unwrap();
    let inputs = BatchNormBackward {
        dy: &dy,
        x: &x,
        relu_output: Some(&y),
        saved: &saved,
    };
    let grads = AffineGrads {
        weight: &mut dweight,
        bias: &mut dbias,
    };
    b.batch_norm_backward_reduce(&inputs, &shape, &mut sums, grads)
        .unwrap();
    b.batch_norm_backward_apply(&inputs, &shape, &weight, Some(&sums), &mut dx)
        .unwrap();
    BatchNormRun {
        saved,
        running_var,
        y,
        dweight,
        dbias,
        dx,
    }
}

#[test]
fn resnet50_batch_norms_in_bf16_match_f32_at_batch_64() {
    let Some(mut p) = Pair::open(None) else {
        return;
    };
    let mut rng = Rng::new(65);
    let mut failures = Vec::new();
    for (side, channels) in RESNET50_BATCH_NORMS {
        let rows = BATCH * side * side;
        let len = rows * channels;
        let name = format!("batch norm {side}x{side}x{channels}");
        // Activations with a per-channel offset, as convolution outputs have.
        let offsets = rng.vec(channels, 2.0, 0.0);
        let x: Vec<f32> = rng
            .vec(len, 1.5, 0.0)
            .iter()
            .enumerate()
            .map(|(i, v)| v + offsets[i % channels])
            .collect();
        let x = bf16_round(&x);
        let residual = bf16_round(&rng.vec(len, 1.0, 0.0));
        let dy = bf16_round(&rng.vec(len, 1.0, 0.0));
        let weight = rng.vec(channels, 0.5, 1.0);
        let bias = rng.vec(channels, 0.5, 0.0);
        let inputs = [&x[..], &residual, &dy, &weight, &bias];
        let want = batch_norm_run(&mut p.f32, inputs, rows, channels);
        let got = batch_norm_run(&mut p.bf16, inputs, rows, channels);
        for (what, pair, n) in [
            ("mean, 1/std", (want.saved, got.saved), 2 * channels),
            (
                "running variance",
                (want.running_var, got.running_var),
                channels,
            ),
            ("output (+ residual, ReLU)", (want.y, got.y), len),
            ("weight gradient", (want.dweight, got.dweight), channels),
            ("bias gradient", (want.dbias, got.dbias), channels),
            ("input gradient", (want.dx, got.dx), len),
        ] {
            failures.extend(p.compare(&format!("{name} {what}"), &pair, n));
        }
    }
    assert!(failures.is_empty(), "bf16 beyond tolerance: {failures:#?}");
}

#[test]
fn the_padded_bf16_stem_matches_f32_at_batch_64() {
    let padded = ConvPolicy {
        pad_stem: true,
        ..ConvPolicy::default()
    };
    let Some(mut p) = Pair::open(Some(padded)) else {
        return;
    };
    let failures = p.compare_conv(&conv_shape(RESNET50_CONVS[0]), &mut Rng::new(66));
    eprintln!(
        "padded stem algorithms:\n{}",
        p.bf16.convolution_algorithms().join("\n")
    );
    assert!(
        p.bf16
            .convolution_algorithms()
            .iter()
            .all(|line| line.contains("x8 -> 64")),
        "the stem did not run padded to 8 channels"
    );
    assert!(failures.is_empty(), "bf16 beyond tolerance: {failures:#?}");
}
