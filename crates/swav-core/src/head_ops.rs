//! The device operations the SwAV head algorithms are written against.
//!
//! Sinkhorn-Knopp, the swapped-prediction loss and its gradient, the queue, prototype
//! normalisation and the LARS/SGD update are expressed once, in this crate, in terms of the
//! [`HeadOps`] trait. A backend (the plain-slice [`SliceOps`](crate::SliceOps), a CPU or a
//! CUDA backend) implements these operations on its own buffers, and the same algorithm code
//! runs on it unchanged.
//!
//! Conventions:
//! * a matrix is a buffer holding `rows × cols` values in row-major order, with its shape
//!   passed alongside;
//! * a "scalar" that stays on the device is a one-element buffer, so a GPU backend never has
//!   to synchronise with the host inside Sinkhorn;
//! * `out` buffers never alias inputs (the borrow checker enforces it);
//! * every operation returns `Err` only for a device failure; shape mistakes are programming
//!   errors and may panic.

use crate::{BufAt, Real, ScaledScores, SgdStep};

/// Device operations over buffers of `T`, enough to run every algorithm in this crate.
pub trait HeadOps<T: Real> {
    /// A buffer of `T` owned by the device. Matrices are row-major.
    type Buf;
    /// A device failure (out of memory, a failed launch, a lost device).
    type Error: core::fmt::Debug + core::fmt::Display;

    // ----- memory -----

    /// Allocates a buffer of `len` zeros.
    fn zeros(&mut self, len: usize) -> Result<Self::Buf, Self::Error>;

    /// The number of elements in `buf`.
    fn buf_len(&self, buf: &Self::Buf) -> usize;

    /// Copies host values into `dst[offset..offset + src.len()]`.
    fn upload(&mut self, src: &[T], dst: &mut Self::Buf, offset: usize) -> Result<(), Self::Error>;

    /// Copies `src[offset..offset + dst.len()]` to the host.
    fn download(
        &mut self,
        src: &Self::Buf,
        offset: usize,
        dst: &mut [T],
    ) -> Result<(), Self::Error>;

    /// Copies `len` elements from `src[src_offset..]` to `dst[dst_offset..]`.
    fn copy(
        &mut self,
        src: &Self::Buf,
        src_offset: usize,
        dst: &mut Self::Buf,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Self::Error>;

    /// Moves `len` elements inside one buffer from `src_offset` to `dst_offset`; the ranges
    /// may overlap (memmove semantics).
    fn copy_within(
        &mut self,
        buf: &mut Self::Buf,
        src_offset: usize,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Self::Error>;

    /// Sets every element of `buf` to `value`.
    fn fill(&mut self, buf: &mut Self::Buf, value: T) -> Result<(), Self::Error>;

    // ----- reductions -----

    /// `out[0] = max(x)`.
    fn max_into(&mut self, x: &Self::Buf, out: &mut Self::Buf) -> Result<(), Self::Error>;

    /// `out[0] = min(x)`.
    fn min_into(&mut self, x: &Self::Buf, out: &mut Self::Buf) -> Result<(), Self::Error>;

    /// `out[0] = Σ x`.
    fn sum_into(&mut self, x: &Self::Buf, out: &mut Self::Buf) -> Result<(), Self::Error>;

    /// `Σ x²`, returned to the host (parameter and gradient norms for LARS).
    fn sum_squares(&mut self, x: &Self::Buf) -> Result<T, Self::Error>;

    /// The number of NaN or infinite elements, returned to the host.
    fn count_non_finite(&mut self, x: &Self::Buf) -> Result<usize, Self::Error>;

    // ----- element-wise -----

    /// `x *= s`.
    fn scale(&mut self, x: &mut Self::Buf, s: T) -> Result<(), Self::Error>;

    /// `x /= s[0]`, with `s` a one-element buffer.
    fn div_by_scalar(&mut self, x: &mut Self::Buf, s: &Self::Buf) -> Result<(), Self::Error>;

    /// `out = exp(x / eps - shift[0] / eps)`, or `exp(x / eps)` when `shift` is `None`.
    fn exp_div(
        &mut self,
        x: &Self::Buf,
        eps: T,
        shift: Option<&Self::Buf>,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `y[y_offset..][..len] += alpha · x[x_offset..][..len]`.
    fn axpy(
        &mut self,
        alpha: T,
        x: &Self::Buf,
        x_offset: usize,
        y: &mut Self::Buf,
        y_offset: usize,
        len: usize,
    ) -> Result<(), Self::Error>;

    /// `acc[0] += alpha · Σ_i a[a.offset + i] · b[b.offset + i]` for `i < len`.
    fn dot_accumulate(
        &mut self,
        a: BufAt<'_, Self::Buf>,
        b: BufAt<'_, Self::Buf>,
        len: usize,
        alpha: T,
        acc: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    // ----- matrices -----

    /// `out[r] = Σ_c m[r, c]`.
    fn row_sums(
        &mut self,
        m: &Self::Buf,
        rows: usize,
        cols: usize,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[c] = Σ_r m[r, c]`.
    fn col_sums(
        &mut self,
        m: &Self::Buf,
        rows: usize,
        cols: usize,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `m[r, c] = m[r, c] / d[r] / k`: two divisions, in that order, as the official code.
    fn div_rows(
        &mut self,
        m: &mut Self::Buf,
        rows: usize,
        cols: usize,
        d: &Self::Buf,
        k: T,
    ) -> Result<(), Self::Error>;

    /// `m[r, c] = m[r, c] / d[c] / k`: two divisions, in that order, as the official code.
    fn div_cols(
        &mut self,
        m: &mut Self::Buf,
        rows: usize,
        cols: usize,
        d: &Self::Buf,
        k: T,
    ) -> Result<(), Self::Error>;

    /// Row-wise L2 normalisation in place: `m[r, :] /= max(‖m[r, :]‖₂, eps)`.
    fn normalize_rows(
        &mut self,
        m: &mut Self::Buf,
        rows: usize,
        cols: usize,
        eps: T,
    ) -> Result<(), Self::Error>;

    /// `out[..m·n] (m × n) = a (m × k) · b (n × k)ᵀ`: embeddings times prototypes. Only the
    /// first `m·n` elements of `out` are written, so a larger buffer can receive the product
    /// at its top.
    fn matmul_nt(
        &mut self,
        a: &Self::Buf,
        b: &Self::Buf,
        m: usize,
        n: usize,
        k: usize,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[r, :] = log_softmax(x[r, :] / tau)`, computed stably (max-shifted log-sum-exp).
    fn log_softmax_rows(
        &mut self,
        x: &Self::Buf,
        rows: usize,
        cols: usize,
        tau: T,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[r, c] += exp(logp[r, c]) · w[r]`: adds row-weighted probabilities.
    fn add_exp_weighted_rows(
        &mut self,
        logp: &Self::Buf,
        rows: usize,
        cols: usize,
        w: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    // ----- log-domain Sinkhorn (the exact fallback when the linear domain underflows) -----
    //
    // `x` is the scaled score matrix: `x[r, c]` below stands for `x.scores[r, c] / x.eps`,
    // computed as that division.

    /// `out[c] = max_r (x[r, c] + b[r])`.
    fn col_max_biased(
        &mut self,
        x: ScaledScores<'_, Self::Buf, T>,
        b: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[c] = Σ_r exp(x[r, c] + b[r] - m[c])`.
    fn col_sum_exp_biased(
        &mut self,
        x: ScaledScores<'_, Self::Buf, T>,
        b: &Self::Buf,
        m: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[r] = log Σ_c exp(x[r, c] + a[c])`, computed stably.
    fn row_logsumexp_biased(
        &mut self,
        x: ScaledScores<'_, Self::Buf, T>,
        a: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `out[r, c] = exp(x[r, c] + b[r] + a[c])`.
    fn exp_biased(
        &mut self,
        x: ScaledScores<'_, Self::Buf, T>,
        b: &Self::Buf,
        a: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `v[i] = -(m[i] + ln s[i]) - ln_k`: turns a max-shifted column sum of exponentials into
    /// a log-domain scaling (`s` and `m` from [`col_sum_exp_biased`](Self::col_sum_exp_biased)
    /// and [`col_max_biased`](Self::col_max_biased)).
    fn neg_log_sum_shifted(
        &mut self,
        m: &Self::Buf,
        s: &Self::Buf,
        ln_k: T,
        v: &mut Self::Buf,
    ) -> Result<(), Self::Error>;

    /// `x[i] = -x[i] - c`.
    fn negate_minus(&mut self, x: &mut Self::Buf, c: T) -> Result<(), Self::Error>;

    // ----- optimiser -----

    /// One SGD-with-momentum update with a LARS-scaled, weight-decayed gradient:
    /// `d = grad_scale · (g + weight_decay · p)`; `buf = d` on the `first` step, else
    /// `buf = momentum · buf + d`; `p -= lr · buf` (all from `step`; [`SgdStep::update`] is
    /// this for one element).
    fn sgd_momentum_step(
        &mut self,
        p: &mut Self::Buf,
        g: &Self::Buf,
        buf: &mut Self::Buf,
        step: SgdStep<T>,
    ) -> Result<(), Self::Error>;
}
