//! [`MpiGradientThread`]: the CPU ranks' gradient buckets, summed on a communication thread
//! over a communicator of its own while backward goes on on the main thread.
//!
//! Each bucket is moved (not copied) to the thread as soon as backward completes it, summed
//! by one `MPI_Allreduce`, and handed back; after backward the step waits for all of them
//! and scales each once. The main thread's batch norms keep all-reducing their statistics on
//! their own communicator meanwhile, which needs MPI_THREAD_MULTIPLE; without it, buckets
//! are summed on the main thread as backward completes them (no overlap).
//!
//! `SWAV_OVERLAP_GRADIENTS=0` turns the thread off ([`MpiBlockingBuckets`]: buckets summed on
//! the main thread).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result};
use swav_core::Collective;
use swav_cpu::CpuBackend;
use swav_train::{BucketTransport, GradientCommunication, StepFailure};

use super::gradient_timeline::GradientTimeline;
use super::mpi::{MpiCollective, MpiError};
use super::overlap::overlap_requested;

/// A bucket on its way to the thread.
struct Job {
    index: usize,
    data: Vec<f32>,
}

/// A bucket on its way back, summed (or not) over the ranks.
struct Done {
    index: usize,
    data: Vec<f32>,
    result: Result<(), MpiError>,
    started: Instant,
    ended: Instant,
}

/// Sums gradient buckets over the ranks of an MPI job on a thread of its own.
pub struct MpiGradientThread {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    worker: Option<JoinHandle<()>>,
    /// Buckets sent and not yet back.
    in_flight: usize,
    timeline: Option<GradientTimeline>,
}

impl MpiGradientThread {
    /// Starts the thread on a private copy of `world`'s communicator (a collective call:
    /// every rank makes one).
    pub fn start(world: &MpiCollective, timeline: Option<GradientTimeline>) -> Result<Self> {
        let size = <MpiCollective as Collective<[f32]>>::world_size(world);
        let comm = world.split_groups(size)?;
        let (jobs, inbox) = channel::<Job>();
        let (outbox, done) = channel();
        let worker = std::thread::Builder::new()
            .name("gradient-allreduce".into())
            .spawn(move || {
                for Job { index, mut data } in inbox {
                    let started = Instant::now();
                    let result = comm.all_reduce_sum(&mut data[..]);
                    let ended = Instant::now();
                    let reply = Done {
                        index,
                        data,
                        result,
                        started,
                        ended,
                    };
                    if outbox.send(reply).is_err() {
                        break;
                    }
                }
            })
            .context("starting the gradient communication thread")?;
        Ok(Self {
            jobs: Some(jobs),
            done,
            worker: Some(worker),
            in_flight: 0,
            timeline,
        })
    }
}

fn thread_lost() -> StepFailure {
    StepFailure::Collective("the gradient communication thread ended".into())
}

impl BucketTransport<CpuBackend> for MpiGradientThread {
    fn begin(&mut self) -> Result<(), StepFailure> {
        if let Some(t) = &mut self.timeline {
            t.begin();
        }
        Ok(())
    }

    fn launch(
        &mut self,
        _: &mut CpuBackend,
        index: usize,
        bucket: &mut Vec<f32>,
    ) -> Result<(), StepFailure> {
        let data = std::mem::take(bucket);
        if let Some(t) = &mut self.timeline {
            t.ready(index, data.len());
        }
        let jobs = self.jobs.as_ref().ok_or_else(thread_lost)?;
        jobs.send(Job { index, data }).map_err(|_| thread_lost())?;
        self.in_flight += 1;
        Ok(())
    }

    fn wait_all(
        &mut self,
        _: &mut CpuBackend,
        buckets: &mut [Vec<f32>],
    ) -> Result<(), StepFailure> {
        if let Some(t) = &mut self.timeline {
            t.backward_ended();
        }
        while self.in_flight > 0 {
            let done = self.done.recv().map_err(|_| thread_lost())?;
            self.in_flight -= 1;
            done.result
                .map_err(|e| StepFailure::Collective(e.to_string()))?;
            buckets[done.index] = done.data;
            if let Some(t) = &mut self.timeline {
                t.reduced(done.index, done.started, done.ended);
            }
        }
        write_timeline(&mut self.timeline);
        Ok(())
    }
}

/// Writes the step's timeline, if one is kept; after a failure, stops keeping it.
fn write_timeline(timeline: &mut Option<GradientTimeline>) {
    if let Some(t) = timeline
        && let Err(e) = t.write()
    {
        crate::say!("warning: {e:#}; no more gradient timelines are written");
        *timeline = None;
    }
}

/// Sums each gradient bucket on the main thread as soon as backward completes it (no
/// overlap: backward waits), keeping the same timeline as [`MpiGradientThread`].
pub struct MpiBlockingBuckets {
    comm: MpiCollective,
    timeline: Option<GradientTimeline>,
}

impl BucketTransport<CpuBackend> for MpiBlockingBuckets {
    fn begin(&mut self) -> Result<(), StepFailure> {
        if let Some(t) = &mut self.timeline {
            t.begin();
        }
        Ok(())
    }

    fn launch(
        &mut self,
        _: &mut CpuBackend,
        index: usize,
        bucket: &mut Vec<f32>,
    ) -> Result<(), StepFailure> {
        if let Some(t) = &mut self.timeline {
            t.ready(index, bucket.len());
        }
        let started = Instant::now();
        self.comm
            .all_reduce_sum(&mut bucket[..])
            .map_err(|e| StepFailure::Collective(e.to_string()))?;
        if let Some(t) = &mut self.timeline {
            t.reduced(index, started, Instant::now());
        }
        Ok(())
    }

    fn wait_all(&mut self, _: &mut CpuBackend, _: &mut [Vec<f32>]) -> Result<(), StepFailure> {
        if let Some(t) = &mut self.timeline {
            t.backward_ended();
        }
        write_timeline(&mut self.timeline);
        Ok(())
    }
}

impl Drop for MpiGradientThread {
    fn drop(&mut self) {
        self.jobs = None;
        // A thread still inside MPI_Allreduce (a failed step) may never return: leave it
        // to the process's exit rather than wait.
        if self.in_flight == 0
            && let Some(worker) = self.worker.take()
        {
            let _ = worker.join();
        }
    }
}

/// How the CPU ranks of `world` average gradients: buckets of `bucket_cap_mb` MiB, summed
/// on the communication thread unless `SWAV_OVERLAP_GRADIENTS=0` or the MPI library does not
/// provide MPI_THREAD_MULTIPLE (then on the main thread, during backward); either keeps the
/// `SWAV_GRADIENT_TIMELINE` it asks for.
pub fn cpu_gradient_communication(
    world: &MpiCollective,
    bucket_cap_mb: usize,
) -> Result<GradientCommunication<CpuBackend>> {
    let rank = <MpiCollective as Collective<[f32]>>::rank(world);
    let overlap = overlap_requested(false)?;
    let timeline = GradientTimeline::from_env(rank)?;
    let transport: Box<dyn BucketTransport<CpuBackend>> = if overlap && world.thread_multiple() {
        Box::new(MpiGradientThread::start(world, timeline)?)
    } else {
        if overlap && rank == 0 {
            crate::say!(
                "the MPI library does not provide MPI_THREAD_MULTIPLE: gradient buckets are summed on the main thread, without overlapping backward"
            );
        }
        Box::new(MpiBlockingBuckets {
            comm: world.clone(),
            timeline,
        })
    };
    Ok(GradientCommunication {
        bucket_cap_mb,
        transport: Some(transport),
    })
}
