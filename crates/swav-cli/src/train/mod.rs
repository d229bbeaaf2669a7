//! Pretraining: the step, the optimiser state, checkpoints and the epoch loop.

pub mod data;
pub mod input_feed;
pub mod model_spec;
pub mod optimizer;
pub mod progress;
pub mod run;
pub mod state_io;
pub mod step;
pub mod watchdog;
