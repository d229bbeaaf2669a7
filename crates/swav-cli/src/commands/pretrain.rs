//! `swav pretrain`: resolve the configuration, set up the output folder, the ranks and the
//! backend, train, then export the trunk and (optionally) compare k-NN accuracy of the
//! trained network with a randomly initialised one.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use swav_core::{Collective, SingleProcess};
use swav_nn::{Backend, ExportOptions, SwavModel, export_safetensors};

use crate::cli::PretrainArgs;
use crate::config::{Device, PretrainConfig, SyncBn};
use crate::distributed::mpi::MpiCollective;
use crate::eval::knn::KnnAccuracy;
use crate::launcher::{LaunchEnv, Launcher};
use crate::report::curves::write_curves;
use crate::report::run_history::RunHistory;
use crate::report::tensorboard::write_events;
use crate::resolve::{overlay_args, resolve_pretrain_config};
use crate::skipped_files::report_skipped;
use crate::train::checkpoint_state::LoadedCheckpoint;
use crate::train::data::training_loader;
use crate::train::knn_probe::KnnProbe;
use crate::train::progress::format_duration;
use crate::train::run::{RunRequest, RunSummary, train};
use crate::train::run_folder::{files, prepare_output};
use crate::weights_source::WeightsSource;

/// Runs `swav pretrain`.
pub fn run(args: &PretrainArgs) -> Result<()> {
    let checkpoint_path = args.output.join(files::CHECKPOINT);
    let resume = if args.resume {
        Some(LoadedCheckpoint::read(&checkpoint_path).context("--resume")?)
    } else {
        None
    };
    let config = match &resume {
        Some(ck) => resolve_for_resume(args, ck)?,
        None => resolve_pretrain_config(args)?,
    };
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    if resume.is_none() && checkpoint_path.exists() {
        bail!(
            "{} already holds a run (checkpoint.safetensors); pass --resume to continue it or choose another --output",
            args.output.display()
        );
    }
    let init_weights = args
        .init_weights
        .as_deref()
        .map(|p| WeightsSource::read(p).context("--init-weights"))
        .transpose()?;
    let env = LaunchEnv::from_process_env()?;
    let loader = training_loader(&config, env.rank, env.world_size)?;
    let knn_probe = if env.rank == 0 && (config.eval_knn || config.eval_knn_every > 0) {
        let probe = KnnProbe::for_run(&config)?;
        if probe.is_none() {
            eprintln!(
                "k-NN evaluation skipped: {} has no train/ and val/ sub-folders",
                config.data.as_deref().unwrap_or(Path::new("")).display()
            );
        }
        probe
    } else {
        None
    };
    if env.rank == 0 {
        prepare_output(&args.output, &config)?;
    }
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
    };
    match config.device {
        Device::Cpu => run_cpu(&env, &request),
        Device::Cuda => run_cuda(&env, &request, args.rendezvous_file.as_deref()),
    }
}

fn run_cpu(env: &LaunchEnv, request: &RunRequest<'_>) -> Result<()> {
    let mut b = swav_cpu::CpuBackend::new();
    if env.world_size == 1 {
        return run_with(&mut b, &SingleProcess, &SingleProcess, request);
    }
    if env.launcher != Launcher::OpenMpi {
        bail!(
            "{} ranks on the CPU need Open MPI: launch with `mpirun -np {} swav pretrain ...` (found {})",
            env.world_size,
            env.world_size,
            env.launcher
        );
    }
    let world = MpiCollective::init()?;
    match request.config.sync_bn {
        SyncBn::Global => run_with(&mut b, &world, &world, request),
        SyncBn::Groups => {
            let group = world.split_groups(request.config.syncbn_process_group_size)?;
            run_with(&mut b, &world, &group, request)
        }
        SyncBn::Off => run_with(&mut b, &world, &SingleProcess, request),
    }
}

fn run_cuda(
    env: &LaunchEnv,
    request: &RunRequest<'_>,
    rendezvous_file: Option<&Path>,
) -> Result<()> {
    let mut b = crate::device::open_cuda_for_rank(env.rank, env.local_rank)?;
    if env.world_size == 1 {
        return run_with(&mut b, &SingleProcess, &SingleProcess, request);
    }
    let groups = (request.config.sync_bn == SyncBn::Groups)
        .then_some(request.config.syncbn_process_group_size);
    let (world, group) =
        crate::distributed::nccl::nccl_collectives(&b, env, rendezvous_file, groups)?;
    match (request.config.sync_bn, group) {
        (SyncBn::Groups, Some(group)) => run_with(&mut b, &world, &group, request),
        (SyncBn::Off, _) => run_with(&mut b, &world, &SingleProcess, request),
        _ => run_with(&mut b, &world, &world, request),
    }
}

fn run_with<B, C, G>(b: &mut B, comm: &C, bn_comm: &G, request: &RunRequest<'_>) -> Result<()>
where
    B: Backend,
    C: Collective<B::Buf>,
    G: Collective<B::Buf>,
{
    let (mut model, summary) = train(b, comm, bn_comm, request)?;
    let skipped = request.loader.bad_input_summary();
    if request.rank != 0 {
        report_skipped(&format!("rank {} training data", request.rank), &skipped);
        return Ok(());
    }
    report(&summary, request);
    report_skipped("training data", &skipped);
    if summary.finished {
        finish(b, &mut model, request, &summary)?;
    }
    let history = RunHistory::read(request.output)?;
    let curves = write_curves(&history)?;
    let events = write_events(&history)?;
    eprintln!(
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
    let trunk = export_safetensors(
        model,
        b,
        &ExportOptions {
            trunk_only: true,
            ..ExportOptions::default()
        },
    )
    .map_err(|e| anyhow!("exporting the trunk: {e}"))?;
    let path = request.output.join(files::TRUNK_EXPORT);
    swav_nn::write_atomic(&path, &trunk)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("trunk weights (torchvision names): {}", path.display());
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
    eprintln!(
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

/// The configuration of a resumed run: the checkpoint's, then `--config`, then flags.
/// Settings that define the model or the data order cannot change.
fn resolve_for_resume(args: &PretrainArgs, ck: &LoadedCheckpoint) -> Result<PretrainConfig> {
    if args.preset.is_some() {
        bail!(
            "--preset cannot be combined with --resume: the run keeps the configuration it was started with"
        );
    }
    let stored = ck.config()?;
    let config = overlay_args(stored.clone(), args)?;
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
