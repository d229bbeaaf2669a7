//! Optional per-operation timing of [`CpuBackend`](crate::CpuBackend): calls, wall time and
//! floating-point work per operation kind, to see where a step's time goes.

use std::collections::BTreeMap;
use std::time::Instant;

/// Totals for one operation kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OpStats {
    /// Calls.
    pub calls: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Floating-point operations (multiply-adds count two; 0 for memory-bound kinds).
    pub flops: f64,
}

/// Per-operation totals since profiling was enabled, by operation name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Totals by operation name (`conv_forward`, `batch_norm_apply`, …).
    pub ops: BTreeMap<&'static str, OpStats>,
}

impl Profile {
    /// The sum of all recorded seconds.
    pub fn total_seconds(&self) -> f64 {
        self.ops.values().map(|s| s.seconds).sum()
    }

    pub(crate) fn record(&mut self, op: &'static str, start: Instant, flops: f64) {
        let entry = self.ops.entry(op).or_default();
        entry.calls += 1;
        entry.seconds += start.elapsed().as_secs_f64();
        entry.flops += flops;
    }
}

/// Times one operation from its creation to its drop, when profiling is on: the operation
/// holds it for its whole body (`let _op = OpScope::new(&mut self.profile, …)`), so every
/// return path is recorded.
pub(crate) struct OpScope<'a> {
    /// The profile to record into and the start time; `None` when profiling is off.
    running: Option<(&'a mut Profile, Instant)>,
    /// The operation kind.
    op: &'static str,
    /// Its floating-point work.
    flops: f64,
}

impl<'a> OpScope<'a> {
    /// Starts timing `op` (doing `flops` floating-point operations) if `profile` is on.
    pub(crate) fn new(profile: &'a mut Option<Profile>, op: &'static str, flops: f64) -> Self {
        Self {
            running: profile.as_mut().map(|p| (p, Instant::now())),
            op,
            flops,
        }
    }
}

impl Drop for OpScope<'_> {
    fn drop(&mut self) {
        if let Some((profile, start)) = self.running.take() {
            profile.record(self.op, start, self.flops);
        }
    }
}
