//! The prototypes' two special rules (docs/algorithm.md §1.4, §4.3): re-normalisation before every
//! forward pass, and no update at all during the first iterations.

use crate::{HeadOps, Real};

/// The `eps` of `F.normalize` used for the prototypes (and the embeddings).
pub const NORMALIZE_EPS: f64 = 1e-12;

/// Normalises every prototype (a row of the `K × D` matrix) to unit L2 norm, in place:
/// `w / max(‖w‖, 1e-12)`. Call it at the start of every iteration, before the forward pass.
pub fn normalize_prototypes<T: Real, O: HeadOps<T>>(
    ops: &mut O,
    prototypes: &mut O::Buf,
    count: usize,
    dim: usize,
) -> Result<(), O::Error> {
    ops.normalize_rows(prototypes, count, dim, T::of(NORMALIZE_EPS))
}

/// The prototype freeze: for the first `iterations` iterations the prototypes' gradient is
/// discarded, so they get no update, no weight decay and no momentum buffer (SwAV: 313 at
/// batch 4096, 5005 at batch 256, i.e. about one epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrototypeFreeze {
    /// The number of global iterations (counted from 0) during which prototypes are frozen.
    pub iterations: u64,
}

impl PrototypeFreeze {
    /// Whether the prototypes are frozen at global iteration `iteration`.
    pub fn is_frozen(&self, iteration: u64) -> bool {
        iteration < self.iterations
    }
}
