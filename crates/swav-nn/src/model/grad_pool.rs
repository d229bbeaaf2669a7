//! The four gradient buffers the backward pass through the trunk rotates through.

use crate::Backend;

/// Gradient scratch, each buffer as long as the largest activation of the pass.
#[derive(Debug)]
pub(crate) struct GradPool<Buf> {
    /// The gradient flowing backward: at a block's output before it, at its input after.
    pub(crate) grad: Buf,
    /// The gradient at a convolution's output (batch-norm input).
    pub(crate) pre: Buf,
    /// The gradient between the units of a block.
    pub(crate) mid: Buf,
    /// The gradient at a block's input while it is being assembled.
    pub(crate) next: Buf,
}

impl<Buf> GradPool<Buf> {
    /// Four buffers of `len` elements.
    pub(crate) fn new<B: Backend<Buf = Buf>>(b: &mut B, len: usize) -> Result<Self, B::Error> {
        Ok(Self {
            grad: b.alloc_activation(len)?,
            pre: b.alloc_activation(len)?,
            mid: b.alloc_activation(len)?,
            next: b.alloc_activation(len)?,
        })
    }
}
