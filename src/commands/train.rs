//! `detect train`: the arguments validated into [`TrainOptions`], then the training loop.
use crate::cli::TrainArgs;
use crate::train::options::TrainOptions;

/// `detect train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions::from_args(&args)?;
    crate::train::trainer::train(&options)
}
