//! The swapped-prediction loss (docs/algorithm.md §3) and its exact gradient.
//!
//! For every assignment crop `a` (default crops 0 and 1) with codes `q_a`, and every other
//! crop `v ≠ a`, the cross-entropy between `q_a` and `softmax(s_v / τ)`, summed over the `K`
//! prototypes and averaged over the batch; then averaged over the `V - 1` predicted crops and
//! the `|A|` assignment crops:
//!
//! ```text
//! L = 1/|A| Σ_a 1/(V-1) Σ_{v≠a} -1/bs Σ_n Σ_k q_a[n,k] · log_softmax(s_v[n,:] / τ)[k]
//! ```
//!
//! Its gradient with respect to the scores of crop `v`, sample `n`, prototype `j`:
//!
//! ```text
//! ∂L/∂s_v[n,j] = 1/(τ·bs·(V-1)·|A|) · Σ_{a≠v} ( softmax(s_v[n,:]/τ)[j] · Σ_k q_a[n,k] − q_a[n,j] )
//! ```
//!
//! Both are computed from one stable `log_softmax` (max-shifted log-sum-exp). The codes are
//! constants (no gradient flows through Sinkhorn).

use crate::{BufAt, HeadOps, Real};

/// The layout of a multi-crop batch and the loss hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwappedPrediction<'a, T> {
    /// Images per crop in this rank's batch (`bs`).
    pub batch: usize,
    /// Total crops per image (`V`, 8 for 2×224 + 6×96). Score rows are crop-major: row
    /// `v·bs + n` is crop `v` of image `n`.
    pub crops: usize,
    /// The number of prototypes (`K`).
    pub prototypes: usize,
    /// The crops whose codes serve as targets (`A`, SwAV: `[0, 1]`), in the order of the codes.
    pub crops_for_assign: &'a [usize],
    /// The softmax temperature τ (SwAV: 0.1).
    pub temperature: T,
}

impl<T: Real> SwappedPrediction<'_, T> {
    /// The number of rows of the score matrix: `crops × batch`.
    pub fn rows(&self) -> usize {
        self.crops * self.batch
    }

    /// Checks the layout; the loss functions panic on an invalid one.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.crops < 2 {
            return Err("the swapped-prediction loss needs at least two crops");
        }
        if self.crops_for_assign.is_empty() {
            return Err("crops_for_assign is empty");
        }
        if self.crops_for_assign.iter().any(|&a| a >= self.crops) {
            return Err("an assignment crop index is not below the number of crops");
        }
        if self.batch == 0 || self.prototypes == 0 {
            return Err("batch and prototypes must be positive");
        }
        if self.temperature.partial_cmp(&T::zero()) != Some(core::cmp::Ordering::Greater) {
            return Err("the temperature must be positive");
        }
        Ok(())
    }

    /// The weight of one (assignment crop, predicted crop) cross-entropy sum over the batch:
    /// `1 / (bs · (V - 1) · |A|)`.
    fn term_weight(&self) -> T {
        T::one()
            / (T::of_usize(self.batch)
                * T::of_usize(self.crops - 1)
                * T::of_usize(self.crops_for_assign.len()))
    }
}

/// Device buffers reused by every loss evaluation of one batch layout.
#[derive(Debug)]
pub struct LossWorkspace<B> {
    log_probs: B,
    row_weights: B,
    code_sums: B,
    accumulator: B,
}

impl<B> LossWorkspace<B> {
    /// Allocates the buffers for `layout`.
    pub fn new<T: Real, O: HeadOps<T, Buf = B>>(
        ops: &mut O,
        layout: &SwappedPrediction<'_, T>,
    ) -> Result<Self, O::Error> {
        Ok(Self {
            log_probs: ops.zeros(layout.rows() * layout.prototypes)?,
            row_weights: ops.zeros(layout.rows())?,
            code_sums: ops.zeros(layout.batch)?,
            accumulator: ops.zeros(1)?,
        })
    }
}

/// The loss, and (when `grad` is given) its gradient with respect to all `crops × batch`
/// rows of `scores`, written into `grad` (same shape as `scores`).
///
/// `scores` holds the (non-detached) prototype scores of every crop, crop-major;
/// `codes[i]` the `batch × prototypes` codes of crop `layout.crops_for_assign[i]`.
///
/// # Panics
/// If `layout` is invalid (see [`SwappedPrediction::validate`]) or a buffer has the wrong size.
pub fn swapped_prediction_loss<T, O>(
    ops: &mut O,
    layout: &SwappedPrediction<'_, T>,
    scores: &O::Buf,
    codes: &[O::Buf],
    workspace: &mut LossWorkspace<O::Buf>,
    grad: Option<&mut O::Buf>,
) -> Result<T, O::Error>
where
    T: Real,
    O: HeadOps<T>,
{
    if let Err(e) = layout.validate() {
        panic!("swapped_prediction_loss: {e}");
    }
    let (bs, k, rows) = (layout.batch, layout.prototypes, layout.rows());
    assert_eq!(ops.buf_len(scores), rows * k, "scores size");
    assert_eq!(
        codes.len(),
        layout.crops_for_assign.len(),
        "one code matrix per assignment crop"
    );
    for q in codes {
        assert_eq!(ops.buf_len(q), bs * k, "codes size");
    }
    let ws = workspace;
    let block = bs * k;
    let weight = layout.term_weight();

    ops.log_softmax_rows(scores, rows, k, layout.temperature, &mut ws.log_probs)?;
    ops.fill(&mut ws.accumulator, T::zero())?;
    for (q, &a) in codes.iter().zip(layout.crops_for_assign) {
        for v in (0..layout.crops).filter(|&v| v != a) {
            let log_probs = BufAt {
                buf: &ws.log_probs,
                offset: v * block,
            };
            let code = BufAt { buf: q, offset: 0 };
            ops.dot_accumulate(code, log_probs, block, -weight, &mut ws.accumulator)?;
        }
    }
    let mut loss = [T::zero()];
    ops.download(&ws.accumulator, 0, &mut loss)?;

    if let Some(grad) = grad {
        assert_eq!(ops.buf_len(grad), rows * k, "gradient size");
        let g = weight / layout.temperature;
        ops.fill(grad, T::zero())?;
        ops.fill(&mut ws.row_weights, T::zero())?;
        for (q, &a) in codes.iter().zip(layout.crops_for_assign) {
            ops.row_sums(q, bs, k, &mut ws.code_sums)?;
            for v in (0..layout.crops).filter(|&v| v != a) {
                ops.axpy(-g, q, 0, grad, v * block, block)?;
                ops.axpy(g, &ws.code_sums, 0, &mut ws.row_weights, v * bs, bs)?;
            }
        }
        ops.add_exp_weighted_rows(&ws.log_probs, rows, k, &ws.row_weights, grad)?;
    }
    Ok(loss[0])
}
