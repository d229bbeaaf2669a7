//! swav-core's head op families for the GPU, one family per file: what Sinkhorn, the
//! swapped-prediction loss, the queue, prototype normalisation and the single-tensor LARS
//! step of `swav-core` run on. Each kernel launch is one call of the launch path in
//! `launch.rs`, which holds everything the operations share.
//!
//! Semantics are those of `swav_core::SliceOps`, operation for operation (`head.cu` mirrors
//! its expressions and is compiled without fused multiply-adds); only the order of
//! floating-point sums and the last ulp of `exp`/`log` differ. Memory operations, fills,
//! scaling, axpy and the whole-buffer reductions accept buffers of either element type; the
//! Sinkhorn, loss and optimiser operations work on f32 buffers (scores, codes and parameters
//! are always f32) and panic, as for any shape mistake, when given a bf16 one.

mod buffer;
mod element_wise;
mod launch;
mod log_domain;
mod matrix;
mod reduce;
mod sgd;
