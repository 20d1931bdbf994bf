//! The TCP star's rendezvous: rank 0 listens on the master address and accepts every other
//! rank (each introduces itself with its rank and world size, checked), then welcomes them;
//! the others connect, retrying until the timeout (rank 0 may not listen yet).
use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::frame::{read_frame, write_frame, Op, Tag};
use super::link::{configure, leaf_timeout, link_error, receive};
use super::DistError;

/// Rank 0: listens on `master` and accepts ranks `1..world` (in any order) within `timeout`.
pub(crate) fn accept_all(
    master: &str,
    world: usize,
    timeout: Duration,
) -> Result<Vec<TcpStream>, DistError> {
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
pub(crate) fn join(
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
    receive(&mut stream, 0, Op::Join, 0, wait)?;
    Ok(stream)
}
