//! Backend conformance checks, shared by every backend's test suite (feature
//! `conformance`).
//!
//! Each check is generic over [`Backend`](crate::Backend), runs on small deterministic
//! data, and panics with a message naming the operation, the case and the error when the
//! backend disagrees with the definition (forward passes, against straightforward `f64`
//! implementations) or with calculus (backward passes, by central finite differences of the
//! backend's own forward pass). There is one entry point per op family of the `Backend`
//! (`check_conv_ops`, …); a backend's test crate registers them all, under the same test
//! names on every backend, with one line:
//!
//! ```ignore
//! swav_nn::backend_conformance_tests!(Some(MyBackend::new()));
//! ```
//!
//! A backend of reduced precision is checked against a reference backend instead, operation
//! by operation on identical inputs ([`check_agreement`]).

mod agreement;
mod families;
mod golden;
mod harness;
mod head_ops;
mod model;
mod ops;
mod reference;

pub use agreement::{Agreement, check_agreement};
pub use families::{
    check_activation_ops, check_batch_norm_ops, check_conv_ops, check_l2_normalize_ops,
    check_linear_ops, check_optimizer_ops, check_pool_ops,
};
pub use golden::{check_golden_resnet18, check_golden_resnet50, check_golden_swav};
pub use head_ops::check_head_ops;
pub use model::{check_linear_head_gradients, check_model_gradients, small_config};
