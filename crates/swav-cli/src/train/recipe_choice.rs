//! Picking a recipe on the user's own data without labels (`--recipe-probe-iterations`, on
//! by default in `--preset small-data`).
//!
//! Every [candidate](RecipeCandidate) runs the first iterations of the real run (the same
//! seed, schedule and data order), each in its own folder under `probes/`. Each probe is
//! then scored without labels: the effective rank (RankMe) of the trunk's pooled features
//! of two grey augmented views ([`view_rank`]) of each of at most [`SCORED_IMAGES`] training
//! images, spread evenly over the dataset; every probe sees the same views. A probe escapes
//! collapse as its real run would (`--on-collapse adapt`: back to its last healthy epoch end
//! with a remedy, then its iterations again); one that still ended collapsed (the loss at
//! ln K, or few prototypes in use, for its last window) ranks below every healthy one,
//! whatever its rank. The best candidate is then applied to the
//! configuration, and the run goes on from its probe's checkpoint (its metrics and checkpoint
//! copies become the run's); the probes, their scores and the choice are written to
//! `recipe-choice.json` in the run folder and printed as a table.
//!
//! The probes are seeded like any run, so the same data and flags make the same choice.
//! With a time budget (`--time-budget`) the probes' measured speed then sets the run's
//! epochs ([`super::time_budget`]); the choice itself does not depend on it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use swav_augment::dataset::{Dataset, Subset};
use swav_augment::loader::TrainingLoader;
use swav_core::SingleProcess;
use swav_nn::{Backend, SwavModel};
use swav_train::GradientCommunication;

use super::adapting_run::{carry_adaptations, train_adapting};
use super::checkpoint_state::LoadedCheckpoint;
use super::collapse_watch::CollapseKind;
use super::model_spec::model_config;
use super::progress::format_duration;
use super::run_folder::{files, prepare_output, write_trunk};
use super::run_request::RunRequest;
use super::time_budget::{BudgetInput, BudgetPlan};
use crate::config::PretrainConfig;
use crate::datasets::loader_over;
use crate::eval::view_rank::view_rank;
use crate::recipe_candidates::RecipeCandidate;

/// Training images whose features score a probe.
pub const SCORED_IMAGES: usize = 1024;

/// One probed candidate (an entry of `recipe-choice.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    /// The candidate's name.
    pub candidate: &'static str,
    /// What it changes.
    pub change: &'static str,
    /// Iterations trained.
    pub iterations: u64,
    /// Seconds the probe took, scoring included.
    pub seconds: f64,
    /// Seconds per training iteration (the probe's last attempt).
    pub seconds_per_iteration: f64,
    /// The loss of its last iteration.
    pub last_loss: f64,
    /// `total`, `partial` or `none`: the collapse the probe ended in.
    pub collapse: &'static str,
    /// RankMe of the trunk features of the grey augmented views of the scored images.
    pub effective_rank: f64,
    /// The collapse escapes the probe made (`--on-collapse adapt`), oldest first; the run
    /// of this candidate keeps them.
    pub escapes: Vec<String>,
}

impl ProbeResult {
    /// Whether the probe ended without collapse.
    fn healthy(&self) -> bool {
        self.collapse == "none"
    }
}

/// The whole choice (`recipe-choice.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RecipeChoice {
    /// Iterations each probe trained.
    pub probe_iterations: u64,
    /// Images whose features scored each probe.
    pub scored_images: usize,
    /// `ln K`, the loss of the uniform fixed point, for reading `last_loss`.
    pub uniform_loss: f64,
    /// The effective rank of a randomly initialised network of the same architecture on the
    /// same images: the score before any training, for reference.
    pub random_effective_rank: f64,
    /// Every probe, in the order they ran.
    pub probes: Vec<ProbeResult>,
    /// The candidate trained.
    pub chosen: &'static str,
    /// The epochs the time budget gave the run (`--time-budget`), when it has one.
    pub time_budget: Option<BudgetPlan>,
}

/// When the command started and what its k-NN evaluations read: what a time budget needs
/// besides the probes' speed.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    /// The command's start.
    pub started: Instant,
    /// Images one k-NN evaluation of the run reads (train and val; 0 without k-NN).
    pub evaluated_images: usize,
}

/// The index of the best probe: healthy before collapsed, then the highest effective rank;
/// the earlier candidate on a tie. `None` for no probes.
pub fn best_probe(probes: &[ProbeResult]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, p) in probes.iter().enumerate() {
        let better = match best {
            None => true,
            Some(j) => {
                let q = &probes[j];
                (p.healthy(), p.effective_rank) > (q.healthy(), q.effective_rank)
            }
        };
        if better {
            best = Some(i);
        }
    }
    best
}

/// Probes every candidate on `dataset` from `base`, writes the probes under
/// `output/probes/`, prints and writes the choice, and returns `base` with the chosen
/// candidate applied, with the winning probe's checkpoint (now also the run's) to go on
/// from. `flags` writes the settings the user gave as flags, which win over a candidate's
/// change as they do over `--recipe`'s. `world` must be 1. With a time budget the returned
/// configuration's epochs are those that fit in the rest of it (`clock`), and the plan is
/// returned for the run to keep to.
pub fn choose_recipe<B: Backend>(
    b: &mut B,
    base: &PretrainConfig,
    flags: &dyn Fn(&mut PretrainConfig),
    dataset: Arc<dyn Dataset>,
    output: &Path,
    world: usize,
    clock: RunClock,
) -> Result<(PretrainConfig, LoadedCheckpoint, Option<BudgetPlan>)> {
    if world > 1 {
        bail!(
            "the recipe probes (recipe_probe_iterations = {}) run on one process, not {world}: \
             probe on one first, or name a recipe with --recipe (plain, grey-crops, large-crops, rotated-crops)",
            base.recipe_probe_iterations
        );
    }
    let iterations = base.recipe_probe_iterations;
    let candidates = RecipeCandidate::ALL;
    crate::say!(
        "recipe choice: probing {} candidate recipes for {iterations} iterations each, scored without labels \
         by the effective rank of the trunk features of grey augmented views of {} training images (probes in {})",
        candidates.len(),
        SCORED_IMAGES.min(dataset.len()),
        output.join(files::PROBES_DIR).display()
    );
    let (mut probes, mut adapted) = (Vec::new(), Vec::new());
    for (i, &candidate) in candidates.iter().enumerate() {
        crate::say!(
            "probe {}/{}: {} ({})",
            i + 1,
            candidates.len(),
            candidate.name(),
            candidate.change()
        );
        let (result, config) = probe(b, base, flags, candidate, dataset.clone(), output)?;
        probes.push(result);
        adapted.push(config);
    }
    let random = SwavModel::new(b, model_config(base), base.seed.wrapping_add(1))
        .map_err(|e| anyhow!("building the random network: {e}"))?;
    let scoring = Instant::now();
    let random_effective_rank = score(b, random, base, dataset.clone())?;
    // The random network's score is forward passes only: two views of each scored image.
    let seconds_per_image =
        scoring.elapsed().as_secs_f64() / (2 * SCORED_IMAGES.min(dataset.len())).max(1) as f64;
    let best = best_probe(&probes).expect("there is always a candidate");
    let chosen = candidates[best];
    let mut config = base.clone();
    chosen.apply_under_flags(&mut config, flags);
    carry_adaptations(&mut config, &adapted[best]);
    let checkpoint = adopt_probe(&output.join(files::PROBES_DIR).join(chosen.name()), output)?;
    let mut time_budget = None;
    if config.time_budget_minutes > 0.0 {
        let iters_per_epoch = loader_over(dataset.clone(), &config, 0, 1)?.iters_per_epoch() as u64;
        let plan = BudgetInput {
            budget_seconds: config.time_budget_minutes * 60.0,
            spent_seconds: clock.started.elapsed().as_secs_f64(),
            seconds_per_iteration: probes.iter().map(|p| p.seconds_per_iteration).sum::<f64>()
                / probes.len() as f64,
            seconds_per_evaluation: seconds_per_image * clock.evaluated_images as f64,
            iters_per_epoch,
            done_iterations: probes[best].iterations,
            eval_every: config.eval_knn_every,
            final_comparison: config.eval_knn && clock.evaluated_images > 0,
        }
        .plan();
        config.epochs = plan.epochs;
        time_budget = Some(plan);
    }
    let choice = RecipeChoice {
        probe_iterations: iterations,
        scored_images: SCORED_IMAGES.min(dataset.len()),
        uniform_loss: (base.nmb_prototypes as f64).ln(),
        random_effective_rank,
        probes,
        chosen: chosen.name(),
        time_budget,
    };
    print_table(&choice);
    if let Some(plan) = &time_budget {
        say_budget(plan, base.epochs);
    }
    let path = output.join(files::RECIPE_CHOICE);
    swav_nn::write_atomic(
        &path,
        (serde_json::to_string_pretty(&choice)? + "\n").as_bytes(),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    crate::say!(
        "chose `{}`; it goes on from its probe's iteration {} to the end of its {} epochs ({})",
        chosen.name(),
        checkpoint.position()?.global_iteration,
        config.epochs,
        path.display()
    );
    Ok((config, checkpoint, time_budget))
}

/// Makes the probe in `folder` the start of the run in `output`: its checkpoint (also the
/// numbered and last-good copies), its metrics and its TensorBoard file become the run's,
/// and the checkpoint is returned to resume from.
fn adopt_probe(folder: &Path, output: &Path) -> Result<LoadedCheckpoint> {
    let copy = |from: &Path, to: &Path| -> Result<()> {
        std::fs::copy(from, to)
            .map(drop)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
    };
    copy(&folder.join(files::METRICS), &output.join(files::METRICS))?;
    copy(
        &folder.join(files::TENSORBOARD_EVENTS),
        &output.join(files::TENSORBOARD_EVENTS),
    )?;
    let copies = folder.join(files::CHECKPOINTS_DIR);
    if copies.is_dir() {
        let into = output.join(files::CHECKPOINTS_DIR);
        std::fs::create_dir_all(&into)
            .with_context(|| format!("cannot create {}", into.display()))?;
        let entries = std::fs::read_dir(&copies)
            .with_context(|| format!("cannot read {}", copies.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", copies.display()))?;
            copy(&entry.path(), &into.join(entry.file_name()))?;
        }
    }
    let checkpoint = output.join(files::CHECKPOINT);
    copy(&folder.join(files::CHECKPOINT), &checkpoint)?;
    LoadedCheckpoint::read(&checkpoint)
}

/// Trains `candidate` for the probe's iterations in its own folder and scores it.
fn probe<B: Backend>(
    b: &mut B,
    base: &PretrainConfig,
    flags: &dyn Fn(&mut PretrainConfig),
    candidate: RecipeCandidate,
    dataset: Arc<dyn Dataset>,
    output: &Path,
) -> Result<(ProbeResult, PretrainConfig)> {
    let started = Instant::now();
    let folder = output.join(files::PROBES_DIR).join(candidate.name());
    if folder.exists() {
        // A probe folder is this command's own scratch space: an earlier attempt's is redone.
        std::fs::remove_dir_all(&folder)
            .with_context(|| format!("cannot clear {}", folder.display()))?;
    }
    // The probe is the first iterations of the real run with this candidate: the same
    // schedule, seed and data order, so the winner can simply go on from where it stopped.
    let mut config = base.clone();
    candidate.apply_under_flags(&mut config, flags);
    config.eval_knn = false;
    config.eval_knn_every = 0;
    let loader = TrainingLoader::Dataset(loader_over(dataset.clone(), &config, 0, 1)?);
    // A probe as long as the run would leave the winner nothing to go on with.
    let total = config.epochs * loader.iters_per_epoch() as u64;
    let iterations = base
        .recipe_probe_iterations
        .min(total.saturating_sub(1))
        .max(1);
    prepare_output(&folder, &config)?;
    let request = RunRequest {
        config: &config,
        loader: &loader,
        output: &folder,
        resume: None,
        init_weights: None,
        max_iterations: Some(iterations),
        rank: 0,
        world: 1,
        stall_timeout: None,
        knn_probe: None,
        adaptation: None,
        budget: None,
    };
    let mut gradients = GradientCommunication::default();
    let (mut model, summary, adapted) =
        train_adapting(b, &SingleProcess, &SingleProcess, &request, &mut gradients)?;
    if let Some(signal) = summary.preempted {
        bail!(
            "stopped by {signal} while probing `{}`; rerun the command (the probes start over)",
            candidate.name()
        );
    }
    write_trunk(b, &mut model, &folder.join(files::TRUNK_EXPORT))?;
    let rank = score(b, model, &config, dataset)?;
    let result = ProbeResult {
        candidate: candidate.name(),
        change: candidate.change(),
        iterations: summary.iterations,
        seconds: started.elapsed().as_secs_f64(),
        seconds_per_iteration: summary.seconds / summary.iterations.max(1) as f64,
        last_loss: summary.last_loss,
        collapse: match summary.ended_collapsed {
            None => "none",
            Some(CollapseKind::Total) => "total",
            Some(CollapseKind::Partial) => "partial",
        },
        effective_rank: rank,
        escapes: adapted.collapse_adaptations.clone(),
    };
    crate::say!(
        "probe {}: effective rank {rank:.1}, last loss {:.3}, collapse {}, {} collapse escape(s), {}",
        candidate.name(),
        result.last_loss,
        result.collapse,
        result.escapes.len(),
        format_duration(started.elapsed())
    );
    Ok((result, adapted))
}

/// The effective rank of `model`'s trunk features of grey augmented views of at most
/// [`SCORED_IMAGES`] images of `dataset`, spread evenly over it ([`view_rank`]).
fn score<B: Backend>(
    b: &mut B,
    mut model: SwavModel<B>,
    config: &PretrainConfig,
    dataset: Arc<dyn Dataset>,
) -> Result<f64> {
    let scored: Arc<dyn Dataset> = Arc::new(Subset::evenly_spaced(dataset, SCORED_IMAGES));
    view_rank(
        b,
        &mut model,
        scored,
        config.size_crops[0] as u32,
        config.seed,
        config.workers,
    )
}

/// One line on what the time budget gave the run.
fn say_budget(plan: &BudgetPlan, planned_epochs: u64) {
    let duration = |s: f64| format_duration(std::time::Duration::from_secs_f64(s.max(0.0)));
    let input = &plan.input;
    let line = format!(
        "time budget {}: {} spent on start-up and probes; at {:.3} s/iteration ({} per k-NN evaluation) \
         the run trains {} epochs (the configuration said {planned_epochs}) and should end after about {}",
        duration(input.budget_seconds),
        duration(input.spent_seconds),
        input.seconds_per_iteration,
        duration(input.seconds_per_evaluation),
        plan.epochs,
        duration(plan.expected_seconds),
    );
    if plan.overrun {
        crate::say!(
            "{line}; that overruns the budget (the probes took most of it): give a larger --time-budget, \
             or --epochs N to train a fixed length"
        );
    } else {
        crate::say!("{line}");
    }
}

fn print_table(choice: &RecipeChoice) {
    crate::say!(
        "recipe choice (loss at the uniform fixed point: ln K = {:.3}; effective rank of a random network: {:.1}):",
        choice.uniform_loss,
        choice.random_effective_rank
    );
    crate::say!(
        "  {:<14} {:>14} {:>10} {:>9} {:>8} {:>8}",
        "candidate",
        "effective rank",
        "last loss",
        "collapse",
        "escapes",
        "time"
    );
    for p in &choice.probes {
        let mark = if p.candidate == choice.chosen {
            "  <- chosen"
        } else {
            ""
        };
        crate::say!(
            "  {:<14} {:>14.1} {:>10.3} {:>9} {:>8} {:>8}{mark}",
            p.candidate,
            p.effective_rank,
            p.last_loss,
            p.collapse,
            p.escapes.len(),
            format_duration(std::time::Duration::from_secs_f64(p.seconds))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(candidate: &'static str, collapse: &'static str, rank: f64) -> ProbeResult {
        ProbeResult {
            candidate,
            change: "",
            iterations: 10,
            seconds: 1.0,
            seconds_per_iteration: 0.1,
            last_loss: 1.0,
            collapse,
            effective_rank: rank,
            escapes: Vec::new(),
        }
    }

    #[test]
    fn the_healthy_probe_with_the_highest_rank_wins_and_ties_keep_the_earlier() {
        assert_eq!(best_probe(&[]), None);
        let probes = [
            probe("a", "none", 10.0),
            probe("b", "total", 50.0),
            probe("c", "none", 12.0),
            probe("d", "partial", 40.0),
            probe("e", "none", 12.0),
        ];
        assert_eq!(best_probe(&probes), Some(2));
        // Every probe collapsed: the highest rank among them.
        let collapsed = [probe("a", "total", 3.0), probe("b", "partial", 9.0)];
        assert_eq!(best_probe(&collapsed), Some(1));
    }
}
