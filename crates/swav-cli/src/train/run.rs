//! The training loop: epochs of SwAV steps over the loader, with the schedule, the queue,
//! metrics, progress, checkpoints and exact resume.
//!
//! Exact resume: everything a step depends on is either in the checkpoint (weights, running
//! statistics, momentum buffers and whether they exist, the queue, the position) or a pure
//! function of the configuration and the position (the learning rate, the prototype freeze,
//! the shuffle and every augmentation, whose random streams are keyed by seed, epoch, sample
//! and crop). On the CPU backend, whose arithmetic is deterministic, a run stopped and resumed
//! therefore continues bit for bit as if it had not stopped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use swav_core::{Collective, FeatureQueue};
use swav_nn::{Backend, SwavModel};
use swav_train::{
    Collectives, GradientCommunication, Iteration, StepPlan, SwavStep, TrainingState,
};

use super::checkpoint_state::{LoadedCheckpoint, RunPosition, save_run};
use super::collapse_watch::{CollapseContext, CollapseWatch};
use super::input_feed::InputFeed;
use super::knn_probe::{KnnPoint, KnnProbe};
use super::model_spec::model_config;
use super::progress::{Progress, ProgressLine};
use super::resume_notice::{ResumedQueue, resume_notice};
use super::run_folder::files;
use super::watchdog::StallWatchdog;
use crate::config::PretrainConfig;
use crate::metrics::{MetricsLog, StepRecord};
use crate::weights_source::WeightsSource;
use swav_augment::loader::MultiCropLoader;

/// What to run.
pub struct RunRequest<'a> {
    /// The resolved configuration.
    pub config: &'a PretrainConfig,
    /// This rank's training loader.
    pub loader: &'a MultiCropLoader,
    /// The output folder (exists and is writable).
    pub output: &'a Path,
    /// Continue from this checkpoint.
    pub resume: Option<&'a LoadedCheckpoint>,
    /// Start from these weights (not the optimiser state).
    pub init_weights: Option<&'a WeightsSource>,
    /// Stop after this many iterations of this invocation.
    pub max_iterations: Option<u64>,
    /// This process's rank.
    pub rank: usize,
    /// The number of processes.
    pub world: usize,
    /// With more than one process: end this one when no step completes for this long (a
    /// dead peer would otherwise leave every rank waiting in a collective forever).
    pub stall_timeout: Option<Duration>,
    /// Rank 0's k-NN evaluation, for `eval_knn_every` (and the final comparison).
    pub knn_probe: Option<&'a KnnProbe>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Where the run stands (the next iteration).
    pub position: RunPosition,
    /// Whether every epoch is done (false: stopped by `--max-iterations`).
    pub finished: bool,
    /// Iterations run by this invocation.
    pub iterations: u64,
    /// Loss of the last iteration.
    pub last_loss: f64,
    /// Wall time of this invocation's iterations.
    pub seconds: f64,
    /// Images per second over this invocation (all ranks).
    pub images_per_sec: f64,
}

/// Trains, and returns the model with a summary. `comm` spans all ranks; `bn_comm` is the
/// batch-norm synchronisation group.
pub fn train<B, C, G>(
    b: &mut B,
    comm: &C,
    bn_comm: &G,
    req: &RunRequest<'_>,
    gradients: GradientCommunication<B>,
) -> Result<(SwavModel<B>, RunSummary)>
where
    B: Backend,
    C: Collective<B::Buf>,
    G: Collective<B::Buf>,
{
    let config = req.config;
    let main_rank = req.rank == 0;
    let dev = |e: B::Error| anyhow!("device error: {e}");

    let loader = req.loader;
    let iters_per_epoch = loader.iters_per_epoch() as u64;
    if iters_per_epoch == 0 {
        bail!(
            "the dataset has too few images for one batch of {} per rank on {} rank(s) (drop_last)",
            config.batch_size,
            req.world
        );
    }

    let model = SwavModel::new(b, model_config(config), config.seed)
        .map_err(|e| anyhow!("building the model: {e}"))?;
    let mut state = TrainingState::new(b, model, config.lars()).map_err(dev)?;
    let queue_rows =
        FeatureQueue::<B::Buf>::rows_per_rank(config.queue_length, config.batch_size, req.world);
    let mut position = RunPosition::default();

    if let Some(ck) = req.resume {
        ck.load_model(b, &mut state.model)?;
        ck.load_optimizer(b, &state.model, &mut state.optimizer)?;
        position = ck.position()?;
        let stored_queue = ck.queue()?;
        if main_rank {
            let queue_state = match &stored_queue {
                Some((values, shape)) => ResumedQueue::stored(values, *shape),
                None if queue_rows == 0 => ResumedQueue::Disabled,
                None => ResumedQueue::NotYet {
                    starts_at_epoch: config.epoch_queue_starts,
                },
            };
            eprintln!(
                "{}",
                resume_notice(
                    &ck.path,
                    position,
                    config.epochs,
                    iters_per_epoch,
                    queue_state
                )
            );
        }
        if let Some((values, [crops, rows, dim])) = stored_queue {
            if crops != config.crops_for_assign.len()
                || rows != queue_rows
                || dim != config.feat_dim
            {
                bail!(
                    "checkpoint {}: its queue is {crops} × {rows} × {dim} but this run needs {} × {queue_rows} × {}",
                    ck.path.display(),
                    config.crops_for_assign.len(),
                    config.feat_dim
                );
            }
            state.queue = Some(
                FeatureQueue::from_host(b, &values, crops, rows, dim, config.batch_size)
                    .map_err(dev)?,
            );
        }
    } else if let Some(weights) = req.init_weights {
        weights.load_into(b, &mut state.model)?;
    }
    if position.global_iteration != position.epoch * iters_per_epoch + position.iteration_in_epoch {
        bail!(
            "the checkpoint's position (epoch {}, iteration {}) does not fit {iters_per_epoch} iterations per epoch: \
             was it written with another batch size, dataset or number of ranks?",
            position.epoch,
            position.iteration_in_epoch
        );
    }

    let plan = StepPlan::from(config);
    let mut step = SwavStep::new(b, plan, queue_rows)?;
    step.set_gradient_communication(gradients);
    let schedule = config.lr_schedule(iters_per_epoch);

    let groups_meta: Vec<(usize, usize)> = loader
        .resolution_groups()
        .iter()
        .map(|g| (g.crops, g.size as usize))
        .collect();
    let mut feed = InputFeed::new(b, &groups_meta, config.batch_size).map_err(dev)?;

    let metrics_path = req.output.join(files::METRICS);
    let mut metrics = if main_rank {
        if req.resume.is_some() {
            let from = position.global_iteration;
            truncate_jsonl::<StepRecord>(&metrics_path, |r| r.iteration < from)?;
            let knn_path = req.output.join(files::KNN_CURVE);
            truncate_jsonl::<KnnPoint>(&knn_path, |p| p.iteration <= from)?;
        }
        Some(MetricsLog::open(&metrics_path, req.resume.is_some())?)
    } else {
        None
    };

    let total = schedule.len();
    let progress = Progress::new(position.global_iteration, total, main_rank);
    let mut collapse = CollapseWatch::new(
        CollapseContext::for_run(config, req.world, queue_rows),
        config.freeze_prototypes_niters + iters_per_epoch,
        iters_per_epoch,
    );
    let images_per_step = (config.batch_size * req.world) as f64;
    let started = Instant::now();
    let watchdog = req
        .stall_timeout
        .filter(|_| req.world > 1)
        .map(|t| StallWatchdog::start(t, StallWatchdog::exit_on_stall(req.rank, req.world, t)));
    let mut window = (Instant::now(), 0u64);
    let mut ran = 0u64;
    let mut last_loss = f64::NAN;
    let mut stopped = false;

    for epoch in position.epoch..config.epochs {
        if queue_rows > 0 && state.queue.is_none() && epoch >= config.epoch_queue_starts {
            state.queue = Some(
                FeatureQueue::new(
                    b,
                    config.crops_for_assign.len(),
                    queue_rows,
                    config.feat_dim,
                    config.batch_size,
                )
                .map_err(dev)?,
            );
        }
        if let Some(q) = state.queue.as_mut() {
            q.start_epoch();
        }
        let first = if epoch == position.epoch {
            position.iteration_in_epoch
        } else {
            0
        };
        let mut inputs = feed.epoch(loader.epoch_from(epoch, first as usize)?);
        for it in first.. {
            let Some(crop_groups) = inputs.next_groups(b)? else {
                break;
            };
            let global = epoch * iters_per_epoch + it;
            let lr = schedule.lr(global);
            let log = global.is_multiple_of(config.log_every) || global + 1 == total;
            let ranks = Collectives {
                all_ranks: comm,
                batch_norm: bn_comm,
            };
            let at = Iteration {
                index: global,
                lr: lr as f32,
                diagnostics: log,
            };
            let report = step
                .run(b, &mut state, ranks, &crop_groups, at)
                .map_err(|e| {
                    progress.finish();
                    anyhow!(
                        "{e}{}",
                        if main_rank {
                            format!(
                                "; the last good checkpoint is {}",
                                req.output.join(files::CHECKPOINT).display()
                            )
                        } else {
                            String::new()
                        }
                    )
                })?;
            ran += 1;
            if let Some(dog) = &watchdog {
                dog.beat();
            }
            last_loss = report.loss;
            position = advance(epoch, it, iters_per_epoch);

            let images_per_sec = {
                let (since, at) = window;
                let secs = since.elapsed().as_secs_f64();
                if log {
                    window = (Instant::now(), ran);
                }
                images_per_step * (ran - at) as f64 / secs.max(1e-9)
            };
            if let (Some(m), Some(c)) = (metrics.as_mut(), report.collapse) {
                m.write(&StepRecord {
                    epoch,
                    iteration: global,
                    loss: c.loss,
                    lr,
                    codes_entropy: c.mean_code_entropy,
                    sample_code_entropy: c.sample_code_entropy,
                    prototypes_in_use: c.prototypes_in_use,
                    samples_per_sec: images_per_sec,
                    queue_in_use: report.queue_in_use,
                    elapsed_s: started.elapsed().as_secs_f64(),
                    skipped_files: loader.bad_input_summary().count,
                    diagnostics: report.diagnostics,
                })?;
                if let Some(warning) = collapse.observe(
                    global,
                    c.loss,
                    report.diagnostics.as_ref(),
                    c.sample_code_entropy,
                ) {
                    progress.println(&warning);
                }
            }
            progress.update(
                &ProgressLine {
                    epoch,
                    epochs: config.epochs,
                    iteration: global,
                    loss: report.loss,
                    lr,
                    images_per_sec,
                },
                log,
                main_rank,
            );

            let stop = req.max_iterations.is_some_and(|m| ran >= m);
            let periodic = config.checkpoint_every_iters > 0
                && (global + 1).is_multiple_of(config.checkpoint_every_iters);
            if main_rank && (stop || periodic) && position.iteration_in_epoch != 0 {
                save_run(
                    &req.output.join(files::CHECKPOINT),
                    b,
                    &state,
                    position,
                    config,
                    req.world,
                )?;
            }
            if stop && position.global_iteration < total {
                stopped = true;
                break;
            }
        }
        // A run stopped mid-epoch has no epoch end yet.
        let epoch_ended = !stopped || position.iteration_in_epoch == 0;
        if let Some(dog) = &watchdog
            && epoch_ended
            && knn_point_due(config, epoch + 1)
        {
            // Rank 0 evaluates k-NN now; the other ranks wait for it in their next step.
            dog.pause();
        }
        if main_rank && epoch_ended {
            end_of_epoch(b, req, &mut state, position, epoch, &progress)?;
        }
        if stopped {
            progress.finish();
            return Ok((
                state.model,
                summary(position, false, ran, last_loss, started, images_per_step),
            ));
        }
    }
    progress.finish();
    Ok((
        state.model,
        summary(position, true, ran, last_loss, started, images_per_step),
    ))
}

/// Whether a k-NN point is evaluated after `done` epochs: every `eval_knn_every`, except
/// after the last epoch when the final comparison evaluates the trained network anyway.
fn knn_point_due(config: &PretrainConfig, done: u64) -> bool {
    let every = config.eval_knn_every;
    let final_comparison = config.eval_knn && done == config.epochs;
    every > 0 && done.is_multiple_of(every) && !final_comparison
}

/// The position after iteration `it` of `epoch`.
fn advance(epoch: u64, it: u64, iters_per_epoch: u64) -> RunPosition {
    let next = it + 1;
    if next == iters_per_epoch {
        RunPosition {
            epoch: epoch + 1,
            iteration_in_epoch: 0,
            global_iteration: (epoch + 1) * iters_per_epoch,
        }
    } else {
        RunPosition {
            epoch,
            iteration_in_epoch: next,
            global_iteration: epoch * iters_per_epoch + next,
        }
    }
}

/// The epoch-end checkpoint, and its numbered copy every `checkpoint_freq` epochs and at the
/// last epoch (as the official `ckp-<epoch>.pth`); then the k-NN point every
/// `eval_knn_every` epochs (except after the last epoch when the final comparison runs).
fn end_of_epoch<B: Backend>(
    b: &mut B,
    req: &RunRequest<'_>,
    state: &mut TrainingState<B>,
    position: RunPosition,
    epoch: u64,
    progress: &Progress,
) -> Result<()> {
    let config = req.config;
    let latest = req.output.join(files::CHECKPOINT);
    save_run(&latest, b, state, position, config, req.world)?;
    if epoch.is_multiple_of(config.checkpoint_freq) || epoch + 1 == config.epochs {
        let dir = req.output.join(files::CHECKPOINTS_DIR);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let copy: PathBuf = dir.join(format!("ckp-{epoch}.safetensors"));
        std::fs::copy(&latest, &copy)
            .with_context(|| format!("cannot write {}", copy.display()))?;
    }
    let done = epoch + 1;
    if let Some(probe) = req.knn_probe
        && knn_point_due(config, done)
    {
        let log = req.output.join(files::KNN_CURVE);
        let point = probe.point(b, &mut state.model, (done, position.global_iteration), &log)?;
        progress.println(&point.summary());
    }
    Ok(())
}

fn summary(
    position: RunPosition,
    finished: bool,
    ran: u64,
    last_loss: f64,
    started: Instant,
    images_per_step: f64,
) -> RunSummary {
    let seconds = started.elapsed().as_secs_f64();
    RunSummary {
        position,
        finished,
        iterations: ran,
        last_loss,
        seconds,
        images_per_sec: images_per_step * ran as f64 / seconds.max(1e-9),
    }
}

/// Keeps the records of a JSON-lines log that satisfy `keep` (those of iterations a resumed
/// run is about to run again are dropped).
fn truncate_jsonl<T: serde::de::DeserializeOwned>(
    path: &Path,
    keep: impl Fn(&T) -> bool,
) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| serde_json::from_str::<T>(line).is_ok_and(|r| keep(&r)))
        .collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    swav_nn::write_atomic(path, out.as_bytes())
        .with_context(|| format!("cannot rewrite {}", path.display()))
}
