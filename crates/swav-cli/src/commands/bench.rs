//! `swav bench`: the time of complete SwAV training steps on synthetic inputs. On the CPU,
//! the median step ([`bench::cpu`]); on CUDA, the full report of [`bench::cuda`].

use anyhow::Result;

use crate::bench;
use crate::cli::BenchArgs;
use crate::config::Device;

/// Runs `swav bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mut config = args.preset.config();
    args.overrides.apply_to(&mut config);
    config.batch_size = args.batch_size();
    config.validate()?;
    match args.device() {
        Device::Cpu => bench::cpu::run(config, args.steps),
        Device::Cuda => bench::cuda::run(&config, args.steps),
    }
}
