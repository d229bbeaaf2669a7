//! Which checkpoint a resumed run starts from. The latest checkpoint
//! (`checkpoint.safetensors`) when it reads, verifies (size, CRC-32) and holds a position
//! and a configuration; otherwise the newest numbered copy under `checkpoints/` that does,
//! with one line saying which file was used and what was lost. A file system that lost the
//! last write thus costs at most the epochs since the last numbered copy
//! (`--checkpoint-freq`), never the run.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};

use super::checkpoint_state::LoadedCheckpoint;
use super::run_folder::files;
use crate::metrics::StepRecord;

/// The checkpoint chosen and, when it is not the latest, what the fallback costs.
pub struct ChosenCheckpoint {
    /// The checkpoint to resume from.
    pub checkpoint: LoadedCheckpoint,
    /// The line that explains a fallback to a numbered copy.
    pub fallback_notice: Option<String>,
}

/// Whether the run folder `output` holds any checkpoint, intact or not.
pub fn any_checkpoint(output: &Path) -> bool {
    output.join(files::CHECKPOINT).exists() || !numbered_copies(output).is_empty()
}

/// The checkpoint to resume the run in `output` from; an error naming every file tried when
/// none is intact.
pub fn choose(output: &Path) -> Result<ChosenCheckpoint> {
    let latest = output.join(files::CHECKPOINT);
    let latest_error = match verified(&latest) {
        Ok(checkpoint) => {
            return Ok(ChosenCheckpoint {
                checkpoint,
                fallback_notice: None,
            });
        }
        Err(e) => e,
    };
    let mut tried = vec![format!("{} ({latest_error:#})", latest.display())];
    for (_, copy) in numbered_copies(output).into_iter().rev() {
        match verified(&copy) {
            Ok(checkpoint) => {
                let notice = fallback_notice(output, &latest_error, &checkpoint)?;
                return Ok(ChosenCheckpoint {
                    checkpoint,
                    fallback_notice: Some(notice),
                });
            }
            Err(e) => tried.push(format!("{} ({e:#})", copy.display())),
        }
    }
    Err(anyhow!(
        "no intact checkpoint in {}; tried {}",
        output.display(),
        tried.join("; ")
    ))
}

/// Reads `path` and checks that it holds what a resume needs.
fn verified(path: &Path) -> Result<LoadedCheckpoint> {
    let checkpoint = LoadedCheckpoint::read(path)?;
    checkpoint.position()?;
    checkpoint.world_size()?;
    checkpoint.config()?;
    Ok(checkpoint)
}

/// `checkpoints/ckp-<epoch>.safetensors` by epoch, oldest first.
fn numbered_copies(output: &Path) -> Vec<(u64, PathBuf)> {
    let dir = output.join(files::CHECKPOINTS_DIR);
    let mut copies: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            let epoch = name
                .strip_prefix("ckp-")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()?;
            Some((epoch, entry.path()))
        })
        .collect();
    copies.sort();
    copies
}

/// `warning: checkpoint.safetensors cannot be used (REASON); resuming from the newest intact
/// copy COPY instead: the N iteration(s) logged after it (global A to B) are lost and will
/// run again`.
fn fallback_notice(
    output: &Path,
    latest_error: &anyhow::Error,
    chosen: &LoadedCheckpoint,
) -> Result<String> {
    let position = chosen.position()?;
    let logged = last_logged_iteration(output);
    // Iterations count from 1 in messages, as in the progress and resume lines.
    let lost = match logged {
        Some(last) if last + 1 > position.global_iteration => format!(
            "the {} iteration(s) logged after it (global {} to {}) are lost and will run again",
            last + 1 - position.global_iteration,
            position.global_iteration + 1,
            last + 1
        ),
        _ => "whatever ran after it is lost and will run again".to_string(),
    };
    Ok(format!(
        "warning: {} cannot be used ({latest_error:#}); resuming from the newest intact copy {} instead: {lost}",
        output.join(files::CHECKPOINT).display(),
        chosen.path.display(),
    ))
}

/// The last iteration `metrics.jsonl` records, if any.
fn last_logged_iteration(output: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(output.join(files::METRICS)).ok()?;
    text.lines()
        .filter_map(|line| serde_json::from_str::<StepRecord>(line).ok())
        .map(|r| r.iteration)
        .max()
}
