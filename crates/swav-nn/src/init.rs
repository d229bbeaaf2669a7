//! Deterministic initialisation, exactly the official recipe (docs/algorithm.md §1.1).
//!
//! One [`SplitMix64`] stream, seeded by the caller, is drawn in torchvision `state_dict`
//! order, each tensor in PyTorch's element order (OIHW for convolutions), so a seed gives
//! the same weights on every machine and thread count:
//! * convolutions: Kaiming normal, `fan_out`, ReLU gain: `std = √(2 / (out·k·k))`, normals by
//!   Box-Muller;
//! * linear layers (head and prototypes): PyTorch's default, weight and bias
//!   `U(-1/√fan_in, 1/√fan_in)`;
//! * batch norm: weight 1, bias 0, running mean 0, running variance 1 (no zero-init of the
//!   last γ of a residual branch).

use alloc::vec::Vec;

use crate::layout::ohwi_from_oihw;
use swav_core::SplitMix64;

/// The initialisation stream.
#[derive(Debug, Clone)]
pub(crate) struct Init {
    rng: SplitMix64,
}

impl Init {
    /// A stream for `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }

    /// A convolution weight, returned OHWI.
    pub(crate) fn conv(&mut self, out: usize, inp: usize, k: usize) -> Vec<f32> {
        let std = libm::sqrt(2.0 / (out * k * k) as f64);
        let oihw: Vec<f32> = (0..out * inp * k * k)
            .map(|_| (std * self.rng.normal()) as f32)
            .collect();
        ohwi_from_oihw(&oihw, out, inp, k)
    }

    /// `len` values `U(-1/√fan_in, 1/√fan_in)`.
    pub(crate) fn linear_uniform(&mut self, len: usize, fan_in: usize) -> Vec<f32> {
        let bound = 1.0 / libm::sqrt(fan_in as f64);
        (0..len)
            .map(|_| self.rng.uniform(-bound, bound) as f32)
            .collect()
    }
}
