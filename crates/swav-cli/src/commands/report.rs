//! `swav report RUN_DIR`: the run's curves as RUN_DIR/curves.svg and a TensorBoard event
//! file, and a few lines on where it stands.

use anyhow::Result;

use crate::cli::ReportArgs;
use crate::report::curves::{summary, write_curves};
use crate::report::run_history::RunHistory;
use crate::report::tensorboard::write_events_if_missing;

/// Runs `swav report`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let history = RunHistory::read(&args.run)?;
    let path = write_curves(&history)?;
    let events = write_events_if_missing(&history)?;
    for line in summary(&history) {
        println!("{line}");
    }
    println!("curves: {}", path.display());
    println!("TensorBoard events: {}", events.display());
    Ok(())
}
