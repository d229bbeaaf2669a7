//! The small argument bundles of [`HeadOps`](crate::HeadOps): a position in a buffer, the
//! scaled score matrix of the log-domain Sinkhorn operations, and one SGD update's
//! hyper-parameters.

use crate::{LarsScaling, Real};

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// The elements of `buf` from `offset` on: one operand of a strided operation.
#[derive(Debug)]
pub struct BufAt<'a, B: ?Sized> {
    /// The buffer.
    pub buf: &'a B,
    /// The index of the first element used.
    pub offset: usize,
}

impl<B: ?Sized> Clone for BufAt<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: ?Sized> Copy for BufAt<'_, B> {}

#[cfg(feature = "alloc")]
impl<'a, T> BufAt<'a, Vec<T>> {
    /// The same position in the vector's slice (for the host halves of the op families).
    pub(crate) fn into_slice(self) -> BufAt<'a, [T]> {
        BufAt {
            buf: self.buf,
            offset: self.offset,
        }
    }
}

/// `scores / eps`, the exponent of the Sinkhorn kernel: a row-major `rows × cols` score
/// matrix (samples × prototypes) and the ε that divides it, as the log-domain operations
/// read it.
#[derive(Debug)]
pub struct ScaledScores<'a, B: ?Sized, T> {
    /// The `rows × cols` scores.
    pub scores: &'a B,
    /// Samples (rows of `scores`).
    pub rows: usize,
    /// Prototypes (columns of `scores`).
    pub cols: usize,
    /// ε, the divisor of every score.
    pub eps: T,
}

impl<B: ?Sized, T: Copy> Clone for ScaledScores<'_, B, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: ?Sized, T: Copy> Copy for ScaledScores<'_, B, T> {}

#[cfg(feature = "alloc")]
impl<'a, T> ScaledScores<'a, Vec<T>, T> {
    /// The same matrix as a slice (for the host halves of the op families).
    pub(crate) fn into_slice(self) -> ScaledScores<'a, [T], T> {
        ScaledScores {
            scores: self.scores,
            rows: self.rows,
            cols: self.cols,
            eps: self.eps,
        }
    }
}

/// One SGD-with-momentum update of a tensor: its LARS gradient scaling, the learning rate,
/// the momentum, and whether this is the step that creates the momentum buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdStep<T> {
    /// The factor and weight decay applied to the gradient: `d = grad_scale · (g + weight_decay · p)`.
    pub scaling: LarsScaling<T>,
    /// The learning rate.
    pub lr: T,
    /// The momentum factor.
    pub momentum: T,
    /// The buffer's first step: it is set to `d` instead of `momentum · buf + d`.
    pub first: bool,
}

impl<T: Real> SgdStep<T> {
    /// The update of one element: parameter `p` with gradient `g` and momentum `buf`, in the
    /// order every host backend evaluates it.
    #[inline(always)]
    pub fn update(&self, p: &mut T, g: T, buf: &mut T) {
        let d = (g + self.scaling.weight_decay * *p) * self.scaling.grad_scale;
        *buf = if self.first {
            d
        } else {
            self.momentum * *buf + d
        };
        *p = *p - self.lr * *buf;
    }
}
