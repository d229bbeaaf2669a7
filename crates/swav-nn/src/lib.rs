//! swav-nn (work in progress)
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod hash_rng;
mod init;
mod layout;
mod model;
mod shapes;
mod weights;

pub use backend::{Backend, StatsOutput, batch_norm_saved_len, batch_norm_stats_len};
pub use error::{BuildError, ConfigError, StepError};
pub use hash_rng::{SplitMix64, hashed_uniform, mix64};
pub use layout::{ohwi_from_oihw, oihw_from_ohwi};
pub use model::{
    Arch, BN_EPS, BN_MOMENTUM, BufferMut, BufferView, CropGroup, Layout, ParamMut, ParamView,
    SwavConfig, SwavModel, TrunkConfig,
};
pub use shapes::{Conv2dShape, Pool2dShape};
pub use weights::{
    ExportOptions, ImportOptions, ImportReport, WeightsError, export_safetensors,
    import_safetensors,
};
#[cfg(feature = "std")]
pub use weights::{load_safetensors_file, save_safetensors_file};
