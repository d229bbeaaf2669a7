//! The `swav` command-line tool: SwAV pretraining, evaluation, feature extraction, cluster
//! assignment and weight export/import, composed from the workspace's crates.
//!
//! How the pieces fit:
//! * [`cli`] defines the command line; [`resolve`] turns a preset ([`presets`]), an optional
//!   TOML file ([`config_file`]) and the flags into a validated [`config::PretrainConfig`];
//!   [`app`] dispatches to [`commands`], one file and one `run(args)` per command.
//! * [`train`] is pretraining: [`swav_train::SwavStep`] is one iteration in the official
//!   order (normalise prototypes, forward per resolution group, Sinkhorn codes with the
//!   queue, loss and gradient, backward, gradient average over ranks, prototype freeze,
//!   LARC), planned from the configuration by [`train::step_plan`]; [`train::run`] is the
//!   epoch loop with the schedule, metrics ([`metrics`], with the collapse
//!   [`swav_train::Diagnostics`] and their [`train::collapse_watch`]), progress,
//!   checkpoints ([`train::checkpoint_state`] over [`checkpoint_file`]), exact resume and the k-NN
//!   curve ([`train::knn_probe`]).
//! * [`datasets`] opens the datasets and loaders a configuration asks for (training, k-NN,
//!   evaluation); [`recipe_candidates`] are the variants of a configuration that
//!   `--preset small-data` probes ([`train::recipe_choice`]) and `--recipe` names.
//! * [`report`] reads a run folder back and draws its curves (`curves.svg`, `swav report`);
//!   [`event_file`] is the TensorBoard file a run writes while it trains.
//! * [`commands::supervised`] trains the same network with labels for the same steps: the
//!   yardstick a SwAV recipe's k-NN is read against.
//! * [`logging`] prints the libraries' `tracing` warnings (skipped images) on stderr;
//!   [`skipped_files`] is the end-of-command count every image-reading command prints.
//! * [`eval`] holds k-NN and the linear probe on frozen features; [`train::weights_source`] reads
//!   swav checkpoints and torchvision / official SwAV safetensors alike, and
//!   [`model_loading`] builds the network they describe.
//! * [`bench`](mod@bench) is the workload and the reports of `swav bench`; [`assign`] the two halves of
//!   `swav assign`.
//! * [`launcher`] reads rank and world size from torchrun, Slurm or MPI; [`distributed`]
//!   holds the CPU transport (Open MPI, loaded at run time) and the NCCL id rendezvous.
//! * [`device`] runs any command on the CPU or the CUDA backend, generic over
//!   `swav_nn::Backend`.

pub mod app;
pub mod assign;
pub mod bench;
pub mod checkpoint_file;
pub mod cli;
pub mod commands;
pub mod config;
pub mod config_file;
pub mod datasets;
pub mod device;
pub mod distributed;
pub mod eval;
pub mod event_file;
pub mod launcher;
pub mod logging;
pub mod metrics;
pub mod model_loading;
pub mod npy;
pub mod presets;
pub mod recipe_candidates;
pub mod report;
pub mod resolve;
pub mod run_log;
pub mod skipped_files;
pub mod train;
