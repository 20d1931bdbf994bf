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
pub mod eval_model;
pub mod info;
pub mod config;
pub mod model;
pub mod inference;
pub mod train;
pub mod train_loop;
pub mod checkpoint;
pub mod metrics;
pub mod params;
pub mod plot;
pub mod progress;
pub mod solver;
pub mod convert;
pub mod draw;
pub mod labels;
pub mod load;
pub mod predict;
pub mod predict_output;
pub mod pth;
pub mod results;
pub mod weights_discovery;

use cli::{Cli, Command};

/// Runs one parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(&args),
    }
}
