//! Backend conformance checks, shared by every backend's test suite (feature
//! `conformance`).
//!
//! Each check is generic over [`Backend`](crate::Backend), runs on small deterministic
//! data, and panics with a message naming the operation, the case and the error when the
//! backend disagrees with the definition (forward passes, against straightforward `f64`
//! implementations) or with calculus (backward passes, by central finite differences of the
//! backend's own forward pass). A backend's tests call them on a fresh backend:
//!
//! ```ignore
//! swav_nn::conformance::check_all_ops(&mut MyBackend::new());
//! ```
//!
//! A backend of reduced precision is checked against a reference backend instead, operation
//! by operation on identical inputs ([`check_agreement`]).

mod agreement;
mod golden;
mod harness;
mod head_ops;
mod model;
mod ops;
mod reference;

pub use agreement::{Agreement, check_agreement};
pub use golden::{check_golden_resnet18, check_golden_resnet50, check_golden_swav};
pub use head_ops::check_head_ops;
pub use model::{check_linear_head_gradients, check_model_gradients, small_config};
pub use ops::{
    check_all_ops, check_avg_pool, check_batch_norm, check_conv2d, check_l2_normalize,
    check_linear, check_max_pool, check_relu_backward,
};
