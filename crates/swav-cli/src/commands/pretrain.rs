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
use crate::eval::features::extract;
use crate::eval::knn::{DEFAULT_KS, DEFAULT_TEMPERATURE, knn_accuracy};
use crate::launcher::{LaunchEnv, Launcher};
use crate::resolve::{overlay_args, resolve_pretrain_config};
use crate::train::data::{eval_transform, knn_datasets, training_loader};
use crate::train::model_spec::model_config;
use crate::train::progress::format_duration;
use crate::train::run::{RunRequest, RunSummary, files, train};
use crate::train::state_io::LoadedCheckpoint;
use crate::weights_source::WeightsSource;

/// The file the trained trunk is exported to (torchvision-compatible).
pub const TRUNK_EXPORT: &str = "trunk.safetensors";
/// The k-NN report.
pub const KNN_REPORT: &str = "knn.json";

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
    let mut b =
        swav_cuda::CudaBackend::new(env.local_rank).map_err(|e| anyhow!("--device cuda: {e}"))?;
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
    if request.rank != 0 {
        return Ok(());
    }
    report(&summary, request);
    if !summary.finished {
        return Ok(());
    }
    let trunk = export_safetensors(
        &model,
        b,
        &ExportOptions {
            trunk_only: true,
            ..ExportOptions::default()
        },
    )
    .map_err(|e| anyhow!("exporting the trunk: {e}"))?;
    let path = request.output.join(TRUNK_EXPORT);
    std::fs::write(&path, trunk).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("trunk weights (torchvision names): {}", path.display());
    if request.config.eval_knn {
        compare_knn(b, &mut model, "trained", request.config, request.output)?;
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

/// k-NN accuracy of the trained trunk (shown as `name`) next to a randomly initialised
/// one, printed and written to `output`/knn.json.
pub fn compare_knn<B: Backend>(
    b: &mut B,
    trained: &mut SwavModel<B>,
    name: &str,
    config: &PretrainConfig,
    output: &Path,
) -> Result<()> {
    let Some((train_set, val_set)) = knn_datasets(config)? else {
        eprintln!(
            "k-NN evaluation skipped: {} has no train/ and val/ sub-folders",
            config.data.as_deref().unwrap_or(Path::new("")).display()
        );
        return Ok(());
    };
    let classes = train_set.num_classes().max(1);
    let transform = eval_transform(config);
    let mut random = SwavModel::new(b, model_config(config), config.seed.wrapping_add(1))
        .map_err(|e| anyhow!("building the random network: {e}"))?;
    let mut rows = Vec::new();
    for (name, model) in [(name, &mut *trained), ("random init", &mut random)] {
        let train = extract(b, model, train_set.clone(), transform, 128, config.workers)?;
        let val = extract(b, model, val_set.clone(), transform, 128, config.workers)?;
        let (train_labels, val_labels) = (labels(&train.labels)?, labels(&val.labels)?);
        let acc = knn_accuracy(
            train.values.view(),
            &train_labels,
            val.values.view(),
            &val_labels,
            classes,
            &DEFAULT_KS,
            DEFAULT_TEMPERATURE,
        );
        rows.push((name, acc));
    }
    eprintln!("k-NN top-1 on the validation split ({} classes):", classes);
    for (name, acc) in &rows {
        let cells: Vec<String> = acc
            .iter()
            .map(|a| format!("k={}: {:5.1}%", a.k, 100.0 * a.top1))
            .collect();
        eprintln!("  {name:<12} {}", cells.join("   "));
    }
    let json = serde_json::json!({
        "classes": classes,
        "results": rows.iter().map(|(name, acc)| serde_json::json!({
            "model": name,
            "top1": acc.iter().map(|a| serde_json::json!({"k": a.k, "top1": a.top1})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let path = output.join(KNN_REPORT);
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn labels(labels: &[Option<usize>]) -> Result<Vec<usize>> {
    labels
        .iter()
        .map(|l| {
            l.ok_or_else(|| {
                anyhow!("k-NN evaluation needs labelled images (an ImageFolder layout)")
            })
        })
        .collect()
}

/// Creates the output folder and writes the resolved configuration (which also proves the
/// folder is writable before any training starts).
pub fn prepare_output(output: &Path, config: &PretrainConfig) -> Result<()> {
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create output folder {}", output.display()))?;
    let path = output.join(files::CONFIG);
    std::fs::write(&path, config.to_toml())
        .with_context(|| format!("output folder {} is not writable", output.display()))
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
