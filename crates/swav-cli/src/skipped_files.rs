//! The end-of-command line about unreadable images: `WHAT: 38 files skipped; first: PATH:
//! reason`, printed by every command that reads an image folder (each skipped file was
//! also named as it was met, the first few of them).

use swav_augment::loader::BadInputSummary;

/// Prints the summary of `what` (a split or a command) on stderr when any file was skipped.
pub fn report_skipped(what: &str, summary: &BadInputSummary) {
    if summary.count > 0 {
        crate::say!("{what}: {summary}");
    }
}
