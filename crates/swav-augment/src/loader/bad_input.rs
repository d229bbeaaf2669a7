//! What happens when a sample cannot be used: a corrupt, truncated, empty, non-image or
//! too-small file.
//!
//! * strict: the loader stops with an error naming the file;
//! * otherwise the file is skipped and counted in a [`BadInputSummary`], with a
//!   `tracing::warn!` naming each of the first [`BadInputSummary::MAX_EXAMPLES`] files and
//!   one more saying that the rest are only counted (so a folder of thousands of broken
//!   files does not flood the log):
//!   * training: the sample is replaced by the next readable index (`index + 1`, `+ 2`, ...
//!     modulo the dataset length), so batches stay full. Whether a file is readable does
//!     not depend on timing, so the substitution, and hence every batch, is deterministic;
//!     the substitute's crops are still drawn from the scheduled index's streams;
//!   * evaluation: the sample is left out of its batch (the batch carries the indices it
//!     holds), so no image is counted twice.
//!
//! Known-bad indices are remembered, so a bad file is read once per loader.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DatasetError, LoaderError};
use crate::rgb_image::RgbImage;

/// Images with a side below this are rejected by default.
pub const DEFAULT_MIN_IMAGE_SIDE: u32 = 8;

/// How bad samples are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BadInputPolicy {
    /// Stop at the first bad sample instead of skipping it.
    pub strict: bool,
    /// Images whose width or height is below this are bad (default 8).
    pub min_image_side: u32,
}

impl Default for BadInputPolicy {
    fn default() -> Self {
        Self {
            strict: false,
            min_image_side: DEFAULT_MIN_IMAGE_SIDE,
        }
    }
}

/// Bad samples met so far: how many, and the first few (lowest index first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BadInputSummary {
    /// Distinct bad samples.
    pub count: usize,
    /// Up to [`BadInputSummary::MAX_EXAMPLES`] (sample name, reason) pairs.
    pub examples: Vec<(String, String)>,
}

impl BadInputSummary {
    /// Examples kept in a summary.
    pub const MAX_EXAMPLES: usize = 5;
}

/// One line: `38 files skipped; first: PATH: reason`.
impl fmt::Display for BadInputSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = if self.count == 1 { "file" } else { "files" };
        match self.examples.first() {
            None => write!(f, "no files skipped"),
            Some((name, reason)) => write!(
                f,
                "{} {files} skipped; first: {}",
                self.count,
                describe(name, reason)
            ),
        }
    }
}

/// `name: reason`, or the reason alone when it already names the sample (as every
/// [`DatasetError`] about a file does).
fn describe(name: &str, reason: &str) -> String {
    if reason.contains(name) {
        reason.to_string()
    } else {
        format!("{name}: {reason}")
    }
}

/// Loads sample `index` and rejects images smaller than the policy allows.
fn load_checked(
    dataset: &dyn Dataset,
    index: usize,
    policy: &BadInputPolicy,
) -> Result<RgbImage, DatasetError> {
    check_size(dataset.load(index)?, || dataset.sample_name(index), policy)
}

/// `image`, or [`DatasetError::TooSmall`] (naming the sample `name()`) when a side is
/// below the policy's minimum.
pub(crate) fn check_size(
    image: RgbImage,
    name: impl FnOnce() -> String,
    policy: &BadInputPolicy,
) -> Result<RgbImage, DatasetError> {
    if image.width() < policy.min_image_side || image.height() < policy.min_image_side {
        return Err(DatasetError::TooSmall {
            name: name(),
            width: image.width(),
            height: image.height(),
            min_side: policy.min_image_side,
        });
    }
    Ok(image)
}

/// The record of bad samples shared by a loader's workers.
#[derive(Debug, Default)]
pub(crate) struct BadInputLog {
    entries: Mutex<BTreeMap<usize, (String, String)>>,
}

impl BadInputLog {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<usize, (String, String)>> {
        // A worker that panicked while holding the lock cannot have left the map half
        // updated (inserts are atomic), so the data stays usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_known_bad(&self, index: usize) -> bool {
        self.entries().contains_key(&index)
    }

    /// Records a bad sample; the first few distinct ones are warned about by name, the
    /// next one says that the rest are only counted.
    pub(crate) fn record(&self, index: usize, name: String, error: &DatasetError) {
        let reason = error.to_string();
        let seen = {
            let mut entries = self.entries();
            if entries.contains_key(&index) {
                return;
            }
            entries.insert(index, (name.clone(), reason.clone()));
            entries.len()
        };
        let what = describe(&name, &reason);
        match seen.cmp(&(BadInputSummary::MAX_EXAMPLES + 1)) {
            std::cmp::Ordering::Less => tracing::warn!("skipping unreadable image: {what}"),
            std::cmp::Ordering::Equal => tracing::warn!(
                "skipping unreadable image: {what} (further unreadable files are counted, not listed)"
            ),
            std::cmp::Ordering::Greater => {}
        }
    }

    pub(crate) fn first_reason(&self) -> String {
        self.entries()
            .values()
            .next()
            .map(|(name, reason)| format!("{name}: {reason}"))
            .unwrap_or_default()
    }

    /// Count and first examples.
    pub(crate) fn summary(&self) -> BadInputSummary {
        let entries = self.entries();
        BadInputSummary {
            count: entries.len(),
            examples: entries
                .values()
                .take(BadInputSummary::MAX_EXAMPLES)
                .cloned()
                .collect(),
        }
    }

    /// Training policy: sample `index`, or the next readable one. Returns the index used.
    pub(crate) fn load_or_substitute(
        &self,
        dataset: &dyn Dataset,
        index: usize,
        policy: &BadInputPolicy,
    ) -> Result<(usize, RgbImage), LoaderError> {
        let len = dataset.len();
        for step in 0..len {
            let candidate = (index + step) % len;
            if let Some(image) = self.load_or_skip(dataset, candidate, policy)? {
                return Ok((candidate, image));
            }
        }
        Err(LoaderError::NoReadableSample {
            len,
            first: self.first_reason(),
        })
    }

    /// Evaluation policy: sample `index`, or `None` if it is bad (and not strict).
    pub(crate) fn load_or_skip(
        &self,
        dataset: &dyn Dataset,
        index: usize,
        policy: &BadInputPolicy,
    ) -> Result<Option<RgbImage>, LoaderError> {
        if self.is_known_bad(index) {
            return Ok(None);
        }
        match load_checked(dataset, index, policy) {
            Ok(image) => Ok(Some(image)),
            Err(error) if policy.strict => Err(LoaderError::BadSample(error)),
            Err(error) => {
                self.record(index, dataset.sample_name(index), &error);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_display_is_one_line_with_the_count_and_the_first_file() {
        let summary = BadInputSummary {
            count: 7,
            examples: vec![
                ("a.jpg".into(), "truncated".into()),
                ("b.jpg".into(), "empty".into()),
            ],
        };
        assert_eq!(
            summary.to_string(),
            "7 files skipped; first: a.jpg: truncated"
        );
        let one = BadInputSummary {
            count: 1,
            examples: vec![("a.jpg".into(), "truncated".into())],
        };
        assert_eq!(one.to_string(), "1 file skipped; first: a.jpg: truncated");
        let named = BadInputSummary {
            count: 1,
            examples: vec![("a.jpg".into(), "a.jpg is empty (0 bytes)".into())],
        };
        assert_eq!(
            named.to_string(),
            "1 file skipped; first: a.jpg is empty (0 bytes)"
        );
        assert_eq!(BadInputSummary::default().to_string(), "no files skipped");
    }
}
