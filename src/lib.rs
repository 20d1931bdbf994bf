//! `detect`: the glue between the member crates and the command line.
//!
//! - [`cli`] parses the raw arguments; [`run`] dispatches each command: [`train`]
//!   (options) + [`train_loop`], [`eval`] (results files) + [`eval_model`] (a model over a
//!   dataset), [`predict`], [`info`], [`convert`].
//! - [`config::DetectorConfig`] is the model tree's config; [`model::FasterRcnn`] runs
//!   backbone + FPN (`backbones`) → RPN → RoI heads (`heads`) on batches from `datasets`.
//! - Weights: [`params`] (training: trainable `Var`s + frozen tensors behind a `VarBuilder`),
//!   [`load`] (inference: a trained model or torchvision-layout weights), [`checkpoint`],
//!   [`pth`]. Training support: [`solver`], [`metrics`], [`plot`], [`progress`].
//! - Output: [`inference`] (detections → COCO results + metrics), [`draw`], [`results`],
//!   [`labels`], [`predict_output`], [`atomic_file`] (temp file + rename).
pub mod atomic_file;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod convert;
pub mod draw;
pub mod eval;
pub mod eval_model;
pub mod inference;
pub mod info;
pub mod labels;
pub mod load;
pub mod metrics;
pub mod model;
pub mod params;
pub mod plot;
pub mod predict;
pub mod predict_output;
pub mod progress;
pub mod pth;
pub mod results;
pub mod solver;
pub mod train;
pub mod train_loop;
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
