//! `swav shard`: packs a folder of images into WebDataset shards, with a manifest that
//! traces every key back to its source file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use swav_augment::shards::write_shards;

use crate::cli::ShardArgs;
use crate::datasets::{open_folder, training_folder};

/// Seconds between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs `swav shard`.
pub fn run(args: &ShardArgs) -> Result<()> {
    if args.shard_size == 0 {
        bail!("--shard-size must be at least 1");
    }
    let started = Instant::now();
    // A folder with train/ and val/ packs its training split, as `swav pretrain` trains on.
    let source = training_folder(&args.data);
    let dataset = open_folder(&source)?;
    let total = dataset.len();
    crate::say!(
        "packing {total} images of {} into shards of {} as {}-NNNNNN.tar",
        source.display(),
        args.shard_size,
        args.output.display()
    );
    let mut last_line = Instant::now();
    let written = write_shards(
        dataset.as_ref(),
        &args.output,
        args.shard_size,
        (!args.keep_order).then_some(args.seed),
        |done| {
            if last_line.elapsed() >= PROGRESS_EVERY && done < total {
                last_line = Instant::now();
                crate::say!("{done}/{total} images packed");
            }
        },
    )
    .context("--output")?;
    let manifest = manifest_path(&args.output);
    let mut text = String::from("key\tshard\tsource\n");
    for sample in &written.samples {
        let shard = sample
            .shard
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let _ = writeln!(text, "{}\t{shard}\t{}", sample.key, sample.source);
    }
    std::fs::write(&manifest, text)
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    for (name, reason) in &written.skipped {
        crate::say!("skipped {name}: {reason}");
    }
    let bytes: u64 = written
        .shards
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let last = written.shards.len().saturating_sub(1);
    crate::say!(
        "wrote {} samples into {} shards ({:.1} MB) and {} in {:.1} s{}",
        written.samples.len(),
        written.shards.len(),
        bytes as f64 / 1e6,
        manifest.display(),
        started.elapsed().as_secs_f64(),
        if written.skipped.is_empty() {
            String::new()
        } else {
            format!("; {} unreadable images skipped", written.skipped.len())
        }
    );
    crate::say!(
        "train on them with: swav pretrain --data '{}-{{000000..{last:06}}}.tar'",
        args.output.display()
    );
    Ok(())
}

/// `PREFIX-manifest.tsv`.
fn manifest_path(prefix: &Path) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push("-manifest.tsv");
    PathBuf::from(name)
}
