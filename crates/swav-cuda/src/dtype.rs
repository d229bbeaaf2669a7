//! Element types of device buffers, and the precision policy that chooses them.

use std::fmt;

/// The element type of a [`CudaBuffer`](crate::CudaBuffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE single precision: parameters, gradients of parameters, optimiser state,
    /// batch-norm statistics, scores, Sinkhorn and the loss; activations in [`Precision::F32`].
    F32,
    /// bfloat16: activations and their gradients in [`Precision::MixedBf16`], and the bf16
    /// copies of the weights that convolutions and matrix products read.
    Bf16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::Bf16 => 2,
        }
    }

    /// The suffix kernel names use for this type (`"f32"`, `"bf16"`).
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// How a [`CudaBackend`](crate::CudaBackend) stores activations and runs its products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// The training configuration (docs/architecture.md §6): bf16 activations and bf16 copies
    /// of the weights for convolutions and matrix products, accumulated in f32; f32 master
    /// weights, optimiser state, batch-norm statistics, scores, Sinkhorn and loss. Comparable
    /// to PyTorch's bf16 autocast.
    #[default]
    MixedBf16,
    /// Everything in f32, with tensor-core TF32 disabled: slower, and the configuration that
    /// is checked against the CPU backend at f32 tolerances.
    F32,
}

impl Precision {
    /// The element type of activation buffers under this policy.
    pub fn activation_dtype(self) -> DType {
        match self {
            Precision::MixedBf16 => DType::Bf16,
            Precision::F32 => DType::F32,
        }
    }
}
