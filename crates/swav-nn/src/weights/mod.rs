//! Weights in safetensors with torchvision / SwAV names and PyTorch layouts.

mod error;
#[cfg(feature = "std")]
mod file;
mod options;
mod safetensors_io;

pub use error::WeightsError;
#[cfg(feature = "std")]
pub use file::{load_safetensors_file, save_safetensors_file};
pub use options::{ExportOptions, ImportOptions};
pub use safetensors_io::{ImportReport, export_safetensors, import_safetensors};
