//! [`GradReady`]: the backward-pass hook that tells a data-parallel trainer when a
//! parameter's gradient is final, so it can start reducing it over ranks while the rest of
//! the pass runs.

use alloc::vec::Vec;

use super::tensors::{Entry, Tensors};
use crate::Backend;

/// Told during [`SwavModel::backward_notifying`](crate::SwavModel::backward_notifying)
/// when gradients become final.
///
/// Backward visits the layers from the prototypes back to the stem, so notices arrive
/// roughly in reverse [`SwavModel::params`](crate::SwavModel::params) order: whole layers at
/// a time (a residual block, the projection head, the prototypes), each parameter once per
/// pass. With several resolution groups a trunk parameter is final only after the last
/// group's pass, and is announced then.
pub trait GradReady<B: Backend> {
    /// Parameter `index` (its position in `params()`) holds its final gradient `grad` for
    /// this pass. Work may be queued on `b` (a copy of `grad`); `grad` is not written again
    /// until the next `zero_grad`.
    fn grad_ready(&mut self, b: &mut B, index: usize, grad: &B::Buf);
}

/// Announces every parameter of `part` to `ready`, when there is a listener.
pub(crate) fn announce<B: Backend>(
    b: &mut B,
    part: &impl Tensors<B::Buf>,
    ready: &mut Option<&mut dyn GradReady<B>>,
) {
    let Some(ready) = ready.as_mut() else {
        return;
    };
    let mut entries = Vec::new();
    part.entries(&mut entries);
    for entry in entries {
        if let Entry::Param(p) = entry {
            ready.grad_ready(b, p.index, &p.grad);
        }
    }
}
