//! Where a step's GPU time goes: the opt-in profiling mode of [`CudaBackend`].
//!
//! While profiling ([`CudaBackend::start_profiling`]), every operation of the backend records
//! a timing event on the compute stream when it starts and when it ends, and the time between
//! two consecutive events belongs to the operation innermost at that moment (a convolution
//! that computes batch-norm statistics after its product splits its time between the two).
//! Time between operations (the stream idle, waiting for the host) belongs to none. The
//! copies of staged input batches run on the copy stream and are timed there, apart.
//! [`CudaBackend::finish_profiling`] waits for the device and sums the intervals per
//! [`OpCategory`] and per operation.
//!
//! The events cost a few microseconds of host time per operation, so a profiled step is a
//! little slower than a plain one; time plain steps for rates and profile one for the split.

use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaContext, CudaEvent, CudaStream};

use crate::{CudaBackend, CudaError};

/// The kinds of work a step's GPU time is split into. Each operation belongs to one,
/// whoever calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCategory {
    /// cuDNN convolutions: forward, backward-data, backward-filter.
    Conv,
    /// Batch norm (statistics, running statistics, apply with residual and ReLU, backward),
    /// ReLU backward, max and average pooling.
    NormPool,
    /// Linear layers, L2 normalisation, and every head operation of `swav_core::HeadOps`:
    /// prototype scores and normalisation, Sinkhorn, the loss and its gradient.
    Head,
    /// The LARS/SGD update.
    Optimizer,
    /// Transfers between host and device: uploads, downloads, and the compute stream's
    /// wait for a staged input batch.
    Data,
    /// Filling and copying device buffers (zeroing gradients, caching inputs and features).
    Memory,
}

impl OpCategory {
    /// Every category, in report order.
    pub const ALL: [OpCategory; 6] = [
        OpCategory::Conv,
        OpCategory::NormPool,
        OpCategory::Head,
        OpCategory::Optimizer,
        OpCategory::Data,
        OpCategory::Memory,
    ];

    /// The category's name in reports and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            OpCategory::Conv => "conv",
            OpCategory::NormPool => "bn_relu_pool",
            OpCategory::Head => "head_sinkhorn_loss",
            OpCategory::Optimizer => "optimizer",
            OpCategory::Data => "data",
            OpCategory::Memory => "memory",
        }
    }

    fn index(self) -> usize {
        OpCategory::ALL
            .iter()
            .position(|&c| c == self)
            .expect("every category is listed")
    }
}

/// The GPU time of one operation over a profiled stretch of work.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTime {
    /// The operation, e.g. `"conv2d_backward_filter"`.
    pub name: &'static str,
    /// Its category.
    pub category: OpCategory,
    /// How many times it ran.
    pub calls: usize,
    /// Milliseconds of compute-stream time.
    pub ms: f64,
}

/// What [`CudaBackend::finish_profiling`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileReport {
    /// Milliseconds of compute-stream time per category, in [`OpCategory::ALL`] order.
    pub category_ms: [f64; 6],
    /// Per operation, the most expensive first.
    pub ops: Vec<OpTime>,
    /// Milliseconds of copy-stream time: staged input batches (host-to-device copy and
    /// conversion), which overlap the compute stream.
    pub copy_stream_ms: f64,
    /// Milliseconds from the first to the last event on the compute stream: the profiled
    /// work's span on the GPU, idle gaps included.
    pub span_ms: f64,
}

impl ProfileReport {
    /// The milliseconds of `category`.
    pub fn ms(&self, category: OpCategory) -> f64 {
        self.category_ms[category.index()]
    }

    /// The compute stream's busy time: the sum over categories.
    pub fn busy_ms(&self) -> f64 {
        self.category_ms.iter().sum()
    }
}

/// An interval between two recorded events, owned by an operation.
#[derive(Debug)]
struct Interval {
    name: &'static str,
    category: OpCategory,
    start: usize,
    end: usize,
}

/// The events and intervals of a profiling session.
#[derive(Debug)]
pub(crate) struct Profiler {
    ctx: Arc<CudaContext>,
    compute: Arc<CudaStream>,
    events: Vec<CudaEvent>,
    /// Operations entered and not yet left, innermost last.
    open: Vec<(&'static str, OpCategory)>,
    /// The latest event recorded on the compute stream.
    last: Option<usize>,
    first: Option<usize>,
    compute_intervals: Vec<Interval>,
    copy_intervals: Vec<(usize, usize)>,
    /// Entries per operation.
    calls: Vec<(&'static str, OpCategory, usize)>,
    /// The first failure to record an event (reported by `report`).
    error: Option<CudaError>,
}

impl Profiler {
    fn new(ctx: &Arc<CudaContext>, compute: &Arc<CudaStream>) -> Self {
        Self {
            ctx: ctx.clone(),
            compute: compute.clone(),
            events: Vec::new(),
            open: Vec::new(),
            last: None,
            first: None,
            compute_intervals: Vec::new(),
            copy_intervals: Vec::new(),
            calls: Vec::new(),
            error: None,
        }
    }

    /// Records a new timing event on `stream`; its index, or `None` after a failure.
    fn record(&mut self, stream: &CudaStream) -> Option<usize> {
        let result = self
            .ctx
            // cudarc's default event does not time: ask for timing.
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .and_then(|event| event.record(stream).map(|()| event));
        match result {
            Ok(event) => {
                self.events.push(event);
                Some(self.events.len() - 1)
            }
            Err(e) => {
                self.error.get_or_insert(e.into());
                None
            }
        }
    }

    /// Records an event on the compute stream, closing the interval of the innermost open
    /// operation.
    fn mark_compute(&mut self) -> Option<usize> {
        let compute = self.compute.clone();
        let now = self.record(&compute)?;
        self.first.get_or_insert(now);
        if let (Some(&(name, category)), Some(start)) = (self.open.last(), self.last) {
            self.compute_intervals.push(Interval {
                name,
                category,
                start,
                end: now,
            });
        }
        self.last = Some(now);
        Some(now)
    }

    fn enter(&mut self, name: &'static str, category: OpCategory) {
        self.mark_compute();
        self.open.push((name, category));
        match self.calls.iter_mut().find(|c| c.0 == name) {
            Some(entry) => entry.2 += 1,
            None => self.calls.push((name, category, 1)),
        }
    }

    fn exit(&mut self) {
        self.mark_compute();
        self.open.pop();
    }

    /// Starts timing work on the copy stream.
    pub(crate) fn copy_start(&mut self, copy: &CudaStream) -> Option<usize> {
        self.record(copy)
    }

    /// Ends the copy-stream interval begun by `start`.
    pub(crate) fn copy_end(&mut self, copy: &CudaStream, start: Option<usize>) {
        if let (Some(start), Some(end)) = (start, self.record(copy)) {
            self.copy_intervals.push((start, end));
        }
    }

    /// Sums the intervals; every event must have completed.
    fn report(&mut self) -> Result<ProfileReport, CudaError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let elapsed = |a: usize, b: usize| -> Result<f64, CudaError> {
            Ok(self.events[a].elapsed_ms(&self.events[b])? as f64)
        };
        let mut category_ms = [0.0f64; 6];
        let mut ops: Vec<OpTime> = self
            .calls
            .iter()
            .map(|&(name, category, calls)| OpTime {
                name,
                category,
                calls,
                ms: 0.0,
            })
            .collect();
        for interval in &self.compute_intervals {
            let ms = elapsed(interval.start, interval.end)?;
            category_ms[interval.category.index()] += ms;
            if let Some(op) = ops.iter_mut().find(|o| o.name == interval.name) {
                op.ms += ms;
            }
        }
        ops.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        let mut copy_stream_ms = 0.0;
        for &(start, end) in &self.copy_intervals {
            copy_stream_ms += elapsed(start, end)?;
        }
        let span_ms = match (self.first, self.last) {
            (Some(first), Some(last)) if last > first => elapsed(first, last)?,
            _ => 0.0,
        };
        Ok(ProfileReport {
            category_ms,
            ops,
            copy_stream_ms,
            span_ms,
        })
    }
}

/// The scope of one operation while profiling: entered on creation, left on drop. Inert when
/// the backend is not profiling.
#[must_use = "the operation's interval ends when the scope is dropped"]
pub(crate) struct OpScope(Option<Arc<Mutex<Profiler>>>);

impl Drop for OpScope {
    fn drop(&mut self) {
        if let Some(profiler) = &self.0 {
            lock(profiler).exit();
        }
    }
}

fn lock(profiler: &Mutex<Profiler>) -> MutexGuard<'_, Profiler> {
    profiler.lock().unwrap_or_else(|e| e.into_inner())
}

impl CudaBackend {
    /// Starts recording where GPU time goes (see [`ProfileReport`]); a session already
    /// running is discarded.
    pub fn start_profiling(&mut self) {
        self.profiler = Some(Arc::new(Mutex::new(Profiler::new(
            &self.device.ctx,
            &self.device.stream,
        ))));
    }

    /// Stops recording, waits for the device, and returns the time per category and per
    /// operation since [`start_profiling`](Self::start_profiling) (empty if it was not
    /// called).
    pub fn finish_profiling(&mut self) -> Result<ProfileReport, CudaError> {
        let Some(profiler) = self.profiler.take() else {
            return Ok(ProfileReport {
                category_ms: [0.0; 6],
                ops: Vec::new(),
                copy_stream_ms: 0.0,
                span_ms: 0.0,
            });
        };
        self.device.ctx.synchronize()?;
        lock(&profiler).report()
    }

    /// Enters operation `name` of `category` for the profiler (inert when not profiling).
    pub(crate) fn profile_op(&self, name: &'static str, category: OpCategory) -> OpScope {
        match &self.profiler {
            Some(profiler) => {
                lock(profiler).enter(name, category);
                OpScope(Some(profiler.clone()))
            }
            None => OpScope(None),
        }
    }

    /// The profiler, when profiling (for the copy stream's intervals).
    pub(crate) fn profiler(&self) -> Option<MutexGuard<'_, Profiler>> {
        self.profiler.as_deref().map(lock)
    }
}
