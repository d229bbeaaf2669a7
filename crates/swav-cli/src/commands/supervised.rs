//! `swav supervised`: the yardstick beside a SwAV recipe. The same network, data,
//! augmentation, batch, optimiser (LARC + SGD), learning-rate schedule and number of steps as
//! `swav pretrain` with the same flags, but trained with the labels: a linear classifier on
//! the pooled trunk features of every crop, cross-entropy. It then runs the same k-NN
//! evaluation, so a SwAV run's k-NN can be read as its share of the gain labels give:
//! `(SwAV − random) / (supervised − random)`. Its loss, learning rate and crop accuracy go to
//! the run folder's TensorBoard file as it trains.

use anyhow::{Context, Result, anyhow, bail};
use swav_nn::{Backend, SwavModel};

use crate::cli::PretrainArgs;
use crate::config::PretrainConfig;
use crate::datasets::dataset_loader;
use crate::device::{BackendJob, on_device};
use crate::eval::labelled_training::LabelledTraining;
use crate::event_file::LiveEvents;
use crate::resolve::resolve_pretrain_config;
use crate::skipped_files::report_skipped;
use crate::train::input_feed::crop_groups;
use crate::train::knn_probe::KnnProbe;
use crate::train::model_spec::model_config;
use crate::train::progress::{Progress, ProgressLine, format_duration};
use crate::train::run_folder::{files, prepare_output};
use swav_augment::loader::MultiCropLoader;

/// Runs `swav supervised`.
pub fn run(args: &PretrainArgs) -> Result<()> {
    if args.resume.is_some()
        || args.init_weights.is_some()
        || args.rendezvous_file.is_some()
        || args.dist_url.is_some()
        || args.local_rank.is_some()
    {
        bail!(
            "`swav supervised` trains one process from scratch: --resume, --init-weights, --rendezvous-file, --dist_url and --local_rank belong to `swav pretrain`"
        );
    }
    let config = resolve_pretrain_config(args)?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    if let Some(fp16) = args.use_fp16 {
        crate::say!("{}", super::pretrain::precision_note(fp16, config.device));
    }
    let loader = dataset_loader(&config, 0, 1)?;
    prepare_output(&args.output, &config)?;
    on_device(
        config.device,
        0,
        SupervisedJob {
            config: &config,
            loader: &loader,
            output: &args.output,
            max_iterations: args.max_iterations,
        },
    )
}

struct SupervisedJob<'a> {
    config: &'a PretrainConfig,
    loader: &'a MultiCropLoader,
    output: &'a std::path::Path,
    max_iterations: Option<u64>,
}

impl BackendJob for SupervisedJob<'_> {
    type Output = ();

    fn run<B: Backend>(self, b: &mut B) -> Result<()> {
        let config = self.config;
        let dev = |e: B::Error| anyhow!("device error: {e}");
        let classes = self.loader.num_classes();
        if classes < 2 {
            bail!(
                "`swav supervised` needs labelled images: an ImageFolder layout (one sub-folder per class) or the built-in dataset"
            );
        }
        let mut model = SwavModel::new(b, model_config(config), config.seed)
            .map_err(|e| anyhow!("building the model: {e}"))?;
        let iters_per_epoch = self.loader.iters_per_epoch() as u64;
        let schedule = config.lr_schedule(iters_per_epoch);
        let total = self
            .max_iterations
            .map_or(schedule.len(), |m| m.min(schedule.len()));
        let groups_meta: Vec<(usize, usize)> = self
            .loader
            .resolution_groups()
            .iter()
            .map(|g| (g.crops, g.size as usize))
            .collect();
        let mut inputs = Vec::new();
        for &(crops, side) in &groups_meta {
            inputs.push(
                b.alloc_activation(crops * config.batch_size * side * side * 3)
                    .map_err(dev)?,
            );
        }
        let rows = config.total_crops() * config.batch_size;
        let mut training =
            LabelledTraining::new(b, &model, config.lars(), classes, config.seed, rows)?;
        let progress = Progress::new(0, total, true);
        // TensorBoard's file grows as the run trains, as pretrain's does.
        let mut events = LiveEvents::open(&self.output.join(files::TENSORBOARD_EVENTS), None)?;
        let started = std::time::Instant::now();
        let mut global = 0u64;
        let (mut last_loss, mut last_accuracy) = (f64::NAN, f64::NAN);
        'epochs: for epoch in 0..config.epochs {
            for batch in self.loader.epoch_from(epoch, 0)? {
                if global >= total {
                    break 'epochs;
                }
                let batch = batch?;
                let labels = batch
                    .labels()
                    .context("`swav supervised` needs labelled images")?
                    .to_vec();
                let data: Vec<&[f32]> = batch.groups().map(|g| g.data()).collect();
                b.stage_inputs(&data, &mut inputs).map_err(dev)?;
                b.await_staged_inputs().map_err(dev)?;
                let groups = crop_groups(&inputs, &groups_meta);
                // Rows are in crop order: crop v of image i is row v·batch + i.
                let row_labels: Vec<usize> = (0..rows).map(|r| labels[r % labels.len()]).collect();
                let lr = schedule.lr(global);
                let at = format!("at iteration {global}");
                let (loss, accuracy) = training.step(
                    b,
                    &mut model,
                    &groups,
                    config.batch_size,
                    &row_labels,
                    (lr as f32, lr as f32),
                    &at,
                )?;
                (last_loss, last_accuracy) = (loss, accuracy);
                let log = global.is_multiple_of(config.log_every) || global + 1 == total;
                if log {
                    events.scalars(
                        global as i64 + 1,
                        &[
                            ("train/loss", loss),
                            ("train/lr", lr),
                            ("train/crop_accuracy", accuracy),
                        ],
                    )?;
                }
                progress.update(
                    &ProgressLine {
                        epoch,
                        epochs: config.epochs,
                        iteration: global,
                        loss,
                        lr,
                        images_per_sec: ((global + 1) * config.batch_size as u64) as f64
                            / started.elapsed().as_secs_f64().max(1e-9),
                        data_ms: None,
                    },
                    log,
                    true,
                );
                global += 1;
            }
        }
        progress.finish();
        eprintln!(
            "supervised: {global} iterations in {}; last cross-entropy {last_loss:.4}, training-crop accuracy {:.1}%",
            format_duration(started.elapsed()),
            100.0 * last_accuracy
        );
        report_skipped("training data", &self.loader.bad_input_summary());
        match KnnProbe::for_run(config)? {
            Some(probe) => {
                let supervised = probe.evaluate(b, &mut model)?;
                probe.compare_with_random(b, "supervised", supervised, config, self.output)
            }
            None => {
                eprintln!(
                    "k-NN evaluation skipped: {} has no train/ and val/ sub-folders",
                    config
                        .data
                        .as_deref()
                        .unwrap_or(std::path::Path::new(""))
                        .display()
                );
                Ok(())
            }
        }
    }
}
