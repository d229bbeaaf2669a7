//! The `swav` binary: parses the command line, runs it, and reports any failure as one
//! clear line on stderr with a non-zero exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = swav_cli::cli::Cli::parse();
    swav_cli::logging::WarningPrinter::install_for_stderr();
    match swav_cli::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", swav_cli::app::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
