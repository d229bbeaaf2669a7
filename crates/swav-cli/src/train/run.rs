//! The training loop: epochs of SwAV steps over the loader, with the schedule, the queue,
//! metrics, progress, checkpoints and exact resume.
//!
//! Exact resume: everything a step depends on is either in the checkpoint (weights, running
//! statistics, momentum buffers and whether they exist, the queue, the position) or a pure
//! function of the configuration and the position (the learning rate, the prototype freeze,
//! the shuffle and every augmentation, whose random streams are keyed by seed, epoch, sample
//! and crop). On the CPU backend, whose arithmetic is deterministic, a run stopped and resumed
//! therefore continues bit for bit as if it had not stopped, on one rank or several (each
//! rank's queue is stored; [`super::rank_queues`]).
//!
//! Every rank takes part in writing a checkpoint (the queues are gathered, rank 0 writes, all
//! wait until it is written) and in the check for a stop signal after each step
//! ([`super::preemption`]), so all ranks stop at the same iteration boundary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use swav_core::{Collective, FeatureQueue};
use swav_nn::{Backend, SwavModel};
use swav_train::{
    Collectives, GradientCommunication, Iteration, StepPlan, SwavStep, TrainingState,
};

use super::checkpoint_state::{RunPosition, RunRecord, save_run};
use super::collapse_escape::Remedy;
use super::collapse_watch::CollapseKind;
use super::input_feed::InputFeed;
use super::model_spec::model_config;
use super::preemption;
use super::progress::{Progress, ProgressLine};
use super::rank_queues::RankQueues;
use super::rank_scratch::{RankScratch, RankTotals};
use super::run_folder::files;
use super::run_request::RunRequest;
use super::start_state::start_state;
use super::step_log::StepLog;
use super::time_budget::{BudgetPlan, REPLAN_AFTER_ITERATIONS};
use super::watchdog::StallWatchdog;
use crate::config::PretrainConfig;
use crate::event_file::unix_time;
use crate::metrics::StepRecord;

/// How a collapse ended a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollapseEnd {
    /// `--on-collapse stop`.
    Stopped,
    /// `--on-collapse adapt`: restart with this remedy.
    Adapt(Remedy),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Where the run stands (the next iteration).
    pub position: RunPosition,
    /// Whether every epoch is done (false: stopped by `--max-iterations` or a signal).
    pub finished: bool,
    /// The signal that stopped the run (this rank's, or "a peer's signal"), if one did.
    pub preempted: Option<&'static str>,
    /// The collapse that ended the run early, if one did.
    pub collapse: Option<CollapseEnd>,
    /// The collapse the run was still in at its last logged iteration (rank 0).
    pub ended_collapsed: Option<CollapseKind>,
    /// Iterations run by this invocation.
    pub iterations: u64,
    /// Iterations of the whole run (every epoch).
    pub total_iterations: u64,
    /// Loss of the last iteration.
    pub last_loss: f64,
    /// Wall time of this invocation's iterations.
    pub seconds: f64,
    /// Images per second over this invocation (all ranks).
    pub images_per_sec: f64,
    /// The shorter plan the time budget switched to at the last epoch end, when this
    /// invocation ended for it.
    pub replan: Option<BudgetPlan>,
}

/// Trains, and returns the model with a summary. `comm` spans all ranks; `bn_comm` is the
/// batch-norm synchronisation group.
pub fn train<B, C, G>(
    b: &mut B,
    comm: &C,
    bn_comm: &G,
    req: &RunRequest<'_>,
    gradients: &mut GradientCommunication<B>,
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

    let mut position = start_state(b, req, &mut state, queue_rows, iters_per_epoch)?;

    let plan = StepPlan::from(config);
    let mut step = SwavStep::new(b, plan, queue_rows)?;
    step.set_gradient_communication(std::mem::take(gradients));
    let schedule = config.lr_schedule(iters_per_epoch);

    let groups_meta: Vec<(usize, usize)> = loader
        .resolution_groups()
        .iter()
        .map(|g| (g.crops, g.size as usize))
        .collect();
    let mut feed = InputFeed::new(b, &groups_meta, config.batch_size).map_err(dev)?;

    let mut step_log = if main_rank {
        Some(StepLog::open(req, position, queue_rows, iters_per_epoch)?)
    } else {
        None
    };

    let total = schedule.len();
    let progress = Progress::new(position.global_iteration, total, main_rank);
    let mut collapse_code = 0u8;
    let images_per_step = (config.batch_size * req.world) as f64;
    let started = Instant::now();
    let watchdog = req
        .stall_timeout
        .filter(|_| req.world > 1)
        .map(|t| StallWatchdog::start(t, StallWatchdog::exit_on_stall(req.rank, req.world, t)));
    let mut window = (Instant::now(), 0u64);
    let mut data_wait = Duration::ZERO;
    let mut scratch = RankScratch::new(b).map_err(dev)?;
    let mut ran = 0u64;
    let mut last_loss = f64::NAN;
    let mut stopped = false;
    let mut preempted = None;
    let mut collapse_end = None;
    let mut replan = None;

    'epochs: for epoch in position.epoch..config.epochs {
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
            let waiting = Instant::now();
            let Some(crop_groups) = inputs.next_groups(b)? else {
                break;
            };
            data_wait += waiting.elapsed();
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

            let (images_per_sec, window_steps) = {
                let (since, at) = window;
                let secs = since.elapsed().as_secs_f64();
                if log {
                    window = (Instant::now(), ran);
                }
                (
                    images_per_step * (ran - at) as f64 / secs.max(1e-9),
                    ran - at,
                )
            };
            let totals = if log {
                let mine = RankTotals {
                    skipped_files: loader.bad_input_summary().count,
                    data_ms: data_wait.as_secs_f64() * 1e3 / window_steps.max(1) as f64,
                };
                data_wait = Duration::ZERO;
                Some(scratch.totals(b, comm, mine)?)
            } else {
                None
            };
            if let (Some(log), Some(c), Some(totals)) = (step_log.as_mut(), report.collapse, totals)
            {
                let record = StepRecord {
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
                    unix_time: unix_time(),
                    skipped_files: totals.skipped_files,
                    data_ms: totals.data_ms,
                    adaptation: None,
                    diagnostics: report.diagnostics,
                };
                if let Some(code) = log.write(record, &progress)? {
                    collapse_code = code;
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
                    data_ms: totals.map(|t| t.data_ms),
                },
                log,
                main_rank,
            );

            let agreed = scratch.agree(b, comm, collapse_code)?;
            if agreed.signal {
                preempted = Some(preemption::received().unwrap_or("a peer's signal"));
            }
            if agreed.collapse != 0 {
                // The state is collapsed: no checkpoint of it; the last one stays.
                collapse_end = Some(match Remedy::from_code(agreed.collapse) {
                    Some(remedy) => CollapseEnd::Adapt(remedy),
                    None => CollapseEnd::Stopped,
                });
                break 'epochs;
            }
            let stop = preempted.is_some() || req.max_iterations.is_some_and(|m| ran >= m);
            let periodic = config.checkpoint_every_iters > 0
                && (global + 1).is_multiple_of(config.checkpoint_every_iters);
            if (stop || periodic) && position.iteration_in_epoch != 0 {
                write_checkpoint(b, comm, req, &state, position, &mut scratch)?;
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
        if epoch_ended {
            write_checkpoint(b, comm, req, &state, position, &mut scratch)?;
            if main_rank {
                end_of_epoch(b, req, &mut state, position, epoch, &progress)?;
                if step_log.as_ref().is_some_and(StepLog::healthy) {
                    keep_as_last_good(req.output)?;
                }
            }
        }
        if stopped {
            break;
        }
        if let Some(budget) = req
            .budget
            .filter(|_| req.world == 1 && epoch + 1 < config.epochs)
            .filter(|_| ran >= REPLAN_AFTER_ITERATIONS)
        {
            let speed = started.elapsed().as_secs_f64() / ran.max(1) as f64;
            let elapsed = budget.started.elapsed().as_secs_f64();
            replan = budget
                .plan
                .replan(elapsed, position.global_iteration, speed, config.epochs);
            if replan.is_some() {
                break;
            }
        }
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let summary = RunSummary {
        position,
        finished: !stopped && collapse_end.is_none() && replan.is_none(),
        preempted,
        collapse: collapse_end,
        ended_collapsed: step_log.as_ref().and_then(StepLog::still_collapsed),
        iterations: ran,
        total_iterations: total,
        last_loss,
        seconds,
        images_per_sec: images_per_step * ran as f64 / seconds.max(1e-9),
        replan,
    };
    *gradients = step.take_gradient_communication();
    Ok((state.model, summary))
}

/// Copies the checkpoint just written at a healthy epoch end to
/// `checkpoints/last-good.safetensors`, where an adapting run restarts from.
fn keep_as_last_good(output: &Path) -> Result<()> {
    let dir = output.join(files::CHECKPOINTS_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let copy = dir.join(files::LAST_GOOD_CHECKPOINT);
    std::fs::copy(output.join(files::CHECKPOINT), &copy)
        .with_context(|| format!("cannot write {}", copy.display()))?;
    Ok(())
}

/// Writes the checkpoint of the run at `position`; every rank calls it. The queues are
/// gathered from every rank, rank 0 writes the file, and no rank returns before it is written
/// (a rank that exits right after, on a signal, cannot have the launcher end rank 0 mid-write).
fn write_checkpoint<B, C>(
    b: &mut B,
    comm: &C,
    req: &RunRequest<'_>,
    state: &TrainingState<B>,
    position: RunPosition,
    scratch: &mut RankScratch<B>,
) -> Result<()>
where
    B: Backend,
    C: Collective<B::Buf>,
{
    let queues = match &state.queue {
        Some(q) => Some(RankQueues::gather(b, comm, q)?),
        None => None,
    };
    if req.rank == 0 {
        let record = RunRecord {
            position,
            config: req.config,
            world_size: req.world,
            queues: queues.as_ref(),
        };
        save_run(&req.output.join(files::CHECKPOINT), b, state, &record)?;
    }
    scratch.barrier(comm)
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

/// Rank 0's epoch end after the checkpoint: its numbered copy every `checkpoint_freq` epochs
/// and at the last epoch (as the official `ckp-<epoch>.pth`); then the k-NN point every
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
