//! Data-parallel training (issue 18): N ranks, each with a whole copy of the model, train on
//! their slices of every global batch and sum their gradients after each backward pass.
//!
//! ```text
//! launch (detect train --gpus N: N worker processes) ─▶ env::WorkerEnv (WORLD_SIZE, RANK, ...)
//!   ─▶ connect: one Collective per rank ─▶ trainer: loader Shard, step's all-reduce (buckets)
//! ```
//!
//! [`Collective`] is the one interface the trainer uses. Three implementations:
//! - [`threads::ThreadHub`]: ranks are threads of one process (unit tests);
//! - [`tcp::TcpCollective`]: ranks are processes joined over TCP in a star around rank 0, which
//!   sums contributions in rank order and sends the sum back (bit-identical on every rank and
//!   from run to run; slow for big models: meant for tests and CPU runs);
//! - `nccl::NcclCollective` (feature `cuda`): gradients go through NCCL's all-reduce on the
//!   GPU; everything else (the NCCL id, configs, evaluation results) through the TCP star.
//!
//! Every wait is bounded by `--dist-timeout`: a rank that exits, fails or hangs makes the others
//! stop with an error naming it ([`DistError`]).
mod buckets;
pub mod env;
mod error;
mod frame;
pub mod launch;
mod link;
#[cfg(feature = "cuda")]
mod nccl;
pub mod options;
mod rendezvous;
pub mod tcp;
pub mod threads;

use std::time::Duration;

use anyhow::Context;
use candle_core::{Device, Tensor};

pub use buckets::{all_reduce_mean, BUCKET_BYTES};
pub use env::{Backend, WorkerEnv};
pub use error::DistError;

/// The collective operations of data-parallel training, seen from one rank. Every rank calls
/// the same operations in the same order; a call returns when all ranks made it, or with an
/// error when one did not within the timeout.
pub trait Collective: Send {
    /// This process's rank, `0..world_size()`.
    fn rank(&self) -> usize;

    fn world_size(&self) -> usize;

    /// True for [`SingleProcess`] only: the trainer then makes no collective call at all. A
    /// world of one worker (`--gpus 1`) still makes them (that is how the NCCL path is tested
    /// on one GPU).
    fn is_single_process(&self) -> bool {
        false
    }

    /// The element-wise sum over ranks of a flat f32 tensor (`[n]`, the same `n` on every
    /// rank); every rank gets the same values.
    fn all_reduce_sum(&mut self, flat: &Tensor) -> Result<Tensor, DistError>;

    /// Rank 0's `bytes`, on every rank (the other ranks' `bytes` are ignored).
    fn broadcast(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DistError>;

    /// Every rank's `bytes` in rank order, on rank 0 (`None` on the others).
    fn gather(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError>;

    /// Returns when every rank has called it.
    fn barrier(&mut self) -> Result<(), DistError> {
        self.gather(&[])?;
        self.broadcast(&[])?;
        Ok(())
    }

    /// Tells the other ranks that this one is stopping with `message` (best effort: they stop
    /// at their next collective call with an error quoting it). Never blocks past the timeout.
    fn abort(&mut self, message: &str);
}

/// The world of a single process: every collective is the identity.
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn is_single_process(&self) -> bool {
        true
    }

    fn all_reduce_sum(&mut self, flat: &Tensor) -> Result<Tensor, DistError> {
        Ok(flat.clone())
    }

    fn broadcast(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DistError> {
        Ok(bytes.to_vec())
    }

    fn gather(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
        Ok(Some(vec![bytes.to_vec()]))
    }

    fn abort(&mut self, _message: &str) {}
}

/// This worker's collective: joins the world `env` describes, over `backend`, training on
/// `device`.
pub fn connect(
    env: &WorkerEnv,
    backend: Backend,
    timeout: Duration,
    device: &Device,
) -> anyhow::Result<Box<dyn Collective>> {
    let tcp = tcp::TcpCollective::connect(&env.master, env.rank, env.world_size, timeout)
        .with_context(|| format!("rank {} joining {} ranks", env.rank, env.world_size))?;
    match backend {
        Backend::Tcp => Ok(Box::new(tcp)),
        #[cfg(feature = "cuda")]
        Backend::Nccl => Ok(Box::new(nccl::NcclCollective::new(tcp, device, timeout)?)),
        #[cfg(not(feature = "cuda"))]
        Backend::Nccl => {
            let _ = device;
            anyhow::bail!(
                "the NCCL backend needs a CUDA build of detect (`--features cuda`)\nhint: set \
                 {}=tcp to train data-parallel on CPU",
                env::BACKEND_VAR
            )
        }
    }
}

/// f32 values as little-endian bytes (what the CPU collectives send).
pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian bytes back to f32 values (`bytes.len()` a multiple of 4).
pub(crate) fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Sums the ranks' f32 vectors in rank order (`parts[0] + parts[1] + ...`, so the result is
/// the same bits wherever it is computed). An error when the lengths differ.
pub(crate) fn sum_in_rank_order(parts: &[Vec<f32>], op: &str) -> Result<Vec<f32>, DistError> {
    let mut sum = parts.first().cloned().unwrap_or_default();
    for (rank, part) in parts.iter().enumerate().skip(1) {
        if part.len() != sum.len() {
            return Err(DistError::Mismatch(format!(
                "{op}: rank 0 sent {} values, rank {rank} {}",
                sum.len(),
                part.len()
            )));
        }
        for (s, v) in sum.iter_mut().zip(part) {
            *s += v;
        }
    }
    Ok(sum)
}

#[cfg(test)]
mod tests;
