//! `detect`: the glue between the member crates and the command line.
//!
//! - `cli`: the raw command-line arguments (clap), one struct per command.
//! - `run`: dispatches a parsed command to its implementation.
//!
//! The model itself lives in the member crates: `backbones` (ResNet/ResNeXt + FPN), `heads`
//! (ops, RPN, RoI heads) and `datasets` (COCO, shapes, transforms, loader, evaluation).
pub mod atomic_file;
pub mod cli;
pub mod eval;
pub mod convert;
pub mod draw;
pub mod labels;
pub mod predict_output;
pub mod pth;
pub mod results;
pub mod weights_discovery;
pub mod info;
pub mod checkpoint;
pub mod metrics;
pub mod params;
pub mod plot;
pub mod progress;
pub mod solver;

use anyhow::bail;
use cli::{Cli, Command};

/// Runs one parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(_) => not_implemented("train", 7),
        Command::Eval(args) => eval::run(args),
        Command::Predict(_) => not_implemented("predict", 6),
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(&args),
    }
}

fn not_implemented(command: &str, issue: u32) -> anyhow::Result<()> {
    bail!("`detect {command}` is not implemented yet (tracked in issue {issue})")
}
