//! [`HeadOps`] conformance: every operation of a backend against swav-core's [`SliceOps`]
//! (the reference implementation) on identical inputs, then Sinkhorn on both of its paths and
//! the swapped-prediction loss with its gradient, which are built from those operations.
//!
//! Operations whose result is fixed by IEEE arithmetic (memory operations, fills, extremes,
//! scaling, axpy, the divisions, negation, the SGD step) must match bit for bit. Those that
//! evaluate `exp` or `log` may differ in the last few ulp ([`TIGHT`]), and sums, dot
//! products and the products built on them may be accumulated in another order ([`SUMS`],
//! more for long sums), both relative to the largest value of the output. Sizes are not
//! multiples of any block size and reach well past 2¹⁴ elements, the task size of the CPU
//! backend's parallel versions, so those are compared with the reference too.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use swav_core::{
    BufAt, BufferOps, ElementWiseOps, HeadOps, LarsScaling, LogDomainOps, LossWorkspace, MatrixOps,
    ReduceOps, ScaledScores, SgdOps, SgdStep, SingleProcess, SinkhornConfig, SinkhornPath,
    SinkhornWorkspace, SliceOps, SwappedPrediction, sinkhorn, swapped_prediction_loss,
};

use super::harness::{assert_close, data, download, ok, upload};

/// Single rounding differences of `exp` and `log`, relative to the output's largest value.
const TIGHT: f64 = 2e-6;
/// Sums in another order, relative to the output's largest value.
const SUMS: f64 = 1e-5;
/// The length of the element-wise cases: several CPU tasks, with a partial last one.
const LONG: usize = 40_009;
/// The ε of the log-domain cases: small, as where Sinkhorn takes that path.
const LOG_DOMAIN_EPS: f32 = 0.01;
/// A value no operation may write: it marks the tail of a larger output buffer.
const SENTINEL: f32 = 12345.0;

/// How closely a backend must reproduce [`SliceOps`].
#[derive(Debug, Clone, Copy)]
enum Tolerance {
    /// Bit for bit (NaN matching NaN).
    Exact,
    /// Within this fraction of the reference output's largest magnitude.
    Relative(f64),
}

/// Runs `$body` with `$o` bound first to the backend and then to [`SliceOps`], and compares
/// the host vectors the two runs return. The body uploads its own inputs, so both sides see
/// the same values.
macro_rules! check {
    ($backend:expr, $what:expr, $tolerance:expr, |$o:ident| $body:block) => {{
        let got: Vec<f32> = {
            let $o = &mut *$backend;
            $body
        };
        let want: Vec<f32> = {
            let $o = &mut SliceOps;
            $body
        };
        agree(&$what, $tolerance, &got, &want);
    }};
}

/// Panics, naming `what`, unless `got` reproduces `want` within `tolerance`.
fn agree(what: &str, tolerance: Tolerance, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: output length");
    match tolerance {
        Tolerance::Exact => {
            let same = |g: f32, w: f32| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
            if let Some(i) = (0..got.len()).find(|&i| !same(got[i], want[i])) {
                panic!(
                    "{what}: element {i} is {} where SliceOps gives {} (the operation is exact)",
                    got[i], want[i]
                );
            }
        }
        Tolerance::Relative(tol) => {
            let want: Vec<f64> = want.iter().map(|&v| f64::from(v)).collect();
            assert_close(what, got, &want, tol);
        }
    }
}

/// The whole of `buf`, on the host.
fn get<O: HeadOps<f32>>(o: &mut O, buf: &O::Buf) -> Vec<f32> {
    let len = o.buf_len(buf);
    download(o, buf, len)
}

/// The `rows × cols` matrix `scores` divided by [`LOG_DOMAIN_EPS`].
fn scaled<Buf>(scores: &Buf, rows: usize, cols: usize) -> ScaledScores<'_, Buf, f32> {
    ScaledScores {
        scores,
        rows,
        cols,
        eps: LOG_DOMAIN_EPS,
    }
}

/// `rows × cols` values with unit-norm rows, from stream `stream`.
fn unit_rows(stream: u64, rows: usize, cols: usize) -> Vec<f32> {
    let mut m = data(stream, rows * cols, 1.0, 0.0);
    for row in m.chunks_mut(cols) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    m
}

/// Checks every [`HeadOps`] operation of `backend`, and Sinkhorn and the swapped-prediction
/// loss run on it, against [`SliceOps`]; panics naming the operation, the case and the error
/// at the first disagreement.
pub fn check_head_ops<B: HeadOps<f32>>(backend: &mut B) {
    check_memory(backend);
    check_reductions(backend);
    check_element_wise(backend);
    for (rows, cols) in [(3, 5), (300, 257), (2, 20_000)] {
        check_matrices(backend, rows, cols);
        check_log_domain(backend, rows, cols);
    }
    check_matmul(backend);
    check_sgd_step(backend);
    check_sinkhorn(backend);
    check_swapped_loss(backend);
}

/// Allocation, transfers at offsets, copies (overlapping ones too) and fills.
fn check_memory<B: HeadOps<f32>>(b: &mut B) {
    check!(b, "zeros", Tolerance::Exact, |o| {
        let z = ok(o.zeros(LONG));
        assert_eq!(o.buf_len(&z), LONG, "zeros: buf_len");
        get(o, &z)
    });
    let x = data(1, 1000, 1.0, 0.0);
    let base = data(2, 1000, 1.0, 5.0);
    check!(b, "upload and download at offsets", Tolerance::Exact, |o| {
        let mut buf = upload(o, &base);
        ok(o.upload(&x[..300], &mut buf, 17));
        let mut part = vec![0.0; 400];
        ok(o.download(&buf, 50, &mut part));
        let mut all = get(o, &buf);
        all.extend(part);
        all
    });
    check!(b, "copy at offsets", Tolerance::Exact, |o| {
        let (src, mut dst) = (upload(o, &x), upload(o, &base));
        ok(o.copy(&src, 100, &mut dst, 10, 500));
        get(o, &dst)
    });
    for (src, dst, len) in [(0, 64, 900), (64, 0, 900), (0, 500, 400)] {
        check!(
            b,
            format!("copy_within {src} -> {dst}, {len} elements"),
            Tolerance::Exact,
            |o| {
                let mut buf = upload(o, &x);
                ok(o.copy_within(&mut buf, src, dst, len));
                get(o, &buf)
            }
        );
    }
    let long = data(3, LONG, 1.0, 0.0);
    check!(b, "fill", Tolerance::Exact, |o| {
        let mut buf = upload(o, &long);
        ok(o.fill(&mut buf, -3.25));
        get(o, &buf)
    });
}

/// The tolerance of a sum of `n` terms: [`SUMS`], or `√n·ε` where that is larger, since the
/// reference accumulates in `f32` too and its own rounding grows with the length.
fn sum_tolerance(n: usize) -> Tolerance {
    Tolerance::Relative(SUMS.max(f64::from(f32::EPSILON) * libm::sqrt(n as f64)))
}

/// The whole-buffer reductions, on lengths around block sizes and long ones, and with
/// non-finite values.
fn check_reductions<B: HeadOps<f32>>(b: &mut B) {
    let mut with_non_finite = data(10, 5000, 1.0, 0.0);
    with_non_finite[17] = f32::NAN;
    with_non_finite[4000] = f32::INFINITY;
    with_non_finite[4001] = f32::NEG_INFINITY;
    let cases = [1usize, 31, 2048, 2049, LONG, 1_000_003]
        .into_iter()
        .map(|n| data(11 + n as u64, n, 2.0, 0.25))
        .chain([with_non_finite]);
    for x in cases {
        let n = x.len();
        let finite = x.iter().all(|v| v.is_finite());
        let extremes = [
            ("max_into", Tolerance::Exact),
            ("min_into", Tolerance::Exact),
        ];
        let sum = finite.then_some(("sum_into", sum_tolerance(n)));
        for (name, tolerance) in extremes.into_iter().chain(sum) {
            check!(b, format!("{name}, {n} elements"), tolerance, |o| {
                let (x, mut out) = (upload(o, &x), upload(o, &[7.0]));
                ok(match name {
                    "max_into" => o.max_into(&x, &mut out),
                    "min_into" => o.min_into(&x, &mut out),
                    _ => o.sum_into(&x, &mut out),
                });
                get(o, &out)
            });
        }
        check!(
            b,
            format!("count_non_finite, {n} elements"),
            Tolerance::Exact,
            |o| {
                let x = upload(o, &x);
                vec![ok(o.count_non_finite(&x)) as f32]
            }
        );
        if finite {
            check!(
                b,
                format!("sum_squares, {n} elements"),
                sum_tolerance(n),
                |o| {
                    let x = upload(o, &x);
                    vec![ok(o.sum_squares(&x))]
                }
            );
        }
    }
}

/// Scaling, division by a device scalar, the exponentials, axpy, the dot product and
/// negation, on long buffers.
fn check_element_wise<B: HeadOps<f32>>(b: &mut B) {
    let x = data(20, LONG, 1.0, 0.0);
    let y = data(21, LONG, 1.0, 0.5);
    check!(b, "scale", Tolerance::Exact, |o| {
        let mut x = upload(o, &x);
        ok(o.scale(&mut x, -1.5));
        get(o, &x)
    });
    check!(b, "div_by_scalar", Tolerance::Exact, |o| {
        let (mut x, s) = (upload(o, &x), upload(o, &[0.7]));
        ok(o.div_by_scalar(&mut x, &s));
        get(o, &x)
    });
    for shift in [None, Some(0.9f32)] {
        check!(
            b,
            format!("exp_div, shift {shift:?}"),
            Tolerance::Relative(TIGHT),
            |o| {
                let (x, mut out) = (upload(o, &x), upload(o, &y));
                let shift = shift.map(|s| upload(o, &[s]));
                ok(o.exp_div(&x, 0.05, shift.as_ref(), &mut out));
                get(o, &out)
            }
        );
    }
    check!(b, "axpy at offsets", Tolerance::Exact, |o| {
        let (x, mut y) = (upload(o, &x), upload(o, &y));
        ok(o.axpy(0.75, &x, 3, &mut y, 7, LONG - 10));
        get(o, &y)
    });
    check!(b, "dot_accumulate at offsets", sum_tolerance(LONG), |o| {
        // One buffer for both operands: their terms do not cancel, so the tolerance
        // relative to the result stays meaningful.
        let (y, mut acc) = (upload(o, &y), upload(o, &[2.0]));
        let a = BufAt { buf: &y, offset: 5 };
        let b = BufAt { buf: &y, offset: 9 };
        ok(o.dot_accumulate(a, b, LONG - 20, -0.5, &mut acc));
        get(o, &acc)
    });
    check!(b, "negate_minus", Tolerance::Exact, |o| {
        let mut x = upload(o, &x);
        ok(o.negate_minus(&mut x, 0.3));
        get(o, &x)
    });
}

/// Row and column sums, the divisions by them, row normalisation, log-softmax and the
/// weighted exponentials, on a `rows × cols` matrix.
fn check_matrices<B: HeadOps<f32>>(b: &mut B, rows: usize, cols: usize) {
    let shape = format!("{rows} x {cols}");
    let m = data(30, rows * cols, 1.0, 1.5);
    let row_garbage = data(31, rows, 1.0, 0.0);
    let col_garbage = data(32, cols, 1.0, 0.0);
    check!(b, format!("row_sums, {shape}"), sum_tolerance(cols), |o| {
        let (m, mut out) = (upload(o, &m), upload(o, &row_garbage));
        ok(o.row_sums(&m, rows, cols, &mut out));
        get(o, &out)
    });
    check!(b, format!("col_sums, {shape}"), sum_tolerance(rows), |o| {
        let (m, mut out) = (upload(o, &m), upload(o, &col_garbage));
        ok(o.col_sums(&m, rows, cols, &mut out));
        get(o, &out)
    });
    // The divisions are exact given the same divisors.
    let row_divisors = data(33, rows, 1.0, 3.0);
    let col_divisors = data(34, cols, 1.0, 3.0);
    check!(b, format!("div_rows, {shape}"), Tolerance::Exact, |o| {
        let (mut m, d) = (upload(o, &m), upload(o, &row_divisors));
        ok(o.div_rows(&mut m, rows, cols, &d, 3000.0));
        get(o, &m)
    });
    check!(b, format!("div_cols, {shape}"), Tolerance::Exact, |o| {
        let (mut m, d) = (upload(o, &m), upload(o, &col_divisors));
        ok(o.div_cols(&mut m, rows, cols, &d, 64.0));
        get(o, &m)
    });
    check!(
        b,
        format!("normalize_rows, {shape}"),
        Tolerance::Relative(SUMS),
        |o| {
            let mut m = upload(o, &m);
            ok(o.normalize_rows(&mut m, rows, cols, 1e-12));
            get(o, &m)
        }
    );

    let s = data(35, rows * cols, 1.0, 0.0);
    check!(
        b,
        format!("log_softmax_rows, {shape}"),
        Tolerance::Relative(SUMS),
        |o| {
            let (s, mut out) = (upload(o, &s), upload(o, &m));
            ok(o.log_softmax_rows(&s, rows, cols, 0.1, &mut out));
            get(o, &out)
        }
    );
    let mut log_probs = vec![0.0; rows * cols];
    ok(SliceOps.log_softmax_rows(&s, rows, cols, 0.1, &mut log_probs));
    let weights = data(36, rows, 1.0, 0.0);
    check!(
        b,
        format!("add_exp_weighted_rows, {shape}"),
        Tolerance::Relative(TIGHT),
        |o| {
            let (logp, w, mut out) = (upload(o, &log_probs), upload(o, &weights), upload(o, &s));
            ok(o.add_exp_weighted_rows(&logp, rows, cols, &w, &mut out));
            get(o, &out)
        }
    );
}

/// The log-domain Sinkhorn operations on a `rows × cols` score matrix with a small ε
/// (outputs start out holding other inputs, so nothing depends on their being zero).
fn check_log_domain<B: HeadOps<f32>>(b: &mut B, rows: usize, cols: usize) {
    let shape = format!("{rows} x {cols}");
    let x = data(40, rows * cols, 1.0, 0.0);
    // The log-scalings: `a` per prototype (column), `bias` per sample (row).
    let (a, bias) = (data(41, cols, 3.0, 0.0), data(42, rows, 3.0, 0.0));
    // The column maxima the reference finds, given to both sides as col_sum_exp_biased's
    // shifts.
    let mut col_max = vec![0.0; cols];
    ok(SliceOps.col_max_biased(scaled(&x, rows, cols), &bias, &mut col_max));
    check!(
        b,
        format!("col_max_biased, {shape}"),
        Tolerance::Exact,
        |o| {
            let (scores, bias, mut out) = (upload(o, &x), upload(o, &bias), upload(o, &a));
            ok(o.col_max_biased(scaled(&scores, rows, cols), &bias, &mut out));
            get(o, &out)
        }
    );
    check!(
        b,
        format!("col_sum_exp_biased, {shape}"),
        Tolerance::Relative(SUMS),
        |o| {
            let (scores, bias) = (upload(o, &x), upload(o, &bias));
            let (m, mut out) = (upload(o, &col_max), upload(o, &a));
            ok(o.col_sum_exp_biased(scaled(&scores, rows, cols), &bias, &m, &mut out));
            get(o, &out)
        }
    );
    check!(
        b,
        format!("row_logsumexp_biased, {shape}"),
        Tolerance::Relative(SUMS),
        |o| {
            let (scores, a, mut out) = (upload(o, &x), upload(o, &a), upload(o, &bias));
            ok(o.row_logsumexp_biased(scaled(&scores, rows, cols), &a, &mut out));
            get(o, &out)
        }
    );
    // Shifted so that every exponential stays finite (and many underflow).
    let small_a: Vec<f32> = a.iter().map(|v| v - 100.0).collect();
    check!(
        b,
        format!("exp_biased, {shape}"),
        Tolerance::Relative(TIGHT),
        |o| {
            let (scores, bias, a) = (upload(o, &x), upload(o, &bias), upload(o, &small_a));
            let mut out = upload(o, &x);
            ok(o.exp_biased(scaled(&scores, rows, cols), &bias, &a, &mut out));
            get(o, &out)
        }
    );
    let sums = data(44, cols, 0.5, 1.0);
    check!(
        b,
        format!("neg_log_sum_shifted, {shape}"),
        Tolerance::Relative(TIGHT),
        |o| {
            let (m, s, mut v) = (upload(o, &col_max), upload(o, &sums), upload(o, &a));
            ok(o.neg_log_sum_shifted(&m, &s, 8.0, &mut v));
            get(o, &v)
        }
    );
}

/// The score product, into an output larger than the product whose tail stays untouched.
fn check_matmul<B: HeadOps<f32>>(b: &mut B) {
    for (m, n, k) in [(3, 5, 4), (300, 97, 128)] {
        let (a, w) = (unit_rows(50, m, k), unit_rows(51, n, k));
        let mut out = data(52, m * n + 5, 1.0, 0.0);
        out[m * n..].fill(SENTINEL);
        check!(
            b,
            format!("matmul_nt, {m} x {n} x {k}"),
            Tolerance::Relative(SUMS),
            |o| {
                let (a, w, mut out) = (upload(o, &a), upload(o, &w), upload(o, &out));
                ok(o.matmul_nt(&a, &w, m, n, k, &mut out));
                let all = get(o, &out);
                assert!(
                    all[m * n..].iter().all(|&v| v == SENTINEL),
                    "matmul_nt, {m} x {n} x {k}: wrote past the product"
                );
                all[..m * n].to_vec()
            }
        );
    }
}

/// The SGD-with-momentum update, creating the momentum buffer and then accumulating into it.
fn check_sgd_step<B: HeadOps<f32>>(b: &mut B) {
    let p = data(60, LONG, 1.0, 0.0);
    let g = data(61, LONG, 0.1, 0.0);
    let momentum = data(62, LONG, 0.1, 0.0);
    let step = |first| SgdStep {
        scaling: LarsScaling {
            grad_scale: 0.01,
            weight_decay: 1e-6,
        },
        lr: 0.5,
        momentum: 0.9,
        first,
    };
    for first in [true, false] {
        check!(
            b,
            format!("sgd_momentum_step, first = {first}"),
            Tolerance::Exact,
            |o| {
                let (mut p, g, mut buf) = (upload(o, &p), upload(o, &g), upload(o, &momentum));
                ok(o.sgd_momentum_step(&mut p, &g, &mut buf, step(first)));
                let mut both = get(o, &p);
                both.extend(get(o, &buf));
                both
            }
        );
    }
}

/// Sinkhorn's codes on the linear and on the log-domain path.
fn check_sinkhorn<B: HeadOps<f32>>(b: &mut B) {
    let (n, k, d) = (256, 300, 32);
    let mut scores = vec![0.0; n * k];
    let (z, w) = (unit_rows(70, n, d), unit_rows(71, k, d));
    ok(SliceOps.matmul_nt(&z, &w, n, k, d, &mut scores));
    for (epsilon, path) in [
        (0.05, SinkhornPath::Linear),
        (0.002, SinkhornPath::LogDomain),
    ] {
        let what = format!("sinkhorn codes, eps {epsilon}");
        let config = SinkhornConfig {
            epsilon,
            ..Default::default()
        };
        check!(b, what, Tolerance::Relative(1e-4), |o| {
            let (scores, mut codes) = (upload(o, &scores), ok(o.zeros(n * k)));
            let mut ws = ok(SinkhornWorkspace::new(o, n, k));
            let taken = sinkhorn(o, &SingleProcess, &scores, &config, &mut ws, &mut codes);
            assert_eq!(ok(taken), path, "{what}: path");
            get(o, &codes)
        });
    }
}

/// The swapped-prediction loss and its gradient with respect to the scores.
fn check_swapped_loss<B: HeadOps<f32>>(b: &mut B) {
    let (bs, crops, k) = (16, 8, 300);
    let layout = SwappedPrediction {
        batch: bs,
        crops,
        prototypes: k,
        crops_for_assign: &[0, 1],
        temperature: 0.1f32,
    };
    let scores = data(80, crops * bs * k, 1.0, 0.0);
    let codes: Vec<Vec<f32>> = (0..2)
        .map(|i| {
            let mut q = data(81 + i, bs * k, 0.5, 0.5);
            for row in q.chunks_mut(k) {
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            q
        })
        .collect();
    check!(
        b,
        "swapped-prediction loss",
        Tolerance::Relative(SUMS),
        |o| { vec![loss_and_gradient(o, &layout, &scores, &codes).0] }
    );
    check!(
        b,
        "swapped-prediction loss gradient",
        Tolerance::Relative(SUMS),
        |o| { loss_and_gradient(o, &layout, &scores, &codes).1 }
    );
}

/// The loss of `scores` against `codes`, and its gradient, computed on `o`.
fn loss_and_gradient<O: HeadOps<f32>>(
    o: &mut O,
    layout: &SwappedPrediction<'_, f32>,
    scores: &[f32],
    codes: &[Vec<f32>],
) -> (f32, Vec<f32>) {
    let scores = upload(o, scores);
    let codes: Vec<_> = codes.iter().map(|q| upload(o, q)).collect();
    let mut ws = ok(LossWorkspace::new(o, layout));
    let mut grad = ok(o.zeros(o.buf_len(&scores)));
    let loss = swapped_prediction_loss(o, layout, &scores, &codes, &mut ws, Some(&mut grad));
    (ok(loss), get(o, &grad))
}
