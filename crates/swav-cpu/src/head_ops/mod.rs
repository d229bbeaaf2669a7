//! swav-core's head operations for [`CpuBackend`](crate::CpuBackend): each op family's host
//! half (`swav_core::HostReduceOps`, …), one family per file, overriding only what differs
//! from swav-core's reference: sgemm for the score product, and row- or element-parallel
//! versions of the operations that touch every score (with the reference's per-element
//! arithmetic, so their results are bit-identical to it). Every other operation is the
//! reference itself, the trait's default method.

mod buffer;
mod element_wise;
mod log_domain;
mod matrix;
mod reduce;
mod sgd;

pub(crate) use reduce::chunk_sum_squares;

/// Elements per task of the element-wise operations (and of the optimiser's passes).
pub(crate) const CHUNK: usize = 1 << 14;

/// Rows per task of the row-wise operations: at least one, about [`CHUNK`] elements.
fn rows_per_task(cols: usize) -> usize {
    (CHUNK / cols.max(1)).max(1)
}
