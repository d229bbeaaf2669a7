//! LARC (layer-wise adaptive rate control) around SGD with momentum, exactly as apex's
//! `LARC(SGD, trust_coefficient=0.001, clip=False)` in the official code (docs/algorithm.md §4.1).
//!
//! Per parameter tensor `p` with gradient `g` (whole-tensor Frobenius norms):
//!
//! ```text
//! if ‖p‖ ≠ 0 and ‖g‖ ≠ 0:
//!     λ = trust · ‖p‖ / (‖g‖ + wd·‖p‖ + eps)          (clip: λ = min(λ / lr, 1))
//!     g = λ · (g + wd·p)
//! else:
//!     g unchanged, and no weight decay               (e.g. BN biases at initialisation)
//! buf = g (first step) or momentum·buf + g;  p -= lr · buf
//! ```
//!
//! A parameter without a gradient (the frozen prototypes) is skipped entirely: no decay, no
//! momentum buffer. Optionally, biases and normalisation parameters are excluded from both
//! the adaptation and the decay, as some peer implementations do.

use crate::{HeadOps, Real, SgdStep};

/// What a parameter tensor is, for the optional exclusion of biases and norm parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A weight matrix or convolution kernel.
    Weight,
    /// A bias, or a normalisation layer's scale or shift.
    BiasOrNorm,
}

/// The LARC + SGD hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lars<T> {
    /// The trust coefficient η (SwAV: 0.001).
    pub trust_coefficient: T,
    /// apex's eps in the denominator (1e-8).
    pub eps: T,
    /// Weight decay, folded into the gradient before the trust scaling (SwAV: 1e-6).
    pub weight_decay: T,
    /// SGD momentum (0.9), no dampening, no Nesterov.
    pub momentum: T,
    /// apex's clipping mode: the adapted rate never exceeds the schedule's (SwAV: off).
    pub clip: bool,
    /// Skip adaptation and decay for biases and norm parameters (SwAV: off).
    pub exclude_bias_and_norm: bool,
}

impl<T: Real> Default for Lars<T> {
    fn default() -> Self {
        Self {
            trust_coefficient: T::of(0.001),
            eps: T::of(1e-8),
            weight_decay: T::of(1e-6),
            momentum: T::of(0.9),
            clip: false,
            exclude_bias_and_norm: false,
        }
    }
}

impl<T: Real> Lars<T> {
    /// Plain SGD with momentum and weight decay, LARC off: an unbounded trust coefficient
    /// with apex's clipping makes every adapted rate 1, so the step is PyTorch's
    /// `torch.optim.SGD(momentum, weight_decay)` (the semi-supervised fine-tuning's
    /// optimiser).
    pub fn plain_sgd(momentum: T, weight_decay: T) -> Self {
        Self {
            trust_coefficient: T::infinity(),
            weight_decay,
            momentum,
            clip: true,
            ..Self::default()
        }
    }
}

/// How one tensor's gradient is transformed before the SGD step: `scale · (g + decay · p)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LarsScaling<T> {
    /// The factor λ applied to the decayed gradient (1 when not adapted).
    pub grad_scale: T,
    /// The weight decay folded into the gradient (0 when not adapted).
    pub weight_decay: T,
}

impl<T: Real> Lars<T> {
    /// The scaling for a tensor with norm `param_norm`, gradient norm `grad_norm`, at
    /// learning rate `lr`. Backends with fused multi-tensor updates use this to stay exact.
    pub fn scaling(&self, param_norm: T, grad_norm: T, kind: ParamKind, lr: T) -> LarsScaling<T> {
        let excluded = self.exclude_bias_and_norm && kind == ParamKind::BiasOrNorm;
        if excluded || param_norm == T::zero() || grad_norm == T::zero() {
            return LarsScaling {
                grad_scale: T::one(),
                weight_decay: T::zero(),
            };
        }
        let mut rate = self.trust_coefficient * param_norm
            / (grad_norm + param_norm * self.weight_decay + self.eps);
        if self.clip {
            rate = (rate / lr).min(T::one());
        }
        LarsScaling {
            grad_scale: rate,
            weight_decay: self.weight_decay,
        }
    }

    /// One LARC + SGD step of a single tensor on the device; a tensor without a gradient is
    /// left alone. Its `state` tracks whether the momentum buffer exists yet (the first step
    /// initialises it with the gradient).
    pub fn step<O: HeadOps<T> + ?Sized>(
        &self,
        ops: &mut O,
        tensor: &mut LarsParam<'_, O::Buf>,
        lr: T,
    ) -> Result<(), O::Error> {
        let Some(grad) = tensor.grad else {
            return Ok(());
        };
        let param_norm = ops.sum_squares(tensor.param)?.sqrt();
        let grad_norm = ops.sum_squares(grad)?.sqrt();
        let step = SgdStep {
            scaling: self.scaling(param_norm, grad_norm, tensor.kind, lr),
            lr,
            momentum: self.momentum,
            first: !tensor.state.initialised,
        };
        ops.sgd_momentum_step(tensor.param, grad, tensor.momentum, step)?;
        tensor.state.initialised = true;
        Ok(())
    }
}

/// One tensor of a LARC + SGD step ([`Lars::step`], [`Lars::step_all`]).
#[derive(Debug)]
pub struct LarsParam<'a, B> {
    /// The parameter, updated in place.
    pub param: &'a mut B,
    /// Its gradient; `None` skips the tensor entirely (no decay, no momentum buffer), as
    /// for the frozen prototypes.
    pub grad: Option<&'a B>,
    /// Its momentum buffer (same length).
    pub momentum: &'a mut B,
    /// Whether the momentum buffer holds a value yet; set by the step.
    pub state: &'a mut MomentumState,
    /// Weight, or bias / normalisation parameter.
    pub kind: ParamKind,
}

impl<T: Real> Lars<T> {
    /// One LARC + SGD step of every tensor in `params`, one after the other (a backend with
    /// a fused multi-tensor update reproduces exactly this, using [`Lars::scaling`]).
    pub fn step_all<O: HeadOps<T> + ?Sized>(
        &self,
        ops: &mut O,
        params: &mut [LarsParam<'_, O::Buf>],
        lr: T,
    ) -> Result<(), O::Error> {
        for tensor in params.iter_mut() {
            self.step(ops, tensor, lr)?;
        }
        Ok(())
    }
}

/// Whether a parameter's momentum buffer has been created (PyTorch creates it at the first
/// step that sees a gradient). Part of the optimiser state a checkpoint must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MomentumState {
    /// True once a step has written the buffer.
    pub initialised: bool,
}
