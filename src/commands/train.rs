//! `detect train`: the arguments validated into [`TrainOptions`], then the training loop, in
//! this process, as one data-parallel worker, or as the launcher of `--gpus N` workers.
use crate::cli::TrainArgs;
use crate::train::dist::options::Role;
use crate::train::dist::{connect, SingleProcess};
use crate::train::options::TrainOptions;

/// `detect train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions::from_args(&args)?;
    let mut collective: Box<dyn crate::train::dist::Collective> = match &options.dist.role {
        Role::Launcher(launch) => return crate::train::dist::launch::run(launch),
        Role::Single => Box::new(SingleProcess),
        Role::Worker(env) => connect(
            env,
            options.dist.backend,
            options.dist.timeout,
            &options.device,
        )?,
    };
    options.precision.apply();
    crate::train::trainer::train_with(&options, collective.as_mut()).map_err(|e| {
        let largest_min = options.min_size.iter().flatten().copied().max();
        let sizes = (largest_min, options.max_size);
        let e = super::explain_out_of_memory(e, "training", options.batch_size, sizes);
        match &options.dist.role {
            Role::Worker(env) => e.context(format!("rank {} of {}", env.rank, env.world_size)),
            _ => e,
        }
    })
}
