//! An independent model of what a decoder that puts each TCP direction back
//! in sequence order shows: written from the protocols alone (TCP sequence
//! numbers; libvirt's 4-byte length prefix and 28-byte header), sharing no
//! stream or libvirt code with ldm-sniff. It is the oracle for hostile
//! variants of a real session:
//!
//! - message boundaries come from the clean recording;
//! - in a variant, the first copy of each byte to arrive counts, and a byte
//!   that never arrives is lost;
//! - a message with a lost byte, or whose header is no longer plausible
//!   (its bytes corrupted), is not shown;
//! - any other message is shown at the frame by which every byte of the
//!   stream up to its end has arrived or is known lost: where it completes
//!   in order (so a message after a hole is shown at the frame carrying it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use ldm_sniff::capture::CaptureReader;

/// (frame, program, procedure, type, serial, status) of one message.
pub type Row = (u64, u64, i64, i64, u64, i64);

/// One direction of a connection: (source, source port, destination, destination port).
pub type Flow = (IpAddr, u16, IpAddr, u16);

/// A TCP segment of a capture.
#[derive(Debug, Clone)]
pub struct Segment {
    pub frame: u64,
    pub flow: Flow,
    pub seq: u32,
    pub syn: bool,
    pub payload: Vec<u8>,
}

/// Every IPv4 TCP segment of an Ethernet capture (read with the crate's
/// capture reader; decoded with etherparse).
pub fn segments(path: &Path) -> Vec<Segment> {
    let mut reader = CaptureReader::open(path.to_str().expect("UTF-8 path")).expect("capture opens");
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().expect("a readable capture") {
        let Ok(packet) = SlicedPacket::from_ethernet(frame.data) else { continue };
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(tcp))) = (packet.net, packet.transport) else {
            continue;
        };
        let (src, dst) = (IpAddr::V4(ip.header().source_addr()), IpAddr::V4(ip.header().destination_addr()));
        out.push(Segment {
            frame: frame.number,
            flow: (src, tcp.source_port(), dst, tcp.destination_port()),
            seq: tcp.sequence_number(),
            syn: tcp.syn(),
            payload: tcp.payload().to_vec(),
        });
    }
    out
}

/// A direction of the clean recording: where its bytes start, and its
/// messages as byte ranges of the stream.
#[derive(Debug, Clone)]
pub struct Direction {
    /// The sequence number of the stream's first byte (the SYN's plus one).
    pub first: u32,
    pub len: usize,
    pub messages: Vec<Range<usize>>,
}

/// The directions of a clean recording (every one from its SYN, no hole).
pub fn directions(clean: &[Segment]) -> HashMap<Flow, Direction> {
    let mut streams: HashMap<Flow, (u32, Vec<u8>)> = HashMap::new();
    for s in clean {
        if s.syn {
            streams.insert(s.flow, (s.seq.wrapping_add(1), Vec::new()));
            continue;
        }
        let Some((first, bytes)) = streams.get_mut(&s.flow).filter(|_| !s.payload.is_empty()) else { continue };
        let at = s.seq.wrapping_sub(*first) as usize;
        assert!(at <= bytes.len(), "the clean recording has a hole in {:?} at frame {}", s.flow, s.frame);
        if at + s.payload.len() > bytes.len() {
            bytes.extend_from_slice(&s.payload[bytes.len() - at..]);
        }
    }
    streams
        .into_iter()
        .map(|(flow, (first, bytes))| {
            let mut messages = Vec::new();
            let mut at = 0;
            while at + 4 <= bytes.len() {
                let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
                assert!(len >= 28 && at + len <= bytes.len(), "{flow:?}: a cut or bad message at byte {at}");
                messages.push(at..at + len);
                at += len;
            }
            (flow, Direction { first, len: bytes.len(), messages })
        })
        .collect()
}

/// libvirt's programs (virnetprotocol.x and the program .x files).
const PROGRAMS: [u32; 5] = [0x2000_8086, 0x2000_8087, 0x0006_8000, 0x6b65_6570, 0x0690_0690];

/// The message at `bytes`, if its header still says what a header must:
/// its own length, a known program at version 1, a known type and status.
fn row_of(bytes: &[u8], frame: u64) -> Option<Row> {
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let (len, prog, vers, proc_, kind, serial, status) =
        (word(0), word(4), word(8), word(12) as i32, word(16) as i32, word(20), word(24) as i32);
    let plausible = len as usize == bytes.len()
        && PROGRAMS.contains(&prog)
        && vers == 1
        && (0..=6).contains(&kind)
        && (0..=2).contains(&status);
    plausible.then_some((
        frame,
        u64::from(prog),
        i64::from(proc_),
        i64::from(kind),
        u64::from(serial),
        i64::from(status),
    ))
}

/// The messages a variant shows, by the rules above, sorted.
pub fn expected(variant: &[Segment], clean: &HashMap<Flow, Direction>) -> Vec<Row> {
    // Per direction: each byte's value and the frame it first arrived in.
    let mut arrived: HashMap<Flow, (Vec<u8>, Vec<Option<u64>>)> =
        clean.iter().map(|(flow, d)| (*flow, (vec![0; d.len], vec![None; d.len]))).collect();
    for s in variant.iter().filter(|s| !s.syn) {
        let (Some(direction), Some((bytes, frames))) = (clean.get(&s.flow), arrived.get_mut(&s.flow)) else {
            continue;
        };
        let at = s.seq.wrapping_sub(direction.first) as usize;
        for (i, byte) in s.payload.iter().enumerate() {
            if let Some(slot) = frames.get_mut(at + i).filter(|slot| slot.is_none()) {
                *slot = Some(s.frame);
                bytes[at + i] = *byte;
            }
        }
    }
    let mut rows = Vec::new();
    for (flow, direction) in clean {
        let (bytes, frames) = &arrived[flow];
        // The frame by which the stream up to each byte has arrived (or is lost).
        let mut settled = Vec::with_capacity(frames.len());
        let mut latest = 0;
        for frame in frames {
            latest = latest.max(frame.unwrap_or(0));
            settled.push(latest);
        }
        for range in &direction.messages {
            if frames[range.clone()].iter().any(Option::is_none) {
                continue;
            }
            if let Some(row) = row_of(&bytes[range.clone()], settled[range.end - 1]) {
                rows.push(row);
            }
        }
    }
    rows.sort_unstable();
    rows
}

/// Frames of data segments that hold whole messages only (they start and
/// end at message boundaries), of the directions `of` chooses.
pub fn whole_message_frames(
    clean_segments: &[Segment],
    clean: &HashMap<Flow, Direction>,
    of: impl Fn(&Flow) -> bool,
) -> Vec<u64> {
    clean_segments
        .iter()
        .filter(|s| !s.payload.is_empty() && of(&s.flow))
        .filter(|s| {
            let Some(direction) = clean.get(&s.flow) else { return false };
            let start = s.seq.wrapping_sub(direction.first) as usize;
            let end = start + s.payload.len();
            let boundary = |at: usize| at == direction.len || direction.messages.iter().any(|m| m.start == at);
            boundary(start) && boundary(end)
        })
        .map(|s| s.frame)
        .collect()
}
