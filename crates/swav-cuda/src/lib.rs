//! x
mod buffer;
mod dtype;
mod error;
mod libraries;
pub mod nvrtc;

pub use buffer::CudaBuffer;
pub use dtype::{DType, Precision};
pub use error::CudaError;
pub use libraries::{LibraryStatus, LibraryVersions};
