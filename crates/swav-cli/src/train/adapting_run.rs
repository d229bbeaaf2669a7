//! A run that escapes collapse (`--on-collapse adapt`): [`train`] again from the last healthy
//! epoch end with the remedy the diagnosis chose, at most [`MAX_ADAPTATIONS`] times. A run
//! whose time budget asked for a shorter plan at an epoch end goes on from there the same
//! way, with its new length.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use swav_core::Collective;
use swav_nn::{Backend, SwavModel};
use swav_train::GradientCommunication;

use super::checkpoint_state::LoadedCheckpoint;
use super::collapse_escape::{MAX_ADAPTATIONS, Remedy};
use super::progress::format_duration;
use super::run::{CollapseEnd, RunSummary, train};
use super::run_folder::{files, prepare_output};
use super::run_request::RunRequest;
use crate::config::PretrainConfig;

/// Trains; with `--on-collapse adapt`, a run that collapses goes back to its last healthy
/// epoch end (or its start), takes the remedy rank 0's diagnosis chose (or, when that setting
/// is at its limit, a lower learning rate), and trains again, at most
/// [`MAX_ADAPTATIONS`] times. `--on-collapse stop` ends here with an error. Returns the
/// configuration the run ended with (the request's, with every escape's change).
pub fn train_adapting<B, C, G>(
    b: &mut B,
    comm: &C,
    bn_comm: &G,
    request: &RunRequest<'_>,
    gradients: &mut GradientCommunication<B>,
) -> Result<(SwavModel<B>, RunSummary, PretrainConfig)>
where
    B: Backend,
    C: Collective<B::Buf>,
    G: Collective<B::Buf>,
{
    let (mut model, mut summary) = train(b, comm, bn_comm, request, gradients)?;
    let mut config = request.config.clone();
    let mut attempt_resume;
    let mut note;
    loop {
        if let Some(shorter) = summary.replan {
            // The budget's check at the epoch end just written: go on from there, shorter.
            attempt_resume = Some(LoadedCheckpoint::read(
                &request.output.join(files::CHECKPOINT),
            )?);
            note = format!(
                "time budget: at {:.3} s/iteration, this run's speed, its {} epochs would end after the budget of {}; it now ends after {} epochs",
                shorter.input.seconds_per_iteration,
                config.epochs,
                format_duration(Duration::from_secs_f64(shorter.input.budget_seconds)),
                shorter.epochs
            );
            config.epochs = shorter.epochs;
            if request.rank == 0 {
                crate::say!("{note}");
                prepare_output(request.output, &config)?;
            }
        } else {
            let remedy = match summary.collapse {
                None => return Ok((model, summary, config)),
                Some(CollapseEnd::Stopped) => bail!(
                    "stopped because the run collapsed (--on-collapse stop; the warning above says why); \
                     the last checkpoint {} is from before",
                    request.output.join(files::CHECKPOINT).display()
                ),
                Some(CollapseEnd::Adapt(remedy)) => remedy,
            };
            let last_good = request
                .output
                .join(files::CHECKPOINTS_DIR)
                .join(files::LAST_GOOD_CHECKPOINT);
            attempt_resume = if last_good.exists() {
                Some(LoadedCheckpoint::read(&last_good)?)
            } else {
                None
            };
            let restart_at = match &attempt_resume {
                Some(ck) => ck.position()?.global_iteration,
                None => 0,
            };
            let iters_per_epoch = request.loader.iters_per_epoch() as u64;
            let change = remedy
                .apply(&mut config, restart_at, iters_per_epoch)
                .or_else(|| {
                    Remedy::LowerLearningRate.apply(&mut config, restart_at, iters_per_epoch)
                })
                .expect("halving the learning rate always changes it");
            let from = match &attempt_resume {
                Some(ck) => format!("its last healthy epoch end ({})", ck.path.display()),
                None => "its start (no epoch end was healthy yet)".to_string(),
            };
            note = format!(
                "collapse escape {} of {MAX_ADAPTATIONS}: {change}; restarting from {from}",
                config.collapse_adaptations.len()
            );
            if request.rank == 0 {
                crate::say!("{note}");
                prepare_output(request.output, &config)?;
                let latest = request.output.join(files::CHECKPOINT);
                match &attempt_resume {
                    Some(ck) => swav_nn::write_atomic(&latest, &ck.bytes)
                        .with_context(|| format!("cannot write {}", latest.display()))?,
                    None if latest.exists() => std::fs::remove_file(&latest)
                        .with_context(|| format!("cannot remove {}", latest.display()))?,
                    None => {}
                }
            }
        }
        let attempt = RunRequest {
            config: &config,
            resume: attempt_resume.as_ref(),
            init_weights: request.init_weights.filter(|_| attempt_resume.is_none()),
            adaptation: Some(&note),
            ..*request
        };
        (model, summary) = train(b, comm, bn_comm, &attempt, gradients)?;
    }
}

/// Copies the settings an adapting run changed to escape collapse, and their record, from
/// `adapted` into `config` (nothing when `adapted` made no change).
pub fn carry_adaptations(config: &mut PretrainConfig, adapted: &PretrainConfig) {
    if adapted.collapse_adaptations.is_empty() {
        return;
    }
    config.epsilon = adapted.epsilon;
    config.temperature = adapted.temperature;
    config.base_lr = adapted.base_lr;
    config.final_lr = adapted.final_lr;
    config.freeze_prototypes_niters = adapted.freeze_prototypes_niters;
    config.collapse_adaptations = adapted.collapse_adaptations.clone();
}
