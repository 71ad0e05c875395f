//! Hostile variants of a recorded TCP capture, made deterministically: the
//! segments a real network or a lossy capture would have dropped,
//! duplicated, reordered, split or corrupted. Tests derive them from real
//! recordings (`captures/libvirt/`), and `examples/tcp-variants.rs` makes
//! them by hand from any Ethernet capture.
//!
//! Edits name frames by their 1-based number in the original capture, and
//! are applied all at once: a frame's edits do not shift the others.

use std::fmt;

use etherparse::{Ethernet2Header, Ipv4Header, TcpHeader};

use crate::capture::writer::PcapWriter;
use crate::capture::{CaptureReader, Linktype, Timestamp};

/// One frame of an Ethernet capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub ts: Timestamp,
    pub data: Vec<u8>,
}

/// What happens to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Never captured.
    Drop,
    /// Captured twice in a row (a retransmission).
    Duplicate,
    /// Sent again just before original frame `before` (a late
    /// retransmission, after the connection closed when `before` is past
    /// its FIN); at the end of the capture past its last frame.
    ResendBefore(u64),
    /// Captured after the frame that followed it.
    SwapWithNext,
    /// Its TCP payload in two segments, the first `at` bytes long.
    Split(usize),
    /// The payload byte at `at` flipped (every bit).
    Corrupt(usize),
}

impl fmt::Display for Edit {
    /// The form `tcp-variants` reads, without the frame number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edit::Drop => f.write_str("drop"),
            Edit::Duplicate => f.write_str("dup"),
            Edit::ResendBefore(before) => write!(f, "resend@{before}"),
            Edit::SwapWithNext => f.write_str("swap"),
            Edit::Split(at) => write!(f, "split@{at}"),
            Edit::Corrupt(at) => write!(f, "corrupt@{at}"),
        }
    }
}

/// `KIND:FRAME[@N]`, as `Edit`'s display writes it with the frame first:
/// `drop:12`, `dup:12`, `resend:12@40`, `swap:12`, `split:12@5`, `corrupt:12@9`.
pub fn parse_edit(text: &str) -> Result<(u64, Edit), String> {
    let usage =
        || format!("'{text}' is not an edit: KIND:FRAME or KIND:FRAME@N (drop, dup, resend@, swap, split@, corrupt@)");
    let (kind, rest) = text.split_once(':').ok_or_else(usage)?;
    let (frame, arg) = match rest.split_once('@') {
        Some((frame, arg)) => (frame, Some(arg.parse::<u64>().map_err(|_| usage())?)),
        None => (rest, None),
    };
    let frame: u64 = frame.parse().map_err(|_| usage())?;
    if frame == 0 {
        return Err(format!("'{text}': frames are numbered from 1"));
    }
    let edit = match (kind, arg) {
        ("drop", None) => Edit::Drop,
        ("dup", None) => Edit::Duplicate,
        ("resend", Some(before)) => Edit::ResendBefore(before),
        ("swap", None) => Edit::SwapWithNext,
        ("split", Some(at)) => Edit::Split(at as usize),
        ("corrupt", Some(at)) => Edit::Corrupt(at as usize),
        _ => return Err(usage()),
    };
    Ok((frame, edit))
}

/// Every frame of an Ethernet capture (pcap or pcapng).
pub fn read(path: &str) -> Result<Vec<Packet>, String> {
    let mut reader = CaptureReader::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut packets = Vec::new();
    while let Some(frame) = reader.next_frame().map_err(|e| format!("{path}: {e}"))? {
        if frame.linktype != Linktype::ETHERNET {
            return Err(format!(
                "{path}: frame {} is not Ethernet; variants are made of Ethernet captures",
                frame.number
            ));
        }
        packets.push(Packet { ts: frame.ts, data: frame.data.to_vec() });
    }
    Ok(packets)
}

/// A classic pcap (Ethernet, microseconds) of `packets`.
pub fn to_pcap(packets: &[Packet]) -> Vec<u8> {
    let mut writer = PcapWriter::new(Vec::new(), Linktype::ETHERNET, false, false).expect("writing to a Vec");
    for packet in packets {
        writer.write_packet(packet.ts, &packet.data, packet.data.len() as u32).expect("writing to a Vec");
    }
    writer.into_inner()
}

/// An IPv4/TCP frame taken apart.
struct Segment<'a> {
    ethernet: Ethernet2Header,
    ip: Ipv4Header,
    tcp: TcpHeader,
    payload: &'a [u8],
}

fn segment(data: &[u8]) -> Option<Segment<'_>> {
    let (ethernet, rest) = Ethernet2Header::from_slice(data).ok()?;
    if ethernet.ether_type != etherparse::EtherType::IPV4 {
        return None;
    }
    let (ip, rest) = Ipv4Header::from_slice(rest).ok()?;
    if ip.protocol != etherparse::IpNumber::TCP {
        return None;
    }
    let ip_payload_len = usize::from(ip.total_len).checked_sub(ip.header_len())?.min(rest.len());
    let (tcp, payload) = TcpHeader::from_slice(&rest[..ip_payload_len]).ok()?;
    Some(Segment { ethernet, ip, tcp, payload })
}

/// The frame again with `payload` at sequence number `seq`, lengths and
/// checksums made anew.
fn rebuild(s: &Segment<'_>, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut ip = s.ip.clone();
    let mut tcp = s.tcp.clone();
    tcp.sequence_number = seq;
    ip.set_payload_len(tcp.header_len() + payload.len()).expect("a split segment fits");
    ip.header_checksum = ip.calc_header_checksum();
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, payload).expect("a split segment fits");
    let mut out = Vec::with_capacity(14 + ip.header_len() + tcp.header_len() + payload.len());
    s.ethernet.write(&mut out).expect("writing to a Vec");
    ip.write(&mut out).expect("writing to a Vec");
    tcp.write(&mut out).expect("writing to a Vec");
    out.extend_from_slice(payload);
    out
}

/// TCP payload bytes of a frame (0 for anything else).
pub fn payload_len(packet: &Packet) -> usize {
    segment(&packet.data).map_or(0, |s| s.payload.len())
}

/// `packets` with `edits` applied (frame numbers from 1); an edit that does
/// not fit its frame is an error that says why.
pub fn apply(packets: &[Packet], edits: &[(u64, Edit)]) -> Result<Vec<Packet>, String> {
    for (frame, _) in edits {
        if *frame == 0 || *frame as usize > packets.len() {
            return Err(format!("frame {frame}: the capture has frames 1-{}", packets.len()));
        }
    }
    let edits_of = |number: u64| edits.iter().filter(move |(frame, _)| *frame == number).map(|(_, edit)| *edit);
    let resent_before = |number: u64| {
        edits.iter().filter(move |(_, edit)| *edit == Edit::ResendBefore(number)).map(|(frame, _)| *frame)
    };
    let mut out = Vec::new();
    // The pieces of a frame swapped with the next, until that one is written.
    let mut swapped: Option<Vec<Packet>> = None;
    for (i, packet) in packets.iter().enumerate() {
        let number = i as u64 + 1;
        for frame in resent_before(number) {
            out.push(packets[frame as usize - 1].clone());
        }
        let mut pieces = vec![packet.clone()];
        for edit in edits_of(number) {
            pieces = match edit {
                Edit::Drop => Vec::new(),
                Edit::Duplicate => pieces.iter().flat_map(|p| [p.clone(), p.clone()]).collect(),
                Edit::Split(at) => {
                    let halves: Result<Vec<Vec<Packet>>, String> =
                        pieces.iter().map(|p| split(p, at, number)).collect();
                    halves?.concat()
                }
                Edit::Corrupt(at) => pieces.iter().map(|p| corrupt(p, at, number)).collect::<Result<_, _>>()?,
                Edit::SwapWithNext | Edit::ResendBefore(_) => pieces,
            };
        }
        let earlier = swapped.take();
        if edits_of(number).any(|edit| edit == Edit::SwapWithNext) {
            if number as usize == packets.len() {
                return Err(format!("frame {number}: the last frame has none after it to swap with"));
            }
            out.extend(earlier.into_iter().flatten());
            swapped = Some(pieces);
            continue;
        }
        out.extend(pieces);
        out.extend(earlier.into_iter().flatten());
    }
    let past_the_end = packets.len() as u64 + 1;
    for (frame, edit) in edits {
        if matches!(edit, Edit::ResendBefore(before) if *before >= past_the_end) {
            out.push(packets[*frame as usize - 1].clone());
        }
    }
    Ok(out)
}

fn split(packet: &Packet, at: usize, number: u64) -> Result<Vec<Packet>, String> {
    let s = segment(&packet.data).ok_or_else(|| format!("frame {number}: not an IPv4 TCP segment, cannot split"))?;
    if at == 0 || at >= s.payload.len() {
        return Err(format!("frame {number}: split@{at} must lie inside its {}-byte payload", s.payload.len()));
    }
    let (first, second) = s.payload.split_at(at);
    let seq = s.tcp.sequence_number;
    // The first piece carries no FIN: only the end of the bytes does.
    let head = Segment {
        tcp: TcpHeader { fin: false, ..s.tcp.clone() },
        ethernet: s.ethernet.clone(),
        ip: s.ip.clone(),
        payload: first,
    };
    Ok(vec![
        Packet { ts: packet.ts, data: rebuild(&head, seq, first) },
        Packet { ts: packet.ts, data: rebuild(&s, seq.wrapping_add(at as u32), second) },
    ])
}

fn corrupt(packet: &Packet, at: usize, number: u64) -> Result<Packet, String> {
    let s = segment(&packet.data).ok_or_else(|| format!("frame {number}: not an IPv4 TCP segment, cannot corrupt"))?;
    if at >= s.payload.len() {
        return Err(format!("frame {number}: corrupt@{at} lies past its {}-byte payload", s.payload.len()));
    }
    // The payload is a part of the frame's bytes: find where.
    let start = s.payload.as_ptr() as usize - packet.data.as_ptr() as usize;
    let mut data = packet.data.clone();
    data[start + at] ^= 0xff;
    Ok(Packet { ts: packet.ts, data })
}

/// `count` distinct frames chosen among `candidates` by `seed`: the same
/// seed chooses the same frames.
pub fn choose(seed: u64, candidates: &[u64], count: usize) -> Vec<u64> {
    let mut state = seed | 1;
    let mut pool = candidates.to_vec();
    let mut chosen = Vec::new();
    while chosen.len() < count && !pool.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chosen.push(pool.swap_remove((state % pool.len() as u64) as usize));
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five frames: a TCP segment with payload `[n; 10 * n]` at seq 100 * n.
    fn capture() -> Vec<Packet> {
        (1..=5u32)
            .map(|n| {
                let mut ip_packet = Vec::new();
                let builder = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                    .tcp(40_000, 16_509, 100 * n, 1000)
                    .ack(1);
                builder.write(&mut ip_packet, &vec![n as u8; 10 * n as usize]).unwrap();
                let data = crate::synth::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], &[], 0x0800, &ip_packet);
                Packet { ts: Timestamp::new(i64::from(n), 0), data }
            })
            .collect()
    }

    /// (seq, payload) of each frame, checking its lengths and checksums
    /// (a corrupted payload keeps its old TCP checksum, as on the wire).
    fn segments(packets: &[Packet]) -> Vec<(u32, Vec<u8>)> {
        packets
            .iter()
            .map(|p| {
                let s = segment(&p.data).expect("a TCP segment");
                assert_eq!(s.ip.header_checksum, s.ip.calc_header_checksum());
                let corrupted = s.payload.iter().any(|b| *b > 5);
                let sum_ok = s.tcp.checksum == s.tcp.calc_checksum_ipv4(&s.ip, s.payload).unwrap();
                assert_eq!(sum_ok, !corrupted);
                (s.tcp.sequence_number, s.payload.to_vec())
            })
            .collect()
    }

    fn seqs(packets: &[Packet]) -> Vec<u32> {
        segments(packets).iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn each_edit_does_what_it_says() {
        let c = capture();
        assert_eq!(seqs(&apply(&c, &[]).unwrap()), [100, 200, 300, 400, 500]);
        assert_eq!(seqs(&apply(&c, &[(2, Edit::Drop), (4, Edit::Drop)]).unwrap()), [100, 300, 500]);
        assert_eq!(seqs(&apply(&c, &[(3, Edit::Duplicate)]).unwrap()), [100, 200, 300, 300, 400, 500]);
        assert_eq!(seqs(&apply(&c, &[(2, Edit::SwapWithNext)]).unwrap()), [100, 300, 200, 400, 500]);
        assert_eq!(seqs(&apply(&c, &[(1, Edit::ResendBefore(4))]).unwrap()), [100, 200, 300, 100, 400, 500]);
        assert_eq!(seqs(&apply(&c, &[(1, Edit::ResendBefore(9))]).unwrap()), [100, 200, 300, 400, 500, 100]);
        let split = segments(&apply(&c, &[(3, Edit::Split(7))]).unwrap());
        assert_eq!(split[2], (300, vec![3; 7]));
        assert_eq!(split[3], (307, vec![3; 23]));
        let corrupted = segments(&apply(&c, &[(2, Edit::Corrupt(4))]).unwrap());
        assert_eq!(corrupted[1].1, [2, 2, 2, 2, !2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
        // Edits of one frame do not move the others: swap and split together.
        let both = seqs(&apply(&c, &[(2, Edit::SwapWithNext), (2, Edit::Split(5))]).unwrap());
        assert_eq!(both, [100, 300, 200, 205, 400, 500]);
    }

    #[test]
    fn edits_that_do_not_fit_are_errors_that_say_why() {
        let c = capture();
        for (edit, want) in [
            ((9, Edit::Drop), "frames 1-5"),
            ((5, Edit::SwapWithNext), "none after it"),
            ((1, Edit::Split(10)), "inside its 10-byte payload"),
            ((1, Edit::Corrupt(10)), "past its 10-byte payload"),
        ] {
            let error = apply(&c, &[edit]).unwrap_err();
            assert!(error.contains(want), "{error}");
        }
    }

    #[test]
    fn edits_read_as_they_are_written() {
        for edit in
            [Edit::Drop, Edit::Duplicate, Edit::ResendBefore(40), Edit::SwapWithNext, Edit::Split(5), Edit::Corrupt(9)]
        {
            let text = edit.to_string();
            let (kind, arg) = text.split_once('@').map_or((text.as_str(), None), |(k, a)| (k, Some(a)));
            let written = match arg {
                Some(arg) => format!("{kind}:12@{arg}"),
                None => format!("{kind}:12"),
            };
            assert_eq!(parse_edit(&written), Ok((12, edit)), "{written}");
        }
        assert!(parse_edit("drop:0").is_err());
        assert!(parse_edit("split:3").is_err());
        assert!(parse_edit("shuffle:3").is_err());
    }

    #[test]
    fn choices_depend_on_the_seed_only() {
        let candidates: Vec<u64> = (1..=100).collect();
        assert_eq!(choose(7, &candidates, 5), choose(7, &candidates, 5));
        assert_ne!(choose(7, &candidates, 5), choose(8, &candidates, 5));
        assert_eq!(choose(7, &candidates, 500).len(), 100);
    }
}
