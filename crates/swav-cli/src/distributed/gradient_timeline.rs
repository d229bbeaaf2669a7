//! [`GradientTimeline`]: when each gradient bucket was ready, sent and summed, against the
//! backward pass of the same step, written as CSV for `SWAV_GRADIENT_TIMELINE`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};

/// The environment variable naming the timeline files: `PREFIX.rankR.csv`, rewritten after
/// every step (the file holds the last one).
pub const TIMELINE_ENV: &str = "SWAV_GRADIENT_TIMELINE";

/// One bucket's times, in milliseconds after the backward pass started.
#[derive(Debug, Clone, Copy, Default)]
struct BucketTimes {
    elements: usize,
    ready: f64,
    started: f64,
    ended: f64,
}

/// The times of one step's gradient communication.
#[derive(Debug)]
pub struct GradientTimeline {
    path: PathBuf,
    backward_started: Instant,
    backward_ms: f64,
    buckets: Vec<BucketTimes>,
}

impl GradientTimeline {
    /// The timeline `SWAV_GRADIENT_TIMELINE` asks rank `rank` for, if any.
    pub fn from_env(rank: usize) -> Result<Option<Self>> {
        let Some(prefix) = std::env::var_os(TIMELINE_ENV) else {
            return Ok(None);
        };
        if prefix.is_empty() {
            bail!("{TIMELINE_ENV} is set but empty: give a path prefix such as /tmp/timeline");
        }
        let mut path = prefix;
        path.push(format!(".rank{rank}.csv"));
        Ok(Some(Self {
            path: PathBuf::from(path),
            backward_started: Instant::now(),
            backward_ms: 0.0,
            buckets: Vec::new(),
        }))
    }

    fn ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.backward_started)
            .as_secs_f64()
            * 1e3
    }

    /// Backward starts.
    pub fn begin(&mut self) {
        self.backward_started = Instant::now();
        self.backward_ms = 0.0;
        self.buckets.clear();
    }

    /// Bucket `index` of `elements` is complete and handed over.
    pub fn ready(&mut self, index: usize, elements: usize) {
        let ready = self.ms(Instant::now());
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, BucketTimes::default());
        }
        self.buckets[index] = BucketTimes {
            elements,
            ready,
            ..BucketTimes::default()
        };
    }

    /// Backward has ended.
    pub fn backward_ended(&mut self) {
        self.backward_ms = self.ms(Instant::now());
    }

    /// Bucket `index`'s all-reduce ran from `started` to `ended`.
    pub fn reduced(&mut self, index: usize, started: Instant, ended: Instant) {
        let (started, ended) = (self.ms(started), self.ms(ended));
        if let Some(b) = self.buckets.get_mut(index) {
            b.started = started;
            b.ended = ended;
        }
    }

    /// The step as CSV: the backward pass, then one row per bucket.
    pub fn csv(&self) -> String {
        let mut out = String::from("what,bucket,elements,ready_ms,start_ms,end_ms\n");
        let _ = writeln!(out, "backward,,,,0.000,{:.3}", self.backward_ms);
        for (k, b) in self.buckets.iter().enumerate() {
            let _ = writeln!(
                out,
                "allreduce,{k},{},{:.3},{:.3},{:.3}",
                b.elements, b.ready, b.started, b.ended
            );
        }
        out
    }

    /// Writes [`Self::csv`] to this rank's file.
    pub fn write(&self) -> Result<()> {
        swav_nn::write_atomic(&self.path, self.csv().as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_csv_has_the_backward_pass_then_one_row_per_bucket() {
        let mut t = GradientTimeline {
            path: PathBuf::from("unused"),
            backward_started: Instant::now(),
            backward_ms: 0.0,
            buckets: Vec::new(),
        };
        t.begin();
        let start = t.backward_started;
        t.ready(0, 10);
        t.ready(1, 20);
        t.reduced(
            0,
            start + Duration::from_millis(2),
            start + Duration::from_millis(5),
        );
        t.backward_ended();
        let csv = t.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(lines[1].starts_with("backward,,,,0.000,"), "{csv}");
        assert!(lines[2].starts_with("allreduce,0,10,") && lines[2].ends_with(",2.000,5.000"));
        assert!(lines[3].starts_with("allreduce,1,20,"), "{csv}");
    }
}
