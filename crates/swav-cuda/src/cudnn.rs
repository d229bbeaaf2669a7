//! A thin wrapper over cuDNN's convolutions: NHWC tensors, OHWI (KRSC) filters, f32 compute.
//!
//! cudarc's safe cuDNN layer hides its handle and has no algorithm search by benchmark, so
//! this module drives `cudarc::cudnn::{result, sys}` directly, on one handle bound to the
//! backend's compute stream:
//!
//! * descriptors (input, output, filter, convolution) are built once per (shape, element
//!   type) and cached;
//! * the algorithm of each direction (forward, backward-data, backward-filter) is chosen once
//!   per shape, on its first call, either by timing every candidate on the real operands
//!   (`cudnnFind…AlgorithmEx`, PyTorch's `cudnn.benchmark = True`) or by cuDNN's heuristics
//!   (`cudnnGet…Algorithm_v7`), keeping only deterministic algorithms when asked to and only
//!   those whose workspace fits the limit (the policy: `conv_policy.rs`, settable with
//!   `SWAV_CUDNN_ALGOS` and `SWAV_CUDNN_SEARCH`);
//! * every call shares one workspace that grows to the largest chosen algorithm's need.
//!
//! bf16 data run with `CUDNN_TENSOR_OP_MATH` (tensor cores, f32 accumulation); f32 data with
//! `CUDNN_FMA_MATH`, which rules out TF32, and without FFT or Winograd algorithms, so the f32
//! configuration computes true f32 convolutions, exact to f32 rounding of direct sums.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cudnn::result as dnn;
use cudarc::cudnn::sys::{
    self, cudnnConvolutionBwdDataAlgo_t, cudnnConvolutionBwdFilterAlgo_t,
    cudnnConvolutionFwdAlgo_t, cudnnDataType_t, cudnnDeterminism_t, cudnnMathType_t, cudnnStatus_t,
    cudnnTensorFormat_t,
};
use cudarc::driver::{CudaStream, DevicePtr};

use crate::conv_policy::{AlgorithmSearch, ConvPolicy};
use crate::libraries::require_cudnn;
use crate::memory::Workspace;
use crate::{Conv2dShape, CudaError, DType};

/// The cuDNN handle, descriptor cache and algorithm cache of one backend.
#[derive(Debug)]
pub(crate) struct ConvEngine {
    handle: Handle,
    plans: HashMap<(Conv2dShape, DType), ConvPlan>,
    policy: ConvPolicy,
}

// SAFETY: cuDNN handles and descriptors may be used from any thread as long as calls are
// not concurrent; the engine is only reachable through `&mut` of its backend.
unsafe impl Send for ConvEngine {}

/// Pointers of one convolution call: input or output gradient, weight (or its gradient).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvOperands {
    /// Activation read by this direction: `x` (forward, backward-filter) or `dy`
    /// (backward-data).
    pub input: u64,
    /// The second operand: `w` (forward, backward-data) or `dy` (backward-filter).
    pub other: u64,
    /// The output: `y`, `dx` or `dw`.
    pub output: u64,
    /// `output = result + beta · output`.
    pub beta: f32,
}

impl ConvEngine {
    /// A handle on `stream` (cuDNN must be loadable).
    pub(crate) fn new(stream: &Arc<CudaStream>, policy: ConvPolicy) -> Result<Self, CudaError> {
        require_cudnn()?;
        stream.context().bind_to_thread()?;
        let handle = Handle(dnn::create_handle().map_err(CudaError::cudnn("create handle"))?);
        // SAFETY: the handle was just created; the stream outlives the engine (both belong
        // to the backend, which drops the engine first).
        unsafe { dnn::set_stream(handle.0, stream.cu_stream() as _) }
            .map_err(CudaError::cudnn("set stream"))?;
        Ok(Self {
            handle,
            plans: HashMap::new(),
            policy,
        })
    }

    /// `y = conv(x, w) + beta · y`.
    pub(crate) fn forward(
        &mut self,
        stream: &Arc<CudaStream>,
        workspace: &mut Workspace,
        shape: &Conv2dShape,
        dtype: DType,
        ops: ConvOperands,
    ) -> Result<(), CudaError> {
        let handle = self.handle.0;
        let policy = self.policy;
        let plan = plan_for(&mut self.plans, shape, dtype)?;
        let choice = match plan.forward {
            Some(c) => c,
            None => {
                let c = choose_forward(handle, plan, stream, shape, dtype, &ops, &policy)?;
                plan.forward = Some(c);
                c
            }
        };
        let (ws, ws_size) = workspace.ensure(stream, choice.workspace)?;
        let alpha = 1.0f32;
        // SAFETY: descriptors match the operands' shapes and element type (built from the
        // same shape and dtype); pointers are live device buffers of those sizes.
        unsafe {
            dnn::set_convolution_math_type(plan.conv.0, choice.math)
                .map_err(CudaError::cudnn("set math type"))?;
            dnn::convolution_forward(
                handle,
                scalar(&alpha),
                plan.x.0,
                ops.input as *const c_void,
                plan.w.0,
                ops.other as *const c_void,
                plan.conv.0,
                choice.algo,
                ws as *mut c_void,
                ws_size,
                scalar(&ops.beta),
                plan.y.0,
                ops.output as *mut c_void,
            )
        }
        .map_err(CudaError::cudnn("convolution forward"))
    }

    /// `dx = convᵀ(dy, w) + beta · dx`.
    pub(crate) fn backward_data(
        &mut self,
        stream: &Arc<CudaStream>,
        workspace: &mut Workspace,
        shape: &Conv2dShape,
        dtype: DType,
        ops: ConvOperands,
    ) -> Result<(), CudaError> {
        let handle = self.handle.0;
        let policy = self.policy;
        let plan = plan_for(&mut self.plans, shape, dtype)?;
        let choice = match plan.backward_data {
            Some(c) => c,
            None => {
                let c = choose_backward_data(handle, plan, stream, shape, dtype, &ops, &policy)?;
                plan.backward_data = Some(c);
                c
            }
        };
        let (ws, ws_size) = workspace.ensure(stream, choice.workspace)?;
        let alpha = 1.0f32;
        // SAFETY: as in `forward`.
        unsafe {
            dnn::set_convolution_math_type(plan.conv.0, choice.math)
                .map_err(CudaError::cudnn("set math type"))?;
            dnn::convolution_backward_data(
                handle,
                scalar(&alpha),
                plan.w.0,
                ops.other as *const c_void,
                plan.y.0,
                ops.input as *const c_void,
                plan.conv.0,
                choice.algo,
                ws as *mut c_void,
                ws_size,
                scalar(&ops.beta),
                plan.x.0,
                ops.output as *mut c_void,
            )
        }
        .map_err(CudaError::cudnn("convolution backward data"))
    }

    /// `dw = Σ dyᵀ · patches(x) + beta · dw`.
    pub(crate) fn backward_filter(
        &mut self,
        stream: &Arc<CudaStream>,
        workspace: &mut Workspace,
        shape: &Conv2dShape,
        dtype: DType,
        ops: ConvOperands,
    ) -> Result<(), CudaError> {
        let handle = self.handle.0;
        let policy = self.policy;
        let plan = plan_for(&mut self.plans, shape, dtype)?;
        let choice = match plan.backward_filter {
            Some(c) => c,
            None => {
                let c = choose_backward_filter(handle, plan, stream, shape, dtype, &ops, &policy)?;
                plan.backward_filter = Some(c);
                c
            }
        };
        let (ws, ws_size) = workspace.ensure(stream, choice.workspace)?;
        let alpha = 1.0f32;
        // SAFETY: as in `forward`.
        unsafe {
            dnn::set_convolution_math_type(plan.conv.0, choice.math)
                .map_err(CudaError::cudnn("set math type"))?;
            dnn::convolution_backward_filter(
                handle,
                scalar(&alpha),
                plan.x.0,
                ops.input as *const c_void,
                plan.y.0,
                ops.other as *const c_void,
                plan.conv.0,
                choice.algo,
                ws as *mut c_void,
                ws_size,
                scalar(&ops.beta),
                plan.w.0,
                ops.output as *mut c_void,
            )
        }
        .map_err(CudaError::cudnn("convolution backward filter"))
    }

    /// The chosen algorithms so far, one line per shape and direction (for reports).
    pub(crate) fn describe_choices(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .plans
            .iter()
            .flat_map(|((shape, dtype), plan)| {
                let name = describe_shape(shape);
                [
                    plan.forward
                        .map(|c| format!("{name} {dtype} forward: {}", c.describe())),
                    plan.backward_data
                        .map(|c| format!("{name} {dtype} backward-data: {}", c.describe())),
                    plan.backward_filter
                        .map(|c| format!("{name} {dtype} backward-filter: {}", c.describe())),
                ]
            })
            .flatten()
            .collect();
        lines.sort();
        lines
    }
}

/// One chosen algorithm: which, in which math mode, with how much workspace.
#[derive(Debug, Clone, Copy)]
struct Choice<A> {
    algo: A,
    math: cudnnMathType_t,
    workspace: usize,
    deterministic: bool,
}

impl<A: std::fmt::Debug> Choice<A> {
    /// `ALGO (MATH, workspace N MiB, deterministic or not)`, for reports.
    fn describe(&self) -> String {
        format!(
            "{:?} ({:?}, workspace {} MiB, {})",
            self.algo,
            self.math,
            self.workspace >> 20,
            if self.deterministic {
                "deterministic"
            } else {
                "not deterministic"
            }
        )
    }
}

/// Descriptors of one (shape, element type).
#[derive(Debug)]
struct ConvPlan {
    x: TensorDesc,
    y: TensorDesc,
    w: FilterDesc,
    conv: ConvDesc,
    forward: Option<Choice<cudnnConvolutionFwdAlgo_t>>,
    backward_data: Option<Choice<cudnnConvolutionBwdDataAlgo_t>>,
    backward_filter: Option<Choice<cudnnConvolutionBwdFilterAlgo_t>>,
}

fn plan_for<'a>(
    plans: &'a mut HashMap<(Conv2dShape, DType), ConvPlan>,
    shape: &Conv2dShape,
    dtype: DType,
) -> Result<&'a mut ConvPlan, CudaError> {
    match plans.entry((*shape, dtype)) {
        Entry::Occupied(plan) => Ok(plan.into_mut()),
        Entry::Vacant(slot) => Ok(slot.insert(ConvPlan::new(shape, dtype)?)),
    }
}

impl ConvPlan {
    fn new(shape: &Conv2dShape, dtype: DType) -> Result<Self, CudaError> {
        let int = |v: usize| i32::try_from(v).expect("convolution dimension exceeds i32");
        let data = data_type(dtype);
        let nhwc = cudnnTensorFormat_t::CUDNN_TENSOR_NHWC;
        let err = CudaError::cudnn("descriptor");
        let x = TensorDesc(dnn::create_tensor_descriptor().map_err(err)?);
        let y =
            TensorDesc(dnn::create_tensor_descriptor().map_err(CudaError::cudnn("descriptor"))?);
        let w =
            FilterDesc(dnn::create_filter_descriptor().map_err(CudaError::cudnn("descriptor"))?);
        let conv =
            ConvDesc(dnn::create_convolution_descriptor().map_err(CudaError::cudnn("descriptor"))?);
        let math = match dtype {
            DType::Bf16 => cudnnMathType_t::CUDNN_TENSOR_OP_MATH,
            DType::F32 => cudnnMathType_t::CUDNN_FMA_MATH,
        };
        // SAFETY: the descriptors were just created and are destroyed only by their Drop.
        unsafe {
            dnn::set_tensor4d_descriptor(
                x.0,
                nhwc,
                data,
                [
                    int(shape.batch),
                    int(shape.in_channels),
                    int(shape.in_height),
                    int(shape.in_width),
                ],
            )
            .map_err(CudaError::cudnn("input descriptor"))?;
            dnn::set_tensor4d_descriptor(
                y.0,
                nhwc,
                data,
                [
                    int(shape.batch),
                    int(shape.out_channels),
                    int(shape.out_height()),
                    int(shape.out_width()),
                ],
            )
            .map_err(CudaError::cudnn("output descriptor"))?;
            dnn::set_filter4d_descriptor(
                w.0,
                data,
                nhwc,
                [
                    int(shape.out_channels),
                    int(shape.in_channels),
                    int(shape.kernel),
                    int(shape.kernel),
                ],
            )
            .map_err(CudaError::cudnn("filter descriptor"))?;
            dnn::set_convolution2d_descriptor(
                conv.0,
                int(shape.padding),
                int(shape.padding),
                int(shape.stride),
                int(shape.stride),
                1,
                1,
                sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                cudnnDataType_t::CUDNN_DATA_FLOAT,
            )
            .map_err(CudaError::cudnn("convolution descriptor"))?;
            dnn::set_convolution_math_type(conv.0, math)
                .map_err(CudaError::cudnn("set math type"))?;
        }
        Ok(Self {
            x,
            y,
            w,
            conv,
            forward: None,
            backward_data: None,
            backward_filter: None,
        })
    }
}

/// The common view of cuDNN's three performance-result structs.
trait PerfResult: Copy {
    type Algo: Copy + std::fmt::Debug;
    fn algo(&self) -> Self::Algo;
    fn usable(&self) -> bool;
    fn memory(&self) -> usize;
    fn deterministic(&self) -> bool;
    fn math(&self) -> cudnnMathType_t;
}

macro_rules! perf_result {
    ($perf:ty, $algo:ty) => {
        impl PerfResult for $perf {
            type Algo = $algo;
            fn algo(&self) -> $algo {
                self.algo
            }
            fn usable(&self) -> bool {
                self.status == cudnnStatus_t::CUDNN_STATUS_SUCCESS
            }
            fn memory(&self) -> usize {
                self.memory
            }
            fn deterministic(&self) -> bool {
                self.determinism == cudnnDeterminism_t::CUDNN_DETERMINISTIC
            }
            fn math(&self) -> cudnnMathType_t {
                self.mathType
            }
        }
    };
}
perf_result!(
    sys::cudnnConvolutionFwdAlgoPerf_t,
    cudnnConvolutionFwdAlgo_t
);
perf_result!(
    sys::cudnnConvolutionBwdDataAlgoPerf_t,
    cudnnConvolutionBwdDataAlgo_t
);
perf_result!(
    sys::cudnnConvolutionBwdFilterAlgoPerf_t,
    cudnnConvolutionBwdFilterAlgo_t
);

/// The most candidates any direction has (cuDNN's `*_ALGO_COUNT`).
const MAX_CANDIDATES: usize = 8;

/// The first candidate (cuDNN sorts best first) that ran, fits and meets determinism. In
/// f32 the product must be exact to f32 rounding, as `Precision::F32` promises: tensor-op
/// math (TF32) is excluded, the algorithm runs in FMA math whatever cuDNN's default math
/// would allow, and FFT and Winograd algorithms (whose transforms add rounding error beyond
/// a direct sum's) are skipped. When those exclusions leave no deterministic f32 candidate,
/// the best non-deterministic one is taken, with a one-line note on stderr: exactness is
/// worth more there than bit-identical repeats.
fn pick<P: PerfResult>(
    results: &[P],
    policy: &ConvPolicy,
    dtype: DType,
    operation: &'static str,
    shape: &Conv2dShape,
) -> Result<Choice<P::Algo>, CudaError> {
    let exact = dtype == DType::F32;
    let qualifies = |r: &&P, deterministic: bool| {
        r.usable()
            && r.memory() <= policy.workspace_limit
            && (!deterministic || r.deterministic())
            && (!exact || (!uses_tensor_ops(r.math()) && !transform_based(r.algo())))
    };
    let mut found = results.iter().find(|r| qualifies(r, policy.deterministic));
    if found.is_none() && exact && policy.deterministic {
        found = results.iter().find(|r| qualifies(r, false));
        if let Some(r) = found {
            eprintln!(
                "swav-cuda: no deterministic f32 {operation} algorithm for {}; using {:?}, which is not deterministic",
                describe_shape(shape),
                r.algo()
            );
        }
    }
    found
        .map(|r| Choice {
            algo: r.algo(),
            math: if exact {
                cudnnMathType_t::CUDNN_FMA_MATH
            } else {
                r.math()
            },
            workspace: r.memory(),
            deterministic: r.deterministic(),
        })
        .ok_or_else(|| CudaError::NoConvolutionAlgorithm {
            operation,
            shape: describe_shape(shape),
            constraint: match (policy.deterministic, exact) {
                (true, false) => "deterministic, within the workspace limit",
                (_, true) => "within the workspace limit, f32 without TF32, FFT or Winograd",
                (false, false) => "within the workspace limit",
            },
        })
}

/// Whether `math` lets cuDNN use tensor cores (for f32 data: TF32).
fn uses_tensor_ops(math: cudnnMathType_t) -> bool {
    matches!(
        math,
        cudnnMathType_t::CUDNN_TENSOR_OP_MATH
            | cudnnMathType_t::CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
    )
}

/// Whether an algorithm computes through an FFT or a Winograd transform (by cuDNN's
/// algorithm names, shared by the three directions).
fn transform_based<A: std::fmt::Debug>(algo: A) -> bool {
    let name = format!("{algo:?}");
    name.contains("FFT") || name.contains("WINOGRAD")
}

/// Temporary memory for a benchmark search: a scratch output (so the search never
/// clobbers a buffer the caller accumulates into) and a workspace of the policy's limit.
struct SearchScratch {
    output: cudarc::driver::CudaSlice<u8>,
    workspace: cudarc::driver::CudaSlice<u8>,
}

impl SearchScratch {
    fn new(
        stream: &Arc<CudaStream>,
        output_bytes: usize,
        policy: &ConvPolicy,
    ) -> Result<Self, CudaError> {
        // SAFETY: both are written by cuDNN before being read, and only during the search.
        unsafe {
            Ok(Self {
                output: stream.alloc::<u8>(output_bytes.max(1))?,
                workspace: stream.alloc::<u8>(policy.workspace_limit.max(1))?,
            })
        }
    }
    fn output(&self, stream: &Arc<CudaStream>) -> *mut c_void {
        self.output.device_ptr(stream).0 as *mut c_void
    }
    fn workspace(&self, stream: &Arc<CudaStream>) -> (*mut c_void, usize) {
        (
            self.workspace.device_ptr(stream).0 as *mut c_void,
            self.workspace.len(),
        )
    }
}

fn choose_forward(
    handle: sys::cudnnHandle_t,
    plan: &ConvPlan,
    stream: &Arc<CudaStream>,
    shape: &Conv2dShape,
    dtype: DType,
    ops: &ConvOperands,
    policy: &ConvPolicy,
) -> Result<Choice<cudnnConvolutionFwdAlgo_t>, CudaError> {
    // SAFETY: all-zero bytes are a valid perf struct (every enum has a 0 variant).
    let mut results: [sys::cudnnConvolutionFwdAlgoPerf_t; MAX_CANDIDATES] =
        unsafe { std::mem::zeroed() };
    let mut count = 0;
    // SAFETY: descriptors belong to `plan`; operand pointers are live buffers of the
    // described sizes; the scratch outlives the search.
    unsafe {
        match policy.search {
            AlgorithmSearch::Heuristic => dnn::get_convolution_forward_algorithm(
                handle,
                plan.x.0,
                plan.w.0,
                plan.conv.0,
                plan.y.0,
                MAX_CANDIDATES as i32,
                &mut count,
                results.as_mut_ptr(),
            ),
            AlgorithmSearch::Exhaustive => {
                let scratch =
                    SearchScratch::new(stream, shape.output_len() * dtype.size(), policy)?;
                let (ws, ws_size) = scratch.workspace(stream);
                sys::cudnnFindConvolutionForwardAlgorithmEx(
                    handle,
                    plan.x.0,
                    ops.input as *const c_void,
                    plan.w.0,
                    ops.other as *const c_void,
                    plan.conv.0,
                    plan.y.0,
                    scratch.output(stream),
                    MAX_CANDIDATES as i32,
                    &mut count,
                    results.as_mut_ptr(),
                    ws,
                    ws_size,
                )
                .result()
            }
        }
    }
    .map_err(CudaError::cudnn("forward algorithm search"))?;
    let mut choice = pick(
        &results[..count.max(0) as usize],
        policy,
        dtype,
        "forward",
        shape,
    )?;
    // SAFETY: descriptors belong to `plan`. The size depends on the math type.
    let exact = unsafe {
        dnn::set_convolution_math_type(plan.conv.0, choice.math)
            .map_err(CudaError::cudnn("set math type"))?;
        dnn::get_convolution_forward_workspace_size(
            handle,
            plan.x.0,
            plan.w.0,
            plan.conv.0,
            plan.y.0,
            choice.algo,
        )
    }
    .map_err(CudaError::cudnn("forward workspace size"))?;
    choice.workspace = choice.workspace.max(exact);
    Ok(choice)
}

fn choose_backward_data(
    handle: sys::cudnnHandle_t,
    plan: &ConvPlan,
    stream: &Arc<CudaStream>,
    shape: &Conv2dShape,
    dtype: DType,
    ops: &ConvOperands,
    policy: &ConvPolicy,
) -> Result<Choice<cudnnConvolutionBwdDataAlgo_t>, CudaError> {
    // SAFETY: see `choose_forward`.
    let mut results: [sys::cudnnConvolutionBwdDataAlgoPerf_t; MAX_CANDIDATES] =
        unsafe { std::mem::zeroed() };
    let mut count = 0;
    // SAFETY: see `choose_forward`.
    unsafe {
        match policy.search {
            AlgorithmSearch::Heuristic => dnn::get_convolution_backward_data_algorithm(
                handle,
                plan.w.0,
                plan.y.0,
                plan.conv.0,
                plan.x.0,
                MAX_CANDIDATES as i32,
                &mut count,
                results.as_mut_ptr(),
            ),
            AlgorithmSearch::Exhaustive => {
                let scratch = SearchScratch::new(stream, shape.input_len() * dtype.size(), policy)?;
                let (ws, ws_size) = scratch.workspace(stream);
                sys::cudnnFindConvolutionBackwardDataAlgorithmEx(
                    handle,
                    plan.w.0,
                    ops.other as *const c_void,
                    plan.y.0,
                    ops.input as *const c_void,
                    plan.conv.0,
                    plan.x.0,
                    scratch.output(stream),
                    MAX_CANDIDATES as i32,
                    &mut count,
                    results.as_mut_ptr(),
                    ws,
                    ws_size,
                )
                .result()
            }
        }
    }
    .map_err(CudaError::cudnn("backward-data algorithm search"))?;
    let mut choice = pick(
        &results[..count.max(0) as usize],
        policy,
        dtype,
        "backward-data",
        shape,
    )?;
    // SAFETY: descriptors belong to `plan`. The size depends on the math type.
    let exact = unsafe {
        dnn::set_convolution_math_type(plan.conv.0, choice.math)
            .map_err(CudaError::cudnn("set math type"))?;
        dnn::get_convolution_backward_data_workspace_size(
            handle,
            plan.w.0,
            plan.y.0,
            plan.conv.0,
            plan.x.0,
            choice.algo,
        )
    }
    .map_err(CudaError::cudnn("backward-data workspace size"))?;
    choice.workspace = choice.workspace.max(exact);
    Ok(choice)
}

fn choose_backward_filter(
    handle: sys::cudnnHandle_t,
    plan: &ConvPlan,
    stream: &Arc<CudaStream>,
    shape: &Conv2dShape,
    dtype: DType,
    ops: &ConvOperands,
    policy: &ConvPolicy,
) -> Result<Choice<cudnnConvolutionBwdFilterAlgo_t>, CudaError> {
    // SAFETY: see `choose_forward`.
    let mut results: [sys::cudnnConvolutionBwdFilterAlgoPerf_t; MAX_CANDIDATES] =
        unsafe { std::mem::zeroed() };
    let mut count = 0;
    // SAFETY: see `choose_forward`.
    unsafe {
        match policy.search {
            AlgorithmSearch::Heuristic => dnn::get_convolution_backward_filter_algorithm(
                handle,
                plan.x.0,
                plan.y.0,
                plan.conv.0,
                plan.w.0,
                MAX_CANDIDATES as i32,
                &mut count,
                results.as_mut_ptr(),
            ),
            AlgorithmSearch::Exhaustive => {
                let scratch =
                    SearchScratch::new(stream, shape.weight_len() * dtype.size(), policy)?;
                let (ws, ws_size) = scratch.workspace(stream);
                sys::cudnnFindConvolutionBackwardFilterAlgorithmEx(
                    handle,
                    plan.x.0,
                    ops.input as *const c_void,
                    plan.y.0,
                    ops.other as *const c_void,
                    plan.conv.0,
                    plan.w.0,
                    scratch.output(stream),
                    MAX_CANDIDATES as i32,
                    &mut count,
                    results.as_mut_ptr(),
                    ws,
                    ws_size,
                )
                .result()
            }
        }
    }
    .map_err(CudaError::cudnn("backward-filter algorithm search"))?;
    let mut choice = pick(
        &results[..count.max(0) as usize],
        policy,
        dtype,
        "backward-filter",
        shape,
    )?;
    // SAFETY: descriptors belong to `plan`. The size depends on the math type.
    let exact = unsafe {
        dnn::set_convolution_math_type(plan.conv.0, choice.math)
            .map_err(CudaError::cudnn("set math type"))?;
        dnn::get_convolution_backward_filter_workspace_size(
            handle,
            plan.x.0,
            plan.y.0,
            plan.conv.0,
            plan.w.0,
            choice.algo,
        )
    }
    .map_err(CudaError::cudnn("backward-filter workspace size"))?;
    choice.workspace = choice.workspace.max(exact);
    Ok(choice)
}

fn data_type(dtype: DType) -> cudnnDataType_t {
    match dtype {
        DType::F32 => cudnnDataType_t::CUDNN_DATA_FLOAT,
        DType::Bf16 => cudnnDataType_t::CUDNN_DATA_BFLOAT16,
    }
}

fn scalar(v: &f32) -> *const c_void {
    (v as *const f32).cast()
}

fn describe_shape(s: &Conv2dShape) -> String {
    format!(
        "{}x{}x{}x{} -> {} (k{} s{} p{})",
        s.batch,
        s.in_height,
        s.in_width,
        s.in_channels,
        s.out_channels,
        s.kernel,
        s.stride,
        s.padding
    )
}

#[derive(Debug)]
struct Handle(sys::cudnnHandle_t);
impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: created by `create_handle`, destroyed once. A failure cannot be reported
        // from Drop; the handle is gone either way.
        let _ = unsafe { dnn::destroy_handle(self.0) };
    }
}

#[derive(Debug)]
struct TensorDesc(sys::cudnnTensorDescriptor_t);
impl Drop for TensorDesc {
    fn drop(&mut self) {
        // SAFETY: created once, destroyed once.
        let _ = unsafe { dnn::destroy_tensor_descriptor(self.0) };
    }
}

#[derive(Debug)]
struct FilterDesc(sys::cudnnFilterDescriptor_t);
impl Drop for FilterDesc {
    fn drop(&mut self) {
        // SAFETY: created once, destroyed once.
        let _ = unsafe { dnn::destroy_filter_descriptor(self.0) };
    }
}

#[derive(Debug)]
struct ConvDesc(sys::cudnnConvolutionDescriptor_t);
impl Drop for ConvDesc {
    fn drop(&mut self) {
        // SAFETY: created once, destroyed once.
        let _ = unsafe { dnn::destroy_convolution_descriptor(self.0) };
    }
}
