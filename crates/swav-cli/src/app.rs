//! Dispatch from the parsed command line to the subcommands.

use anyhow::{Result, bail};

use crate::cli::{Cli, Command, EvalCommand};
use crate::commands::assign_embeddings::{self, AssignSettings};
use crate::commands::assign_images::{self, AssignImages};
use crate::commands::{
    bench, eval_knn, eval_linear, export, extract, import, pretrain, report, supervised,
};

/// Runs one command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pretrain(args) => pretrain::run(&args),
        Command::Supervised(args) => supervised::run(&args),
        Command::Eval(EvalCommand::Knn(args)) => eval_knn::run(&args),
        Command::Eval(EvalCommand::Linear(args)) => eval_linear::run(&args),
        Command::Extract(args) => extract::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Assign(args) => {
            let settings = AssignSettings {
                epsilon: args.epsilon,
                iterations: args.iterations,
                normalize: args.normalize,
                hard: args.hard,
            };
            match (
                &args.embeddings,
                &args.prototypes,
                &args.weights,
                &args.data,
            ) {
                (Some(e), Some(p), _, _) => assign_embeddings::run(e, p, &args.output, settings),
                (_, _, Some(weights), Some(data)) => assign_images::run(AssignImages {
                    weights,
                    data,
                    output: &args.output,
                    image_size: args.image_size,
                    settings,
                }),
                _ => bail!(
                    "`swav assign` needs --embeddings and --prototypes, or --weights and --data"
                ),
            }
        }
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
