//! Dispatch from the parsed command line to the subcommands.

use anyhow::{Result, bail};

use crate::cli::{Cli, Command};
use crate::commands::assign_embeddings::{self, AssignSettings};

/// Runs one command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Assign(args) => {
            let settings = AssignSettings {
                epsilon: args.epsilon,
                iterations: args.iterations,
                normalize: args.normalize,
                hard: args.hard,
            };
            match (&args.embeddings, &args.prototypes, &args.weights) {
                (Some(e), Some(p), _) => assign_embeddings::run(e, p, &args.output, settings),
                _ => bail!("`swav assign` needs --embeddings and --prototypes"),
            }
        }
        other => bail!(
            "`{}` is not available in this build yet",
            command_name(&other)
        ),
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Pretrain(_) => "swav pretrain",
        Command::Eval(_) => "swav eval",
        Command::Extract(_) => "swav extract",
        Command::Assign(_) => "swav assign",
        Command::Export(_) => "swav export",
        Command::Import(_) => "swav import",
        Command::Bench(_) => "swav bench",
    }
}

/// An error and its causes on one line: `outer: inner: root`.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}
