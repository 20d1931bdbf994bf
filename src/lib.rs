//! `detect`: the glue between the member crates and the command line.
//!
//! ```text
//! main.rs ─ cli::Cli ─▶ run ─▶ commands::{train, eval, predict, info, convert, export,
//!                                            doctor, parity}
//!                                 │ (shared: parse_device, dataset_spec, open_split)
//!        ┌────────────────────────┼──────────────────────────┐
//!        ▼                        ▼                          ▼
//!   train/ options → run → trainer      model/ config, faster_rcnn,     output/ Detection,
//!     → step; solver/, checkpoint/,       evaluate (COCO AP over a        results (COCO JSON),
//!     metrics, plot, progress             split); predict/ inputs,        draw, predict_output
//!                                         pipeline (decode ∥ model)
//!        ▲                        ▲
//!        └──── weights/ params (training), load (inference), pth, discovery
//! ```
//!
//! The member crates do the work: `backbones` (ResNeXt + FPN, conv kernels, weight maps),
//! `heads` (ops, RPN, RoI heads), `datasets` (COCO records and [`datasets::coco::CategoryMap`],
//! loader, transforms, COCO evaluation). [`atomic`] is the one way any file is written.
//!
//! Where new things go: a subcommand → `commands/<name>.rs` + a variant in [`cli::Command`]; a
//! backbone → `backbones` (named in `backbones::arch`); a dataset format → `datasets`; a new
//! kind of output file → `output/`; a new weights source → `weights/`.
pub mod atomic;
pub mod cli;
pub mod commands;
pub mod export;
pub mod gpu_checks;
pub mod model;
pub mod output;
pub mod predict;
pub mod process;
pub mod profile;
pub mod report;
pub mod train;
pub mod weights;

use cli::{Cli, Command};

/// Runs one parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(args) => commands::train::run(*args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Predict(args) => commands::predict::run(args)
            .map_err(|e| commands::explain_out_of_memory(e, "prediction", 1, (None, None))),
        Command::Info(args) => commands::info::run(args),
        Command::Convert(args) => commands::convert::run(&args),
        Command::Export(args) => commands::export::run(args),
        Command::Doctor => commands::doctor::run(),
        Command::Parity(args) => commands::parity::run(&args.root, args.tsv.as_ref()),
        Command::Bench(args) => commands::bench::run(&args),
    }
}
