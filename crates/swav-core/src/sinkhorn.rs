//! Sinkhorn-Knopp: equipartitioned soft assignments of samples to prototypes.
//!
//! This is the official SwAV `distributed_sinkhorn` (docs/algorithm.md §2.1), generic over the
//! device ([`HeadOps`]) and the transport ([`Collective`]):
//!
//! ```text
//! Q = exp(scores / ε)ᵀ                       K × N_loc (prototypes × samples)
//! Q /= all_reduce_sum(Σ Q)
//! repeat n times:
//!     Q /= all_reduce_sum(row sums of Q); Q /= K      prototypes: each row sums to 1/K
//!     Q /= (local column sums of Q);      Q /= N      samples: each column sums to 1/N
//! return (Q · N)ᵀ                            N = N_loc · world size; rows of the result sum to 1
//! ```
//!
//! Here the matrix is kept in the scores' own layout (samples × prototypes), so "rows of Q"
//! are the columns of the buffer; no transpose is ever materialised.
//!
//! **Stability.** [`Stabilization::Stable`] (the default) subtracts the global maximum of
//! `scores / ε` before the exponential. The first operation after it is a normalisation that
//! cancels any global factor, so the codes are *exactly* those of the plain algorithm
//! (docs/algorithm.md §2.2), but nothing overflows, whatever ε and however large the scores.
//! When the spread of `scores / ε` is so wide that some exponentials would fall below the
//! normal `f32` range (small ε, unnormalised inputs), the same iterations run in the log
//! domain instead, which represents them exactly; both paths compute the same mathematical
//! iterates. [`Stabilization::Plain`] is the official code as it is today (no guard against
//! overflow).
//!
//! **Non-finite scores.** The first normalisation sums over every sample, so a single NaN or
//! infinite score would reach every code. [`sinkhorn`] therefore refuses such scores with
//! [`SinkhornError::NonFinite`] (the first bad row and column on this rank) before computing
//! anything, and every rank of the collective refuses together
//! ([`SinkhornError::NonFiniteOnAnotherRank`] on the ranks whose own scores are finite).
//! The check reads the global maximum and minimum that [`Stabilization::Stable`] computes
//! anyway (a NaN-propagating [`ReduceOps::max_into`]/[`ReduceOps::min_into`] turns any bad
//! value into a non-finite extreme), so on one rank it costs nothing more than the stable
//! path already pays; see [`sinkhorn`] for the full cost.
//!
//! [`ReduceOps::max_into`]: crate::ReduceOps::max_into
//! [`ReduceOps::min_into`]: crate::ReduceOps::min_into

use crate::{Collective, HeadOps, Real, ScaledScores};

/// How [`sinkhorn`] guards its exponentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stabilization {
    /// `exp(s / ε)` as in the official code: overflows to `inf` (then NaN) once
    /// `s / ε > 88.7` in `f32`, e.g. ε < 0.0113 with cosine scores.
    Plain,
    /// Global-max subtraction, with an exact log-domain path for extreme spreads.
    #[default]
    Stable,
}

/// The hyper-parameters of [`sinkhorn`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SinkhornConfig<T> {
    /// ε, the entropic regularisation (SwAV: 0.05). Smaller is harder (closer to one-hot).
    pub epsilon: T,
    /// The number of row-then-column normalisation rounds (SwAV: 3).
    pub iterations: usize,
    /// How overflow is avoided.
    pub stabilization: Stabilization,
}

impl<T: Real> Default for SinkhornConfig<T> {
    fn default() -> Self {
        Self {
            epsilon: T::of(0.05),
            iterations: 3,
            stabilization: Stabilization::Stable,
        }
    }
}

/// The spread of `scores / ε` beyond which [`Stabilization::Stable`] works in the log domain:
/// `e^-80` is still a normal `f32` with room for the normalisation factors.
const LINEAR_DOMAIN_SPREAD: f64 = 80.0;

/// Which computation [`sinkhorn`] ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkhornPath {
    /// The official linear-domain iterations (plain, or global-max shifted).
    Linear,
    /// The log-domain iterations (only under [`Stabilization::Stable`]).
    LogDomain,
}

/// A failure of [`sinkhorn`]: the device's, the collective's, or scores that are not finite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkhornError<D, C> {
    /// The device failed.
    Device(D),
    /// An all-reduce failed.
    Collective(C),
    /// This rank's scores hold NaN or infinite values; no code was computed.
    NonFinite {
        /// The row (sample) of the first non-finite score, counted in the matrix passed
        /// to [`sinkhorn`].
        row: usize,
        /// Its column (prototype).
        column: usize,
        /// How many of this rank's scores are non-finite.
        count: usize,
    },
    /// Another rank's scores hold NaN or infinite values (this rank's are finite); no code
    /// was computed.
    NonFiniteOnAnotherRank,
    /// Under [`Stabilization::Stable`]: the scores are finite but some `score / ε`
    /// overflows the float type (e.g. `|score| > 1.7e37` with ε = 0.05 in `f32`), which no
    /// stabilisation can represent; no code was computed.
    ScaledScoresOverflow,
}

impl<D: core::fmt::Display, C: core::fmt::Display> core::fmt::Display for SinkhornError<D, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Device(e) => write!(f, "sinkhorn: device error: {e}"),
            Self::Collective(e) => write!(f, "sinkhorn: all-reduce failed: {e}"),
            Self::NonFinite { row, column, count } => write!(
                f,
                "sinkhorn: {count} score(s) are NaN or infinite, the first at row {row}, \
                 column {column}"
            ),
            Self::NonFiniteOnAnotherRank => {
                write!(f, "sinkhorn: another rank's scores are NaN or infinite")
            }
            Self::ScaledScoresOverflow => write!(
                f,
                "sinkhorn: the scores divided by epsilon overflow the float range \
                 (normalise the embeddings, or use a larger epsilon)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl<D, C> std::error::Error for SinkhornError<D, C>
where
    D: core::fmt::Debug + core::fmt::Display,
    C: core::fmt::Debug + core::fmt::Display,
{
}

/// Device buffers reused by every [`sinkhorn`] call on matrices of one shape.
#[derive(Debug)]
pub struct SinkhornWorkspace<B> {
    rows: usize,
    cols: usize,
    scalar: B,
    second_scalar: B,
    per_prototype: B,
    per_prototype_max: B,
    per_prototype_sum: B,
    per_sample: B,
}

impl<B> SinkhornWorkspace<B> {
    /// Allocates the buffers for `rows` samples (this rank's) and `cols` prototypes.
    pub fn new<T: Real, O: HeadOps<T, Buf = B>>(
        ops: &mut O,
        rows: usize,
        cols: usize,
    ) -> Result<Self, O::Error> {
        Ok(Self {
            rows,
            cols,
            scalar: ops.zeros(1)?,
            second_scalar: ops.zeros(1)?,
            per_prototype: ops.zeros(cols)?,
            per_prototype_max: ops.zeros(cols)?,
            per_prototype_sum: ops.zeros(cols)?,
            per_sample: ops.zeros(rows)?,
        })
    }

    /// The (samples, prototypes) shape this workspace serves.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

/// Computes the Sinkhorn-Knopp codes of `scores` (this rank's `rows` samples × `cols`
/// prototypes, row-major, the shape `workspace` was allocated for) into `codes` (same
/// shape). Each row of `codes` sums to 1; each prototype receives about `N / K` of the mass
/// summed over all ranks.
///
/// Every rank of `comm` must call this with the same shape and configuration. The
/// number of samples `N` is `rows × world size`, as in the official code (which relies on
/// `drop_last`). Scores are not modified; no gradient flows through the codes.
///
/// # Non-finite scores
///
/// A NaN or infinite score is refused with [`SinkhornError::NonFinite`] (the first bad row
/// and column in row-major order, and how many there are on this rank) and `codes` is left
/// untouched; the other ranks return [`SinkhornError::NonFiniteOnAnotherRank`], so no rank
/// is left waiting in an all-reduce. What the check costs:
///
/// * [`Stabilization::Stable`] on one rank: nothing beyond the stable path itself, which
///   already reduces the scores to their maximum and minimum and reads both back to the
///   host; the check is a test of those two numbers.
/// * With several ranks: one more read-back of the two local extremes before they are
///   all-reduced (a rank whose scores are bad replaces them by `+inf`, since an all-reduce
///   need not propagate NaN).
/// * [`Stabilization::Plain`]: the two reductions and the read-back, which the plain path
///   otherwise skips.
///
/// Only once a bad value is known to exist are the scores read back (in small blocks) to find
/// the first and count them.
///
/// Under [`Stabilization::Stable`], finite scores so large that `score / ε` overflows are
/// refused too ([`SinkhornError::ScaledScoresOverflow`]), from the same two extremes, so the
/// stable path never turns the scores it accepts into NaN codes.
///
/// # Example
///
/// Balanced soft clustering of six 2-D embeddings onto three prototypes, on plain slices:
///
/// ```
/// use swav_core::{sinkhorn, MatrixOps, SinkhornConfig, SinkhornWorkspace, SingleProcess, SliceOps};
///
/// let embeddings = [1.0f32, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9, -1.0, 0.0, -0.9, -0.1];
/// let prototypes = [1.0f32, 0.0, 0.0, 1.0, -1.0, 0.0];
/// let (n, k, d) = (6, 3, 2);
///
/// let mut ops = SliceOps;
/// let z = embeddings.to_vec();
/// let w = prototypes.to_vec();
/// let mut scores = vec![0.0f32; n * k];
/// ops.matmul_nt(&z, &w, n, k, d, &mut scores).unwrap();
///
/// let mut codes = vec![0.0f32; n * k];
/// let mut ws = SinkhornWorkspace::new(&mut ops, n, k).unwrap();
/// sinkhorn(&mut ops, &SingleProcess, &scores, &SinkhornConfig::default(), &mut ws, &mut codes)
///     .unwrap();
///
/// // Each sample's codes form a distribution; the first two samples go to prototype 0.
/// for row in codes.chunks(k) {
///     assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// }
/// assert!(codes[0] > 0.99 && codes[k] > 0.99);
/// ```
pub fn sinkhorn<T, O, C>(
    ops: &mut O,
    comm: &C,
    scores: &O::Buf,
    config: &SinkhornConfig<T>,
    workspace: &mut SinkhornWorkspace<O::Buf>,
    codes: &mut O::Buf,
) -> Result<SinkhornPath, SinkhornError<O::Error, C::Error>>
where
    T: Real,
    O: HeadOps<T>,
    C: Collective<O::Buf>,
{
    let (rows, cols) = workspace.shape();
    assert_eq!(ops.buf_len(scores), rows * cols, "sinkhorn: scores length");
    assert_eq!(ops.buf_len(codes), rows * cols, "sinkhorn: codes length");
    let dev = SinkhornError::Device;
    let col = SinkhornError::Collective;
    let eps = config.epsilon;
    let ws = workspace;

    // `ws.scalar` = max, `ws.second_scalar` = -min, over all ranks.
    let extremes = global_extremes(ops, comm, scores, ws)?;
    if !(extremes[0].is_finite() && extremes[1].is_finite()) {
        return Err(locate_non_finite(ops, scores, cols)?);
    }
    let shift = match config.stabilization {
        Stabilization::Plain => None,
        Stabilization::Stable => {
            if !(extremes[0] / eps).is_finite() || !(extremes[1] / eps).is_finite() {
                return Err(SinkhornError::ScaledScoresOverflow);
            }
            let spread = (extremes[0] + extremes[1]) / eps;
            if spread.to_f64_lossless() > LINEAR_DOMAIN_SPREAD {
                log_domain(ops, comm, scores, config, ws, codes)?;
                return Ok(SinkhornPath::LogDomain);
            }
            Some(&ws.scalar)
        }
    };

    let n_global = T::of_usize(rows * comm.world_size());
    let k = T::of_usize(cols);
    ops.exp_div(scores, eps, shift, codes).map_err(dev)?;
    ops.sum_into(codes, &mut ws.second_scalar).map_err(dev)?;
    comm.all_reduce_sum(&mut ws.second_scalar).map_err(col)?;
    ops.div_by_scalar(codes, &ws.second_scalar).map_err(dev)?;
    for _ in 0..config.iterations {
        ops.col_sums(codes, rows, cols, &mut ws.per_prototype)
            .map_err(dev)?;
        comm.all_reduce_sum(&mut ws.per_prototype).map_err(col)?;
        ops.div_cols(codes, rows, cols, &ws.per_prototype, k)
            .map_err(dev)?;
        ops.row_sums(codes, rows, cols, &mut ws.per_sample)
            .map_err(dev)?;
        ops.div_rows(codes, rows, cols, &ws.per_sample, n_global)
            .map_err(dev)?;
    }
    ops.scale(codes, n_global).map_err(dev)?;
    Ok(SinkhornPath::Linear)
}

/// Reduces `scores` to `[max, -min]` over all ranks, left in `ws.scalar` and
/// `ws.second_scalar` and returned to the host. Both are finite exactly when every rank's
/// scores are: the device reductions propagate NaN, and a rank that sees a non-finite local
/// extreme contributes `+inf` to the all-reduce.
fn global_extremes<T, O, C>(
    ops: &mut O,
    comm: &C,
    scores: &O::Buf,
    ws: &mut SinkhornWorkspace<O::Buf>,
) -> Result<[T; 2], SinkhornError<O::Error, C::Error>>
where
    T: Real,
    O: HeadOps<T>,
    C: Collective<O::Buf>,
{
    let dev = SinkhornError::Device;
    let col = SinkhornError::Collective;
    ops.max_into(scores, &mut ws.scalar).map_err(dev)?;
    ops.min_into(scores, &mut ws.second_scalar).map_err(dev)?;
    ops.scale(&mut ws.second_scalar, -T::one()).map_err(dev)?;
    if comm.world_size() > 1 {
        let local = read_scalars(ops, &ws.scalar, &ws.second_scalar).map_err(dev)?;
        if !(local[0].is_finite() && local[1].is_finite()) {
            ops.fill(&mut ws.scalar, T::infinity()).map_err(dev)?;
            ops.fill(&mut ws.second_scalar, T::infinity())
                .map_err(dev)?;
        }
        comm.all_reduce_max(&mut ws.scalar).map_err(col)?;
        comm.all_reduce_max(&mut ws.second_scalar).map_err(col)?;
    }
    read_scalars(ops, &ws.scalar, &ws.second_scalar).map_err(dev)
}

/// The first elements of two device buffers, on the host.
fn read_scalars<T: Real, O: HeadOps<T>>(
    ops: &mut O,
    first: &O::Buf,
    second: &O::Buf,
) -> Result<[T; 2], O::Error> {
    let mut values = [T::zero(); 2];
    ops.download(first, 0, &mut values[..1])?;
    ops.download(second, 0, &mut values[1..])?;
    Ok(values)
}

/// The error for scores some rank found non-finite: where this rank's first bad value is and
/// how many there are, or that the bad values are another rank's. Reads the scores back in
/// blocks of [`SCAN_BLOCK`] (no heap needed); runs only once a bad value is known to exist.
fn locate_non_finite<T, O, C>(
    ops: &mut O,
    scores: &O::Buf,
    cols: usize,
) -> Result<SinkhornError<O::Error, C>, SinkhornError<O::Error, C>>
where
    T: Real,
    O: HeadOps<T>,
{
    let len = ops.buf_len(scores);
    let mut block = [T::zero(); SCAN_BLOCK];
    let (mut first, mut count) = (None, 0);
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(SCAN_BLOCK);
        ops.download(scores, offset, &mut block[..n])
            .map_err(SinkhornError::Device)?;
        for (i, v) in block[..n].iter().enumerate() {
            if !v.is_finite() {
                first = first.or(Some(offset + i));
                count += 1;
            }
        }
        offset += n;
    }
    Ok(match first {
        Some(at) => SinkhornError::NonFinite {
            row: at / cols,
            column: at % cols,
            count,
        },
        None => SinkhornError::NonFiniteOnAnotherRank,
    })
}

/// The host block [`locate_non_finite`] reads the scores through.
const SCAN_BLOCK: usize = 256;

/// The same iterations as the linear path, with `Q = exp(s/ε + a_k + b_n)` represented by
/// the log-scalings `a` (per prototype) and `b` (per sample):
/// `a_k = -log Σ_n exp(s/ε + b_n) - log K` (all-reduced), `b_n = -log Σ_k exp(s/ε + a_k) - log N`.
fn log_domain<T, O, C>(
    ops: &mut O,
    comm: &C,
    scores: &O::Buf,
    config: &SinkhornConfig<T>,
    ws: &mut SinkhornWorkspace<O::Buf>,
    codes: &mut O::Buf,
) -> Result<(), SinkhornError<O::Error, C::Error>>
where
    T: Real,
    O: HeadOps<T>,
    C: Collective<O::Buf>,
{
    let dev = SinkhornError::Device;
    let col = SinkhornError::Collective;
    let (rows, cols) = ws.shape();
    let x = ScaledScores {
        scores,
        rows,
        cols,
        eps: config.epsilon,
    };
    let ln_n = T::of_usize(rows * comm.world_size()).ln();
    let ln_k = T::of_usize(cols).ln();
    // b (per sample) lives in `per_sample`, a (per prototype) in `per_prototype`.
    ops.fill(&mut ws.per_sample, T::zero()).map_err(dev)?;
    ops.fill(&mut ws.per_prototype, T::zero()).map_err(dev)?;
    for _ in 0..config.iterations {
        ops.col_max_biased(x, &ws.per_sample, &mut ws.per_prototype_max)
            .map_err(dev)?;
        comm.all_reduce_max(&mut ws.per_prototype_max)
            .map_err(col)?;
        ops.col_sum_exp_biased(
            x,
            &ws.per_sample,
            &ws.per_prototype_max,
            &mut ws.per_prototype_sum,
        )
        .map_err(dev)?;
        comm.all_reduce_sum(&mut ws.per_prototype_sum)
            .map_err(col)?;
        ops.neg_log_sum_shifted(
            &ws.per_prototype_max,
            &ws.per_prototype_sum,
            ln_k,
            &mut ws.per_prototype,
        )
        .map_err(dev)?;
        ops.row_logsumexp_biased(x, &ws.per_prototype, &mut ws.per_sample)
            .map_err(dev)?;
        ops.negate_minus(&mut ws.per_sample, ln_n).map_err(dev)?;
    }
    if config.iterations == 0 {
        // No normalisation round: the codes are the globally normalised exponentials, as in
        // the linear path; express that as a = -(global log-sum-exp), b = 0.
        ops.col_max_biased(x, &ws.per_sample, &mut ws.per_prototype_max)
            .map_err(dev)?;
        comm.all_reduce_max(&mut ws.per_prototype_max)
            .map_err(col)?;
        ops.max_into(&ws.per_prototype_max, &mut ws.scalar)
            .map_err(dev)?;
        let mut m = [T::zero()];
        ops.download(&ws.scalar, 0, &mut m).map_err(dev)?;
        ops.fill(&mut ws.per_prototype_max, m[0]).map_err(dev)?;
        ops.col_sum_exp_biased(
            x,
            &ws.per_sample,
            &ws.per_prototype_max,
            &mut ws.per_prototype,
        )
        .map_err(dev)?;
        comm.all_reduce_sum(&mut ws.per_prototype).map_err(col)?;
        ops.sum_into(&ws.per_prototype, &mut ws.second_scalar)
            .map_err(dev)?;
        let mut s = [T::zero()];
        ops.download(&ws.second_scalar, 0, &mut s).map_err(dev)?;
        ops.fill(&mut ws.per_prototype, -(m[0] + s[0].ln()))
            .map_err(dev)?;
    }
    ops.exp_biased(x, &ws.per_sample, &ws.per_prototype, codes)
        .map_err(dev)?;
    if config.iterations == 0 {
        ops.scale(codes, T::of_usize(rows * comm.world_size()))
            .map_err(dev)?;
        return Ok(());
    }
    // Mathematically every row now sums to 1/N and the linear path's `× N` would finish.
    // Dividing by the row sums instead is the same in exact arithmetic, and keeps the rows
    // summing to 1 when huge `s / ε` values cost the exponents their absolute precision.
    ops.row_sums(codes, rows, cols, &mut ws.per_sample)
        .map_err(dev)?;
    ops.div_rows(codes, rows, cols, &ws.per_sample, T::one())
        .map_err(dev)?;
    Ok(())
}
