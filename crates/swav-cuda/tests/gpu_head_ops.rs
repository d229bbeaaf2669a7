//! Every `HeadOps<f32>` operation of the CUDA backend against `swav_core::SliceOps` (the
//! reference) on the same random inputs, then Sinkhorn (both paths), the swapped-prediction
//! loss and its gradient, and the multi-tensor LARS step against `Lars::step`.
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::{Rng, assert_close, download, gpu, upload, wide};
use swav_core::{
    BufAt, HeadOps, Lars, LarsScaling, LossWorkspace, MomentumState, ParamKind, ScaledScores,
    SgdStep, SingleProcess, SinkhornConfig, SinkhornPath, SinkhornWorkspace, SliceOps,
    SwappedPrediction, sinkhorn, swapped_prediction_loss,
};
use swav_cuda::{CudaBackend, DType, LarsParam, Precision};

/// Sizes that are not multiples of any block or tile size.
const ROWS: usize = 300;
const COLS: usize = 257;

/// Single rounding differences (exp, log) and f32 sums in another order.
const TIGHT: f64 = 2e-6;
const SUMS: f64 = 1e-5;

fn backend() -> Option<CudaBackend> {
    gpu(Precision::F32)
}

/// `buf` from `offset` on.
fn at<B>(buf: &B, offset: usize) -> BufAt<'_, B> {
    BufAt { buf, offset }
}

/// The `ROWS × COLS` matrix `x` divided by `eps`.
fn scaled<B>(x: &B, eps: f32) -> ScaledScores<'_, B, f32> {
    ScaledScores {
        scores: x,
        rows: ROWS,
        cols: COLS,
        eps,
    }
}

/// The SGD step the single-tensor check runs.
fn sgd(first: bool) -> SgdStep<f32> {
    SgdStep {
        scaling: LarsScaling {
            grad_scale: 0.01,
            weight_decay: 1e-6,
        },
        lr: 0.5,
        momentum: 0.9,
        first,
    }
}

#[test]
fn reductions_match() {
    let Some(mut g) = backend() else { return };
    let mut c = SliceOps;
    let mut rng = Rng::new(1);
    for n in [1usize, 31, 2048, 2049, 1_000_003] {
        let x = rng.vec(n, 2.0, 0.25);
        let gx = upload(&mut g, &x);
        let mut out = g.zeros(1).unwrap();
        let mut host = vec![0.0f32];

        c.max_into(&x, &mut host).unwrap();
        g.max_into(&gx, &mut out).unwrap();
        assert_eq!(download(&mut g, &out, 1), host, "max of {n}");

        c.min_into(&x, &mut host).unwrap();
        g.min_into(&gx, &mut out).unwrap();
        assert_eq!(download(&mut g, &out, 1), host, "min of {n}");

        // Sums in another order: within f32 rounding of the sum of magnitudes.
        let magnitude: f64 = x.iter().map(|v| v.abs() as f64).sum();
        c.sum_into(&x, &mut host).unwrap();
        g.sum_into(&gx, &mut out).unwrap();
        let got = download(&mut g, &out, 1)[0];
        assert!(
            ((got - host[0]) as f64).abs() <= 1e-6 * magnitude,
            "sum of {n}: {got} vs {}",
            host[0]
        );

        let want = c.sum_squares(&x).unwrap() as f64;
        let got = g.sum_squares(&gx).unwrap() as f64;
        assert!(
            (got - want).abs() <= SUMS * want,
            "sum_squares of {n}: {got} vs {want}"
        );
    }
    let mut x = rng.vec(5000, 1.0, 0.0);
    x[17] = f32::NAN;
    x[4000] = f32::INFINITY;
    x[4001] = f32::NEG_INFINITY;
    let gx = upload(&mut g, &x);
    assert_eq!(g.count_non_finite(&gx).unwrap(), 3);
    let mut out = g.zeros(1).unwrap();
    g.max_into(&gx, &mut out).unwrap();
    assert!(download(&mut g, &out, 1)[0].is_nan(), "max propagates NaN");
}

#[test]
fn memory_operations_match() {
    let Some(mut g) = backend() else { return };
    let mut rng = Rng::new(2);
    let x = rng.vec(1000, 1.0, 0.0);
    let gx = upload(&mut g, &x);

    // fill, scale, copy with offsets, axpy with offsets, dot
    let mut y = upload(&mut g, &vec![0.5; 1000]);
    g.fill(&mut y, -3.0).unwrap();
    assert!(download(&mut g, &y, 1000).iter().all(|&v| v == -3.0));
    g.copy(&gx, 100, &mut y, 10, 500).unwrap();
    let got = download(&mut g, &y, 1000);
    assert_eq!(&got[10..510], &x[100..600]);
    assert_eq!(got[9], -3.0);
    assert_eq!(got[510], -3.0);

    let mut hy = got.clone();
    SliceOps.axpy(0.75, &x, 3, &mut hy, 7, 900).unwrap();
    g.axpy(0.75, &gx, 3, &mut y, 7, 900).unwrap();
    assert_eq!(download(&mut g, &y, 1000), hy, "axpy is exact");

    SliceOps.scale(&mut hy, -1.5).unwrap();
    g.scale(&mut y, -1.5).unwrap();
    assert_eq!(download(&mut g, &y, 1000), hy, "scale is exact");

    let mut acc = upload(&mut g, &[2.0]);
    let mut hacc = vec![2.0f32];
    SliceOps
        .dot_accumulate(at(&x, 5), at(&hy, 9), 800, -0.5, &mut hacc)
        .unwrap();
    g.dot_accumulate(at(&gx, 5), at(&y, 9), 800, -0.5, &mut acc)
        .unwrap();
    assert_close(
        "dot_accumulate",
        &download(&mut g, &acc, 1),
        &wide(&hacc),
        SUMS,
    );

    // copy_within: overlapping in both directions, and disjoint (the queue shift)
    for (src, dst, len) in [(0usize, 64usize, 900usize), (64, 0, 900), (0, 500, 400)] {
        let mut hq = x.clone();
        SliceOps.copy_within(&mut hq, src, dst, len).unwrap();
        let mut q = upload(&mut g, &x);
        g.copy_within(&mut q, src, dst, len).unwrap();
        assert_eq!(
            download(&mut g, &q, 1000),
            hq,
            "copy_within {src}->{dst} x{len}"
        );
    }

    // bf16 buffers: round trip, conversion on copy
    let mut b = g.alloc(1000, DType::Bf16).unwrap();
    g.copy(&gx, 0, &mut b, 0, 1000).unwrap();
    let back = download(&mut g, &b, 1000);
    assert_eq!(back, common::bf16_round(&x));
}

#[test]
fn row_and_column_operations_match() {
    let Some(mut g) = backend() else { return };
    let mut c = SliceOps;
    let mut rng = Rng::new(3);
    let m = rng.vec(ROWS * COLS, 1.0, 1.5);
    let gm = upload(&mut g, &m);

    let mut hr = vec![0.0; ROWS];
    let mut gr = g.zeros(ROWS).unwrap();
    c.row_sums(&m, ROWS, COLS, &mut hr).unwrap();
    g.row_sums(&gm, ROWS, COLS, &mut gr).unwrap();
    assert_close("row_sums", &download(&mut g, &gr, ROWS), &wide(&hr), SUMS);

    let mut hc = vec![0.0; COLS];
    let mut gc = g.zeros(COLS).unwrap();
    c.col_sums(&m, ROWS, COLS, &mut hc).unwrap();
    g.col_sums(&gm, ROWS, COLS, &mut gc).unwrap();
    assert_close("col_sums", &download(&mut g, &gc, COLS), &wide(&hc), SUMS);

    // the divisions are exact given the same divisors: use the host's
    let gr = upload(&mut g, &hr);
    let gc = upload(&mut g, &hc);
    let (mut hm, mut gm2) = (m.clone(), upload(&mut g, &m));
    c.div_rows(&mut hm, ROWS, COLS, &hr, 3000.0).unwrap();
    g.div_rows(&mut gm2, ROWS, COLS, &gr, 3000.0).unwrap();
    assert_eq!(download(&mut g, &gm2, ROWS * COLS), hm, "div_rows is exact");
    c.div_cols(&mut hm, ROWS, COLS, &hc, 64.0).unwrap();
    g.div_cols(&mut gm2, ROWS, COLS, &gc, 64.0).unwrap();
    assert_eq!(download(&mut g, &gm2, ROWS * COLS), hm, "div_cols is exact");

    let (mut hn, mut gn) = (m.clone(), upload(&mut g, &m));
    c.normalize_rows(&mut hn, ROWS, COLS, 1e-12).unwrap();
    g.normalize_rows(&mut gn, ROWS, COLS, 1e-12).unwrap();
    assert_close(
        "normalize_rows",
        &download(&mut g, &gn, ROWS * COLS),
        &wide(&hn),
        SUMS,
    );

    let (k, d) = (97, 128);
    let a = rng.unit_rows(ROWS, d);
    let b = rng.unit_rows(k, d);
    let (ga, gb) = (upload(&mut g, &a), upload(&mut g, &b));
    let mut hs = vec![0.0; ROWS * k];
    let mut gs = g.zeros(ROWS * k + 5).unwrap();
    c.matmul_nt(&a, &b, ROWS, k, d, &mut hs).unwrap();
    g.matmul_nt(&ga, &gb, ROWS, k, d, &mut gs).unwrap();
    assert_close(
        "matmul_nt (f32, no TF32)",
        &download(&mut g, &gs, ROWS * k),
        &wide(&hs),
        SUMS,
    );
}

#[test]
fn exponentials_and_log_softmax_match() {
    let Some(mut g) = backend() else { return };
    let mut c = SliceOps;
    let mut rng = Rng::new(4);
    let s = rng.vec(ROWS * COLS, 1.0, 0.0);
    let gs = upload(&mut g, &s);
    let shift = vec![0.9f32];
    let gshift = upload(&mut g, &shift);

    for with_shift in [false, true] {
        let mut h = vec![0.0; ROWS * COLS];
        let mut o = g.zeros(ROWS * COLS).unwrap();
        c.exp_div(&s, 0.05, with_shift.then_some(&shift), &mut h)
            .unwrap();
        g.exp_div(&gs, 0.05, with_shift.then_some(&gshift), &mut o)
            .unwrap();
        assert_close(
            "exp_div",
            &download(&mut g, &o, ROWS * COLS),
            &wide(&h),
            TIGHT,
        );
    }

    let mut hl = vec![0.0; ROWS * COLS];
    let mut gl = g.zeros(ROWS * COLS).unwrap();
    c.log_softmax_rows(&s, ROWS, COLS, 0.1, &mut hl).unwrap();
    g.log_softmax_rows(&gs, ROWS, COLS, 0.1, &mut gl).unwrap();
    assert_close(
        "log_softmax_rows",
        &download(&mut g, &gl, ROWS * COLS),
        &wide(&hl),
        SUMS,
    );

    let w = rng.vec(ROWS, 1.0, 0.0);
    let gw = upload(&mut g, &w);
    let mut ho = rng.vec(ROWS * COLS, 1.0, 0.0);
    let mut go = upload(&mut g, &ho);
    c.add_exp_weighted_rows(&hl, ROWS, COLS, &w, &mut ho)
        .unwrap();
    let gl = upload(&mut g, &hl);
    g.add_exp_weighted_rows(&gl, ROWS, COLS, &gw, &mut go)
        .unwrap();
    assert_close(
        "add_exp_weighted_rows",
        &download(&mut g, &go, ROWS * COLS),
        &wide(&ho),
        TIGHT,
    );

    let (mut hx, mut gx) = (s.clone(), upload(&mut g, &s));
    c.negate_minus(&mut hx, 0.3).unwrap();
    g.negate_minus(&mut gx, 0.3).unwrap();
    assert_eq!(
        download(&mut g, &gx, ROWS * COLS),
        hx,
        "negate_minus is exact"
    );
}

#[test]
fn log_domain_primitives_match() {
    let Some(mut g) = backend() else { return };
    let mut c = SliceOps;
    let mut rng = Rng::new(5);
    let eps = 0.01;
    let x = rng.vec(ROWS * COLS, 1.0, 0.0);
    let a = rng.vec(COLS, 3.0, 0.0);
    let b = rng.vec(ROWS, 3.0, 0.0);
    let (gx, ga, gb) = (upload(&mut g, &x), upload(&mut g, &a), upload(&mut g, &b));

    let mut hm = vec![0.0; COLS];
    let mut gm = g.zeros(COLS).unwrap();
    c.col_max_biased(scaled(&x, eps), &b, &mut hm).unwrap();
    g.col_max_biased(scaled(&gx, eps), &gb, &mut gm).unwrap();
    assert_eq!(download(&mut g, &gm, COLS), hm, "col_max_biased is exact");

    let gm = upload(&mut g, &hm);
    let mut hsum = vec![0.0; COLS];
    let mut gsum = g.zeros(COLS).unwrap();
    c.col_sum_exp_biased(scaled(&x, eps), &b, &hm, &mut hsum)
        .unwrap();
    g.col_sum_exp_biased(scaled(&gx, eps), &gb, &gm, &mut gsum)
        .unwrap();
    assert_close(
        "col_sum_exp_biased",
        &download(&mut g, &gsum, COLS),
        &wide(&hsum),
        SUMS,
    );

    let mut hl = vec![0.0; ROWS];
    let mut gl = g.zeros(ROWS).unwrap();
    c.row_logsumexp_biased(scaled(&x, eps), &a, &mut hl)
        .unwrap();
    g.row_logsumexp_biased(scaled(&gx, eps), &ga, &mut gl)
        .unwrap();
    assert_close(
        "row_logsumexp_biased",
        &download(&mut g, &gl, ROWS),
        &wide(&hl),
        SUMS,
    );

    let mut he = vec![0.0; ROWS * COLS];
    let mut ge = g.zeros(ROWS * COLS).unwrap();
    let small_a: Vec<f32> = a.iter().map(|v| v - 100.0).collect();
    let gsa = upload(&mut g, &small_a);
    c.exp_biased(scaled(&x, eps), &b, &small_a, &mut he)
        .unwrap();
    g.exp_biased(scaled(&gx, eps), &gb, &gsa, &mut ge).unwrap();
    assert_close(
        "exp_biased",
        &download(&mut g, &ge, ROWS * COLS),
        &wide(&he),
        TIGHT,
    );

    let s: Vec<f32> = rng.vec(COLS, 0.5, 1.0);
    let gsv = upload(&mut g, &s);
    let mut hv = vec![0.0; COLS];
    let mut gv = g.zeros(COLS).unwrap();
    c.neg_log_sum_shifted(&hm, &s, 8.0, &mut hv).unwrap();
    let gm = upload(&mut g, &hm);
    g.neg_log_sum_shifted(&gm, &gsv, 8.0, &mut gv).unwrap();
    assert_close(
        "neg_log_sum_shifted",
        &download(&mut g, &gv, COLS),
        &wide(&hv),
        TIGHT,
    );
}

#[test]
fn sinkhorn_matches_on_both_paths() {
    let Some(mut g) = backend() else { return };
    let mut c = SliceOps;
    let mut rng = Rng::new(6);
    let (n, k, d) = (256, 300, 32);
    let z = rng.unit_rows(n, d);
    let w = rng.unit_rows(k, d);
    let mut scores = vec![0.0; n * k];
    c.matmul_nt(&z, &w, n, k, d, &mut scores).unwrap();
    let gscores = upload(&mut g, &scores);
    for (eps, path) in [
        (0.05f32, SinkhornPath::Linear),
        (0.002, SinkhornPath::LogDomain),
    ] {
        let config = SinkhornConfig {
            epsilon: eps,
            ..Default::default()
        };
        let mut hq = vec![0.0; n * k];
        let mut hws = SinkhornWorkspace::new(&mut c, n, k).unwrap();
        let hp = sinkhorn(&mut c, &SingleProcess, &scores, &config, &mut hws, &mut hq).unwrap();
        let mut gq = g.zeros(n * k).unwrap();
        let mut gws = SinkhornWorkspace::new(&mut g, n, k).unwrap();
        let gp = sinkhorn(&mut g, &SingleProcess, &gscores, &config, &mut gws, &mut gq).unwrap();
        assert_eq!((hp, gp), (path, path), "eps {eps}");
        assert_close(
            &format!("sinkhorn codes, eps {eps}"),
            &download(&mut g, &gq, n * k),
            &wide(&hq),
            1e-4,
        );
    }
}

#[test]
fn swapped_loss_and_gradient_match() {
    let Some(mut g) = backend() else { return };
    let mut c = SliceOps;
    let mut rng = Rng::new(7);
    let (bs, crops, k) = (16, 8, 300);
    let layout = SwappedPrediction {
        batch: bs,
        crops,
        prototypes: k,
        crops_for_assign: &[0, 1],
        temperature: 0.1f32,
    };
    let scores = rng.vec(crops * bs * k, 1.0, 0.0);
    let codes: Vec<Vec<f32>> = (0..2)
        .map(|_| {
            let mut q = rng.vec(bs * k, 0.5, 0.5);
            for row in q.chunks_mut(k) {
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            q
        })
        .collect();
    let mut hws = LossWorkspace::new(&mut c, &layout).unwrap();
    let mut hgrad = vec![0.0; crops * bs * k];
    let hloss =
        swapped_prediction_loss(&mut c, &layout, &scores, &codes, &mut hws, Some(&mut hgrad))
            .unwrap();

    let gscores = upload(&mut g, &scores);
    let gcodes: Vec<_> = codes.iter().map(|q| upload(&mut g, q)).collect();
    let mut gws = LossWorkspace::new(&mut g, &layout).unwrap();
    let mut ggrad = g.zeros(crops * bs * k).unwrap();
    let gloss = swapped_prediction_loss(
        &mut g,
        &layout,
        &gscores,
        &gcodes,
        &mut gws,
        Some(&mut ggrad),
    )
    .unwrap();
    assert!(
        (gloss - hloss).abs() <= 1e-5 * hloss.abs(),
        "loss {gloss} vs {hloss}"
    );
    assert_close(
        "loss gradient",
        &download(&mut g, &ggrad, crops * bs * k),
        &wide(&hgrad),
        SUMS,
    );
}

#[test]
fn sgd_and_multi_tensor_lars_match_the_reference() {
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

    // The single-tensor HeadOps step is bit-exact given the same scaling.
    let (mut p, x, mut b) = (
        rng.vec(1000, 1.0, 0.0),
        rng.vec(1000, 0.1, 0.0),
        vec![0.0f32; 1000],
    );
    let (mut gpp, gx, mut gbb) = (upload(&mut g, &p), upload(&mut g, &x), upload(&mut g, &b));
    for first in [true, false] {
        c.sgd_momentum_step(&mut p, &x, &mut b, sgd(first)).unwrap();
        g.sgd_momentum_step(&mut gpp, &gx, &mut gbb, sgd(first))
            .unwrap();
        assert_eq!(
            download(&mut g, &gpp, 1000),
            p,
            "sgd_momentum_step, first = {first}"
        );
        assert_eq!(
            download(&mut g, &gbb, 1000),
            b,
            "momentum buffer, first = {first}"
        );
    }
}
