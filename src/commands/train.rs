//! `detect train`: the arguments validated into [`TrainOptions`], then the training loop.
use crate::cli::TrainArgs;
use crate::train::options::TrainOptions;

/// `detect train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions::from_args(&args)?;
    options.precision.apply();
    crate::train::trainer::train(&options).map_err(|e| {
        let largest_min = options.min_size.iter().flatten().copied().max();
        let sizes = (largest_min, options.max_size);
        super::explain_out_of_memory(e, "training", options.batch_size, sizes)
    })
}
