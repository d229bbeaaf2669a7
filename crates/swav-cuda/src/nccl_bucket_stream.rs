//! [`NcclBucketStream`]: gradient buckets summed by NCCL on a stream of their own, ordered
//! with the compute stream by events, so that communication overlaps the rest of backward.
//!
//! For each bucket: an event recorded on the compute stream once the bucket's copies are
//! enqueued; the communication stream waits for it, runs the all-reduce on a communicator of
//! its own, and records a second event; after backward the compute stream waits for every
//! second event before it reads the sums. The host never blocks.
//!
//! The batch norms keep reducing on the all-ranks communicator of the compute stream, so two
//! communicators run at once. Every rank enqueues their collectives in the same program
//! order, which is what NCCL asks of concurrent communicators.

use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaStream};
use cudarc::nccl::{Comm, ReduceOp};
use swav_core::{BufferOps, Collective};

use crate::buffer::Storage;
use crate::{CudaBackend, CudaBuffer, CudaError, NcclCollective, NcclId};

/// Bytes of an NCCL unique id.
const ID_BYTES: usize = 128;

/// Sums gradient buckets over the ranks of a job on a communication stream.
#[derive(Debug)]
pub struct NcclBucketStream {
    comm: Comm,
    stream: Arc<CudaStream>,
    /// Per bucket, recorded on the compute stream when the bucket is complete.
    complete: Vec<CudaEvent>,
    /// Per bucket, recorded on the communication stream after its all-reduce.
    reduced: Vec<CudaEvent>,
    /// Buckets launched since the last [`Self::join`].
    launched: usize,
}

impl NcclBucketStream {
    /// A communicator over the ranks of `world` on a new stream of `backend`'s GPU. Every
    /// rank calls it: rank 0's new NCCL id reaches the others through one all-reduce on
    /// `world` (the id's bytes as floats, zeros elsewhere).
    pub fn new(backend: &mut CudaBackend, world: &NcclCollective) -> Result<Self, CudaError> {
        let (rank, size) = (world.rank(), world.world_size());
        let mut values = [0.0f32; ID_BYTES];
        if rank == 0 {
            let id = NcclId::new()?;
            for (v, byte) in values.iter_mut().zip(id.to_bytes()) {
                *v = f32::from(byte);
            }
        }
        let mut shared = backend.zeros(ID_BYTES)?;
        backend.upload(&values, &mut shared, 0)?;
        world.all_reduce_sum(&mut shared)?;
        backend.download(&shared, 0, &mut values)?;
        let bytes = values.map(|v| v as u8);
        let stream = backend.context().new_stream()?;
        let comm = Comm::from_rank(stream.clone(), rank, size, NcclId::from_bytes(bytes).0)
            .map_err(CudaError::nccl("gradient communicator init"))?;
        Ok(Self {
            comm,
            stream,
            complete: Vec::new(),
            reduced: Vec::new(),
            launched: 0,
        })
    }

    /// Starts summing `bucket` over all ranks once the work enqueued so far on the compute
    /// stream (the copies that filled it) is done.
    pub fn launch(
        &mut self,
        backend: &CudaBackend,
        bucket: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let k = self.launched;
        if k == self.complete.len() {
            let ctx = backend.context();
            let flags = Some(CUevent_flags::CU_EVENT_DISABLE_TIMING);
            self.complete.push(ctx.new_event(flags)?);
            self.reduced.push(ctx.new_event(flags)?);
        }
        self.complete[k].record(backend.stream())?;
        self.stream.wait(&self.complete[k])?;
        self.comm.context().bind_to_thread()?;
        match bucket.storage_mut() {
            Storage::F32(slice) => self.comm.all_reduce_in_place(slice, &ReduceOp::Sum),
            Storage::Bf16(slice) => self.comm.all_reduce_in_place(slice, &ReduceOp::Sum),
        }
        .map_err(CudaError::nccl("bucket all-reduce"))?;
        self.reduced[k].record(&self.stream)?;
        self.launched += 1;
        Ok(())
    }

    /// Makes the compute stream wait for every bucket launched since the last call.
    pub fn join(&mut self, backend: &CudaBackend) -> Result<(), CudaError> {
        for reduced in &self.reduced[..self.launched] {
            backend.stream().wait(reduced)?;
        }
        self.launched = 0;
        Ok(())
    }
}
