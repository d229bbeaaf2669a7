//! `swav pretrain`: resolve the configuration, set up the output folder, the ranks and the
//! backend, train, then export the trunk and (optionally) compare k-NN accuracy of the
//! trained network with a randomly initialised one.
//!
//! On a cluster: `--resume auto` continues a run when its checkpoint exists and starts it
//! otherwise, so a requeued job reruns one command; SIGTERM or SIGUSR1 stops every rank at the
//! same step with a checkpoint ([`crate::train::preemption`]); the wait for the other ranks
//! at start-up is bounded ([`crate::train::startup_guard`]); each rank logs to
//! `train.log-<rank>` in the run folder ([`crate::run_log`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use swav_augment::dataset::Dataset;
use swav_augment::loader::TrainingLoader;
use swav_core::{Collective, SingleProcess};
use swav_nn::{Backend, SwavModel};
use swav_train::GradientCommunication;

use crate::cli::{PretrainArgs, ResumeMode};
use crate::config::{Device, PretrainConfig, SyncBn};
use crate::datasets::{loader_over, training_loader};
use crate::distributed::gradient_thread::cpu_gradient_communication;
use crate::distributed::mpi::MpiCollective;
use crate::distributed::nccl_gradient_stream::cuda_gradient_communication;
use crate::eval::knn::KnnAccuracy;
use crate::launcher::{LaunchEnv, Launcher};
use crate::recipe_candidates::RecipeCandidate;
use crate::report::curves::write_curves;
use crate::report::run_history::RunHistory;
use crate::resolve::{overlay_args, resolve_pretrain_config};
use crate::skipped_files::report_skipped;
use crate::train::adapting_run::{carry_adaptations, train_adapting};
use crate::train::checkpoint_choice;
use crate::train::checkpoint_state::LoadedCheckpoint;
use crate::train::collapse_watch::CollapseKind;
use crate::train::knn_probe::KnnProbe;
use crate::train::preemption::Preempted;
use crate::train::progress::format_duration;
use crate::train::recipe_choice::{RunClock, choose_recipe};
use crate::train::run::RunSummary;
use crate::train::run_folder::{files, prepare_output, write_trunk};
use crate::train::run_request::RunRequest;
use crate::train::scale_hint::scale_hint;
use crate::train::startup_guard::StartupGuard;
use crate::train::time_budget::{BudgetPlan, LiveBudget};
use crate::train::weights_source::WeightsSource;

/// Runs `swav pretrain`.
pub fn run(args: &PretrainArgs) -> Result<()> {
    let started = Instant::now();
    let mut env = LaunchEnv::from_process_env()?;
    if let Some(url) = &args.dist_url {
        env = env.with_dist_url(url)?;
    }
    if let Some(local_rank) = args.local_rank {
        env = env.with_local_rank(local_rank)?;
    }
    crate::run_log::set_rank(env.rank, env.world_size);
    let checkpoint_path = args.output.join(files::CHECKPOINT);
    let chosen = match args.resume {
        None => None,
        Some(ResumeMode::Required) => {
            Some(checkpoint_choice::choose(&args.output).context("--resume")?)
        }
        Some(ResumeMode::Auto) if checkpoint_choice::any_checkpoint(&args.output) => {
            Some(checkpoint_choice::choose(&args.output).context("--resume auto")?)
        }
        Some(ResumeMode::Auto) => {
            if env.rank == 0 && !args.print_config {
                crate::say!(
                    "--resume auto: no checkpoint in {} yet; starting a new run",
                    args.output.display()
                );
            }
            None
        }
    };
    let resume = chosen.map(|chosen| {
        if let (0, Some(notice)) = (env.rank, &chosen.fallback_notice) {
            crate::say!("{notice}");
        }
        chosen.checkpoint
    });
    let config = match &resume {
        Some(ck) => resolve_for_resume(args, ck)?,
        None => resolve_pretrain_config(args)?,
    };
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    if let (0, Some(fp16)) = (env.rank, args.use_fp16) {
        crate::say!("{}", precision_note(fp16, config.device));
    }
    if resume.is_none() && checkpoint_path.exists() {
        bail!(
            "{} already holds a run (checkpoint.safetensors); pass --resume (or --resume auto) to continue it or choose another --output",
            args.output.display()
        );
    }
    let init_weights = args
        .init_weights
        .as_deref()
        .map(|p| WeightsSource::read(p).context("--init-weights"))
        .transpose()?;
    let mut loader = training_loader(&config, env.rank, env.world_size)?;
    let hint = loader
        .dataset()
        .and_then(|dataset| scale_hint(&config, dataset.as_ref()));
    if let (0, None, Some(hint)) = (env.rank, &resume, hint) {
        crate::say!("{hint}");
    }
    let probes_wanted = resume.is_none() && config.recipe_probe_iterations > 0;
    if probes_wanted && loader.dataset().is_none() {
        bail!(
            "the recipe probes (--preset small-data) need an indexable dataset, not shards; \
             pass --recipe NAME or --recipe-probe-iterations 0 to train from shards"
        );
    }
    let knn_probe = if env.rank == 0 && (config.eval_knn || config.eval_knn_every > 0) {
        let probe = KnnProbe::for_run(&config)?;
        if probe.is_none() {
            let data = config.data.as_deref().unwrap_or(Path::new(""));
            if loader.dataset().is_none() {
                crate::say!(
                    "k-NN evaluation skipped: the shards {} hold no validation split; evaluate the checkpoint with `swav eval knn --data DIR`",
                    data.display()
                );
            } else {
                crate::say!(
                    "k-NN evaluation skipped: {} has no train/ and val/ sub-folders",
                    data.display()
                );
            }
        }
        probe
    } else {
        None
    };
    if env.rank == 0 {
        prepare_output(&args.output, &config)?;
    } else {
        std::fs::create_dir_all(&args.output)
            .with_context(|| format!("cannot create output folder {}", args.output.display()))?;
    }
    crate::run_log::open_file(&args.output, env.rank).with_context(|| {
        format!(
            "cannot write {}",
            args.output
                .join(crate::run_log::file_name(env.rank))
                .display()
        )
    })?;
    crate::train::preemption::install();
    if resume.is_none() && config.recipe_probe_iterations == 0 && config.time_budget_minutes > 0.0 {
        crate::say!(
            "time budget ({} min) not applied: it sets the epochs from the speed the recipe probes measure, \
             and this run probes nothing (--recipe or --recipe-probe-iterations 0); it trains its {} epochs",
            config.time_budget_minutes,
            config.epochs
        );
    }
    let mut budget = None;
    let probe_dataset = loader.dataset().cloned().filter(|_| probes_wanted);
    let (config, resume) = if let Some(dataset) = probe_dataset {
        let clock = RunClock {
            started,
            evaluated_images: knn_probe.as_ref().map_or(0, KnnProbe::images),
        };
        let (chosen, probe, plan) = probe_recipes(&config, args, dataset.clone(), &env, clock)?;
        prepare_output(&args.output, &chosen)?;
        loader = TrainingLoader::Dataset(loader_over(dataset, &chosen, env.rank, env.world_size)?);
        budget = plan.map(|plan| LiveBudget { started, plan });
        (chosen, Some(probe))
    } else {
        (config, resume)
    };
    let request = RunRequest {
        config: &config,
        loader: &loader,
        output: &args.output,
        resume: resume.as_ref(),
        init_weights: init_weights.as_ref(),
        max_iterations: args.max_iterations,
        rank: env.rank,
        world: env.world_size,
        stall_timeout: (args.collective_timeout > 0)
            .then(|| Duration::from_secs(args.collective_timeout)),
        knn_probe: knn_probe.as_ref(),
        adaptation: None,
        budget: budget.as_ref(),
    };
    let mut startup = StartupGuard::start(
        env.rank,
        env.world_size,
        (args.startup_timeout > 0).then(|| Duration::from_secs(args.startup_timeout)),
    );
    match config.device {
        Device::Cpu => run_cpu(&env, &request, args.bucket_cap_mb, &mut startup),
        Device::Cuda => run_cuda(&env, &request, args, &mut startup),
    }
}

/// Runs the recipe probes ([`choose_recipe`]) on a backend of the run's device and returns
/// the configuration with the chosen recipe and the checkpoint its probe ended with.
fn probe_recipes(
    config: &PretrainConfig,
    args: &PretrainArgs,
    dataset: Arc<dyn Dataset>,
    env: &LaunchEnv,
    clock: RunClock,
) -> Result<(PretrainConfig, LoadedCheckpoint, Option<BudgetPlan>)> {
    let flags = |c: &mut PretrainConfig| args.overrides.apply_to(c);
    let output = args.output.as_path();
    match config.device {
        Device::Cpu => {
            let mut b = swav_cpu::CpuBackend::new();
            choose_recipe(
                &mut b,
                config,
                &flags,
                dataset,
                output,
                env.world_size,
                clock,
            )
        }
        Device::Cuda => {
            let mut b = crate::device::open_cuda_for_rank(env.rank, env.local_rank)?;
            choose_recipe(
                &mut b,
                config,
                &flags,
                dataset,
                output,
                env.world_size,
                clock,
            )
        }
    }
}

fn run_cpu(
    env: &LaunchEnv,
    request: &RunRequest<'_>,
    bucket_cap_mb: usize,
    startup: &mut StartupGuard,
) -> Result<()> {
    let mut b = swav_cpu::CpuBackend::new();
    if env.world_size == 1 {
        let solo = GradientCommunication::default();
        return run_with(
            &mut b,
            &SingleProcess,
            &SingleProcess,
            request,
            solo,
            startup,
        );
    }
    if env.launcher != Launcher::OpenMpi {
        bail!(
            "{} ranks on the CPU need Open MPI: launch with `mpirun -np {} swav pretrain ...` (found {})",
            env.world_size,
            env.world_size,
            env.launcher
        );
    }
    startup.waiting_for("MPI initialisation (the other ranks' MPI_Init)");
    let world = MpiCollective::init()?;
    startup.waiting_for("the gradient communicator (MPI_Comm_split)");
    let gradients = cpu_gradient_communication(&world, bucket_cap_mb)?;
    match request.config.sync_bn {
        SyncBn::Global => run_with(&mut b, &world, &world, request, gradients, startup),
        SyncBn::Groups => {
            startup.waiting_for("the SyncBN process groups (MPI_Comm_split)");
            let group = world.split_groups(request.config.syncbn_process_group_size)?;
            run_with(&mut b, &world, &group, request, gradients, startup)
        }
        SyncBn::Off => run_with(&mut b, &world, &SingleProcess, request, gradients, startup),
    }
}

fn run_cuda(
    env: &LaunchEnv,
    request: &RunRequest<'_>,
    args: &PretrainArgs,
    startup: &mut StartupGuard,
) -> Result<()> {
    let mut b = crate::device::open_cuda_for_rank(env.rank, env.local_rank)?;
    if env.world_size == 1 {
        let solo = GradientCommunication::default();
        return run_with(
            &mut b,
            &SingleProcess,
            &SingleProcess,
            request,
            solo,
            startup,
        );
    }
    startup.waiting_for("the NCCL rendezvous and communicator creation");
    let groups = (request.config.sync_bn == SyncBn::Groups)
        .then_some(request.config.syncbn_process_group_size);
    let rendezvous_file = args.rendezvous_file.as_deref();
    let (world, group) =
        crate::distributed::nccl::nccl_collectives(&b, env, rendezvous_file, groups)?;
    startup.waiting_for("the gradient communicator (NCCL)");
    let gradients = cuda_gradient_communication(&mut b, &world, args.bucket_cap_mb)?;
    match (request.config.sync_bn, group) {
        (SyncBn::Groups, Some(group)) => {
            run_with(&mut b, &world, &group, request, gradients, startup)
        }
        (SyncBn::Off, _) => run_with(&mut b, &world, &SingleProcess, request, gradients, startup),
        _ => run_with(&mut b, &world, &world, request, gradients, startup),
    }
}

fn run_with<B, C, G>(
    b: &mut B,
    comm: &C,
    bn_comm: &G,
    request: &RunRequest<'_>,
    mut gradients: GradientCommunication<B>,
    startup: &mut StartupGuard,
) -> Result<()>
where
    B: Backend,
    C: Collective<B::Buf>,
    G: Collective<B::Buf>,
{
    if comm.world_size() > 1 {
        startup.waiting_for("the first collective (every rank ready to train)");
        let mut ready = b.zeros(1).map_err(|e| anyhow!("device error: {e}"))?;
        comm.all_reduce_sum(&mut ready)
            .map_err(|e| anyhow!("the first collective: {e}"))?;
    }
    startup.finish();
    let (mut model, summary, _) = train_adapting(b, comm, bn_comm, request, &mut gradients)?;
    let skipped = request.loader.bad_input_summary();
    let what = if request.world > 1 {
        "training data (this rank)"
    } else {
        "training data"
    };
    report_skipped(what, &skipped);
    if let Some(signal) = summary.preempted {
        return Err(Preempted {
            signal,
            done: summary.position.global_iteration,
            total: summary.total_iterations,
            checkpoint: request.output.join(files::CHECKPOINT).display().to_string(),
        }
        .into());
    }
    if request.rank != 0 {
        return Ok(());
    }
    if summary.finished && summary.iterations == 0 && request.resume.is_some() {
        crate::say!(
            "the run in {} had already finished (epoch {}/{}); nothing to do",
            request.output.display(),
            summary.position.epoch,
            request.config.epochs
        );
        return Ok(());
    }
    report(&summary, request);
    if let Some(kind) = summary.ended_collapsed {
        crate::say!(
            "warning: the run ended {}: its features are probably no better than a random network's; \
             see the collapse warning above, docs/demo-recipe.md, and --on-collapse adapt",
            match kind {
                CollapseKind::Total => "collapsed (the loss at ln K, uniform codes)",
                CollapseKind::Partial => "partly collapsed (few prototypes in use)",
            }
        );
    }
    if summary.finished {
        finish(b, &mut model, request, &summary)?;
    }
    let history = RunHistory::read(request.output)?;
    let curves = write_curves(&history)?;
    // The run wrote its TensorBoard file as it trained.
    let events = request.output.join(files::TENSORBOARD_EVENTS);
    crate::say!(
        "training curves: {} (TensorBoard: {})",
        curves.display(),
        events.display()
    );
    Ok(())
}

/// The trunk export and the final k-NN comparison of a finished run.
fn finish<B: Backend>(
    b: &mut B,
    model: &mut SwavModel<B>,
    request: &RunRequest<'_>,
    summary: &RunSummary,
) -> Result<()> {
    let path = request.output.join(files::TRUNK_EXPORT);
    write_trunk(b, model, &path)?;
    crate::say!("trunk weights (torchvision names): {}", path.display());
    if let (true, Some(probe)) = (request.config.eval_knn, request.knn_probe) {
        compare_knn(b, model, request, probe, summary)?;
    }
    Ok(())
}

fn report(summary: &RunSummary, request: &RunRequest<'_>) {
    let what = if summary.finished {
        "finished"
    } else {
        "stopped"
    };
    crate::say!(
        "{what} at epoch {} iteration {} after {} iterations in {} ({:.1} images/s); last loss {:.4}; checkpoint {}",
        summary.position.epoch,
        summary.position.iteration_in_epoch,
        summary.iterations,
        format_duration(std::time::Duration::from_secs_f64(summary.seconds)),
        summary.images_per_sec,
        summary.last_loss,
        request.output.join(files::CHECKPOINT).display()
    );
}

/// k-NN accuracy of the trained trunk next to a randomly initialised one; the trained
/// network's is also the last point of the k-NN curve.
fn compare_knn<B: Backend>(
    b: &mut B,
    trained: &mut SwavModel<B>,
    request: &RunRequest<'_>,
    probe: &KnnProbe,
    summary: &RunSummary,
) -> Result<()> {
    let done = (summary.position.epoch, summary.position.global_iteration);
    let point = probe.point(b, trained, done, &request.output.join(files::KNN_CURVE))?;
    let trained_top1: Vec<KnnAccuracy> = point
        .top1
        .iter()
        .map(|t| KnnAccuracy {
            k: t.k,
            top1: t.top1,
        })
        .collect();
    probe.compare_with_random(b, "trained", trained_top1, request.config, request.output)
}

/// Carries the recipe the probes chose (under the command line's flags, as `--recipe` would
/// apply it) and the settings an adapting run changed to escape collapse from the
/// checkpoint's configuration into `config`, so a resume with the command line's `--preset`
/// does not undo them; so are the epochs a time budget gave the run.
fn keep_adaptations(config: &mut PretrainConfig, stored: &PretrainConfig, args: &PretrainArgs) {
    if let (true, Some(recipe)) = (
        config.chosen_recipe.is_empty(),
        RecipeCandidate::from_name(&stored.chosen_recipe),
    ) {
        recipe.apply_under_flags(config, &|c| args.overrides.apply_to(c));
    }
    if config.time_budget_minutes > 0.0 && stored.time_budget_minutes > 0.0 {
        // The budget set the interrupted run's epochs from its probes' speed: keep them.
        config.epochs = stored.epochs;
    }
    carry_adaptations(config, stored);
}

/// The configuration of a resumed run: with `--preset`, the command line resolved as for a
/// new run (so a requeued job's unchanged command resumes); without, the checkpoint's, then
/// `--config`, then flags. Settings that define the model or the data order cannot change.
fn resolve_for_resume(args: &PretrainArgs, ck: &LoadedCheckpoint) -> Result<PretrainConfig> {
    let stored = ck.config()?;
    let config = if args.preset.is_some() {
        let mut config = resolve_pretrain_config(args)?;
        keep_adaptations(&mut config, &stored, args);
        config
    } else {
        overlay_args(stored.clone(), args)?
    };
    let fixed: [(&str, bool); 9] = [
        ("arch", config.arch == stored.arch),
        ("base_width", config.base_width == stored.base_width),
        ("small_stem", config.small_stem == stored.small_stem),
        ("hidden_mlp", config.hidden_mlp == stored.hidden_mlp),
        ("feat_dim", config.feat_dim == stored.feat_dim),
        (
            "nmb_prototypes",
            config.nmb_prototypes == stored.nmb_prototypes,
        ),
        ("batch_size", config.batch_size == stored.batch_size),
        (
            "nmb_crops",
            config.nmb_crops == stored.nmb_crops && config.size_crops == stored.size_crops,
        ),
        ("seed", config.seed == stored.seed),
    ];
    if let Some((key, _)) = fixed.iter().find(|(_, same)| !same) {
        bail!(
            "--resume: `{key}` differs from the checkpoint's run ({}); a resumed run keeps its model, batch and data order",
            ck.path.display()
        );
    }
    Ok(config)
}

/// What `--use_fp16` (the official scripts' mixed precision) means here, in one line.
pub fn precision_note(fp16: bool, device: Device) -> String {
    match (fp16, device) {
        (true, Device::Cuda) => "--use_fp16 true: the CUDA backend trains the trunk in bf16 with the head, Sinkhorn and loss in f32 \
             (the official fp16 with apex needs loss scaling; bf16 does not)"
            .to_string(),
        (false, Device::Cuda) => "--use_fp16 false: the CUDA backend has no f32 trunk; it trains the trunk in bf16 with the head, \
             Sinkhorn and loss in f32"
            .to_string(),
        (_, Device::Cpu) => format!(
            "--use_fp16 {fp16}: the CPU backend trains in f32 throughout"
        ),
    }
}
