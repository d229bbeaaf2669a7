//! Multi-crop throughput on a folder of images or on WebDataset shards: SwAV's default
//! 2 x 224 + 6 x 96 recipe, decode + augment + normalise into NHWC batches, through the
//! training loader.
//!
//! ```text
//! cargo run --release -p swav-augment --example augment_throughput -- \
//!     (--images DIR | --shards 'PREFIX-{000000..000009}.tar' [--shuffle-buffer 1000])
//!     [--workers 1] [--batch 32] [--epochs 3]
//! ```
//!
//! Prints one human-readable line per epoch and, last, a JSON line with the best epoch's
//! samples/s (the benchmark script `scripts/bench/augment_vs_torchvision.py` reads it).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use swav_augment::dataset::FlatFolder;
use swav_augment::loader::{
    DEFAULT_SHUFFLE_BUFFER, LoaderConfig, MultiCropLoader, ShardLoader, TrainingLoader,
    count_shards,
};
use swav_augment::shards::shard_paths;
use swav_augment::transform::config::MultiCropConfig;
use swav_augment::transform::multi_crop::MultiCropTransform;

struct Args {
    images: String,
    shards: String,
    shuffle_buffer: usize,
    workers: usize,
    batch: usize,
    epochs: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        images: String::new(),
        shards: String::new(),
        shuffle_buffer: DEFAULT_SHUFFLE_BUFFER,
        workers: 1,
        batch: 32,
        epochs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--images" => args.images = value()?,
            "--shards" => args.shards = value()?,
            "--shuffle-buffer" => args.shuffle_buffer = number(value()?)?,
            "--workers" => args.workers = number(value()?)?,
            "--batch" => args.batch = number(value()?)?,
            "--epochs" => args.epochs = number(value()?)? as u64,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.images.is_empty() == args.shards.is_empty() {
        return Err(
            "usage: augment_throughput (--images DIR | --shards SPEC) [--workers N] [--batch N] [--epochs N]"
                .into(),
        );
    }
    Ok(args)
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let transform = MultiCropTransform::new(MultiCropConfig::default())?;
    let config = LoaderConfig {
        batch_size: args.batch,
        workers: args.workers,
        prefetch: 2 * args.workers,
        ..LoaderConfig::default()
    };
    let loader = if args.shards.is_empty() {
        let data = Arc::new(FlatFolder::open(&args.images)?);
        TrainingLoader::Dataset(MultiCropLoader::new(data, transform, config)?)
    } else {
        let shards = count_shards(&shard_paths(args.shards.as_ref())?)?;
        TrainingLoader::Shards(ShardLoader::new(
            shards,
            transform,
            config,
            args.shuffle_buffer,
        )?)
    };
    let mut best = 0.0f64;
    for epoch in 0..args.epochs {
        loader.reset_stats();
        let started = Instant::now();
        let mut samples = 0;
        for batch in loader.epoch_from(epoch, 0)? {
            samples += batch?.len();
        }
        let rate = samples as f64 / started.elapsed().as_secs_f64();
        best = best.max(rate);
        println!("epoch {epoch}: {}", loader.stats());
    }
    println!(
        "{{\"samples_per_second\": {best:.3}, \"workers\": {}, \"batch\": {}, \"bad_inputs\": {}}}",
        args.workers,
        args.batch,
        loader.bad_input_summary().count
    );
    Ok(())
}

fn main() -> ExitCode {
    match parse_args().map_err(Into::into).and_then(|args| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
