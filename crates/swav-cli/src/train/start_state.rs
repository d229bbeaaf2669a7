//! Where a run starts: a fresh model, the weights of `--init-weights`, or everything a
//! checkpoint holds (model, optimiser, this rank's queue, the position), with the checks
//! that the checkpoint belongs to a run of the same shape.

use anyhow::{Result, anyhow, bail};
use swav_core::FeatureQueue;
use swav_nn::Backend;
use swav_train::TrainingState;

use super::checkpoint_state::RunPosition;
use super::resume_notice::{ResumedQueue, resume_notice};
use super::run_request::RunRequest;

/// Loads what `req` starts from into `state` and returns the position to continue at
/// (the start for a new run). A resumed run must have as many ranks as the one that wrote
/// the checkpoint, a queue of this run's shape, and a position that fits
/// `iters_per_epoch`; rank 0 says where it resumes.
pub fn start_state<B: Backend>(
    b: &mut B,
    req: &RunRequest<'_>,
    state: &mut TrainingState<B>,
    queue_rows: usize,
    iters_per_epoch: u64,
) -> Result<RunPosition> {
    let config = req.config;
    let Some(ck) = req.resume else {
        if let Some(weights) = req.init_weights {
            weights.load_into(b, &mut state.model)?;
        }
        return Ok(RunPosition::default());
    };
    let stored_world = ck.world_size()?;
    if stored_world != req.world {
        bail!(
            "checkpoint {} was written by a run on {stored_world} rank(s) but this run has {}: \
             resume on {stored_world} rank(s) (each rank's queue and share of the data belong to it)",
            ck.path.display(),
            req.world
        );
    }
    ck.load_model(b, &mut state.model)?;
    ck.load_optimizer(b, &state.model, &mut state.optimizer)?;
    let position = ck.position()?;
    let stored_queues = ck.queues()?;
    let stored_queue = stored_queues.as_ref().and_then(|q| q.rank(req.rank));
    if req.rank == 0 {
        let queue_state = match stored_queue {
            Some((values, shape)) => ResumedQueue::stored(values, shape),
            None if queue_rows == 0 => ResumedQueue::Disabled,
            None => ResumedQueue::NotYet {
                starts_at_epoch: config.epoch_queue_starts,
            },
        };
        crate::say!(
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
        if crops != config.crops_for_assign.len() || rows != queue_rows || dim != config.feat_dim {
            bail!(
                "checkpoint {}: its queue is {crops} × {rows} × {dim} but this run needs {} × {queue_rows} × {}",
                ck.path.display(),
                config.crops_for_assign.len(),
                config.feat_dim
            );
        }
        state.queue = Some(
            FeatureQueue::from_host(b, values, crops, rows, dim, config.batch_size)
                .map_err(|e| anyhow!("device error: {e}"))?,
        );
    }
    if position.global_iteration != position.epoch * iters_per_epoch + position.iteration_in_epoch {
        bail!(
            "the checkpoint's position (epoch {}, iteration {}) does not fit {iters_per_epoch} iterations per epoch: \
             was it written with another batch size, dataset or number of ranks?",
            position.epoch,
            position.iteration_in_epoch
        );
    }
    Ok(position)
}
