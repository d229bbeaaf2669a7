//! The per-iteration learning-rate schedule (docs/algorithm.md §4.2) and the epoch length.

/// Linear warm-up from `start_warmup` to `base_lr`, then a per-iteration cosine decay to
/// `final_lr`, exactly as the official array:
///
/// ```text
/// warm[i]  = linspace(start_warmup, base_lr, iters_per_epoch · warmup_epochs)   (both ends included)
/// cos[t]   = final_lr + ½ (base_lr − final_lr)(1 + cos(π t / T)),  t = 0..T−1,
///            T = iters_per_epoch · (epochs − warmup_epochs)
/// ```
///
/// `base_lr` is absolute (no batch-size scaling). Iterations past the end keep the last value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// The peak learning rate (SwAV: 4.8 at batch 4096, 0.6 at batch 256).
    pub base_lr: f64,
    /// The learning rate the cosine decays to (SwAV: base / 1000).
    pub final_lr: f64,
    /// The first warm-up value (SwAV: 0.3 at batch 4096).
    pub start_warmup: f64,
    /// Warm-up length in epochs (SwAV: 10; 0 for the batch-256 recipe).
    pub warmup_epochs: u64,
    /// Total epochs.
    pub epochs: u64,
    /// Iterations per epoch (see [`iterations_per_epoch`]).
    pub iters_per_epoch: u64,
}

impl LrSchedule {
    /// The number of iterations the schedule covers.
    pub fn len(&self) -> u64 {
        self.iters_per_epoch * self.epochs
    }

    /// Whether the schedule covers no iteration at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn warmup_len(&self) -> u64 {
        self.iters_per_epoch * self.warmup_epochs.min(self.epochs)
    }

    /// The learning rate of global iteration `iteration` (`epoch · iters_per_epoch + it`).
    pub fn lr(&self, iteration: u64) -> f64 {
        if self.is_empty() {
            return self.base_lr;
        }
        let t = iteration.min(self.len() - 1);
        let warm = self.warmup_len();
        if t < warm {
            return linspace_at(self.start_warmup, self.base_lr, warm, t);
        }
        let total = (self.len() - warm) as f64;
        let t = (t - warm) as f64;
        self.final_lr
            + 0.5
                * (self.base_lr - self.final_lr)
                * (1.0 + num_traits::Float::cos(core::f64::consts::PI * t / total))
    }
}

/// Element `i` of numpy's `linspace(start, stop, n)`: `start + i·(stop − start)/(n − 1)`, the
/// last element exactly `stop`.
fn linspace_at(start: f64, stop: f64, n: u64, i: u64) -> f64 {
    if n == 1 {
        return start;
    }
    if i == n - 1 {
        return stop;
    }
    let step = (stop - start) / (n - 1) as f64;
    i as f64 * step + start
}

/// Iterations per epoch under PyTorch's `DistributedSampler` (which pads the dataset to a
/// multiple of the world size by repeating samples) and `drop_last=True`:
/// `floor(ceil(images / world) / batch)`.
pub fn iterations_per_epoch(images: u64, world: u64, batch: u64) -> u64 {
    if world == 0 || batch == 0 {
        return 0;
    }
    images.div_ceil(world) / batch
}
