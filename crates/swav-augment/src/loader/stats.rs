//! The loader's own throughput figures.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A snapshot of a loader's counters since it was created (or last reset).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoaderStats {
    /// Batches handed to the consumer.
    pub batches: u64,
    /// Samples (images) in those batches.
    pub samples: u64,
    /// Wall time from the first request for a batch to the latest delivery.
    pub elapsed: Duration,
    /// Time the consumer spent blocked waiting for a batch.
    pub waiting: Duration,
    /// Samples the workers finished (including prefetched ones not yet delivered).
    pub produced: u64,
    /// Worker time spent loading and augmenting, summed over threads.
    pub busy: Duration,
    /// Worker threads.
    pub workers: usize,
    /// Batch buffers allocated so far (the rest of the batches reused them).
    pub buffers_allocated: usize,
}

impl LoaderStats {
    /// Delivered samples per second of wall time.
    pub fn samples_per_second(&self) -> f64 {
        ratio(self.samples as f64, self.elapsed.as_secs_f64())
    }

    /// Samples per second of worker time: the per-core throughput of decode + augment.
    pub fn samples_per_core_second(&self) -> f64 {
        ratio(self.produced as f64, self.busy.as_secs_f64())
    }

    /// Fraction of the elapsed time the consumer waited for data (0 = never starved).
    pub fn waiting_fraction(&self) -> f64 {
        ratio(self.waiting.as_secs_f64(), self.elapsed.as_secs_f64())
    }
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

impl fmt::Display for LoaderStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} batches, {} samples in {:.2} s: {:.1} samples/s ({:.1}/s per core on {} workers), consumer waited {:.1}%",
            self.batches,
            self.samples,
            self.elapsed.as_secs_f64(),
            self.samples_per_second(),
            self.samples_per_core_second(),
            self.workers,
            100.0 * self.waiting_fraction()
        )
    }
}

/// Counters shared by the consumer and the workers.
#[derive(Debug)]
pub(crate) struct StatsCollector {
    workers: usize,
    batches: AtomicU64,
    samples: AtomicU64,
    produced: AtomicU64,
    busy_nanos: AtomicU64,
    waiting_nanos: AtomicU64,
    /// (first request, latest delivery).
    window: Mutex<Option<(Instant, Instant)>>,
}

impl StatsCollector {
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            workers,
            batches: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            produced: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
            waiting_nanos: AtomicU64::new(0),
            window: Mutex::new(None),
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Instant)>> {
        self.window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker finished `samples` samples in `busy` time.
    pub(crate) fn record_work(&self, samples: usize, busy: Duration) {
        self.produced.fetch_add(samples as u64, Ordering::Relaxed);
        self.busy_nanos
            .fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The consumer asked for a batch at `requested`, waited `waited`, and got `samples`.
    pub(crate) fn record_delivery(&self, requested: Instant, waited: Duration, samples: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.samples.fetch_add(samples as u64, Ordering::Relaxed);
        self.waiting_nanos
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        let now = Instant::now();
        let mut window = self.window();
        let start = window.map_or(requested, |(start, _)| start);
        *window = Some((start, now));
    }

    pub(crate) fn snapshot(&self, buffers_allocated: usize) -> LoaderStats {
        let elapsed = self
            .window()
            .map_or(Duration::ZERO, |(start, end)| end - start);
        LoaderStats {
            batches: self.batches.load(Ordering::Relaxed),
            samples: self.samples.load(Ordering::Relaxed),
            elapsed,
            waiting: Duration::from_nanos(self.waiting_nanos.load(Ordering::Relaxed)),
            produced: self.produced.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
            workers: self.workers,
            buffers_allocated,
        }
    }

    pub(crate) fn reset(&self) {
        for counter in [
            &self.batches,
            &self.samples,
            &self.produced,
            &self.busy_nanos,
            &self.waiting_nanos,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        *self.window() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_counters() {
        let stats = StatsCollector::new(2);
        let t0 = Instant::now();
        stats.record_work(10, Duration::from_millis(500));
        stats.record_delivery(t0, Duration::from_millis(1), 10);
        let s = stats.snapshot(3);
        assert_eq!(
            (
                s.batches,
                s.samples,
                s.produced,
                s.workers,
                s.buffers_allocated
            ),
            (1, 10, 10, 2, 3)
        );
        assert!((s.samples_per_core_second() - 20.0).abs() < 1e-9);
        assert!(s.to_string().contains("10 samples"));
        stats.reset();
        assert_eq!(stats.snapshot(0).samples, 0);
        assert_eq!(stats.snapshot(0).samples_per_second(), 0.0);
    }
}
