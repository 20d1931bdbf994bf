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
use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use candle_core::Tensor;

use super::frame::{read_frame, write_frame, Op, Tag};
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

/// How long a rank other than 0 waits for rank 0: the timeout plus half of it and 2 s.
fn leaf_timeout(timeout: Duration) -> Duration {
    timeout + timeout / 2 + Duration::from_secs(2)
}

/// An I/O error on the link to `peer` during `op`, as the error a user should read.
fn link_error(e: io::Error, peer: usize, op: &str, timeout: Duration) -> DistError {
    use io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => DistError::PeerClosed {
            rank: peer,
            op: op.to_string(),
        },
        WouldBlock | TimedOut => DistError::Timeout {
            rank: peer,
            op: op.to_string(),
            seconds: timeout.as_secs(),
        },
        _ => DistError::Io {
            op: format!("{op} with rank {peer}"),
            source: e,
        },
    }
}

fn configure(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))
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

    /// Receives the data frame of call `(op, seq)` from `peer` on `stream`.
    fn receive(
        stream: &mut TcpStream,
        peer: usize,
        op: Op,
        seq: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, DistError> {
        let what = format!("{} #{seq}", op.name());
        let frame = read_frame(stream).map_err(|e| link_error(e, peer, &what, timeout))?;
        match frame.tag {
            Tag::Abort => Err(DistError::Aborted {
                rank: peer,
                message: String::from_utf8_lossy(&frame.payload).into_owned(),
            }),
            Tag::Data if frame.op == op && frame.seq == seq => Ok(frame.payload),
            _ => Err(DistError::Mismatch(format!(
                "this rank is at {what}, rank {peer} sent {} #{}",
                frame.op.name(),
                frame.seq
            ))),
        }
    }

    fn send(
        stream: &mut TcpStream,
        peer: usize,
        op: Op,
        seq: u64,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), DistError> {
        write_frame(stream, Tag::Data, op, seq, payload)
            .map_err(|e| link_error(e, peer, &format!("{} #{seq}", op.name()), timeout))
    }

    /// Rank 0 receives one frame of `(op, seq)` from every other rank, in rank order.
    fn root_gather(&mut self, op: Op, seq: u64, own: &[u8]) -> Result<Vec<Vec<u8>>, DistError> {
        let timeout = self.timeout;
        let Links::Root(peers) = &mut self.links else {
            unreachable!("root_gather on rank 0 only")
        };
        let mut parts = vec![own.to_vec()];
        for (i, stream) in peers.iter_mut().enumerate() {
            parts.push(Self::receive(stream, i + 1, op, seq, timeout)?);
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
            Self::send(stream, i + 1, op, seq, payload, timeout)?;
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
            Self::send(stream, 0, op, seq, p, timeout)?;
        }
        let result = if reply {
            Some(Self::receive(stream, 0, op, seq, timeout)?)
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

/// Rank 0: listens on `master` and accepts ranks `1..world` (in any order) within `timeout`.
fn accept_all(master: &str, world: usize, timeout: Duration) -> Result<Vec<TcpStream>, DistError> {
    let fail = |message: String| DistError::Rendezvous {
        address: master.into(),
        message,
    };
    let listener = TcpListener::bind(master).map_err(|e| {
        fail(format!(
            "rank 0 cannot listen there: {e}\nhint: pick a free port with --master ADDR:PORT \
             (or MASTER_PORT)"
        ))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let mut peers: Vec<Option<TcpStream>> = (1..world).map(|_| None).collect();
    while peers.iter().any(Option::is_none) {
        let (mut stream, from) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing: Vec<String> = (1..world)
                        .filter(|r| peers[r - 1].is_none())
                        .map(|r| r.to_string())
                        .collect();
                    return Err(fail(format!(
                        "rank(s) {} did not join within {} s (--dist-timeout)",
                        missing.join(", "),
                        timeout.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(fail(format!("accepting a rank: {e}"))),
        };
        configure(&stream, timeout).map_err(|e| fail(e.to_string()))?;
        let hello = read_frame(&mut stream).map_err(|e| fail(format!("from {from}: {e}")))?;
        let (rank, their_world) = match (hello.tag, hello.payload.len()) {
            (Tag::Hello, 16) => (
                u64::from_le_bytes(hello.payload[..8].try_into().expect("8 bytes")) as usize,
                u64::from_le_bytes(hello.payload[8..].try_into().expect("8 bytes")) as usize,
            ),
            _ => return Err(fail(format!("{from} is not a detect worker"))),
        };
        let refuse = if their_world != world {
            Some(format!(
                "rank {rank} has WORLD_SIZE {their_world}, rank 0 has {world}"
            ))
        } else if rank == 0 || rank >= world {
            Some(format!(
                "a worker says it is rank {rank}, expected 1..{world}"
            ))
        } else if peers[rank - 1].is_some() {
            Some(format!("two workers say they are rank {rank}"))
        } else {
            None
        };
        if let Some(message) = refuse {
            let _ = write_frame(&mut stream, Tag::Abort, Op::Join, 0, message.as_bytes());
            return Err(fail(message));
        }
        peers[rank - 1] = Some(stream);
    }
    let mut peers: Vec<TcpStream> = peers.into_iter().flatten().collect();
    for (i, stream) in peers.iter_mut().enumerate() {
        write_frame(stream, Tag::Data, Op::Join, 0, &[])
            .map_err(|e| link_error(e, i + 1, Op::Join.name(), timeout))?;
    }
    Ok(peers)
}

/// A rank other than 0: connects to `master` (retrying until `timeout`: rank 0 may not
/// listen yet), introduces itself and waits for rank 0's welcome.
fn join(
    master: &str,
    rank: usize,
    world: usize,
    timeout: Duration,
) -> Result<TcpStream, DistError> {
    let fail = |message: String| DistError::Rendezvous {
        address: master.into(),
        message,
    };
    let deadline = Instant::now() + timeout;
    let mut stream = loop {
        let addrs: Vec<_> = master
            .to_socket_addrs()
            .map_err(|e| fail(format!("not an address: {e}")))?
            .collect();
        let connected = addrs
            .iter()
            .find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).ok());
        if let Some(s) = connected {
            break s;
        }
        if Instant::now() >= deadline {
            return Err(fail(format!(
                "rank {rank} could not reach rank 0 within {} s (--dist-timeout)",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wait = leaf_timeout(timeout);
    configure(&stream, wait).map_err(|e| fail(e.to_string()))?;
    let mut hello = (rank as u64).to_le_bytes().to_vec();
    hello.extend((world as u64).to_le_bytes());
    write_frame(&mut stream, Tag::Hello, Op::Join, 0, &hello)
        .map_err(|e| link_error(e, 0, Op::Join.name(), wait))?;
    TcpCollective::receive(&mut stream, 0, Op::Join, 0, wait)?;
    Ok(stream)
}
