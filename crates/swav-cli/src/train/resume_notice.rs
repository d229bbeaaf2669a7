//! The one line a resumed run prints first: which checkpoint, where in the run, and the
//! queue it continues with.

use std::path::Path;

use super::checkpoint_state::RunPosition;

/// The queue a run resumes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumedQueue {
    /// The run has no queue (`queue_length` 0).
    Disabled,
    /// The queue does not exist yet: it starts at this epoch.
    NotYet {
        /// `epoch_queue_starts`.
        starts_at_epoch: u64,
    },
    /// The stored queue: `filled` of `rows` rows per assignment crop hold embeddings.
    Stored {
        /// Assignment crops (one queue each).
        crops: usize,
        /// Rows per crop on this rank.
        rows: usize,
        /// Rows holding an embedding (the rest are still zero).
        filled: usize,
    },
}

impl ResumedQueue {
    /// The state of a stored queue (`crops × rows × dim` host values): rows of the first
    /// crop that are not all zero count as filled.
    pub fn stored(values: &[f32], [crops, rows, dim]: [usize; 3]) -> Self {
        let filled = values[..rows * dim]
            .chunks_exact(dim.max(1))
            .filter(|row| row.iter().any(|&v| v != 0.0))
            .count();
        Self::Stored {
            crops,
            rows,
            filled,
        }
    }
}

/// `resuming from CKPT: epoch 3/10, iteration 7/31 (global 100/310); queue 64/64 rows × 2 crops`.
pub fn resume_notice(
    checkpoint: &Path,
    position: RunPosition,
    epochs: u64,
    iters_per_epoch: u64,
    queue: ResumedQueue,
) -> String {
    let queue = match queue {
        ResumedQueue::Disabled => "no queue".to_string(),
        ResumedQueue::NotYet { starts_at_epoch } => {
            format!("no queue yet (it starts at epoch {})", starts_at_epoch + 1)
        }
        ResumedQueue::Stored {
            crops,
            rows,
            filled,
        } => format!("queue {filled}/{rows} rows filled × {crops} crops"),
    };
    format!(
        "resuming from {}: epoch {}/{epochs}, iteration {}/{iters_per_epoch} (global {}/{}); {queue}",
        checkpoint.display(),
        position.epoch + 1,
        position.iteration_in_epoch + 1,
        position.global_iteration + 1,
        epochs * iters_per_epoch
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_checkpoint_position_and_queue() {
        let position = RunPosition {
            epoch: 2,
            iteration_in_epoch: 6,
            global_iteration: 68,
        };
        // Two crops of 3 rows × 2 dims; the first crop has 2 filled rows.
        let values = [1.0, 0.5, 0.0, 2.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0];
        let queue = ResumedQueue::stored(&values, [2, 3, 2]);
        assert_eq!(
            queue,
            ResumedQueue::Stored {
                crops: 2,
                rows: 3,
                filled: 2
            }
        );
        let line = resume_notice(
            Path::new("run/checkpoint.safetensors"),
            position,
            10,
            31,
            queue,
        );
        assert_eq!(
            line,
            "resuming from run/checkpoint.safetensors: epoch 3/10, iteration 7/31 (global 69/310); \
             queue 2/3 rows filled × 2 crops"
        );
        let line = resume_notice(
            Path::new("c"),
            position,
            10,
            31,
            ResumedQueue::NotYet { starts_at_epoch: 4 },
        );
        assert!(
            line.ends_with("no queue yet (it starts at epoch 5)"),
            "{line}"
        );
    }
}
