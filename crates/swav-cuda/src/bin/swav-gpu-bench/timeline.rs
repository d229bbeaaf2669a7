//! Attributing GPU time to kinds of work with events on the compute stream.

use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaContext, CudaEvent, CudaStream};
use swav_cuda::CudaError;

/// The kinds of work a step's time is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// cuDNN convolutions, all three directions.
    Conv,
    /// Batch norm (statistics, apply with ReLU and residual, backward), ReLU masks,
    /// residual gradient sums, max and average pooling.
    NormPool,
    /// Projection head, L2 normalisation, prototype scores, Sinkhorn, loss and their backward.
    Head,
    /// Zeroing gradients and the LARS/SGD update.
    Optimizer,
    /// Turning the uploaded batch into the step's input activations.
    Data,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Conv,
        Category::NormPool,
        Category::Head,
        Category::Optimizer,
        Category::Data,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Conv => "conv",
            Category::NormPool => "bn_relu_pool",
            Category::Head => "head_sinkhorn_loss",
            Category::Optimizer => "optimizer",
            Category::Data => "data",
        }
    }
}

/// Events recorded between pieces of work; the time between two events belongs to the
/// category named at the second. Disabled, it records nothing (for clean step timings).
pub struct Timeline {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    enabled: bool,
    events: Vec<CudaEvent>,
    categories: Vec<Category>,
    used: usize,
}

impl Timeline {
    pub fn new(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>) -> Self {
        Self {
            ctx: ctx.clone(),
            stream: stream.clone(),
            enabled: false,
            events: Vec::new(),
            categories: Vec::new(),
            used: 0,
        }
    }

    /// Starts recording (or, with `enabled` false, turns recording off).
    pub fn begin(&mut self, enabled: bool) -> Result<(), CudaError> {
        self.enabled = enabled;
        self.used = 0;
        self.categories.clear();
        if enabled {
            self.record()?;
        }
        Ok(())
    }

    /// The work enqueued since the previous mark was of kind `category`.
    pub fn mark(&mut self, category: Category) -> Result<(), CudaError> {
        if self.enabled {
            self.categories.push(category);
            self.record()?;
        }
        Ok(())
    }

    fn record(&mut self) -> Result<(), CudaError> {
        if self.used == self.events.len() {
            // Timing must be asked for: cudarc's default event does not time.
            self.events
                .push(self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?);
        }
        self.events[self.used].record(&self.stream)?;
        self.used += 1;
        Ok(())
    }

    /// Milliseconds per category (in `Category::ALL` order); call after synchronising.
    pub fn totals(&self) -> Result<[f64; 5], CudaError> {
        let mut totals = [0.0f64; 5];
        for (i, category) in self.categories.iter().enumerate() {
            let ms = self.events[i].elapsed_ms(&self.events[i + 1])? as f64;
            let slot = Category::ALL
                .iter()
                .position(|c| c == category)
                .expect("listed");
            totals[slot] += ms;
        }
        Ok(totals)
    }
}
