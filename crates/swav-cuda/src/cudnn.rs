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

use cudarc::cudnn::result::{self as dnn, CudnnError};
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

    /// One convolution in direction `D` ([`Forward`], [`BackwardData`], [`BackwardFilter`]):
    /// the descriptors of (shape, dtype), the direction's algorithm (chosen on its first
    /// call), the shared workspace grown to that algorithm's need, then the launch.
    pub(crate) fn convolve<D: Direction>(
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
        let choice = match *D::choice(plan) {
            Some(c) => c,
            None => {
                let c = choose::<D>(handle, plan, stream, shape, dtype, &ops, &policy)?;
                *D::choice(plan) = Some(c);
                c
            }
        };
        let (ws, ws_size) = workspace.ensure(stream, choice.workspace)?;
        // SAFETY: descriptors match the operands' shapes and element type (built from the
        // same shape and dtype); pointers are live device buffers of those sizes.
        unsafe {
            dnn::set_convolution_math_type(plan.conv.0, choice.math)
                .map_err(CudaError::cudnn("set math type"))?;
            D::launch(
                handle,
                plan,
                &ops,
                choice.algo,
                (ws as *mut c_void, ws_size),
            )
        }
        .map_err(CudaError::cudnn(D::LAUNCH))
    }

    /// The chosen algorithms so far, one line per shape and direction (for reports).
    pub(crate) fn describe_choices(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .plans
            .iter()
            .flat_map(|((shape, dtype), plan)| {
                let name = describe_shape(shape);
                let line = |direction: &str, choice: String| {
                    format!("{name} {dtype} {direction}: {choice}")
                };
                [
                    plan.forward.map(|c| line(Forward::NAME, c.describe())),
                    plan.backward_data
                        .map(|c| line(BackwardData::NAME, c.describe())),
                    plan.backward_filter
                        .map(|c| line(BackwardFilter::NAME, c.describe())),
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
pub(crate) struct Choice<A> {
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
pub(crate) struct ConvPlan {
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
        let x = TensorDesc::new()?;
        let y = TensorDesc::new()?;
        let w = FilterDesc::new()?;
        let conv = ConvDesc::new()?;
        let math = base_math(dtype);
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
pub(crate) trait PerfResult: Copy {
    type Algo: Copy + std::fmt::Debug;
    fn algo(&self) -> Self::Algo;
    fn usable(&self) -> bool;
    fn memory(&self) -> usize;
    fn deterministic(&self) -> bool;
    fn math(&self) -> cudnnMathType_t;
}

/// The algorithm type of direction `D`.
pub(crate) type AlgoOf<D> = <<D as Direction>::Perf as PerfResult>::Algo;

/// One direction of a convolution: the cuDNN calls that search, size and launch it, each
/// taking the plan's descriptors and the operands in the order that direction wants them.
pub(crate) trait Direction {
    /// cuDNN's performance result of this direction's algorithms.
    type Perf: PerfResult;
    /// The direction in messages and reports, e.g. `"backward-data"`.
    const NAME: &'static str;
    /// What a failed algorithm search reports.
    const SEARCH: &'static str;
    /// What a failed workspace-size query reports.
    const WORKSPACE_SIZE: &'static str;
    /// What a failed launch reports.
    const LAUNCH: &'static str;

    /// The plan's cached algorithm for this direction.
    fn choice(plan: &mut ConvPlan) -> &mut Option<Choice<AlgoOf<Self>>>;

    /// Elements of this direction's output.
    fn output_len(shape: &Conv2dShape) -> usize;

    /// The candidates, best first: ranked by cuDNN's heuristics (`cudnnGet…Algorithm_v7`)
    /// without `scratch`, else timed on the real inputs (`cudnnFind…AlgorithmEx`), with
    /// their outputs written to `scratch`.
    ///
    /// # Safety
    /// The descriptors of `plan` are live; the operands are live buffers of the sizes the
    /// descriptors give.
    unsafe fn rank(
        handle: sys::cudnnHandle_t,
        plan: &ConvPlan,
        ops: &ConvOperands,
        scratch: Option<&SearchScratch>,
        found: &mut Candidates<Self::Perf>,
    ) -> Result<(), CudnnError>;

    /// The workspace `algo` needs under the convolution's current math type.
    ///
    /// # Safety
    /// The descriptors of `plan` are live.
    unsafe fn workspace_size(
        handle: sys::cudnnHandle_t,
        plan: &ConvPlan,
        algo: AlgoOf<Self>,
    ) -> Result<usize, CudnnError>;

    /// `output = conv… + beta · output` with `algo` and `workspace` (address, bytes).
    ///
    /// # Safety
    /// As for [`rank`](Self::rank); the workspace holds at least what `algo` needs.
    unsafe fn launch(
        handle: sys::cudnnHandle_t,
        plan: &ConvPlan,
        ops: &ConvOperands,
        algo: AlgoOf<Self>,
        workspace: (*mut c_void, usize),
    ) -> Result<(), CudnnError>;
}

/// Declares direction `$dir` and implements [`PerfResult`] for its performance struct. The
/// arguments, in order: the type's name; the direction's name in messages; the [`ConvPlan`]
/// field caching its algorithm; cuDNN's performance struct and algorithm enum of the
/// direction; the [`Conv2dShape`] method giving its output's length; its two inputs, each
/// as `descriptor = operand`, a [`ConvPlan`] descriptor and the [`ConvOperands`] field, in
/// the order cuDNN's calls take them; its output's descriptor; cuDNN's heuristic, timed
/// search, workspace-size and launch functions; what a failed launch reports.
macro_rules! direction {
    (
        $(#[$doc:meta])*
        $dir:ident,
        $name:literal,
        $slot:ident,
        $perf:ty,
        $algo:ty,
        $output_len:ident,
        $a:ident = $a_ptr:ident,
        $b:ident = $b_ptr:ident,
        $out:ident,
        $heuristic:ident,
        $find:ident,
        $size:ident,
        $launch:ident,
        $launch_error:literal $(,)?
    ) => {
        $(#[$doc])*
        pub(crate) struct $dir;

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

        impl Direction for $dir {
            type Perf = $perf;
            const NAME: &'static str = $name;
            const SEARCH: &'static str = concat!($name, " algorithm search");
            const WORKSPACE_SIZE: &'static str = concat!($name, " workspace size");
            const LAUNCH: &'static str = $launch_error;

            fn choice(plan: &mut ConvPlan) -> &mut Option<Choice<$algo>> {
                &mut plan.$slot
            }

            fn output_len(shape: &Conv2dShape) -> usize {
                shape.$output_len()
            }

            unsafe fn rank(
                handle: sys::cudnnHandle_t,
                plan: &ConvPlan,
                ops: &ConvOperands,
                scratch: Option<&SearchScratch>,
                found: &mut Candidates<$perf>,
            ) -> Result<(), CudnnError> {
                let Some(scratch) = scratch else {
                    // SAFETY: the caller's promise; `found` holds `MAX_CANDIDATES` results.
                    return unsafe {
                        dnn::$heuristic(
                            handle,
                            plan.$a.0,
                            plan.$b.0,
                            plan.conv.0,
                            plan.$out.0,
                            MAX_CANDIDATES as i32,
                            &mut found.count,
                            found.results.as_mut_ptr(),
                        )
                    };
                };
                let (ws, ws_size) = scratch.workspace();
                // SAFETY: the caller's promise; the scratch outlives the search.
                unsafe {
                    sys::$find(
                        handle,
                        plan.$a.0,
                        ops.$a_ptr as *const c_void,
                        plan.$b.0,
                        ops.$b_ptr as *const c_void,
                        plan.conv.0,
                        plan.$out.0,
                        scratch.output(),
                        MAX_CANDIDATES as i32,
                        &mut found.count,
                        found.results.as_mut_ptr(),
                        ws,
                        ws_size,
                    )
                    .result()
                }
            }

            unsafe fn workspace_size(
                handle: sys::cudnnHandle_t,
                plan: &ConvPlan,
                algo: $algo,
            ) -> Result<usize, CudnnError> {
                // SAFETY: the caller's promise.
                unsafe {
                    dnn::$size(
                        handle,
                        plan.$a.0,
                        plan.$b.0,
                        plan.conv.0,
                        plan.$out.0,
                        algo,
                    )
                }
            }

            unsafe fn launch(
                handle: sys::cudnnHandle_t,
                plan: &ConvPlan,
                ops: &ConvOperands,
                algo: $algo,
                (ws, ws_size): (*mut c_void, usize),
            ) -> Result<(), CudnnError> {
                let alpha = 1.0f32;
                // SAFETY: the caller's promise.
                unsafe {
                    dnn::$launch(
                        handle,
                        scalar(&alpha),
                        plan.$a.0,
                        ops.$a_ptr as *const c_void,
                        plan.$b.0,
                        ops.$b_ptr as *const c_void,
                        plan.conv.0,
                        algo,
                        ws,
                        ws_size,
                        scalar(&ops.beta),
                        plan.$out.0,
                        ops.output as *mut c_void,
                    )
                }
            }
        }
    };
}

direction!(
    /// `y = conv(x, w) + beta · y`.
    Forward,
    "forward",
    forward,
    sys::cudnnConvolutionFwdAlgoPerf_t,
    cudnnConvolutionFwdAlgo_t,
    output_len,
    x = input,
    w = other,
    y,
    get_convolution_forward_algorithm,
    cudnnFindConvolutionForwardAlgorithmEx,
    get_convolution_forward_workspace_size,
    convolution_forward,
    "convolution forward",
);
direction!(
    /// `dx = convᵀ(dy, w) + beta · dx`.
    BackwardData,
    "backward-data",
    backward_data,
    sys::cudnnConvolutionBwdDataAlgoPerf_t,
    cudnnConvolutionBwdDataAlgo_t,
    input_len,
    w = other,
    y = input,
    x,
    get_convolution_backward_data_algorithm,
    cudnnFindConvolutionBackwardDataAlgorithmEx,
    get_convolution_backward_data_workspace_size,
    convolution_backward_data,
    "convolution backward data",
);
direction!(
    /// `dw = Σ dyᵀ · patches(x) + beta · dw`.
    BackwardFilter,
    "backward-filter",
    backward_filter,
    sys::cudnnConvolutionBwdFilterAlgoPerf_t,
    cudnnConvolutionBwdFilterAlgo_t,
    weight_len,
    x = input,
    y = other,
    w,
    get_convolution_backward_filter_algorithm,
    cudnnFindConvolutionBackwardFilterAlgorithmEx,
    get_convolution_backward_filter_workspace_size,
    convolution_backward_filter,
    "convolution backward filter",
);

/// Room for every result a search returns: up to 8 algorithms (cuDNN's largest
/// `*_ALGO_COUNT`), each possibly under two math types.
const MAX_CANDIDATES: usize = 16;

/// The first candidate (cuDNN sorts best first) that ran, fits and meets determinism. In
/// f32 the product must be exact to f32 rounding, as `Precision::F32` promises: tensor-op
/// math (TF32) is excluded, the algorithm runs in FMA math whatever cuDNN's default math
/// would allow, and FFT and Winograd algorithms (whose transforms add rounding error beyond
/// a direct sum's) are skipped. Among f32 candidates, one timed in FMA math (the math it is
/// launched in) comes first; one timed in default math is taken only when no FMA result
/// qualifies, with a one-line note, since its timing and support were measured under
/// other rules. When the policy's determinism leaves no candidate (in any precision, e.g.
/// a 3-channel stem's backward filter in NHWC bf16), the best non-deterministic one is
/// taken, with a one-line note on stderr: a run that trains is worth more there than
/// bit-identical repeats.
fn pick<P: PerfResult>(
    results: &[P],
    policy: &ConvPolicy,
    dtype: DType,
    operation: &'static str,
    shape: &Conv2dShape,
) -> Result<Choice<P::Algo>, CudaError> {
    let exact = dtype == DType::F32;
    let qualifies = |r: &&P, deterministic: bool, fma_timed: bool| {
        r.usable()
            && r.memory() <= policy.workspace_limit
            && (!deterministic || r.deterministic())
            && (!exact || (!uses_tensor_ops(r.math()) && !transform_based(r.algo())))
            && (!exact || !fma_timed || r.math() == cudnnMathType_t::CUDNN_FMA_MATH)
    };
    let first = |deterministic: bool| {
        results
            .iter()
            .find(|r| qualifies(r, deterministic, true))
            .or_else(|| {
                let r = results.iter().find(|r| qualifies(r, deterministic, false))?;
                if exact {
                    eprintln!(
                        "swav-cuda: no f32 {operation} algorithm for {} was timed in FMA math; using {:?}, timed in {:?}",
                        describe_shape(shape),
                        r.algo(),
                        r.math()
                    );
                }
                Some(r)
            })
    };
    let mut found = first(policy.deterministic);
    if found.is_none() && policy.deterministic {
        found = first(false);
        if let Some(r) = found {
            eprintln!(
                "swav-cuda: no deterministic {dtype:?} {operation} algorithm for {}; using {:?}, which is not deterministic",
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
            constraint: if exact {
                "within the workspace limit, f32 without TF32, FFT or Winograd"
            } else {
                "within the workspace limit"
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
/// clobbers a buffer the caller accumulates into) and a workspace of the policy's limit,
/// both on the stream the search runs on.
pub(crate) struct SearchScratch {
    stream: Arc<CudaStream>,
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
                stream: stream.clone(),
                output: stream.alloc::<u8>(output_bytes.max(1))?,
                workspace: stream.alloc::<u8>(policy.workspace_limit.max(1))?,
            })
        }
    }
    fn output(&self) -> *mut c_void {
        self.output.device_ptr(&self.stream).0 as *mut c_void
    }
    fn workspace(&self) -> (*mut c_void, usize) {
        (
            self.workspace.device_ptr(&self.stream).0 as *mut c_void,
            self.workspace.len(),
        )
    }
}

/// Room for every candidate cuDNN ranks, and how many it wrote.
pub(crate) struct Candidates<P> {
    results: [P; MAX_CANDIDATES],
    count: i32,
}

impl<P: PerfResult> Candidates<P> {
    fn new() -> Self {
        Self {
            // SAFETY: all-zero bytes are a valid perf struct (every enum has a 0 variant);
            // `PerfResult` is implemented only for cuDNN's perf structs.
            results: unsafe { std::mem::zeroed() },
            count: 0,
        }
    }

    /// The candidates cuDNN wrote, best first.
    fn found(&self) -> &[P] {
        &self.results[..self.count.max(0) as usize]
    }
}

/// The algorithm of direction `D` for `plan`: cuDNN's candidates (ranked by the policy's
/// search), the first that [`pick`] accepts, and its workspace in the math it runs in.
fn choose<D: Direction>(
    handle: sys::cudnnHandle_t,
    plan: &ConvPlan,
    stream: &Arc<CudaStream>,
    shape: &Conv2dShape,
    dtype: DType,
    ops: &ConvOperands,
    policy: &ConvPolicy,
) -> Result<Choice<AlgoOf<D>>, CudaError> {
    let mut found = Candidates::<D::Perf>::new();
    let scratch = match policy.search {
        AlgorithmSearch::Heuristic => None,
        AlgorithmSearch::Exhaustive => Some(SearchScratch::new(
            stream,
            D::output_len(shape) * dtype.size(),
            policy,
        )?),
    };
    // Every direction searches under the plan's base math, not whatever math the previous
    // direction's launch left on the descriptor.
    // SAFETY: descriptors belong to `plan`; operand pointers are live buffers of the
    // described sizes; the scratch outlives the search.
    unsafe {
        dnn::set_convolution_math_type(plan.conv.0, base_math(dtype))
            .map_err(CudaError::cudnn("set math type"))?;
        D::rank(handle, plan, ops, scratch.as_ref(), &mut found)
    }
    .map_err(CudaError::cudnn(D::SEARCH))?;
    drop(scratch);
    let mut choice = pick(found.found(), policy, dtype, D::NAME, shape)?;
    // SAFETY: descriptors belong to `plan`. The size depends on the math type.
    let exact = unsafe {
        dnn::set_convolution_math_type(plan.conv.0, choice.math)
            .map_err(CudaError::cudnn("set math type"))?;
        D::workspace_size(handle, plan, choice.algo)
    }
    .map_err(CudaError::cudnn(D::WORKSPACE_SIZE))?;
    choice.workspace = choice.workspace.max(exact);
    Ok(choice)
}

/// The math type a plan's descriptor starts in, and every search runs under: tensor ops
/// for bf16, FMA (no TF32) for f32.
fn base_math(dtype: DType) -> cudnnMathType_t {
    match dtype {
        DType::Bf16 => cudnnMathType_t::CUDNN_TENSOR_OP_MATH,
        DType::F32 => cudnnMathType_t::CUDNN_FMA_MATH,
    }
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

/// Declares `$name`, the owner of one cuDNN descriptor: made by `dnn::$create`, destroyed
/// by `dnn::$destroy` when dropped.
macro_rules! owned_descriptor {
    ($name:ident($raw:ty), $create:ident, $destroy:ident) => {
        #[derive(Debug)]
        struct $name($raw);

        impl $name {
            fn new() -> Result<Self, CudaError> {
                Ok(Self(
                    dnn::$create().map_err(CudaError::cudnn("descriptor"))?,
                ))
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: created once by `new`, destroyed once.
                let _ = unsafe { dnn::$destroy(self.0) };
            }
        }
    };
}

owned_descriptor!(
    TensorDesc(sys::cudnnTensorDescriptor_t),
    create_tensor_descriptor,
    destroy_tensor_descriptor
);
owned_descriptor!(
    FilterDesc(sys::cudnnFilterDescriptor_t),
    create_filter_descriptor,
    destroy_filter_descriptor
);
owned_descriptor!(
    ConvDesc(sys::cudnnConvolutionDescriptor_t),
    create_convolution_descriptor,
    destroy_convolution_descriptor
);

#[cfg(test)]
mod tests {
    //! The algorithm choice ([`pick`]) on made-up search results: it needs no GPU.

    use super::*;

    #[derive(Debug, Clone, Copy)]
    struct Result_ {
        algo: &'static str,
        deterministic: bool,
        math: cudnnMathType_t,
        memory: usize,
    }

    impl PerfResult for Result_ {
        type Algo = &'static str;
        fn algo(&self) -> &'static str {
            self.algo
        }
        fn usable(&self) -> bool {
            true
        }
        fn memory(&self) -> usize {
            self.memory
        }
        fn deterministic(&self) -> bool {
            self.deterministic
        }
        fn math(&self) -> cudnnMathType_t {
            self.math
        }
    }

    const FMA: cudnnMathType_t = cudnnMathType_t::CUDNN_FMA_MATH;
    const DEFAULT: cudnnMathType_t = cudnnMathType_t::CUDNN_DEFAULT_MATH;
    const TENSOR: cudnnMathType_t = cudnnMathType_t::CUDNN_TENSOR_OP_MATH;

    fn result(algo: &'static str, deterministic: bool, math: cudnnMathType_t) -> Result_ {
        Result_ {
            algo,
            deterministic,
            math,
            memory: 0,
        }
    }

    fn choose(results: &[Result_], dtype: DType) -> Result<Choice<&'static str>, CudaError> {
        let stem = Conv2dShape {
            batch: 64,
            in_height: 224,
            in_width: 224,
            in_channels: 3,
            out_channels: 64,
            kernel: 7,
            stride: 2,
            padding: 3,
        };
        pick(
            results,
            &ConvPolicy::default(),
            dtype,
            "backward-filter",
            &stem,
        )
    }

    #[test]
    fn f32_prefers_a_result_timed_in_fma_math_and_never_takes_tf32_or_transforms() {
        let results = [
            result("IMPLICIT_GEMM_TF32", true, TENSOR),
            result("WINOGRAD", true, FMA),
            result("GEMM_DEFAULT_MATH", true, DEFAULT),
            result("GEMM_FMA", true, FMA),
        ];
        let c = choose(&results, DType::F32).unwrap();
        assert_eq!((c.algo, c.math), ("GEMM_FMA", FMA));
        // Without an FMA-timed result, the default-math one runs, launched in FMA math.
        let c = choose(&results[..3], DType::F32).unwrap();
        assert_eq!((c.algo, c.math), ("GEMM_DEFAULT_MATH", FMA));
        assert!(choose(&results[..2], DType::F32).is_err());
    }

    #[test]
    fn without_a_deterministic_algorithm_any_precision_takes_the_best_other_one() {
        let results = [
            result("ALGO_0", false, TENSOR),
            result("ALGO_1", false, FMA),
        ];
        let c = choose(&results, DType::Bf16).unwrap();
        assert_eq!((c.algo, c.deterministic), ("ALGO_0", false));
        let c = choose(&results, DType::F32).unwrap();
        assert_eq!((c.algo, c.deterministic), ("ALGO_1", false));
        // A deterministic one is still preferred to a faster non-deterministic one.
        let with_one = [results[0], result("ALGO_DET", true, TENSOR)];
        assert_eq!(choose(&with_one, DType::Bf16).unwrap().algo, "ALGO_DET");
    }

    #[test]
    fn nothing_within_the_workspace_limit_names_the_constraint() {
        let huge = Result_ {
            memory: usize::MAX,
            ..result("ALGO_0", true, FMA)
        };
        let e = choose(&[huge], DType::Bf16).unwrap_err().to_string();
        assert!(e.contains("within the workspace limit"), "{e}");
    }
}
