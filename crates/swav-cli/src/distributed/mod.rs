//! Running as one of several processes: the CPU transport (MPI), the rendezvous that hands
//! rank 0's NCCL id to the others, and the gradient buckets' transports.

pub mod gradient_thread;
pub mod gradient_timeline;
pub mod mpi;
pub mod nccl;
pub mod nccl_gradient_stream;
pub mod overlap;
pub mod rendezvous;
