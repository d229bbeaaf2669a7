//! Pretraining: the step, the optimiser state, checkpoints and the epoch loop.

pub mod collapse_watch;
pub mod data;
pub mod diagnostics;
pub mod input_feed;
pub mod knn_probe;
pub mod model_spec;
pub mod optimizer;
pub mod progress;
pub mod resume_notice;
pub mod run;
pub mod state_io;
pub mod step;
pub mod watchdog;
