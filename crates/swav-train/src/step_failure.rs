//! Why a training step could not complete.

/// A step that cannot complete.
#[derive(Debug, thiserror::Error)]
pub enum StepFailure {
    /// The backend failed.
    #[error("device error: {0}")]
    Device(String),
    /// A collective operation failed (a peer died or timed out).
    #[error("all-reduce failed: {0}")]
    Collective(String),
    /// The loss is NaN or infinite; no parameter was updated.
    #[error("the loss became {loss} at iteration {iteration}; no update was applied")]
    NonFiniteLoss {
        /// The global iteration.
        iteration: u64,
        /// The value.
        loss: f64,
    },
    /// The scores handed to Sinkhorn hold NaN or infinite values; no update was applied.
    #[error(
        "the scores became NaN or infinite at iteration {iteration} ({count} on this rank, \
         the first at Sinkhorn row {row}, prototype {column}); no update was applied"
    )]
    NonFiniteScores {
        /// The global iteration.
        iteration: u64,
        /// The first bad value's row in the Sinkhorn input ([`swav_core::assign_codes`]).
        row: usize,
        /// Its prototype.
        column: usize,
        /// How many scores on this rank are non-finite.
        count: usize,
    },
    /// Another rank's scores hold NaN or infinite values; no update was applied.
    #[error(
        "another rank's scores became NaN or infinite at iteration {iteration}; \
         no update was applied"
    )]
    NonFiniteScoresOnAnotherRank {
        /// The global iteration.
        iteration: u64,
    },
    /// The scores divided by ε overflow the float range; no update was applied.
    #[error(
        "the scores divided by epsilon overflow at iteration {iteration}; no update was applied"
    )]
    ScaledScoresOverflow {
        /// The global iteration.
        iteration: u64,
    },
}
