//! `swav bench`: the time of complete SwAV training steps on synthetic inputs.

use std::time::Instant;

use anyhow::{Result, anyhow};
use swav_core::{Lars, PrototypeFreeze, SingleProcess, SinkhornConfig};
use swav_nn::{Backend, CropGroup, SwavModel};

use crate::cli::BenchArgs;
use crate::config::PretrainConfig;
use crate::device::{BackendJob, on_device};
use crate::train::model_spec::model_config;
use crate::train::optimizer::Optimizer;
use crate::train::step::{StepPlan, SwavStep};

/// Runs `swav bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mut config = args.preset.config();
    args.overrides.apply_to(&mut config);
    config.batch_size = args.batch_size;
    config.validate()?;
    on_device(
        args.device,
        0,
        Bench {
            config,
            steps: args.steps,
            device: args.device,
        },
    )
}

struct Bench {
    config: PretrainConfig,
    steps: usize,
    device: crate::config::Device,
}

impl BackendJob for Bench {
    type Output = ();
    fn run<B: Backend>(self, b: &mut B) -> Result<()> {
        let c = &self.config;
        let dev = |e: B::Error| anyhow!("device error: {e}");
        let mut model = SwavModel::new(b, model_config(c), c.seed).map_err(|e| anyhow!("{e}"))?;
        let mut optimizer = Optimizer::new(b, &model, Lars::default()).map_err(dev)?;
        let plan = StepPlan {
            batch: c.batch_size,
            crops: c.total_crops(),
            prototypes: c.nmb_prototypes,
            dim: c.feat_dim,
            crops_for_assign: c.crops_for_assign.clone(),
            temperature: c.temperature as f32,
            sinkhorn: SinkhornConfig {
                epsilon: c.epsilon as f32,
                iterations: c.sinkhorn_iterations,
                ..SinkhornConfig::default()
            },
            freeze: PrototypeFreeze { iterations: 0 },
        };
        let mut step = SwavStep::new(b, plan, 0)?;
        let mut inputs = Vec::new();
        let mut seed = 0x5eed_u64;
        for (&crops, &size) in c.nmb_crops.iter().zip(&c.size_crops) {
            let len = crops * c.batch_size * size * size * 3;
            let values: Vec<f32> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
                })
                .collect();
            let mut buf = b.alloc_activation(len).map_err(dev)?;
            b.upload(&values, &mut buf, 0).map_err(dev)?;
            inputs.push((buf, crops, size));
        }
        let groups: Vec<CropGroup<'_, B::Buf>> = inputs
            .iter()
            .map(|(images, crops, size)| CropGroup {
                images,
                crops: *crops,
                height: *size,
                width: *size,
            })
            .collect();
        let mut timed = Vec::with_capacity(self.steps);
        let mut loss = 0.0;
        for i in 0..self.steps + 2 {
            let start = Instant::now();
            let report = step.run(
                b,
                &mut model,
                &mut optimizer,
                &SingleProcess,
                &SingleProcess,
                &groups,
                None,
                i as u64,
                0.1,
                false,
            )?;
            loss = report.loss;
            if i >= 2 {
                timed.push(start.elapsed().as_secs_f64());
            }
        }
        timed.sort_by(f64::total_cmp);
        let median = timed[timed.len() / 2];
        let crops: Vec<String> = c
            .nmb_crops
            .iter()
            .zip(&c.size_crops)
            .map(|(n, s)| format!("{n}x{s}"))
            .collect();
        eprintln!(
            "{} ({} params), crops {}, batch {}, {:?}: median {:.1} ms/step over {} steps, {:.2} images/s (loss {:.4})",
            c.arch.name(),
            model.param_count(),
            crops.join("+"),
            c.batch_size,
            self.device,
            median * 1e3,
            self.steps,
            c.batch_size as f64 / median,
            loss
        );
        println!(
            "{}",
            serde_json::json!({
                "arch": c.arch.name(), "crops": crops, "batch": c.batch_size, "device": format!("{:?}", self.device).to_lowercase(),
                "median_step_s": median, "images_per_sec": c.batch_size as f64 / median, "steps": self.steps,
            })
        );
        Ok(())
    }
}
