//! `swav bench` on the CPU: each step timed on its own, the median reported.

use std::time::Instant;

use anyhow::Result;
use swav_nn::Backend;

use super::step::{BenchStep, WARMUP_STEPS};
use crate::config::{Device, PretrainConfig};
use crate::device::{BackendJob, on_device};

/// Runs the CPU benchmark of `config`'s step with `steps` timed steps.
pub fn run(config: PretrainConfig, steps: usize) -> Result<()> {
    on_device(Device::Cpu, 0, Bench { config, steps })
}

/// The CPU benchmark: each step timed on its own, the median reported.
struct Bench {
    config: PretrainConfig,
    steps: usize,
}

impl BackendJob for Bench {
    type Output = ();
    fn run<B: Backend>(self, b: &mut B) -> Result<()> {
        let c = &self.config;
        let mut bench = BenchStep::new(b, c)?;
        let mut timed = Vec::with_capacity(self.steps);
        let mut loss = 0.0;
        for i in 0..self.steps + WARMUP_STEPS {
            let start = Instant::now();
            loss = bench.run(b, 0)?;
            if i >= WARMUP_STEPS {
                timed.push(start.elapsed().as_secs_f64());
            }
        }
        timed.sort_by(f64::total_cmp);
        let median = timed[timed.len() / 2];
        let crops = bench.crop_labels();
        eprintln!(
            "{} ({} params), crops {}, batch {}, {:?}: median {:.1} ms/step over {} steps, {:.2} images/s (loss {:.4})",
            c.arch.name(),
            bench.param_count(),
            crops.join("+"),
            c.batch_size,
            Device::Cpu,
            median * 1e3,
            self.steps,
            c.batch_size as f64 / median,
            loss
        );
        println!(
            "{}",
            serde_json::json!({
                "arch": c.arch.name(), "crops": crops, "batch": c.batch_size, "device": "cpu",
                "median_step_s": median, "images_per_sec": c.batch_size as f64 / median, "steps": self.steps,
            })
        );
        Ok(())
    }
}
