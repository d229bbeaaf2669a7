//! [`SliceOps`]: the reference implementation of [`HeadOps`](crate::HeadOps) on host memory.

use crate::{
    HostBufferOps, HostElementWiseOps, HostLogDomainOps, HostMatrixOps, HostReduceOps, HostSgdOps,
    Real,
};

/// [`HeadOps`](crate::HeadOps) on plain host vectors, single-threaded: every family's host
/// half with nothing overridden.
///
/// It is the reference every other backend is checked against, and what a library user
/// runs Sinkhorn or the loss with when their embeddings live in ordinary memory. Loops are
/// written so that the compiler vectorises them (`exp` is [`Real::fast_exp`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SliceOps;

impl<T: Real> HostBufferOps<T> for SliceOps {}
impl<T: Real> HostReduceOps<T> for SliceOps {}
impl<T: Real> HostElementWiseOps<T> for SliceOps {}
impl<T: Real> HostMatrixOps<T> for SliceOps {}
impl<T: Real> HostLogDomainOps<T> for SliceOps {}
impl<T: Real> HostSgdOps<T> for SliceOps {}
