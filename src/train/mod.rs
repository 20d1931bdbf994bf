//! `detect train` below the command: [`options`] (validated arguments) → [`start`] (the
//! config and weights a run starts from: random, ImageNet, or a detector) → [`run`] (a run set
//! up: resumed or new, [`run_config`] written to `config.json`, model, optimiser, loader) →
//! [`trainer`] (the loop: log, checkpoint and evaluate, then the final model, written by
//! [`save`]) → [`step`] (one batch: losses → backward → SGD from [`solver`]). Around it:
//! [`checkpoint`] (checkpoints and the final model file), [`metrics`] (`metrics.jsonl`),
//! [`plot`] (`loss.png`) and [`progress`] (progress bar, Ctrl-C), [`log_line`] (the plain line
//! when stdout is not a terminal). Data-parallel training: [`dist`] (the collective between
//! ranks, the launcher, the worker variables) and [`replicas`] (every rank starts the same run
//! from the same weights).
pub mod checkpoint;
pub mod dist;
pub mod log_line;
pub mod metrics;
pub mod options;
pub mod plot;
pub mod progress;
pub mod replicas;
pub mod run;
pub mod run_config;
pub mod save;
pub mod solver;
pub mod start;
pub mod step;
pub mod trainer;
