//! `shammie`: the command-line edge of the workbench.
//!
//! Parses arguments (clap), sets up tracing, reads the environment (API keys, cache
//! location — the only crate that does), renders tables and progress, and maps outcomes
//! to exit codes: 0 success, 1 the run finished but some samples failed, 2 a usage,
//! configuration or data error (one clear message on stderr).
//!
//! Promises: stdout carries only what a command produces (tables, or one JSON document
//! with `--json`); diagnostics and progress go to stderr. What is not here: study logic
//! (every study, `analyze` included, is found through the `shammie-studies` registry),
//! provider code, statistics.

// The CLI is where output is printed: tables and JSON on stdout, errors and progress on
// stderr. The workspace denies printing everywhere else.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;
mod dry_run;
mod influence_lm;
mod lab;
mod progress;
mod render;
mod run_config;
mod setup;
mod transcript;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "shammie",
    version,
    about = "Run the methods of published alignment studies against any language model"
)]
struct Cli {
    /// More diagnostics on stderr (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a study task and write a run directory.
    Run(commands::run::Args),
    /// Continue a run that was interrupted, without repeating finished samples or paid calls.
    Resume(commands::resume::Args),
    /// Print a run's results.
    Show(commands::show::Args),
    /// List the studies, their tasks, options and model roles.
    List(commands::list::Args),
    /// A study's statistics over data computed elsewhere (no model calls).
    Analyze(commands::analyze::Args),
    /// Generate a completion from any model (a quick look).
    Generate(commands::generate::Args),
    /// Pull and list local models.
    Models(commands::models::Args),
    /// Fine-tune a local model (LoRA), with checkpoints and resume.
    Train(commands::train::Args),
    /// Run a command in an environment's sandbox (as a study runs a model's commands).
    Sandbox(commands::sandbox::Args),
    /// Influence functions (EK-FAC): factors and query × training scores.
    Influence(commands::influence::Args),
    /// Export a run as CSV or Parquet tables, or as an Inspect AI eval log.
    Export(commands::export::Args),
    /// Browse runs in a local web viewer: results, figures and every transcript.
    View(commands::view::Args),
    /// Compare two runs of the same task: paired differences of every metric, flipped samples.
    Compare(commands::compare::Args),
}

/// An error with its exit code.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 2,
            error: e.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info,shammie=info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never under NO_COLOR (https://no-color.org).
        .with_ansi(progress::colour())
        .without_time()
        .init();
    let result = match cli.command {
        Command::Run(a) => commands::run::main(a),
        Command::Resume(a) => commands::resume::main(a),
        Command::Show(a) => commands::show::main(a),
        Command::List(a) => commands::list::main(a),
        Command::Analyze(a) => commands::analyze::main(a),
        Command::Generate(a) => commands::generate::main(a),
        Command::Models(a) => commands::models::main(a),
        Command::Train(a) => commands::train::main(a),
        Command::Sandbox(a) => commands::sandbox::main(a),
        Command::Influence(a) => commands::influence::main(a),
        Command::Export(a) => commands::export::main(a),
        Command::View(a) => commands::view::main(a),
        Command::Compare(a) => commands::compare::main(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
