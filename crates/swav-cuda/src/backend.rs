//! [`CudaBackend`]: one GPU, its compute stream, kernels, library handles and workspaces.

use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaStream};
use half::bf16;

use crate::activation::BatchUploader;
use crate::blas::Blas;
use crate::buffer::CopyState;
use crate::context::{Device, DeviceInfo};
use crate::conv_policy::ConvPolicy;
use crate::cudnn::ConvEngine;
use crate::kernels::{KernelArg, Kernels, len_arg};
use crate::lars::LarsTable;
use crate::memory::{Workspace, pool_usage, reset_pool_peak};
use crate::profile::Profiler;
use crate::raw_view::RawView;
use crate::reduction::ReductionScratch;
use crate::{CudaBuffer, CudaError, DType, Precision};

/// How a [`CudaBackend`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CudaConfig {
    /// Activation storage and product precision (bf16 mixed precision by default).
    pub precision: Precision,
    /// How convolution algorithms are chosen.
    pub convolution: ConvPolicy,
}

impl CudaConfig {
    /// The default configuration with the convolution policy of the environment
    /// ([`ConvPolicy::from_env`]).
    pub fn from_env() -> Result<Self, CudaError> {
        Ok(Self {
            convolution: ConvPolicy::from_env()?,
            ..Self::default()
        })
    }
}

/// The SwAV operations on one NVIDIA GPU.
///
/// It implements [`swav_core::HeadOps<f32>`] (Sinkhorn, the loss, prototype normalisation,
/// the optimiser) and the model operations of the `swav-nn` `Backend` trait (convolutions,
/// batch norm, pooling, linear layers, L2 normalisation) as inherent methods with the trait's
/// names and semantics. All work is enqueued on one compute stream; a method returns once
/// its work is enqueued, and only methods that hand a value to the host (`download`,
/// `sum_squares`, `count_non_finite`, [`synchronize`](Self::synchronize)) wait for the GPU.
/// Input batches can also travel on a second stream ([`stage_inputs`](swav_nn::ActivationOps::stage_inputs)),
/// and an opt-in profiling mode ([`start_profiling`](Self::start_profiling)) reports where
/// the GPU time goes.
///
/// Creating one never panics: without a driver it returns [`CudaError::NoDriver`], without a
/// GPU [`CudaError::NoDevice`].
#[derive(Debug)]
pub struct CudaBackend {
    // Fields drop in declaration order: library handles and buffers before the context.
    pub(crate) uploader: Option<BatchUploader>,
    pub(crate) profiler: Option<Arc<Mutex<Profiler>>>,
    pub(crate) conv: Option<ConvEngine>,
    pub(crate) blas: Option<Blas>,
    pub(crate) conv_workspace: Workspace,
    pub(crate) reduction: ReductionScratch,
    pub(crate) lars: LarsTable,
    pub(crate) kernels: Kernels,
    pub(crate) config: CudaConfig,
    pub(crate) device: Device,
}

/// A snapshot of device memory use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReport {
    /// Free device memory, as the driver reports it.
    pub free_bytes: usize,
    /// Total device memory.
    pub total_bytes: usize,
    /// Memory the stream-ordered pool holds (buffers in use plus freed memory it keeps).
    pub pool_reserved_bytes: u64,
    /// Memory in live buffers (workspaces included).
    pub pool_used_bytes: u64,
    /// The most memory in live buffers at once since the backend opened or since
    /// [`CudaBackend::reset_memory_peak`].
    pub pool_peak_used_bytes: u64,
    /// The shared convolution workspace.
    pub conv_workspace_bytes: usize,
}

/// A buffer's contents in a requested element type: the buffer itself when it already has
/// that type, else a converted temporary that lives as long as this value.
pub(crate) struct Operand {
    pub(crate) ptr: u64,
    _temporary: Option<CudaBuffer>,
}

impl CudaBackend {
    /// Opens GPU `ordinal` with [`CudaConfig::from_env`]: bf16 mixed precision, and the
    /// convolution policy of `SWAV_CUDNN_ALGOS` / `SWAV_CUDNN_SEARCH` (by default
    /// deterministic algorithms chosen by an exhaustive timed search).
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        Self::with_config(ordinal, CudaConfig::from_env()?)
    }

    /// Opens GPU `ordinal`: creates the compute stream, keeps freed memory in the pool and
    /// compiles the kernels for the device's architecture (once per process).
    pub fn with_config(ordinal: usize, config: CudaConfig) -> Result<Self, CudaError> {
        let device = Device::open(ordinal)?;
        let kernels = Kernels::load(&device.ctx, &device.info.arch())?;
        let reduction = ReductionScratch::new(&device.stream)?;
        Ok(Self {
            uploader: None,
            profiler: None,
            conv: None,
            blas: None,
            conv_workspace: Workspace::default(),
            reduction,
            lars: LarsTable::default(),
            kernels,
            config,
            device,
        })
    }

    /// Opens GPU 0 with `config` for a test or a check that needs a GPU, or returns `None`
    /// after a `skipped: …` line on stderr where this machine has no driver or no GPU. It
    /// panics instead when `SWAV_REQUIRE_GPU=1` (where a GPU must be there), and whenever a
    /// GPU is there but the backend fails to open.
    pub fn open_gpu_0_or_skip(config: CudaConfig) -> Option<Self> {
        match Self::with_config(0, config) {
            Ok(backend) => Some(backend),
            Err(e @ (CudaError::NoDriver | CudaError::NoDevice { .. })) => {
                assert!(
                    std::env::var("SWAV_REQUIRE_GPU").as_deref() != Ok("1"),
                    "SWAV_REQUIRE_GPU=1 but no GPU is usable: {e}"
                );
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("the GPU is there but the backend failed to open: {e}"),
        }
    }

    /// What the GPU is.
    pub fn device_info(&self) -> &DeviceInfo {
        &self.device.info
    }

    /// The configuration this backend was opened with.
    pub fn config(&self) -> &CudaConfig {
        &self.config
    }

    /// The element type of activation buffers.
    pub fn activation_dtype(&self) -> DType {
        self.config.precision.activation_dtype()
    }

    /// The driver context (for callers that create their own streams or events).
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.device.ctx
    }

    /// The stream every operation of this backend is enqueued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.device.stream
    }

    /// Waits until all enqueued work has finished (staged input copies included), and
    /// reports any error it raised.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.device.ctx.synchronize()?;
        self.device.ctx.check_err()?;
        Ok(())
    }

    /// Allocates `len` zeros of element type `dtype`.
    pub fn alloc(&self, len: usize, dtype: DType) -> Result<CudaBuffer, CudaError> {
        let stream = &self.device.stream;
        Ok(match dtype {
            DType::F32 => CudaBuffer::from_f32(stream.alloc_zeros::<f32>(len)?),
            DType::Bf16 => CudaBuffer::from_bf16(stream.alloc_zeros::<bf16>(len)?),
        })
    }

    /// Device memory use now.
    pub fn memory_report(&self) -> Result<MemoryReport, CudaError> {
        let (free_bytes, total_bytes) = self.device.ctx.mem_get_info()?;
        let pool = pool_usage(&self.device.ctx)?;
        Ok(MemoryReport {
            free_bytes,
            total_bytes,
            pool_reserved_bytes: pool.reserved,
            pool_used_bytes: pool.used,
            pool_peak_used_bytes: pool.peak_used,
            conv_workspace_bytes: self.conv_workspace.size(),
        })
    }

    /// Restarts [`MemoryReport::pool_peak_used_bytes`] from the current use (to measure the
    /// peak of a steady-state step after warm-up).
    pub fn reset_memory_peak(&self) -> Result<(), CudaError> {
        reset_pool_peak(&self.device.ctx)
    }

    /// The convolution algorithms chosen so far, one line per shape and direction.
    pub fn convolution_algorithms(&self) -> Vec<String> {
        self.conv
            .as_ref()
            .map_or_else(Vec::new, ConvEngine::describe_choices)
    }

    // ----- crate-internal plumbing -----

    /// Launches a kernel with an explicit grid.
    pub(crate) fn launch(
        &self,
        name: &str,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        args: &[&dyn KernelArg],
    ) -> Result<(), CudaError> {
        self.kernels
            .launch(&self.device.stream, name, grid, block, args)
    }

    /// Launches an element-wise kernel over `n` elements.
    pub(crate) fn launch_1d(
        &self,
        name: &str,
        n: usize,
        args: &[&dyn KernelArg],
    ) -> Result<(), CudaError> {
        self.kernels.launch_1d(&self.device.stream, name, n, args)
    }

    /// `dst[..n] = src[..n]`, converting the element type.
    pub(crate) fn convert_raw(
        &self,
        src: RawView,
        dst: RawView,
        n: usize,
    ) -> Result<(), CudaError> {
        self.convert_on(&self.device.stream, src, dst, n)
    }

    /// [`convert_raw`](Self::convert_raw) on another stream of this device.
    pub(crate) fn convert_on(
        &self,
        stream: &CudaStream,
        src: RawView,
        dst: RawView,
        n: usize,
    ) -> Result<(), CudaError> {
        if n == 0 {
            return Ok(());
        }
        let name = format!("convert_{}_{}", src.dtype.suffix(), dst.dtype.suffix());
        self.kernels.launch_1d(
            stream,
            &name,
            n,
            &[
                &src.ptr,
                &len_arg(src.offset),
                &dst.ptr,
                &len_arg(dst.offset),
                &len_arg(n),
            ],
        )
    }

    /// `buf`'s first `len` elements as `dtype` (converted into a temporary when needed).
    pub(crate) fn operand(
        &self,
        buf: &CudaBuffer,
        dtype: DType,
        len: usize,
    ) -> Result<Operand, CudaError> {
        assert!(buf.len() >= len, "buffer of {} < {len} elements", buf.len());
        if buf.dtype() == dtype {
            return Ok(Operand {
                ptr: buf.ptr(),
                _temporary: None,
            });
        }
        let mut temporary = self.alloc_uninit(len, dtype)?;
        let ptr = temporary.ptr_mut();
        self.convert_raw(
            RawView::new(buf.ptr(), buf.dtype(), 0),
            RawView::new(ptr, dtype, 0),
            len,
        )?;
        Ok(Operand {
            ptr,
            _temporary: Some(temporary),
        })
    }

    /// A weight's contents for a product in `dtype`: the f32 master itself, or its bf16 copy
    /// (created on first use, refreshed when the master changed since it was made).
    pub(crate) fn weight(
        &self,
        w: &CudaBuffer,
        dtype: DType,
        len: usize,
    ) -> Result<Operand, CudaError> {
        assert!(w.len() >= len, "weight of {} < {len} elements", w.len());
        if w.dtype() == dtype || dtype == DType::F32 {
            return self.operand(w, dtype, len);
        }
        let copy = match w.bf16_copy() {
            CopyState::Current(ptr) => ptr,
            state => {
                let ptr = match state {
                    CopyState::Stale(ptr) => ptr,
                    _ => {
                        // SAFETY: filled by the conversion below before anything reads it.
                        let data = unsafe { self.device.stream.alloc::<bf16>(w.len().max(1)) }?;
                        w.install_bf16_copy(data)
                    }
                };
                self.convert_raw(
                    RawView::new(w.ptr(), DType::F32, 0),
                    RawView::new(ptr, DType::Bf16, 0),
                    w.len(),
                )?;
                ptr
            }
        };
        Ok(Operand {
            ptr: copy,
            _temporary: None,
        })
    }

    /// An uninitialised buffer for a temporary that is written before it is read.
    pub(crate) fn alloc_uninit(&self, len: usize, dtype: DType) -> Result<CudaBuffer, CudaError> {
        let stream = &self.device.stream;
        // SAFETY: every caller writes the buffer before reading it.
        unsafe {
            Ok(match dtype {
                DType::F32 => CudaBuffer::from_f32(stream.alloc::<f32>(len.max(1))?),
                DType::Bf16 => CudaBuffer::from_bf16(stream.alloc::<bf16>(len.max(1))?),
            })
        }
    }

    /// The cuBLAS handle, created on first use.
    pub(crate) fn blas(&mut self) -> Result<&Blas, CudaError> {
        if self.blas.is_none() {
            self.blas = Some(Blas::new(&self.device.stream)?);
        }
        Ok(self.blas.as_ref().expect("created above"))
    }

    /// Creates the cuDNN engine on first use.
    pub(crate) fn conv_engine(&mut self) -> Result<(), CudaError> {
        if self.conv.is_none() {
            self.conv = Some(ConvEngine::new(
                &self.device.stream,
                self.config.convolution,
            )?);
        }
        Ok(())
    }
}
