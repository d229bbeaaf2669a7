//! Pretraining: the epoch loop around `swav_train`'s step, with its data, schedule,
//! checkpoints, metrics and k-NN curve.

pub mod adapting_run;
pub mod checkpoint_choice;
pub mod checkpoint_state;
pub mod collapse_escape;
pub mod collapse_watch;
pub mod input_feed;
pub mod knn_probe;
pub mod model_spec;
pub mod preemption;
pub mod progress;
pub mod rank_queues;
pub mod rank_scratch;
pub mod recipe_choice;
pub mod resume_notice;
pub mod run;
pub mod run_folder;
pub mod run_request;
pub mod scale_hint;
pub mod start_state;
pub mod startup_guard;
pub mod step_log;
pub mod step_plan;
pub mod time_budget;
pub mod watchdog;
pub mod weights_source;
