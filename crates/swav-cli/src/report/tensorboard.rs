//! A run's history as a TensorBoard event file, for runs that have none: `swav pretrain`
//! writes its event file while it trains ([`crate::event_file::LiveEvents`]); runs made
//! before that get theirs from `swav report`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::run_history::RunHistory;
use crate::event_file::{file_version_record, knn_tag, scalar_record, step_scalars};
use crate::train::run_folder::files;

/// Writes the run's scalars as a TensorBoard event file in its folder, unless it already
/// has one (a run writes its own while it trains, and rewriting it would cut off a run
/// still going). Returns its path. `wall_time` is the
/// record's time of day where the log has it, else the seconds since the run (or its
/// latest resumption) started.
pub fn write_events_if_missing(history: &RunHistory) -> Result<PathBuf> {
    let path = history.dir.join(files::TENSORBOARD_EVENTS);
    if path.exists() {
        return Ok(path);
    }
    let mut bytes = file_version_record(0.0);
    for r in &history.records {
        let time = if r.unix_time > 0.0 {
            r.unix_time
        } else {
            r.elapsed_s
        };
        for (tag, value) in step_scalars(r) {
            bytes.extend(scalar_record(
                time,
                r.iteration as i64 + 1,
                tag,
                value as f32,
            ));
        }
    }
    for p in &history.knn {
        for t in &p.top1 {
            let percent = (100.0 * t.top1) as f32;
            bytes.extend(scalar_record(
                0.0,
                p.iteration as i64,
                &knn_tag(t.k),
                percent,
            ));
        }
    }
    swav_nn::write_atomic(&path, &bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
