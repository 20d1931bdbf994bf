//! A worker's place in the world, from the variables `torchrun`, SLURM wrappers and our own
//! launcher set: `WORLD_SIZE`, `RANK`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`,
//! `MASTER_PORT`; and the collective's backend (`DETECT_DIST_BACKEND`).
use anyhow::{bail, Context};

/// torchrun's default rendezvous port.
pub const DEFAULT_MASTER_PORT: u16 = 29500;

/// The variable that picks the backend: `nccl` (the default) or `tcp`.
pub const BACKEND_VAR: &str = "DETECT_DIST_BACKEND";

/// How gradients are summed across ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// NCCL on GPUs (builds with `--features cuda`).
    Nccl,
    /// The TCP star of [`super::tcp`]: any device, slow for big models (tests, CPU runs).
    Tcp,
}

impl Backend {
    /// From `DETECT_DIST_BACKEND` (unset: NCCL).
    pub fn from_env() -> anyhow::Result<Backend> {
        Self::parse(std::env::var(BACKEND_VAR).ok().as_deref())
    }

    pub fn parse(value: Option<&str>) -> anyhow::Result<Backend> {
        match value {
            None | Some("nccl") => Ok(Backend::Nccl),
            Some("tcp") => Ok(Backend::Tcp),
            Some(other) => bail!("{BACKEND_VAR}={other}: expected `nccl` or `tcp`"),
        }
    }
}

/// One worker's place, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerEnv {
    /// `WORLD_SIZE`: ranks in all.
    pub world_size: usize,
    /// `RANK`: this worker, `0..world_size`.
    pub rank: usize,
    /// `LOCAL_RANK`: this worker on its node (its GPU); default `RANK`.
    pub local_rank: usize,
    /// `LOCAL_WORLD_SIZE`: workers on this node, when given.
    pub local_world_size: Option<usize>,
    /// `MASTER_ADDR:MASTER_PORT`, where rank 0 listens (default `127.0.0.1:29500`).
    pub master: String,
}

impl WorkerEnv {
    /// `None` when neither `WORLD_SIZE` nor `RANK` is set (not a worker).
    pub fn from_env() -> anyhow::Result<Option<WorkerEnv>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`WorkerEnv::from_env`], reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<WorkerEnv>> {
        let number = |name: &str| -> anyhow::Result<Option<usize>> {
            var(name)
                .map(|v| {
                    v.trim().parse::<usize>().with_context(|| {
                        format!("{name}={v}: expected a non-negative whole number")
                    })
                })
                .transpose()
        };
        let (world_size, rank) = match (number("WORLD_SIZE")?, number("RANK")?) {
            (None, None) => return Ok(None),
            (Some(w), Some(r)) => (w, r),
            (w, _) => bail!(
                "{} is set but {} is not: a worker needs both (torchrun and SLURM wrappers set \
                 WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)",
                if w.is_some() { "WORLD_SIZE" } else { "RANK" },
                if w.is_some() { "RANK" } else { "WORLD_SIZE" },
            ),
        };
        if world_size == 0 || rank >= world_size {
            bail!("RANK={rank} is outside WORLD_SIZE={world_size} (ranks are 0..WORLD_SIZE)");
        }
        let local_rank = number("LOCAL_RANK")?.unwrap_or(rank);
        let local_world_size = number("LOCAL_WORLD_SIZE")?;
        if let Some(n) = local_world_size {
            if local_rank >= n {
                bail!("LOCAL_RANK={local_rank} is outside LOCAL_WORLD_SIZE={n}");
            }
        }
        let addr = var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        let port = match var("MASTER_PORT") {
            None => DEFAULT_MASTER_PORT,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .with_context(|| format!("MASTER_PORT={p}: expected a port number"))?,
        };
        Ok(Some(WorkerEnv {
            world_size,
            rank,
            local_rank,
            local_world_size,
            master: format!("{addr}:{port}"),
        }))
    }
}
