//! # swav-core: the SwAV math, `no_std`
//!
//! The algorithmic core of SwAV (Caron et al., *Unsupervised Learning of Visual Features by
//! Contrasting Cluster Assignments*, NeurIPS 2020), reproducing the official implementation
//! (`facebookresearch/swav`) exactly, and usable on its own for **balanced online clustering**
//! of any embeddings:
//!
//! * [`sinkhorn`]: Sinkhorn-Knopp codes (equipartitioned soft assignments of samples to
//!   prototypes), distributed over ranks through a [`Collective`], stable for any ε;
//! * [`swapped_prediction_loss`]: the multi-crop swapped-prediction loss and its exact
//!   gradient with respect to the scores;
//! * [`assign_codes`] with a [`FeatureQueue`]: the code-assignment step of a training
//!   iteration, with the small-batch queue;
//! * [`normalize_prototypes`] and [`PrototypeFreeze`]; [`LrSchedule`]; [`Lars`] (LARC + SGD);
//! * [`diagnostics`](crate::CollapseReport) that reveal collapse;
//! * [`SplitMix64`] (with [`mix64`] and [`hashed_uniform`]): seeded random numbers that are
//!   the same on every machine, for initialisation and test data.
//!
//! Everything is generic over the float type ([`Real`]: `f32`, `f64`) and over the device:
//! the algorithms are written against [`HeadOps`], six op families ([`BufferOps`],
//! [`ReduceOps`], [`ElementWiseOps`], [`MatrixOps`], [`LogDomainOps`], [`SgdOps`]) that the
//! CPU and CUDA backends of the `swav` workspace implement. Each family has a host half
//! (`HostBufferOps`, …) whose default methods are the reference on plain vectors: a host
//! backend overrides only what it does differently, and [`SliceOps`] overrides nothing.
//! Code that calls operations on a concrete type imports the families it calls.
//!
//! ## Features
//! * `alloc`: [`SliceOps`] and the host halves of the op families, the queue, code
//!   assignment and diagnostics (needs a heap).
//! * `std` (default): `std::error::Error` impls and [`ThreadGroup`], a collective between
//!   threads.
//!
//! Without features the crate needs neither `std` nor a heap: the traits, [`sinkhorn`],
//! [`swapped_prediction_loss`], [`LrSchedule`], [`Lars`], the prototype rules and
//! [`SplitMix64`] remain.
//!
//! ## Example: balanced soft clustering of your own embeddings
//!
//! ```
//! use swav_core::{sinkhorn, MatrixOps, SinkhornConfig, SinkhornWorkspace, SingleProcess, SliceOps};
//!
//! // 4 unit embeddings in 2-D and 2 unit prototypes.
//! let z = vec![1.0f32, 0.0, 0.8, 0.6, 0.0, 1.0, 0.6, 0.8];
//! let prototypes = vec![1.0f32, 0.0, 0.0, 1.0];
//! let (n, k, d) = (4, 2, 2);
//!
//! let mut ops = SliceOps;
//! let mut scores = vec![0.0f32; n * k];
//! ops.matmul_nt(&z, &prototypes, n, k, d, &mut scores).unwrap();
//!
//! let mut codes = vec![0.0f32; n * k];
//! let mut ws = SinkhornWorkspace::new(&mut ops, n, k).unwrap();
//! let config = SinkhornConfig { epsilon: 0.05, ..Default::default() };
//! sinkhorn(&mut ops, &SingleProcess, &scores, &config, &mut ws, &mut codes).unwrap();
//!
//! // Two samples per prototype: the batch is split evenly.
//! let mass: Vec<f32> = (0..k).map(|j| codes.iter().skip(j).step_by(k).sum()).collect();
//! assert!((mass[0] - 2.0).abs() < 0.05 && (mass[1] - 2.0).abs() < 0.05);
//! ```
#![no_std]
#![warn(missing_docs)]

/// The crate README's examples, compiled and run as doctests so the page crates.io shows
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod collective;
mod head_ops;
mod lars;
mod operands;
mod prototypes;
mod real;
mod schedule;
mod sinkhorn;
mod split_mix;
mod swapped_loss;

#[cfg(feature = "alloc")]
mod codes;
#[cfg(feature = "alloc")]
mod diagnostics;
#[cfg(feature = "alloc")]
mod queue;
#[cfg(feature = "alloc")]
mod slice_math;
#[cfg(feature = "alloc")]
mod slice_ops;
#[cfg(feature = "std")]
mod thread_group;

pub use collective::{Collective, SingleProcess};
pub use head_ops::{
    BufferOps, ElementWiseOps, HeadOps, LogDomainOps, MatrixOps, ReduceOps, SgdOps,
};
pub use lars::{Lars, LarsParam, LarsScaling, MomentumState, ParamKind};
pub use operands::{BufAt, ScaledScores, SgdStep};
pub use prototypes::{NORMALIZE_EPS, PrototypeFreeze, normalize_prototypes};
pub use real::Real;
pub use schedule::{LrSchedule, iterations_per_epoch};
pub use sinkhorn::{
    SinkhornConfig, SinkhornError, SinkhornPath, SinkhornWorkspace, Stabilization, sinkhorn,
};
pub use split_mix::{SplitMix64, hashed_uniform, mix64};
pub use swapped_loss::{LossWorkspace, SwappedPrediction, swapped_prediction_loss};

#[cfg(feature = "alloc")]
pub use codes::{AssignmentInputs, AssignmentLayout, AssignmentWorkspace, assign_codes};
#[cfg(feature = "alloc")]
pub use diagnostics::{
    CollapseReport, mean_code_entropy, mean_sample_entropy, prototypes_in_use, uniform_loss,
};
#[cfg(feature = "alloc")]
pub use head_ops::{
    HostBufferOps, HostElementWiseOps, HostLogDomainOps, HostMatrixOps, HostReduceOps, HostSgdOps,
};
#[cfg(feature = "alloc")]
pub use queue::FeatureQueue;
#[cfg(feature = "alloc")]
pub use slice_ops::SliceOps;
#[cfg(feature = "std")]
pub use thread_group::{ThreadGroup, ThreadGroupError};
