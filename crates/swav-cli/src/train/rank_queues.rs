//! Every rank's queue in one checkpoint. Each rank holds its own queue of past embeddings
//! (the official code saves `queue<rank>.pth` per rank); a checkpoint stores all of them as
//! one tensor `[world, assignment crops, rows per rank, dim]`, so a resumed run hands each
//! rank back exactly the queue it had.
//!
//! Saving gathers the queues to every rank with one all-reduce of a zero-padded buffer in
//! which each rank fills its own slice (a sum with zeros is exact), since the collectives
//! offer only reductions.

use anyhow::{Result, anyhow};
use swav_core::{Collective, FeatureQueue};
use swav_nn::Backend;

/// Every rank's queue on the host, laid out `[rank][crop][row][dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RankQueues {
    /// The values, rank after rank.
    pub values: Vec<f32>,
    /// `[world, crops, rows, dim]`.
    pub shape: [usize; 4],
}

impl RankQueues {
    /// Gathers `queue` (this rank's) from every rank of `comm`; every rank must call it.
    pub fn gather<B, C>(b: &mut B, comm: &C, queue: &FeatureQueue<B::Buf>) -> Result<Self>
    where
        B: Backend,
        C: Collective<B::Buf>,
    {
        let dev = |e: B::Error| anyhow!("gathering the queues: {e}");
        let mine = queue.to_host(b).map_err(dev)?;
        let (world, rank) = (comm.world_size(), comm.rank());
        let shape = [world, queue.assignment_crops(), queue.rows(), queue.dim()];
        if world == 1 {
            return Ok(Self {
                values: mine,
                shape,
            });
        }
        let len = mine.len();
        let mut all = b.zeros(world * len).map_err(dev)?;
        b.upload(&mine, &mut all, rank * len).map_err(dev)?;
        comm.all_reduce_sum(&mut all)
            .map_err(|e| anyhow!("gathering the queues: {e}"))?;
        let mut values = vec![0.0f32; world * len];
        b.download(&all, 0, &mut values).map_err(dev)?;
        Ok(Self { values, shape })
    }

    /// Rank `rank`'s queue (`[crop][row][dim]`) and its shape `[crops, rows, dim]`.
    pub fn rank(&self, rank: usize) -> Option<(&[f32], [usize; 3])> {
        let [world, crops, rows, dim] = self.shape;
        let len = crops * rows * dim;
        (rank < world).then(|| {
            (
                &self.values[rank * len..(rank + 1) * len],
                [crops, rows, dim],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swav_core::ThreadGroup;
    use swav_cpu::CpuBackend;

    #[test]
    fn every_rank_gets_every_queue_bit_for_bit() {
        let group = ThreadGroup::new(3, std::time::Duration::from_secs(30));
        let gathered: Vec<RankQueues> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .into_iter()
                .enumerate()
                .map(|(rank, member)| {
                    s.spawn(move || {
                        let mut b = CpuBackend::new();
                        let values: Vec<f32> = (0..2 * 4 * 3)
                            .map(|i| (rank * 100 + i) as f32 * -0.37)
                            .collect();
                        let q = FeatureQueue::from_host(&mut b, &values, 2, 4, 3, 2).unwrap();
                        RankQueues::gather(&mut b, &member, &q).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for g in &gathered {
            assert_eq!(g.shape, [3, 2, 4, 3]);
            for rank in 0..3 {
                let (values, shape) = g.rank(rank).unwrap();
                assert_eq!(shape, [2, 4, 3]);
                let expected: Vec<f32> = (0..24).map(|i| (rank * 100 + i) as f32 * -0.37).collect();
                assert_eq!(values, &expected[..], "rank {rank}");
            }
            assert!(g.rank(3).is_none());
        }
    }
}
