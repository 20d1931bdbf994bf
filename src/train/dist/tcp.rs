//! Ranks joined over TCP in a star around rank 0 (test-only in spirit; every build has it, so
//! the multi-process path trains end to end on CPU). Rank 0 listens on the master address and
//! the others connect to it. A sum is gathered at rank 0, added in rank order and sent back,
//! so every rank gets the same bits, run after run; a broadcast is rank 0 writing to each.
//!
//! Failures: a rank whose process ended closes its socket, which rank 0 sees at once; a rank
//! that hangs is caught by the read timeout (`--dist-timeout`). Rank 0 then sends the error to
//! the other ranks (an `Abort` frame) before returning it, so every rank's message names the
//! rank that failed. The others wait a little longer than rank 0 (see [`leaf_timeout`]), so
//! that rank 0, which sees every rank, is the one that reports a hang.
use std::net::TcpStream;
use std::time::Duration;

use candle_core::Tensor;

use super::frame::{write_frame, Op, Tag};
use super::link::{leaf_timeout, receive, send};
use super::rendezvous::{accept_all, join};
use super::{f32_bytes, f32_values, sum_in_rank_order, Collective, DistError};

/// One rank's end of the star.
pub struct TcpCollective {
    rank: usize,
    world: usize,
    timeout: Duration,
    /// Collective calls made so far (each frame carries its call's number).
    seq: u64,
    links: Links,
    /// Set once this rank has failed or aborted: later calls fail at once.
    failed: Option<String>,
}

enum Links {
    /// Rank 0: the stream of rank `r` at index `r - 1`.
    Root(Vec<TcpStream>),
    /// Any other rank: its stream to rank 0.
    Leaf(TcpStream),
}

impl TcpCollective {
    /// Joins the world of `world` ranks as `rank`: rank 0 listens on `master` (`ADDR:PORT`)
    /// and waits for every other rank; the others connect to it, retrying until `timeout`.
    pub fn connect(
        master: &str,
        rank: usize,
        world: usize,
        timeout: Duration,
    ) -> Result<Self, DistError> {
        if world == 0 || rank >= world {
            return Err(DistError::Rendezvous {
                address: master.into(),
                message: format!("rank {rank} is outside a world of {world}"),
            });
        }
        let links = if rank == 0 {
            Links::Root(accept_all(master, world, timeout)?)
        } else {
            Links::Leaf(join(master, rank, world, timeout)?)
        };
        Ok(TcpCollective {
            rank,
            world,
            timeout,
            seq: 0,
            links,
            failed: None,
        })
    }

    fn next_seq(&mut self) -> Result<u64, DistError> {
        if let Some(message) = &self.failed {
            return Err(DistError::Aborted {
                rank: self.rank,
                message: format!("an earlier collective call failed: {message}"),
            });
        }
        self.seq += 1;
        Ok(self.seq)
    }

    /// Rank 0: `result`, or on an error the error, also sent to every other rank.
    fn root_outcome<T>(&mut self, result: Result<T, DistError>) -> Result<T, DistError> {
        if let Err(e) = &result {
            self.abort(&e.to_string());
        }
        result
    }

    /// Rank 0 receives one frame of `(op, seq)` from every other rank, in rank order.
    fn root_gather(&mut self, op: Op, seq: u64, own: &[u8]) -> Result<Vec<Vec<u8>>, DistError> {
        let timeout = self.timeout;
        let Links::Root(peers) = &mut self.links else {
            unreachable!("root_gather on rank 0 only")
        };
        let mut parts = vec![own.to_vec()];
        for (i, stream) in peers.iter_mut().enumerate() {
            parts.push(receive(stream, i + 1, op, seq, timeout)?);
        }
        Ok(parts)
    }

    /// Rank 0 sends one frame of `(op, seq)` to every other rank.
    fn root_scatter(&mut self, op: Op, seq: u64, payload: &[u8]) -> Result<(), DistError> {
        let timeout = self.timeout;
        let Links::Root(peers) = &mut self.links else {
            unreachable!("root_scatter on rank 0 only")
        };
        for (i, stream) in peers.iter_mut().enumerate() {
            send(stream, i + 1, op, seq, payload, timeout)?;
        }
        Ok(())
    }

    /// A rank other than 0 sends `payload` (if any) to rank 0 and, if `reply`, reads its reply.
    fn leaf_exchange(
        &mut self,
        op: Op,
        seq: u64,
        payload: Option<&[u8]>,
        reply: bool,
    ) -> Result<Option<Vec<u8>>, DistError> {
        let timeout = leaf_timeout(self.timeout);
        let Links::Leaf(stream) = &mut self.links else {
            unreachable!("leaf_exchange on ranks other than 0")
        };
        if let Some(p) = payload {
            send(stream, 0, op, seq, p, timeout)?;
        }
        let result = if reply {
            Some(receive(stream, 0, op, seq, timeout)?)
        } else {
            None
        };
        Ok(result)
    }

    fn leaf_outcome<T>(&mut self, result: Result<T, DistError>) -> Result<T, DistError> {
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }
}

impl Collective for TcpCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce_sum(&mut self, flat: &Tensor) -> Result<Tensor, DistError> {
        let seq = self.next_seq()?;
        let own = flat.flatten_all()?.to_dtype(candle_core::DType::F32)?;
        let own_bytes = f32_bytes(&own.to_vec1::<f32>()?);
        let n = own.elem_count();
        let sum = if self.rank == 0 {
            let result = (|| {
                let parts = self.root_gather(Op::AllReduce, seq, &own_bytes)?;
                let parts: Vec<Vec<f32>> = parts.iter().map(|p| f32_values(p)).collect();
                let sum = sum_in_rank_order(&parts, "all_reduce")?;
                self.root_scatter(Op::AllReduce, seq, &f32_bytes(&sum))?;
                Ok(sum)
            })();
            self.root_outcome(result)?
        } else {
            let result = self.leaf_exchange(Op::AllReduce, seq, Some(&own_bytes), true);
            let reply = self.leaf_outcome(result)?.unwrap_or_default();
            f32_values(&reply)
        };
        if sum.len() != n {
            return Err(DistError::Mismatch(format!(
                "all_reduce #{seq}: this rank sent {n} values, got {} back",
                sum.len()
            )));
        }
        Ok(Tensor::from_vec(sum, n, flat.device())?)
    }

    fn broadcast(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DistError> {
        let seq = self.next_seq()?;
        if self.rank == 0 {
            let result = self.root_scatter(Op::Broadcast, seq, bytes);
            self.root_outcome(result)?;
            Ok(bytes.to_vec())
        } else {
            let result = self.leaf_exchange(Op::Broadcast, seq, None, true);
            Ok(self.leaf_outcome(result)?.unwrap_or_default())
        }
    }

    fn gather(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
        let seq = self.next_seq()?;
        if self.rank == 0 {
            let result = self.root_gather(Op::Gather, seq, bytes);
            Ok(Some(self.root_outcome(result)?))
        } else {
            let result = self.leaf_exchange(Op::Gather, seq, Some(bytes), false);
            self.leaf_outcome(result)?;
            Ok(None)
        }
    }

    fn abort(&mut self, message: &str) {
        if self.failed.is_some() {
            return;
        }
        self.failed = Some(message.to_string());
        let streams: Vec<&mut TcpStream> = match &mut self.links {
            Links::Root(peers) => peers.iter_mut().collect(),
            Links::Leaf(stream) => vec![stream],
        };
        for stream in streams {
            // Best effort, never long: the peer may be gone or stuck.
            let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = write_frame(stream, Tag::Abort, Op::Join, 0, message.as_bytes());
        }
    }
}
