//! The errors of building and running the model.

use core::fmt;

/// A failed training or evaluation step: the device or a batch-norm all-reduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError<D, C> {
    /// The backend failed.
    Device(D),
    /// A synchronised-batch-norm all-reduce failed.
    Collective(C),
}

impl<D: fmt::Display, C: fmt::Display> fmt::Display for StepError<D, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(e) => write!(f, "model step: device error: {e}"),
            Self::Collective(e) => write!(f, "model step: batch-norm all-reduce failed: {e}"),
        }
    }
}

impl<D: fmt::Debug + fmt::Display, C: fmt::Debug + fmt::Display> core::error::Error
    for StepError<D, C>
{
}

/// A model configuration that cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The width multiplier is 0.
    ZeroWidth,
    /// The embedding dimension (`output_dim`) is 0.
    ZeroOutputDim,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroWidth => write!(
                f,
                "model config: the width multiplier and the base width must be at least 1"
            ),
            Self::ZeroOutputDim => {
                write!(
                    f,
                    "model config: the embedding dimension (output_dim) must be at least 1"
                )
            }
        }
    }
}

impl core::error::Error for ConfigError {}

/// Building a model failed: a bad configuration or a device error while allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError<D> {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The backend failed to allocate or upload.
    Device(D),
}

impl<D: fmt::Display> fmt::Display for BuildError<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::Device(e) => write!(f, "model build: device error: {e}"),
        }
    }
}

impl<D: fmt::Debug + fmt::Display> core::error::Error for BuildError<D> {}
