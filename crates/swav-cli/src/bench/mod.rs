//! What `swav bench` measures: the training step of `swav pretrain` on a synthetic batch
//! ([`step`]), timed on the CPU ([`cpu`]) or on CUDA with a profile and the device's
//! ceilings ([`cuda`], [`gpu_ceilings`]).

pub mod cpu;
pub mod cuda;
pub mod gpu_ceilings;
pub mod step;
