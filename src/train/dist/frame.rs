//! The TCP collective's wire format: one frame per message, a fixed header then the payload.
//!
//! ```text
//! tag u8 | op u8 | seq u64 LE | len u64 LE | payload (len bytes)
//! ```
//! `tag` says what the frame is ([`Tag`]); `op` and `seq` name the collective call it belongs
//! to (the `seq`-th call of this rank), so ranks that call different operations, or get out of
//! step, are told so instead of misreading each other's data.
use std::io::{self, Read, Write};

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    /// A worker introduces itself to rank 0: payload `rank u64, world_size u64`.
    Hello = 1,
    /// The data of a collective call.
    Data = 2,
    /// The sender is stopping; the payload is its message (UTF-8).
    Abort = 3,
}

/// The collective operations, as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Join = 0,
    AllReduce = 1,
    Broadcast = 2,
    Gather = 3,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Join => "the rendezvous",
            Op::AllReduce => "all_reduce",
            Op::Broadcast => "broadcast",
            Op::Gather => "gather",
        }
    }

    fn from_u8(v: u8) -> Option<Op> {
        [Op::Join, Op::AllReduce, Op::Broadcast, Op::Gather]
            .into_iter()
            .find(|op| *op as u8 == v)
    }
}

/// One received frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) tag: Tag,
    pub(crate) op: Op,
    pub(crate) seq: u64,
    pub(crate) payload: Vec<u8>,
}

/// Largest payload accepted (a bucket is 25 MiB; rendezvous data is small): a garbled header
/// is an error, not a huge allocation.
const MAX_PAYLOAD: u64 = 1 << 34;

pub(crate) fn write_frame(
    w: &mut impl Write,
    tag: Tag,
    op: Op,
    seq: u64,
    payload: &[u8],
) -> io::Result<()> {
    let mut header = [0u8; 18];
    header[0] = tag as u8;
    header[1] = op as u8;
    header[2..10].copy_from_slice(&seq.to_le_bytes());
    header[10..18].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    w.write_all(&header)?;
    w.write_all(payload)?;
    w.flush()
}

pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<Frame> {
    let mut header = [0u8; 18];
    r.read_exact(&mut header)?;
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let tag = match header[0] {
        1 => Tag::Hello,
        2 => Tag::Data,
        3 => Tag::Abort,
        t => return Err(bad(format!("unknown frame tag {t} (not a detect worker?)"))),
    };
    let op = Op::from_u8(header[1]).ok_or_else(|| bad(format!("unknown op {}", header[1])))?;
    let seq = u64::from_le_bytes(header[2..10].try_into().expect("8 bytes"));
    let len = u64::from_le_bytes(header[10..18].try_into().expect("8 bytes"));
    if len > MAX_PAYLOAD {
        return Err(bad(format!("frame of {len} bytes, at most {MAX_PAYLOAD}")));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    Ok(Frame {
        tag,
        op,
        seq,
        payload,
    })
}
