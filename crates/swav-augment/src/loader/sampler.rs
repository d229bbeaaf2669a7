//! PyTorch's `DistributedSampler` semantics: per-epoch order, padding by repetition to a
//! multiple of the world size, and strided sharding by rank.
//!
//! The shuffled order is a seeded Fisher-Yates permutation drawn from the (seed, epoch)
//! stream. It is **not** torch's `randperm` sequence (reproducing torch's generator is not
//! a goal), but everything around it is: the padded length, which positions repeat, which
//! rank gets which position, and the iteration count with `drop_last`.

use crate::error::ConfigError;
use crate::rng::{fisher_yates, shuffle_stream};

/// The order and shard of a dataset for one rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedSampler {
    len: usize,
    rank: usize,
    world_size: usize,
    shuffle: bool,
    seed: u64,
}

impl DistributedSampler {
    /// A sampler over `len` samples for `rank` of `world_size`; with `shuffle`, each epoch is
    /// permuted by the stream of (`seed`, epoch).
    pub fn new(
        len: usize,
        rank: usize,
        world_size: usize,
        shuffle: bool,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        if len == 0 {
            return Err(ConfigError::new("dataset", "has no samples"));
        }
        if world_size == 0 {
            return Err(ConfigError::new("world_size", "must be at least 1"));
        }
        if rank >= world_size {
            return Err(ConfigError::new(
                "rank",
                format!("{rank} is not below world_size {world_size}"),
            ));
        }
        Ok(Self {
            len,
            rank,
            world_size,
            shuffle,
            seed,
        })
    }

    /// Samples per rank per epoch: `ceil(len / world_size)`.
    pub fn num_samples(&self) -> usize {
        self.len.div_ceil(self.world_size)
    }

    /// Padded epoch length over all ranks: `num_samples * world_size`.
    pub fn total_size(&self) -> usize {
        self.num_samples() * self.world_size
    }

    /// The epoch's global order, padded to [`Self::total_size`] by repeating it from the
    /// start (position `p >= len` holds the sample of position `p % len`).
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        if self.shuffle {
            fisher_yates(&mut order, &mut shuffle_stream(self.seed, epoch));
        }
        let padding: Vec<usize> = (self.len..self.total_size())
            .map(|p| order[p % self.len])
            .collect();
        order.extend(padding);
        order
    }

    /// This rank's samples for `epoch`: positions `rank, rank + world_size, ...` of the
    /// padded order.
    pub fn indices(&self, epoch: u64) -> Vec<usize> {
        self.epoch_order(epoch)
            .into_iter()
            .skip(self.rank)
            .step_by(self.world_size)
            .collect()
    }
}

/// Batches per epoch: `floor(num_samples / batch_size)` with `drop_last`, else the ceiling.
pub fn iterations(num_samples: usize, batch_size: usize, drop_last: bool) -> usize {
    if drop_last {
        num_samples / batch_size
    } else {
        num_samples.div_ceil(batch_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_iterations_match_swav_table() {
        // docs/algorithm.md §4.2: 64 GPUs x 64 -> 312; 4 x 64 -> 5004; 1 x 64 -> 20018.
        for (world, batch, expected) in
            [(64, 64, 312), (4, 64, 5004), (1, 64, 20018), (8, 32, 5004)]
        {
            let s = DistributedSampler::new(1_281_167, 0, world, true, 0).expect("valid");
            assert_eq!(iterations(s.num_samples(), batch, true), expected);
        }
    }

    #[test]
    fn shards_cover_the_epoch_without_overlap_beyond_padding() {
        let world = 3;
        let mut all: Vec<usize> = (0..world)
            .flat_map(|rank| {
                DistributedSampler::new(10, rank, world, true, 5)
                    .expect("valid")
                    .indices(2)
            })
            .collect();
        assert_eq!(all.len(), 12);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn shuffle_depends_on_seed_and_epoch() {
        let s = DistributedSampler::new(100, 0, 1, true, 1).expect("valid");
        assert_eq!(s.indices(0), s.indices(0));
        assert_ne!(s.indices(0), s.indices(1));
        let t = DistributedSampler::new(100, 0, 1, true, 2).expect("valid");
        assert_ne!(s.indices(0), t.indices(0));
    }

    #[test]
    fn invalid_arguments_are_named() {
        let e = |r: Result<DistributedSampler, ConfigError>| r.map_err(|e| e.parameter).err();
        assert_eq!(
            e(DistributedSampler::new(0, 0, 1, true, 0)),
            Some("dataset".into())
        );
        assert_eq!(
            e(DistributedSampler::new(5, 0, 0, true, 0)),
            Some("world_size".into())
        );
        assert_eq!(
            e(DistributedSampler::new(5, 2, 2, true, 0)),
            Some("rank".into())
        );
    }
}
