//! The SwAV network: configuration, layers, training and evaluation passes, named tensors.

mod batch_norm;
mod config;
mod conv_bn;
mod grad_pool;
mod grad_ready;
mod head;
mod linear;
mod residual_block;
mod swav_model;
mod tensors;
mod trunk;

pub use batch_norm::{BN_EPS, BN_MOMENTUM};
pub use config::{Arch, SwavConfig, TrunkConfig};
pub use grad_ready::GradReady;
pub use swav_model::{CropGroup, SwavModel};
pub use tensors::{BufferMut, BufferView, Layout, ParamMut, ParamView};
pub(crate) use tensors::{Entry, EntryMut};
