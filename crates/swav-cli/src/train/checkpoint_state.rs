//! The checkpoint's state layout: the keys under which a run's model, optimiser state,
//! queue, position and configuration lie in one checkpoint file (see
//! [`crate::checkpoint_file`]), and saving and restoring a run through them.
//!
//! The model's tensors carry exactly the names and PyTorch layouts of `swav export`
//! (torchvision trunk names, `projection_head.*`, `prototypes.weight`), so a checkpoint is
//! also a weights file: `--weights`, `--init-weights` and `swav export` read it directly.
//! Momentum buffers are stored as `optimizer.momentum.<name>` (only those that exist, in
//! PyTorch layout); every rank's queue as `queue` (`[world, assignment crops, rows per rank,
//! D]`; checkpoints written before the queues were per rank hold one `[crops, rows, D]` queue,
//! read as rank 0's of a one-rank run).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use swav_core::MomentumState;
use swav_nn::{
    Backend, ExportOptions, ImportOptions, Layout, SwavModel, export_safetensors,
    import_safetensors, ohwi_from_oihw, oihw_from_ohwi,
};

use swav_train::{Optimizer, TrainingState};

use super::rank_queues::RankQueues;
use crate::checkpoint_file::{CheckpointFile, StoredTensor};
use crate::config::PretrainConfig;

/// Metadata keys.
const EPOCH: &str = "epoch";
const ITERATION_IN_EPOCH: &str = "iteration_in_epoch";
const GLOBAL_ITERATION: &str = "global_iteration";
const CONFIG: &str = "config";
const WORLD_SIZE: &str = "world_size";
const MOMENTUM_PREFIX: &str = "optimizer.momentum.";
const QUEUE: &str = "queue";

/// Where a run stands: the next iteration to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunPosition {
    /// The epoch of the next iteration.
    pub epoch: u64,
    /// The next iteration's index within its epoch.
    pub iteration_in_epoch: u64,
    /// The next iteration's global index (`epoch · iters_per_epoch + iteration_in_epoch`).
    pub global_iteration: u64,
}

/// What a checkpoint records besides the model and optimiser.
pub struct RunRecord<'a> {
    /// Where the run stands.
    pub position: RunPosition,
    /// Its configuration.
    pub config: &'a PretrainConfig,
    /// The number of ranks.
    pub world_size: usize,
    /// Every rank's queue, when the run has one ([`RankQueues::gather`]).
    pub queues: Option<&'a RankQueues>,
}

/// Writes the run's full state (the model and optimiser of `state`, and `record`) to `path`
/// atomically.
pub fn save_run<B: Backend>(
    path: &Path,
    b: &mut B,
    state: &TrainingState<B>,
    record: &RunRecord<'_>,
) -> Result<()> {
    let TrainingState {
        model, optimizer, ..
    } = state;
    let RunRecord {
        position,
        config,
        world_size,
        queues,
    } = *record;
    let mut file = CheckpointFile::default();
    let weights = export_safetensors(model, b, &ExportOptions::default())
        .map_err(|e| anyhow!("exporting the model: {e}"))?;
    file.add_safetensors(&weights, "").map_err(|e| anyhow!(e))?;
    for (p, (momentum, state)) in model.params().iter().zip(optimizer.buffers()) {
        if !state.initialised {
            continue;
        }
        let mut values = vec![0.0f32; p.shape.iter().product()];
        b.download(momentum, 0, &mut values)
            .map_err(|e| anyhow!("reading momentum of {}: {e}", p.name))?;
        let values = to_pytorch_layout(&values, p.shape, p.layout);
        file.tensors.insert(
            format!("{MOMENTUM_PREFIX}{}", p.name),
            StoredTensor::f32(p.shape.to_vec(), &values),
        );
    }
    if let Some(q) = queues {
        file.tensors
            .insert(QUEUE.into(), StoredTensor::f32(q.shape.to_vec(), &q.values));
    }
    let meta = &mut file.metadata;
    meta.insert(EPOCH.into(), position.epoch.to_string());
    meta.insert(
        ITERATION_IN_EPOCH.into(),
        position.iteration_in_epoch.to_string(),
    );
    meta.insert(
        GLOBAL_ITERATION.into(),
        position.global_iteration.to_string(),
    );
    meta.insert(CONFIG.into(), config.to_toml());
    meta.insert(WORLD_SIZE.into(), world_size.to_string());
    file.write_atomic(path)?;
    Ok(())
}

/// A checkpoint read and verified from disk, with its raw bytes (a safetensors file).
pub struct LoadedCheckpoint {
    /// The parsed contents.
    pub file: CheckpointFile,
    /// The serialised file, for the model import.
    pub bytes: Vec<u8>,
    /// Its path, for messages.
    pub path: std::path::PathBuf,
}

impl LoadedCheckpoint {
    /// Reads and verifies `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        let file = CheckpointFile::from_bytes(&bytes).map_err(|reason| {
            anyhow!(
                "checkpoint {} is corrupt or truncated: {reason}",
                path.display()
            )
        })?;
        Ok(Self {
            file,
            bytes,
            path: path.to_path_buf(),
        })
    }

    /// The configuration the run was started with.
    pub fn config(&self) -> Result<PretrainConfig> {
        let text = self.meta(CONFIG)?;
        toml::from_str(text).map_err(|e| {
            anyhow!(
                "checkpoint {}: its stored configuration does not parse: {e}",
                self.path.display()
            )
        })
    }

    /// The position to resume from.
    pub fn position(&self) -> Result<RunPosition> {
        Ok(RunPosition {
            epoch: self.number(EPOCH)?,
            iteration_in_epoch: self.number(ITERATION_IN_EPOCH)?,
            global_iteration: self.number(GLOBAL_ITERATION)?,
        })
    }

    /// The world size of the run that wrote it.
    pub fn world_size(&self) -> Result<usize> {
        Ok(self.number(WORLD_SIZE)? as usize)
    }

    fn meta(&self, key: &str) -> Result<&str> {
        self.file
            .meta(key)
            .map_err(|e| anyhow!("checkpoint {}: {e}", self.path.display()))
    }

    fn number(&self, key: &str) -> Result<u64> {
        self.meta(key)?.parse().map_err(|_| {
            anyhow!(
                "checkpoint {}: metadata `{key}` is not a number",
                self.path.display()
            )
        })
    }

    /// Loads the model's weights and running statistics (strict: every model key must be
    /// present with its shape).
    pub fn load_model<B: Backend>(&self, b: &mut B, model: &mut SwavModel<B>) -> Result<()> {
        let options = ImportOptions {
            ignore: vec![format!("{MOMENTUM_PREFIX}*"), QUEUE.into()],
            ..ImportOptions::strict()
        };
        import_safetensors(model, b, &self.bytes, &options)
            .map_err(|e| anyhow!("checkpoint {}: {e}", self.path.display()))?;
        Ok(())
    }

    /// Restores the momentum buffers (absent ones stay uninitialised).
    pub fn load_optimizer<B: Backend>(
        &self,
        b: &mut B,
        model: &SwavModel<B>,
        optimizer: &mut Optimizer<B>,
    ) -> Result<()> {
        for (i, p) in model.params().iter().enumerate() {
            let key = format!("{MOMENTUM_PREFIX}{}", p.name);
            let Some(t) = self.file.tensors.get(&key) else {
                continue;
            };
            if t.shape != p.shape {
                bail!(
                    "checkpoint {}: `{key}` has shape {:?} but the model expects {:?}",
                    self.path.display(),
                    t.shape,
                    p.shape
                );
            }
            let values = t
                .to_f32()
                .ok_or_else(|| anyhow!("checkpoint {}: `{key}` is not f32", self.path.display()))?;
            let values = to_device_layout(&values, p.shape, p.layout);
            optimizer
                .restore(b, i, &values, MomentumState { initialised: true })
                .map_err(|e| anyhow!("restoring `{key}`: {e}"))?;
        }
        Ok(())
    }

    /// Every rank's stored queue, if the run had one by then.
    pub fn queues(&self) -> Result<Option<RankQueues>> {
        let Some(t) = self.file.tensors.get(QUEUE) else {
            return Ok(None);
        };
        let shape = match t.shape[..] {
            [w, c, r, d] => [w, c, r, d],
            [c, r, d] if self.world_size()? == 1 => [1, c, r, d],
            _ => bail!(
                "checkpoint {}: the queue has shape {:?}, not [ranks, crops, rows, dim]",
                self.path.display(),
                t.shape
            ),
        };
        let values = t
            .to_f32()
            .ok_or_else(|| anyhow!("checkpoint {}: the queue is not f32", self.path.display()))?;
        if values.len() != shape.iter().product::<usize>() {
            bail!(
                "checkpoint {}: the queue's size does not match its shape",
                self.path.display()
            );
        }
        Ok(Some(RankQueues { values, shape }))
    }
}

fn conv_dims(shape: &[usize]) -> (usize, usize, usize) {
    (shape[0], shape[1], shape[2])
}

fn to_pytorch_layout(values: &[f32], shape: &[usize], layout: Layout) -> Vec<f32> {
    match layout {
        Layout::Plain => values.to_vec(),
        Layout::Ohwi => {
            let (o, i, k) = conv_dims(shape);
            oihw_from_ohwi(values, o, i, k)
        }
    }
}

fn to_device_layout(values: &[f32], shape: &[usize], layout: Layout) -> Vec<f32> {
    match layout {
        Layout::Plain => values.to_vec(),
        Layout::Ohwi => {
            let (o, i, k) = conv_dims(shape);
            ohwi_from_oihw(values, o, i, k)
        }
    }
}
