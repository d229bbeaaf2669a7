//! Running as one of several processes: the CPU transport (MPI) and the rendezvous that
//! hands rank 0's NCCL id to the others.

pub mod gradient_thread;
pub mod gradient_timeline;
pub mod mpi;
pub mod nccl;
pub mod rendezvous;
