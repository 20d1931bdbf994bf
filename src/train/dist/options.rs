//! `--gpus`, `--nodes`, `--node-rank`, `--master`, `--dist-timeout` and the worker variables,
//! validated once into [`DistOptions`]: what this process is (one process, a launcher, or one
//! rank) and the device it trains on.
use std::time::Duration;

use anyhow::bail;
use candle_core::Device;

use super::env::{Backend, WorkerEnv, BACKEND_VAR};
use crate::cli::DistArgs;
use crate::commands::parse_device;

/// What this process does in data-parallel training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// One process trains alone (no `--gpus`, no worker variables).
    Single,
    /// `--gpus N` without worker variables: start N workers on this node and supervise them.
    Launcher(Launch),
    /// One rank, placed by the worker variables (set by our launcher, torchrun or SLURM).
    Worker(WorkerEnv),
}

/// What the launcher starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Workers on this node (`--gpus`).
    pub gpus: usize,
    /// Nodes in all (`--nodes`).
    pub nodes: usize,
    /// This node (`--node-rank`): its workers are ranks `node_rank * gpus ..`.
    pub node_rank: usize,
    /// `--master ADDR:PORT` (None on one node: 127.0.0.1 and a free port).
    pub master: Option<String>,
}

/// The data-parallel options, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistOptions {
    pub role: Role,
    pub backend: Backend,
    /// How long a rank waits for the others (`--dist-timeout`).
    pub timeout: Duration,
}

impl DistOptions {
    /// Validates the arguments against the worker variables `env` (None: not a worker).
    pub fn new(args: &DistArgs, env: Option<WorkerEnv>, backend: Backend) -> anyhow::Result<Self> {
        if args.dist_timeout == 0 {
            bail!("--dist-timeout must be at least 1 second, got 0");
        }
        if args.gpus == Some(0) {
            bail!("--gpus must be at least 1, got 0");
        }
        if args.nodes == Some(0) {
            bail!("--nodes must be at least 1, got 0");
        }
        let role = match (env, args.gpus) {
            (Some(env), gpus) => {
                check_worker(args, &env, gpus)?;
                Role::Worker(env)
            }
            (None, None) => {
                if args.master.is_some() {
                    bail!("--master needs --gpus (or the worker variables WORLD_SIZE and RANK)");
                }
                Role::Single
            }
            (None, Some(gpus)) => Role::Launcher(launch(args, gpus)?),
        };
        let options = DistOptions {
            role,
            backend,
            timeout: Duration::from_secs(args.dist_timeout),
        };
        if options.role != Role::Single && backend == Backend::Nccl && !cfg!(feature = "cuda") {
            bail!(
                "data-parallel training on GPUs uses NCCL, which needs a CUDA build of detect \
                 (`cargo build --release --features cuda`); this one is CPU-only\nhint: to try \
                 data-parallel training on CPU processes, set {BACKEND_VAR}=tcp"
            );
        }
        Ok(options)
    }

    /// Ranks in all (1 for one process; the launcher's whole world).
    pub fn world_size(&self) -> usize {
        match &self.role {
            Role::Single => 1,
            Role::Launcher(l) => l.gpus * l.nodes,
            Role::Worker(env) => env.world_size,
        }
    }

    /// This process's rank (0 for one process and for the launcher).
    pub fn rank(&self) -> usize {
        match &self.role {
            Role::Worker(env) => env.rank,
            _ => 0,
        }
    }

    /// Workers on this node, when known.
    pub fn local_workers(&self) -> Option<usize> {
        match &self.role {
            Role::Single => Some(1),
            Role::Launcher(l) => Some(l.gpus),
            Role::Worker(env) => env.local_world_size,
        }
    }

    /// The device this process trains on, from `--device` (None: not given). The launcher
    /// trains on nothing: CPU, after checking `--device` agrees with `--gpus`.
    pub fn device(&self, device: Option<&str>) -> anyhow::Result<Device> {
        let Role::Worker(env) = &self.role else {
            if let Role::Launcher(_) = self.role {
                self.check_device(device)?;
                return Ok(Device::Cpu);
            }
            return parse_device(device.unwrap_or("cpu"));
        };
        self.check_device(device)?;
        let own_gpu = format!("cuda:{}", env.local_rank);
        let name = match (device, self.backend) {
            (None, Backend::Nccl) | (Some("cuda"), _) => own_gpu.as_str(),
            (None, Backend::Tcp) => "cpu",
            (Some(d), _) => d,
        };
        parse_device(name)
    }

    /// `--device` with `--gpus`: each worker takes its own GPU, so only `cuda` agrees (or one
    /// GPU named when this node runs one worker); `cpu` only with the TCP backend.
    fn check_device(&self, device: Option<&str>) -> anyhow::Result<()> {
        let Some(device) = device else { return Ok(()) };
        let workers = self.local_workers();
        match device {
            "cuda" => Ok(()),
            "cpu" if self.backend == Backend::Tcp => Ok(()),
            "cpu" => bail!(
                "--device cpu disagrees with data-parallel training on GPUs (NCCL needs one GPU \
                 per worker)\nhint: leave --device out, or set {BACKEND_VAR}=tcp to train \
                 data-parallel on CPU processes"
            ),
            d if d.starts_with("cuda:") && workers == Some(1) => Ok(()),
            d => bail!(
                "--device {d} disagrees with {} workers on this node: each worker trains on \
                 its own GPU, cuda:LOCAL_RANK\nhint: leave --device out (or give `cuda`); \
                 choose the GPUs with CUDA_VISIBLE_DEVICES",
                workers.map_or("several".to_string(), |n| n.to_string())
            ),
        }
    }
}

/// The launcher's options: `--nodes` > 1 needs `--node-rank` and `--master`.
fn launch(args: &DistArgs, gpus: usize) -> anyhow::Result<Launch> {
    let nodes = args.nodes.unwrap_or(1);
    let node_rank = match (args.node_rank, nodes) {
        (Some(r), _) if r >= nodes => {
            bail!("--node-rank {r} is outside --nodes {nodes} (node ranks are 0..{nodes})")
        }
        (Some(r), _) => r,
        (None, 1) => 0,
        (None, _) => bail!("--nodes {nodes} needs --node-rank R: which node this is (0..{nodes})"),
    };
    if nodes > 1 && args.master.is_none() {
        bail!(
            "--nodes {nodes} needs --master ADDR:PORT: the address of node 0 (where rank 0 \
             listens), the same on every node"
        );
    }
    Ok(Launch {
        gpus,
        nodes,
        node_rank,
        master: args.master.clone(),
    })
}

/// A worker given `--gpus` / `--nodes` / `--node-rank` (our launcher passes its arguments on):
/// they must describe the world the variables place it in.
fn check_worker(args: &DistArgs, env: &WorkerEnv, gpus: Option<usize>) -> anyhow::Result<()> {
    let Some(gpus) = gpus else { return Ok(()) };
    let nodes = args.nodes.unwrap_or(1);
    if gpus * nodes != env.world_size {
        bail!(
            "WORLD_SIZE={} disagrees with --gpus {gpus} on {nodes} node(s) ({} ranks)",
            env.world_size,
            gpus * nodes
        );
    }
    if let Some(local) = env.local_world_size.filter(|&l| l != gpus) {
        bail!("LOCAL_WORLD_SIZE={local} disagrees with --gpus {gpus}");
    }
    if let Some(node) = args.node_rank.filter(|&n| n != env.rank / gpus) {
        bail!(
            "RANK={} is not on --node-rank {node} (with --gpus {gpus} it is on node {})",
            env.rank,
            env.rank / gpus
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
