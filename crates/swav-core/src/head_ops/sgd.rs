//! [`SgdOps`]: the optimiser's update of one tensor.

use super::BufferOps;
use crate::{Real, SgdStep};

#[cfg(feature = "alloc")]
use {super::HostBufferOps, alloc::vec::Vec, core::convert::Infallible};

/// One SGD-with-momentum step of one parameter tensor.
pub trait SgdOps<T: Real>: BufferOps<T> {
    /// One SGD-with-momentum update with a LARS-scaled, weight-decayed gradient:
    /// `d = grad_scale · (g + weight_decay · p)`; `buf = d` on the `first` step, else
    /// `buf = momentum · buf + d`; `p -= lr · buf` (all from `step`; [`SgdStep::update`] is
    /// this for one element).
    fn sgd_momentum_step(
        &mut self,
        p: &mut Self::Buf,
        g: &Self::Buf,
        buf: &mut Self::Buf,
        step: SgdStep<T>,
    ) -> Result<(), Self::Error>;
}

/// [`SgdOps`] on host memory. The method is the reference; a host backend may override it.
#[cfg(feature = "alloc")]
pub trait HostSgdOps<T: Real>: HostBufferOps<T> {
    /// [`SgdOps::sgd_momentum_step`] on host memory.
    fn sgd_momentum_step(&mut self, p: &mut [T], g: &[T], buf: &mut [T], step: SgdStep<T>) {
        for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
            step.update(p, g, b);
        }
    }
}

#[cfg(feature = "alloc")]
impl<T: Real, H: HostSgdOps<T>> SgdOps<T> for H {
    fn sgd_momentum_step(
        &mut self,
        p: &mut Vec<T>,
        g: &Vec<T>,
        buf: &mut Vec<T>,
        step: SgdStep<T>,
    ) -> Result<(), Infallible> {
        HostSgdOps::sgd_momentum_step(self, p, g, buf, step);
        Ok(())
    }
}
