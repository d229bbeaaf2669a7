//! [`NcclCollective`]: `swav_core::Collective` over NCCL, for data-parallel training with one
//! process per GPU.
//!
//! The communicator runs on the backend's compute stream, so an all-reduce is ordered with
//! the kernels before and after it without any synchronisation: SyncBN statistics, the
//! Sinkhorn sums and maxima, and the gradients are reduced in place where they lie.
//!
//! Setting up a job: rank 0 creates an [`NcclId`] and sends its 128 bytes to every other
//! rank (the launcher's rendezvous: a file, TCP at `MASTER_ADDR:MASTER_PORT`, MPI); every
//! rank then calls [`NcclCollective::new`] with the same id. A single-process job uses
//! [`NcclCollective::single`], which exercises the same code path with a world of one.

use std::ffi::c_char;

use cudarc::nccl::{Comm, Id, ReduceOp};
use swav_core::Collective;

use crate::buffer::Storage;
use crate::libraries::require_nccl;
use crate::{CudaBackend, CudaBuffer, CudaError};

/// The unique id that names one NCCL job; rank 0 makes it, every rank joins with it.
#[derive(Debug, Clone, Copy)]
pub struct NcclId(pub(crate) Id);

impl NcclId {
    /// A new id (rank 0). Needs the NCCL library, not a GPU.
    pub fn new() -> Result<Self, CudaError> {
        require_nccl()?;
        Ok(Self(Id::new().map_err(CudaError::nccl("unique id"))?))
    }

    /// The 128 bytes to send to the other ranks.
    pub fn to_bytes(&self) -> [u8; 128] {
        self.0.internal().map(|c| c as u8)
    }

    /// The id received from rank 0.
    pub fn from_bytes(bytes: [u8; 128]) -> Self {
        Self(Id::uninit(bytes.map(|b| b as c_char)))
    }
}

/// All-reduces between the GPUs of a data-parallel job, on [`CudaBuffer`]s.
#[derive(Debug)]
pub struct NcclCollective {
    comm: Comm,
}

impl NcclCollective {
    /// Joins the job named by `id` as `rank` of `world_size`, on `backend`'s GPU and stream.
    /// Blocks until every rank has joined.
    pub fn new(
        backend: &CudaBackend,
        rank: usize,
        world_size: usize,
        id: &NcclId,
    ) -> Result<Self, CudaError> {
        require_nccl()?;
        assert!(
            rank < world_size,
            "NCCL rank {rank} is not below the world size {world_size}"
        );
        backend.context().bind_to_thread()?;
        let comm = Comm::from_rank(backend.stream().clone(), rank, world_size, id.0)
            .map_err(CudaError::nccl("communicator init"))?;
        Ok(Self { comm })
    }

    /// A job of one rank (every reduction is the identity, computed by NCCL).
    pub fn single(backend: &CudaBackend) -> Result<Self, CudaError> {
        Self::new(backend, 0, 1, &NcclId::new()?)
    }

    /// Sums each buffer over all ranks in place, as one NCCL group (one launch sequence for
    /// all gradients of a step, instead of one collective per tensor).
    pub fn all_reduce_sum_many(&self, buffers: &mut [&mut CudaBuffer]) -> Result<(), CudaError> {
        cudarc::nccl::group_start().map_err(CudaError::nccl("group start"))?;
        let reduced: Result<(), CudaError> = buffers
            .iter_mut()
            .try_for_each(|b| self.reduce(b, &ReduceOp::Sum));
        let ended = cudarc::nccl::group_end()
            .map(|_| ())
            .map_err(CudaError::nccl("group end"));
        reduced.and(ended)
    }

    fn reduce(&self, data: &mut CudaBuffer, op: &ReduceOp) -> Result<(), CudaError> {
        self.comm.context().bind_to_thread()?;
        match data.storage_mut() {
            Storage::F32(slice) => self.comm.all_reduce_in_place(slice, op),
            Storage::Bf16(slice) => self.comm.all_reduce_in_place(slice, op),
        }
        .map(|_| ())
        .map_err(CudaError::nccl("all-reduce"))
    }
}

impl Collective<CudaBuffer> for NcclCollective {
    type Error = CudaError;

    fn rank(&self) -> usize {
        self.comm.rank()
    }

    fn world_size(&self) -> usize {
        self.comm.world_size()
    }

    fn all_reduce_sum(&self, data: &mut CudaBuffer) -> Result<(), CudaError> {
        self.reduce(data, &ReduceOp::Sum)
    }

    fn all_reduce_max(&self, data: &mut CudaBuffer) -> Result<(), CudaError> {
        self.reduce(data, &ReduceOp::Max)
    }
}
