//! One link of the TCP star: data frames to and from a peer, with every failure turned into
//! an error that names the peer's rank and the call ([`DistError`]).
use std::io;
use std::net::TcpStream;
use std::time::Duration;

use super::frame::{read_frame, write_frame, Op, Tag};
use super::DistError;

/// How long a rank other than 0 waits for rank 0: the timeout plus half of it and 2 s.
pub(crate) fn leaf_timeout(timeout: Duration) -> Duration {
    timeout + timeout / 2 + Duration::from_secs(2)
}

/// An I/O error on the link to `peer` during `op`, as the error a user should read.
pub(crate) fn link_error(e: io::Error, peer: usize, op: &str, timeout: Duration) -> DistError {
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

pub(crate) fn configure(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))
}

/// Receives the data frame of call `(op, seq)` from `peer` on `stream`.
pub(crate) fn receive(
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

pub(crate) fn send(
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
