//! The training loop's own collectives, beside the step's: after each step the ranks agree
//! on a stop (a signal, a collapse decision), at a logged step they total their counters,
//! and around a checkpoint they wait for rank 0 to have written it.

use anyhow::{Result, anyhow};
use swav_core::Collective;
use swav_nn::Backend;

use super::preemption;

/// What the ranks agreed on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// Some rank received SIGTERM or SIGUSR1.
    pub signal: bool,
    /// Rank 0's collapse decision: a [`Remedy::code`](super::collapse_escape::Remedy::code),
    /// [`STOP_ON_COLLAPSE`](super::step_log::STOP_ON_COLLAPSE), or 0.
    pub collapse: u8,
}

/// What each rank contributes to a logged step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankTotals {
    /// Images skipped so far (summed over ranks).
    pub skipped_files: usize,
    /// Milliseconds per step waiting for data (averaged over ranks).
    pub data_ms: f64,
}

/// Small device buffers for the loop's own collectives (stop agreement, barrier, totals).
pub struct RankScratch<B: Backend> {
    one: B::Buf,
    two: B::Buf,
}

impl<B: Backend> RankScratch<B> {
    /// The two buffers, zeroed.
    pub fn new(b: &mut B) -> Result<Self, B::Error> {
        Ok(Self {
            one: b.zeros(1)?,
            two: b.zeros(2)?,
        })
    }

    /// What every rank agrees on after a step: whether any rank got a stop signal, and the
    /// largest collapse decision (rank 0 makes it; the others pass 0). One all-reduce of
    /// two values with more than one rank.
    pub fn agree<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        comm: &C,
        collapse: u8,
    ) -> Result<Agreement> {
        let mine = Agreement {
            signal: preemption::received().is_some(),
            collapse,
        };
        if comm.world_size() == 1 {
            return Ok(mine);
        }
        let dev = |e: B::Error| anyhow!("agreeing on a stop: {e}");
        let values = [f32::from(u8::from(mine.signal)), f32::from(mine.collapse)];
        b.upload(&values, &mut self.two, 0).map_err(dev)?;
        comm.all_reduce_max(&mut self.two)
            .map_err(|e| anyhow!("agreeing on a stop: {e}"))?;
        let mut all = [0.0f32; 2];
        b.download(&self.two, 0, &mut all).map_err(dev)?;
        Ok(Agreement {
            signal: all[0] > 0.0,
            collapse: all[1] as u8,
        })
    }

    /// Returns once every rank has called it.
    pub fn barrier<C: Collective<B::Buf>>(&mut self, comm: &C) -> Result<()> {
        if comm.world_size() > 1 {
            comm.all_reduce_sum(&mut self.one)
                .map_err(|e| anyhow!("waiting for the checkpoint to be written: {e}"))?;
        }
        Ok(())
    }

    /// The job's totals of every rank's `mine`.
    pub fn totals<C: Collective<B::Buf>>(
        &mut self,
        b: &mut B,
        comm: &C,
        mine: RankTotals,
    ) -> Result<RankTotals> {
        let world = comm.world_size();
        if world == 1 {
            return Ok(mine);
        }
        let dev = |e: B::Error| anyhow!("summing the ranks' counters: {e}");
        b.upload(
            &[mine.skipped_files as f32, mine.data_ms as f32],
            &mut self.two,
            0,
        )
        .map_err(dev)?;
        comm.all_reduce_sum(&mut self.two)
            .map_err(|e| anyhow!("summing the ranks' counters: {e}"))?;
        let mut sums = [0.0f32; 2];
        b.download(&self.two, 0, &mut sums).map_err(dev)?;
        Ok(RankTotals {
            skipped_files: sums[0] as usize,
            data_ms: sums[1] as f64 / world as f64,
        })
    }
}
