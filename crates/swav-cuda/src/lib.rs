//! # swav-cuda: the SwAV backend for NVIDIA GPUs
//!
//! [`CudaBackend`] runs a SwAV training step on one GPU: the ResNet trunk's convolutions
//! through cuDNN, the projection head's products and the prototype scores through cuBLAS,
//! and everything else (batch norm with fused ReLU and residual add, pooling, L2
//! normalisation, Sinkhorn, the loss, the LARS/SGD update of all parameters) through CUDA C++
//! kernels compiled at run time with NVRTC. It implements
//! [`swav_core::HeadOps<f32>`], so `swav-core`'s Sinkhorn, loss, queue and LARS run on it
//! unchanged, and [`swav_nn::Backend`], so the model and the training step of `swav-cli` do
//! (a forwarding layer over inherent methods with the trait's names and semantics). [`NcclCollective`] is `swav_core::Collective`
//! over NCCL, for SyncBN, Sinkhorn and gradient all-reduces across GPUs.
//! [`ActivationOps::stage_inputs`](swav_nn::ActivationOps::stage_inputs) copies the next input batch through pinned memory and a copy
//! stream while the current step computes, and [`CudaBackend::start_profiling`] times every
//! operation to show where a step's GPU time goes ([`ProfileReport`]).
//!
//! Built on [cudarc] 0.19 with dynamic loading: building needs no CUDA at all, and the
//! libraries are looked up at run time (`scripts/gpu-env.sh` sets the search path for
//! NVIDIA's pip wheels).
//!
//! ## Without a GPU
//!
//! Nothing in this crate panics for lack of CUDA. [`CudaBackend::new`] returns
//! [`CudaError::NoDriver`] when the driver library cannot be loaded and
//! [`CudaError::NoDevice`] when it sees no GPU; a missing cuBLAS, cuDNN or NCCL is a
//! [`CudaError::MissingLibrary`] at its first use. [`LibraryStatus::probe`] reports what is
//! loadable. The crate's GPU tests print why they skip on such a machine
//! (`SWAV_REQUIRE_GPU=1` turns the skip into a failure). The kernels themselves compile
//! without a GPU: [`nvrtc::compile_all`] only needs NVRTC and the CUDA headers, which is how
//! CI checks every kernel for `sm_90` (`tests/nvrtc_compile.rs`, `scripts/ci/install-nvrtc.sh`).
//!
//! ## Precision
//!
//! [`Precision::MixedBf16`] (the default) follows the project's convention
//! (docs/architecture.md §6), the equivalent of PyTorch's bf16 autocast:
//! * activations and their gradients are bf16 ([`ActivationOps::alloc_activation`](swav_nn::ActivationOps::alloc_activation));
//! * convolutions and the head's linear layers multiply bf16 activations by bf16 copies of
//!   the weights with f32 accumulation (tensor cores); the copies live with their f32
//!   master weights and are refreshed by the optimiser kernel that updates the masters;
//! * master weights, gradients of parameters, momentum, batch-norm statistics (all sums in
//!   f32), the prototype scores `z·Wᵀ` (an f32 product), Sinkhorn and the loss are f32;
//! * every kernel widens to f32 for its arithmetic and rounds once when it stores bf16.
//!
//! [`Precision::F32`] keeps everything in f32 with TF32 disabled (cuBLAS default math,
//! cuDNN FMA math): the configuration that is compared with the CPU backend at f32
//! tolerances. Head kernels mirror `swav_core::SliceOps` operation for operation and are
//! compiled without fused multiply-adds; `--use_fast_math` is used nowhere (every kernel
//! here is memory-bound, so it would cost accuracy for no speed).
//!
//! Results are deterministic: reductions split work by shape only and combine partial
//! results in a fixed order (no floating-point atomics), the max-pool backward gathers
//! instead of scattering, and cuDNN is restricted to deterministic algorithms
//! ([`ConvPolicy::deterministic`]; `SWAV_CUDNN_ALGOS=fastest` lifts that, and
//! `SWAV_CUDNN_SEARCH=heuristic` skips the timed search, and `SWAV_CUDNN_STEM=padded` pads
//! the 3-channel stem to 8 channels; see [`ConvPolicy::from_env`]).
//!
//! ## Memory
//!
//! Buffers come from the device's stream-ordered memory pool on the compute stream, whose
//! release threshold is raised so freed memory stays in the pool: after the first step,
//! allocation is a pool lookup and temporaries can be dropped as soon as their kernels are
//! enqueued. Library workspaces are allocated once and only grow: cuDNN's is shared by all
//! convolutions and sized to the largest chosen algorithm (at most
//! [`ConvPolicy::workspace_limit`]), cuBLAS gets a fixed 32 MiB, and reductions share one
//! scratch area. [`CudaBackend::memory_report`] shows what is held.
//!
//! ## Kernels
//!
//! `kernels/*.cu` (CUDA C++, one concept per file, sharing `prelude.cuh`), compiled by NVRTC
//! to a CUBIN for the device's architecture (and PTX, loaded only if the driver refuses the
//! CUBIN), either ahead of time into a folder carried to the GPU machine ([`kernel_dir`],
//! `swav-cuda-kernels`) or once per process at start, modules in parallel:
//!
//! | module | kernels |
//! |---|---|
//! | `elementwise` | fill, f32↔bf16 conversion (and copy with offsets), scale, axpy, ReLU backward, zero-padding of channels and adding back the leading ones (the padded stem) |
//! | `reduction` | whole-buffer sum, max, min, sum of squares, non-finite count, accumulated dot |
//! | `head` | Sinkhorn's exp, row/column sums and divisions, row L2 normalisation, stable log-softmax, the log-domain Sinkhorn primitives |
//! | `lars` | SGD-momentum step of one tensor; multi-tensor LARC norms + scaling and update |
//! | `batch_norm` | NHWC statistics (f64 sums, shifted by the running mean), finalise (running stats), frozen, apply + residual + ReLU, backward reduce and apply (with the ReLU mask) |
//! | `pool` | max pool 3×3/2/1 (any window) forward, argmax and gathering backward; global average pool forward/backward |
//! | `l2_normalize` | `F.normalize` forward and backward |
//! | `linear` | bias epilogue of the f32 product, bias gradient |
//!
//! Element-wise kernels take any mix of f32 and bf16 buffers (the element types are part of
//! the kernel's name); the batch-norm element-wise kernels also have 8-wide vectorised forms
//! for the all-f32 and all-bf16 cases.
//!
//! ## On a GPU machine, in one call
//!
//! ```text
//! scripts/gpu-build.sh                                                       # here: gpu-carry/
//! run(command="bash scripts/gpu-run.sh", carry=["gpu-carry"], timeout_s=420)  # the device tool
//! ```
//!
//! `gpu-run.sh` runs the probe, the conformance and training-shape checks, one f32 step and a
//! determinism check, `swav bench --device cuda` against the PyTorch baseline, the ResNet-50
//! loss check, head operations and staging, and NCCL, in stages with their own time caps,
//! stopping at the first failure, into at most 8 files (`docs/gpu-visit.md`).
//!
//! ## Still to be done on a GPU
//!
//! This crate was written and compiled without access to a GPU. Every code path is
//! complete, but none has run on one yet: the stages of `gpu-run.sh` are the first things to
//! run on the GPU machine, followed by tuning (the batch-norm kernels' per-channel scale and
//! shift and the column-reduction tiling of their statistics, fusion of the statistics into
//! the convolution epilogue through cuDNN's graph API, CUDA graphs for the whole step).

mod activation;
mod backend;
mod batch_norm;
mod blas;
mod buffer;
mod context;
mod conv;
mod conv_policy;
mod cudnn;
mod dtype;
mod error;
mod head_ops;
pub mod kernel_dir;
mod kernels;
mod l2_normalize;
mod lars;
mod libraries;
mod linear;
mod memory;
mod nccl;
mod nccl_bucket_stream;
pub mod nvrtc;
mod pool;
mod profile;
mod raw_view;
mod reduction;
mod shapes;

pub use backend::{CudaBackend, CudaConfig, MemoryReport};
pub use buffer::CudaBuffer;
pub use context::{DeviceInfo, device_count};
pub use conv_policy::{ALGOS_ENV, AlgorithmSearch, ConvPolicy, SEARCH_ENV, STEM_ENV};
pub use dtype::{DType, Precision};
pub use error::CudaError;
pub use libraries::{LibraryStatus, LibraryVersions, files_outside, loaded_library_files};
pub use nccl::{NcclCollective, NcclId};
pub use nccl_bucket_stream::NcclBucketStream;
pub use profile::{OpCategory, OpTime, ProfileReport};
pub use shapes::{Conv2dShape, Pool2dShape};
pub use swav_core::LarsParam;
pub use swav_nn::{StatsOutput, batch_norm_saved_len, batch_norm_stats_len};
