//! The device operations the SwAV head algorithms are written against, in op families.
//!
//! Sinkhorn-Knopp, the swapped-prediction loss and its gradient, the queue, prototype
//! normalisation and the LARS/SGD update are expressed once, in this crate, in terms of
//! [`HeadOps`]: every family below together. A device backend implements each family (in
//! that family's own file) on its own buffers, and the same algorithm code runs on it
//! unchanged. A backend on host memory implements the `Host…Ops` half of each family
//! instead: its default methods are the reference arithmetic, so it writes only the
//! operations it does differently (in parallel, say); [`SliceOps`](crate::SliceOps)
//! overrides none.
//!
//! | family | what it covers |
//! |---|---|
//! | [`BufferOps`] | the buffer and error types; allocation, transfers, copies, fills |
//! | [`ReduceOps`] | whole-buffer reductions: extremes, sums, squares, non-finite counts, dots |
//! | [`ElementWiseOps`] | scaling, division by a device scalar, exponentials, axpy |
//! | [`MatrixOps`] | row and column sums and divisions, row normalisation, the score product, log-softmax |
//! | [`LogDomainOps`] | the primitives of the log-domain Sinkhorn fallback |
//! | [`SgdOps`] | one SGD-with-momentum step of one tensor |
//!
//! Conventions:
//! * a matrix is a buffer holding `rows × cols` values in row-major order, with its shape
//!   passed alongside;
//! * a "scalar" that stays on the device is a one-element buffer, so a GPU backend never has
//!   to synchronise with the host inside Sinkhorn;
//! * `out` buffers never alias inputs (the borrow checker enforces it);
//! * every operation returns `Err` only for a device failure; shape mistakes are programming
//!   errors and may panic.

mod buffer;
mod element_wise;
mod log_domain;
mod matrix;
mod reduce;
mod sgd;

pub use buffer::BufferOps;
pub use element_wise::ElementWiseOps;
pub use log_domain::LogDomainOps;
pub use matrix::MatrixOps;
pub use reduce::ReduceOps;
pub use sgd::SgdOps;

#[cfg(feature = "alloc")]
pub use buffer::HostBufferOps;
#[cfg(feature = "alloc")]
pub use element_wise::HostElementWiseOps;
#[cfg(feature = "alloc")]
pub use log_domain::HostLogDomainOps;
#[cfg(feature = "alloc")]
pub use matrix::HostMatrixOps;
#[cfg(feature = "alloc")]
pub use reduce::HostReduceOps;
#[cfg(feature = "alloc")]
pub use sgd::HostSgdOps;

use crate::Real;

/// Device operations over buffers of `T`, enough to run every algorithm in this crate:
/// every op family together. It is implemented for every type that implements all the
/// families, so a backend implements the families and never this trait. Generic code
/// bound by `O: HeadOps<T>` calls every family's methods directly; code holding a concrete
/// backend imports the families it calls.
pub trait HeadOps<T: Real>:
    BufferOps<T> + ReduceOps<T> + ElementWiseOps<T> + MatrixOps<T> + LogDomainOps<T> + SgdOps<T>
{
}

impl<T: Real, O> HeadOps<T> for O where
    O: BufferOps<T>
        + ReduceOps<T>
        + ElementWiseOps<T>
        + MatrixOps<T>
        + LogDomainOps<T>
        + SgdOps<T>
        + ?Sized
{
}
