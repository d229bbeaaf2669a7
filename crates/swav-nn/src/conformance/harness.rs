//! Shared plumbing of the conformance checks: moving data to and from the device, generated
//! data, comparisons and the finite-difference gradient check.

use alloc::vec::Vec;

use crate::Backend;
use swav_core::HeadOps;

use crate::hashed_uniform;

/// Unwraps a device result inside a check (a device failure fails the check).
pub(crate) fn ok<T, E: core::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("device error during a conformance check: {e:?}"),
    }
}

/// A parameter-class (f32) device buffer holding `data`.
pub(crate) fn upload<B: HeadOps<f32>>(b: &mut B, data: &[f32]) -> B::Buf {
    let mut buf = ok(b.zeros(data.len()));
    ok(b.upload(data, &mut buf, 0));
    buf
}

/// An activation-class device buffer holding `data`.
pub(crate) fn upload_activation<B: Backend>(b: &mut B, data: &[f32]) -> B::Buf {
    let mut buf = ok(b.alloc_activation(data.len()));
    ok(b.upload(data, &mut buf, 0));
    buf
}

/// The first `len` elements of `buf`.
pub(crate) fn download<B: HeadOps<f32>>(b: &mut B, buf: &B::Buf, len: usize) -> Vec<f32> {
    let mut out = alloc::vec![0.0; len];
    ok(b.download(buf, 0, &mut out));
    out
}

/// `len` values `scale·u + offset`, `u` uniform in `[-1, 1)` from stream `stream`.
pub(crate) fn data(stream: u64, len: usize, scale: f32, offset: f32) -> Vec<f32> {
    (0..len as u64)
        .map(|i| scale * hashed_uniform(stream, i) + offset)
        .collect()
}

/// `Σ a·b` in f64.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// `Σ |a·b|` in f64: the scale of a dot product's rounding error.
pub(crate) fn abs_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 * y as f64).abs())
        .sum()
}

/// Asserts `max |got - want| <= tol · max(|want|)` (at least `tol` when `want` is all zero).
pub(crate) fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1.0e-30);
    let (mut worst, mut at, mut err2, mut norm2) = (0.0f64, 0, 0.0f64, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        err2 += err * err;
        norm2 += w * w;
        if err > worst || err.is_nan() {
            worst = err;
            at = i;
            if err.is_nan() {
                break;
            }
        }
    }
    assert!(
        worst <= tol * scale,
        "{what}: max error {worst:e} at {at} (got {}, want {}) exceeds {tol:e} × {scale:e} \
         (relative L2 error {:e})",
        got[at],
        want[at],
        (err2 / norm2.max(1e-300)).sqrt()
    );
}

/// A loss value with the sum of the magnitudes of its terms (its rounding-error scale).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loss {
    /// The loss.
    pub value: f64,
    /// `Σ |term|`.
    pub magnitude: f64,
}

/// Checks an analytic gradient `grad` of `loss` at `x` by central differences of step
/// `step`: along three pseudo-random directions and on four coordinates (the largest
/// gradient entry among them). Each derivative must agree within `tol` relative, plus the
/// loss's own rounding noise divided by the step.
pub(crate) fn check_gradient(
    what: &str,
    x: &[f32],
    grad: &[f32],
    step: f32,
    tol: f64,
    mut loss: impl FnMut(&[f32]) -> Loss,
) {
    assert_eq!(x.len(), grad.len(), "{what}: gradient length");
    let n = x.len();
    let gnorm = dot(grad, grad).sqrt();
    let mut probe = |label: &str, v: &[f32]| {
        let plus: Vec<f32> = x.iter().zip(v).map(|(&a, &d)| a + step * d).collect();
        let minus: Vec<f32> = x.iter().zip(v).map(|(&a, &d)| a - step * d).collect();
        let (lp, lm) = (loss(&plus), loss(&minus));
        // The step actually taken in f32, per coordinate, is what the difference measures.
        let taken: Vec<f32> = plus.iter().zip(&minus).map(|(p, m)| p - m).collect();
        let analytic = dot(grad, &taken) / (2.0 * step as f64);
        let numeric = (lp.value - lm.value) / (2.0 * step as f64);
        let noise = 8.0 * f32::EPSILON as f64 * (lp.magnitude + lm.magnitude) / step as f64;
        let vnorm = dot(v, v).sqrt();
        let allowed = tol * (analytic.abs() + 1.0e-3 * gnorm * vnorm) + noise;
        assert!(
            (numeric - analytic).abs() <= allowed,
            "{what}: {label}: finite difference {numeric:e} vs analytic {analytic:e} \
             (allowed {allowed:e})"
        );
    };
    for d in 0..3u64 {
        let v = data(0xD1_0000 + d, n, 1.0, 0.0);
        probe("direction", &v);
    }
    let largest = (0..n)
        .max_by(|&i, &j| grad[i].abs().total_cmp(&grad[j].abs()))
        .unwrap_or(0);
    for (k, j) in [largest, n / 3, n / 2, n - 1].into_iter().enumerate() {
        let mut v = alloc::vec![0.0f32; n];
        v[j] = 1.0;
        probe(
            if k == 0 {
                "largest coordinate"
            } else {
                "coordinate"
            },
            &v,
        );
    }
}

/// Checks one derivative: `analytic` against the central difference of `loss(t)` at `t = 0`
/// with step `step`, within `tol` relative to the larger of `|analytic|` and `floor`, plus
/// the loss's rounding noise divided by the step.
pub(crate) fn check_derivative(
    what: &str,
    analytic: f64,
    floor: f64,
    step: f32,
    tol: f64,
    mut loss: impl FnMut(f32) -> Loss,
) {
    let (lp, lm) = (loss(step), loss(-step));
    let numeric = (lp.value - lm.value) / (2.0 * step as f64);
    let noise = 2.0 * f32::EPSILON as f64 * (lp.magnitude + lm.magnitude) / step as f64;
    let allowed = tol * analytic.abs().max(floor) + noise;
    assert!(
        (numeric - analytic).abs() <= allowed,
        "{what}: finite difference {numeric:e} vs analytic {analytic:e} (allowed {allowed:e})"
    );
}
