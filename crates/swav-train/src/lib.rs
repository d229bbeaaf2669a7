//! # swav-train: one SwAV training step as a library
//!
//! [`SwavStep`] runs one iteration of SwAV (Caron et al., NeurIPS 2020) in the order of the
//! official `main_swav.py`, on any swav-nn [`Backend`](swav_nn::Backend): normalise the
//! prototypes, forward every crop group, Sinkhorn codes of the assignment crops (with the
//! queue), the swapped-prediction loss and its gradient, backward, average the gradients
//! over ranks, drop the prototypes' gradient while they are frozen, and take the LARC step
//! ([`Optimizer`]). What it trains is a [`TrainingState`]: the model, its momentum buffers
//! and the feature queue. At iterations that ask for it, the step also measures what
//! explains a collapse ([`Diagnostics`]).
//!
//! With more than one rank the gradients are averaged the way PyTorch DDP does it: in
//! buckets of about 25 MiB ([`BucketLayout`]), filled in reverse parameter order as backward
//! finishes them, each summed over ranks as soon as it is complete and scaled once by
//! `1/world`. Where the sums run is a [`BucketTransport`] ([`GradientCommunication`]): by
//! default the step's all-ranks collective, at launch; a transport of the caller's can run
//! them on a thread or stream of its own, overlapped with the rest of backward.
//!
//! The epoch loop around it (data, schedule, checkpoints, logging) is the `swav` binary's;
//! this crate holds only what one step needs.
//!
//! ## Features
//! * `serde`: `Serialize`/`Deserialize` for [`Diagnostics`] and [`UpdateSizes`].
//!
//! ## Example: one step of a small network on the CPU
//!
//! ```
//! use swav_core::{Lars, PrototypeFreeze, SingleProcess, SinkhornConfig};
//! use swav_cpu::CpuBackend;
//! use swav_nn::{Arch, CropGroup, SwavConfig, SwavModel, TrunkConfig};
//! use swav_train::{Collectives, Iteration, StepPlan, SwavStep, TrainingState};
//!
//! let mut b = CpuBackend::new();
//! let config = SwavConfig {
//!     trunk: TrunkConfig { arch: Arch::ResNet18, width: 1, base_width: 16, small_stem: true },
//!     hidden_dim: 64,
//!     output_dim: 16,
//!     prototypes: 10,
//! };
//! let model = SwavModel::new(&mut b, config, 0).unwrap();
//! let mut state = TrainingState::new(&mut b, model, Lars::default()).unwrap();
//! let plan = StepPlan {
//!     batch: 4,
//!     crops: 2,
//!     prototypes: 10,
//!     dim: 16,
//!     crops_for_assign: vec![0, 1],
//!     temperature: 0.1,
//!     sinkhorn: SinkhornConfig { epsilon: 0.05, iterations: 3, ..SinkhornConfig::default() },
//!     freeze: PrototypeFreeze { iterations: 0 },
//! };
//! let mut step = SwavStep::new(&mut b, plan, 0).unwrap();
//!
//! // Two 16 px crops of 4 images, crop-major NHWC.
//! let images: Vec<f32> = (0..2 * 4 * 16 * 16 * 3).map(|i| (i % 7) as f32 / 3.0 - 1.0).collect();
//! let groups = [CropGroup { images: &images, crops: 2, height: 16, width: 16 }];
//! let ranks = Collectives { all_ranks: &SingleProcess, batch_norm: &SingleProcess };
//! let at = Iteration { index: 0, lr: 0.3, diagnostics: true };
//! let report = step.run(&mut b, &mut state, ranks, &groups, at).unwrap();
//! assert!(report.loss.is_finite());
//! assert!(report.diagnostics.is_some_and(|d| d.relative_update.trunk > 0.0));
//! ```

mod bucket_layout;
mod bucket_transport;
mod diagnostics;
mod gradient_buckets;
mod optimizer;
mod param_group;
mod plan;
mod step;
mod step_failure;
mod training_state;
mod update_sizes;

pub use bucket_layout::{Bucket, BucketLayout, BucketSlot, DEFAULT_BUCKET_CAP_MB};
pub use bucket_transport::BucketTransport;
pub use diagnostics::Diagnostics;
pub use gradient_buckets::GradientCommunication;
pub use optimizer::Optimizer;
pub use plan::StepPlan;
pub use step::{Collectives, Iteration, StepReport, SwavStep};
pub use step_failure::StepFailure;
pub use training_state::TrainingState;
pub use update_sizes::UpdateSizes;
