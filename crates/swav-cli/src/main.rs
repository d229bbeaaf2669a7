//! The `swav` binary: parses the command line, runs it, and reports any failure as one
//! clear line on stderr with a non-zero exit status.

use std::process::ExitCode;

use clap::Parser;
use swav_cli::train::preemption::{PREEMPTED_EXIT_CODE, Preempted};

fn main() -> ExitCode {
    let cli = swav_cli::cli::Cli::parse();
    swav_cli::logging::WarningPrinter::install_for_stderr();
    match swav_cli::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Preempted>() => {
            swav_cli::run_log::line(&e.to_string());
            ExitCode::from(PREEMPTED_EXIT_CODE)
        }
        Err(e) => {
            swav_cli::run_log::line(&format!("error: {}", swav_cli::app::one_line(&e)));
            ExitCode::FAILURE
        }
    }
}
