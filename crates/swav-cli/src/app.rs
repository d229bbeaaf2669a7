//! Dispatch from the parsed command line to the subcommands: one line per command, each
//! command's `run` does its own work.

use anyhow::Result;

use crate::cli::{Cli, Command, EvalCommand};
use crate::commands::{
    assign, bench, eval_knn, eval_linear, eval_semisup, export, extract, import, pretrain, report,
    shard, supervised,
};

/// Runs one command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pretrain(args) => pretrain::run(&args),
        Command::Supervised(args) => supervised::run(&args),
        Command::Eval(EvalCommand::Knn(args)) => eval_knn::run(&args),
        Command::Eval(EvalCommand::Linear(args)) => eval_linear::run(&args),
        Command::Eval(EvalCommand::Semisup(args)) => eval_semisup::run(&args),
        Command::Extract(args) => extract::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Shard(args) => shard::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Assign(args) => assign::run(&args),
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
