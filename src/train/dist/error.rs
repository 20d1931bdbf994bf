//! Why a collective call failed: each message names the rank and the operation.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DistError {
    #[error(
        "rank {rank} closed its connection during {op} (its process exited or was killed; \
         its own output says why)"
    )]
    PeerClosed { rank: usize, op: String },
    #[error("rank {rank} did not answer within {seconds} s during {op} (--dist-timeout)")]
    Timeout {
        rank: usize,
        op: String,
        seconds: u64,
    },
    #[error("rank {rank} stopped: {message}")]
    Aborted { rank: usize, message: String },
    #[error("rendezvous at {address}: {message}")]
    Rendezvous { address: String, message: String },
    #[error("ranks disagree: {0}")]
    Mismatch(String),
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Tensor(#[from] candle_core::Error),
    #[error("NCCL: {0}")]
    Nccl(String),
}
