//! TCP stream reassembly for libvirt, per direction, bounded.
//!
//! Bytes are delivered in sequence order: a retransmitted or overlapping
//! segment gives only its new bytes, a segment ahead of a hole waits (a few of
//! them, briefly). A hole that never fills (too much waiting, or the stream
//! closes) is a gap: the bytes after it are searched for the next plausible
//! libvirt header, as are the bytes of a stream joined mid-way. Each whole
//! message is handed out once, in the frame that completes it.
//!
//! Memory: at most `MAX_FLOWS` directions, each holding at most `MAX_KEEP`
//! bytes of the message being assembled (a longer message keeps its first
//! `MAX_KEEP` bytes and the rest is counted, not kept) and `MAX_HELD_BYTES`
//! of waiting segments, and `MAX_BYTES` over all of them: past either cap the
//! least recently used direction is dropped (its next bytes are then treated
//! as a connection joined mid-way).

use std::net::IpAddr;
use std::ops::Range;

use ahash::RandomState;
use std::collections::HashMap;

use crate::wire::libvirt::{self, Header};
use crate::wire::tls;

use super::tcp::{TcpInfo, FIN, RST, SYN};

/// Directions tracked at once; the least recently used is dropped beyond.
pub const MAX_FLOWS: usize = 1024;
/// Bytes of one message kept for decoding.
pub const MAX_KEEP: usize = 256 * 1024;
/// Out-of-order segments (and their bytes) waiting for a hole to fill.
pub const MAX_HELD_SEGMENTS: usize = 64;
pub const MAX_HELD_BYTES: usize = 1 << 20;
/// Bytes held over all directions.
pub const MAX_BYTES: usize = 8 << 20;

/// How a stream is cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// libvirt RPC: a 4-byte length, then the rest of the message.
    Libvirt,
    /// TLS records: a 5-byte header whose last two bytes are the fragment length.
    Tls,
}

impl Framing {
    fn header_len(self) -> usize {
        match self {
            Framing::Libvirt => libvirt::HEADER_LEN,
            Framing::Tls => tls::HEADER_LEN,
        }
    }

    /// The whole message's length, if `bytes` start with a plausible header.
    fn message_len(self, bytes: &[u8]) -> Option<usize> {
        match self {
            Framing::Libvirt => Header::parse(bytes).filter(Header::is_plausible).map(|h| h.len as usize),
            Framing::Tls => tls::Record::parse(bytes)
                .filter(tls::Record::is_plausible)
                .map(|r| tls::HEADER_LEN + usize::from(r.length)),
        }
    }

    /// The offset of the first plausible header in `bytes`.
    fn find_header(self, bytes: &[u8]) -> Option<usize> {
        let last = bytes.len().checked_sub(self.header_len())?;
        (0..=last).find(|&at| self.message_len(&bytes[at..]).is_some())
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
}

impl FlowKey {
    /// The same key for both directions (for per-connection state).
    pub fn connection(&self) -> FlowKey {
        let reversed = FlowKey { src: self.dst, src_port: self.dst_port, dst: self.src, dst_port: self.src_port };
        if (self.src, self.src_port) <= (self.dst, self.dst_port) {
            *self
        } else {
            reversed
        }
    }
}

/// What one segment delivered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Whole messages this segment completed, as ranges of the output buffer.
    pub messages: Vec<Range<usize>>,
    /// Bytes never captured before data delivered here.
    pub gap: Option<u64>,
    /// Bytes skipped while looking for a message header.
    pub skipped: usize,
    /// The segment repeated bytes already delivered.
    pub retransmission: bool,
    /// Where a header was due, the bytes were not one.
    pub bad_header: bool,
    /// The direction carries SASL-encrypted data (bytes not decoded).
    pub encrypted: bool,
    /// The direction was seen from its SYN (so every message of it was seen).
    pub from_start: bool,
}

#[derive(Debug)]
struct Direction {
    framing: Framing,
    /// After SASL authentication with a security layer: every byte is
    /// encrypted, and nothing more is decoded.
    encrypted: bool,
    next_seq: Option<u32>,
    syn_seen: bool,
    /// In-order bytes not yet a whole message.
    pending: Vec<u8>,
    /// The kept start of an over-long message, and its bytes still to come.
    long: Vec<u8>,
    discard: usize,
    /// Looking for the next plausible header.
    resync: bool,
    /// Segments past a hole: (sequence number, bytes).
    held: Vec<(u32, Vec<u8>)>,
    held_bytes: usize,
    last_used: u64,
}

/// Sequence distance from `from` to `to` (negative: `to` is before `from`).
fn seq_diff(to: u32, from: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

impl Direction {
    fn new(framing: Framing) -> Direction {
        Direction {
            framing,
            encrypted: false,
            next_seq: None,
            syn_seen: false,
            pending: Vec::new(),
            long: Vec::new(),
            discard: 0,
            resync: false,
            held: Vec::new(),
            held_bytes: 0,
            last_used: 0,
        }
    }

    /// Bytes in sequence order, after any held before them.
    fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>, d: &mut Delivered, sasl: bool) {
        if self.discard > 0 {
            let n = self.discard.min(data.len());
            self.discard -= n;
            data = &data[n..];
            if self.discard == 0 {
                d.messages.push(emit(out, &self.long));
                self.long.clear();
            }
        }
        self.pending.extend_from_slice(data);
        self.drain(out, d, sasl);
    }

    /// Hands out every whole message at the front of `pending`.
    fn drain(&mut self, out: &mut Vec<u8>, d: &mut Delivered, sasl: bool) {
        let framing = self.framing;
        let mut start = 0;
        loop {
            if self.encrypted {
                start = self.pending.len();
                d.encrypted = true;
                break;
            }
            if self.resync {
                let avail = &self.pending[start..];
                let Some(at) = framing.find_header(avail) else {
                    // Keep a tail that may be the start of a header.
                    let skip = avail.len().saturating_sub(framing.header_len() - 1);
                    d.skipped += skip;
                    start += skip;
                    break;
                };
                d.skipped += at;
                start += at;
                self.resync = false;
            }
            let avail = &self.pending[start..];
            if avail.len() < framing.header_len() {
                break;
            }
            let Some(len) = framing.message_len(avail) else {
                // After SASL authentication, bytes that are not a header are
                // the security layer's: encrypted from here on.
                if sasl {
                    self.encrypted = true;
                } else {
                    d.bad_header = true;
                    self.resync = true;
                }
                continue;
            };
            if len > MAX_KEEP {
                if avail.len() < MAX_KEEP {
                    break;
                }
                self.long = avail[..MAX_KEEP].to_vec();
                start += MAX_KEEP;
                let beyond = (self.pending.len() - start).min(len - MAX_KEEP);
                start += beyond;
                self.discard = len - MAX_KEEP - beyond;
                if self.discard == 0 {
                    d.messages.push(emit(out, &self.long));
                    self.long.clear();
                } else {
                    break;
                }
                continue;
            }
            if avail.len() < len {
                break;
            }
            d.messages.push(emit(out, &avail[..len]));
            start += len;
        }
        self.pending.drain(..start);
    }

    /// Gives up on the hole before the earliest held segment: the bytes in
    /// between were not captured.
    fn skip_hole(&mut self, out: &mut Vec<u8>, d: &mut Delivered, sasl: bool) {
        let Some(next) = self.next_seq else { return };
        let Some(earliest) = self.held.iter().map(|(seq, _)| *seq).min_by_key(|seq| seq_diff(*seq, next)) else {
            return;
        };
        *d.gap.get_or_insert(0) += seq_diff(earliest, next).max(0) as u64;
        self.pending.clear();
        self.long.clear();
        self.discard = 0;
        self.resync = true;
        self.next_seq = Some(earliest);
        self.release_held(out, d, sasl);
    }

    /// Bytes this direction holds.
    fn bytes(&self) -> usize {
        self.pending.len() + self.long.len() + self.held_bytes
    }

    /// Delivers held segments that now continue the stream.
    fn release_held(&mut self, out: &mut Vec<u8>, d: &mut Delivered, sasl: bool) {
        while let Some(next) = self.next_seq {
            let Some(i) = self.held.iter().position(|(seq, _)| seq_diff(*seq, next) <= 0) else { return };
            let (seq, bytes) = self.held.swap_remove(i);
            self.held_bytes -= bytes.len();
            let already = (-seq_diff(seq, next)) as usize;
            if already < bytes.len() {
                self.next_seq = Some(next.wrapping_add((bytes.len() - already) as u32));
                self.push(&bytes[already..], out, d, sasl);
            }
        }
    }
}

fn emit(out: &mut Vec<u8>, message: &[u8]) -> Range<usize> {
    let start = out.len();
    out.extend_from_slice(message);
    start..out.len()
}

/// Every tracked direction.
pub struct Streams {
    flows: HashMap<FlowKey, Direction, RandomState>,
    /// Connections that began SASL authentication (bounded like `flows`).
    sasl: HashMap<FlowKey, u64, RandomState>,
    clock: u64,
    /// Bytes held over all directions.
    bytes: usize,
    /// Directions dropped to stay under `MAX_FLOWS` and `MAX_BYTES`.
    pub evicted: u64,
}

impl Default for Streams {
    fn default() -> Streams {
        Streams {
            flows: HashMap::with_hasher(RandomState::new()),
            sasl: HashMap::with_hasher(RandomState::new()),
            clock: 0,
            bytes: 0,
            evicted: 0,
        }
    }
}

impl Streams {
    /// The connection of `key` began SASL authentication: bytes that are not
    /// a header from now on are its security layer, not damage.
    pub fn mark_sasl(&mut self, key: FlowKey) {
        if self.sasl.len() >= MAX_FLOWS {
            let oldest = self.sasl.iter().min_by_key(|(_, used)| **used).map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.sasl.remove(&oldest);
            }
        }
        self.sasl.insert(key.connection(), self.clock);
    }

    /// Feeds one segment; messages it completes are appended to `out`.
    pub fn segment(
        &mut self,
        key: FlowKey,
        framing: Framing,
        tcp: &TcpInfo,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Delivered {
        self.clock += 1;
        let mut d = Delivered::default();
        if tcp.has(SYN) {
            // A new connection (or a repeated SYN): start over.
            self.sasl.remove(&key.connection());
            let mut fresh = Direction::new(framing);
            fresh.next_seq = Some(tcp.seq.wrapping_add(1));
            fresh.syn_seen = true;
            self.insert(key, fresh);
            d.from_start = true;
            return d;
        }
        if payload.is_empty() && !tcp.has(FIN | RST) {
            d.from_start = self.flows.get(&key).is_some_and(|dir| dir.syn_seen);
            return d;
        }
        if !self.flows.contains_key(&key) {
            // Joined mid-stream: the first bytes may be inside a message.
            let mut joined = Direction::new(framing);
            joined.next_seq = Some(tcp.seq);
            joined.resync = true;
            self.insert(key, joined);
        }
        let clock = self.clock;
        let sasl = self.sasl.contains_key(&key.connection());
        let Some(dir) = self.flows.get_mut(&key) else { return d };
        dir.last_used = clock;
        d.from_start = dir.syn_seen;
        let before = dir.bytes();
        feed(dir, tcp.seq, payload, out, &mut d, sasl);
        if tcp.has(FIN | RST) {
            // Nothing more comes: a hole still open will never fill.
            while !dir.held.is_empty() {
                dir.skip_hole(out, &mut d, sasl);
            }
        }
        self.bytes = self.bytes - before + dir.bytes();
        if tcp.has(FIN | RST) {
            self.remove(&key);
        }
        while self.bytes > MAX_BYTES && self.evict_oldest(Some(key)) {}
        d
    }

    fn insert(&mut self, key: FlowKey, dir: Direction) {
        if !self.flows.contains_key(&key) && self.flows.len() >= MAX_FLOWS {
            self.evict_oldest(None);
        }
        let mut dir = dir;
        dir.last_used = self.clock;
        if let Some(old) = self.flows.insert(key, dir) {
            self.bytes -= old.bytes();
        }
    }

    fn remove(&mut self, key: &FlowKey) {
        if let Some(dir) = self.flows.remove(key) {
            self.bytes -= dir.bytes();
        }
    }

    /// Drops the least recently used direction other than `keep`; false if
    /// there is none.
    fn evict_oldest(&mut self, keep: Option<FlowKey>) -> bool {
        let oldest = self.flows.iter().filter(|(key, _)| Some(**key) != keep).min_by_key(|(_, dir)| dir.last_used);
        let Some(oldest) = oldest.map(|(key, _)| *key) else { return false };
        self.remove(&oldest);
        self.evicted += 1;
        true
    }
}

/// One segment's bytes into its direction.
fn feed(dir: &mut Direction, seq: u32, payload: &[u8], out: &mut Vec<u8>, d: &mut Delivered, sasl: bool) {
    let Some(next) = dir.next_seq else { return };
    let offset = seq_diff(seq, next);
    if offset > 0 {
        // Ahead of a hole: wait for it to fill, within bounds.
        dir.held_bytes += payload.len();
        dir.held.push((seq, payload.to_vec()));
        while dir.held.len() > MAX_HELD_SEGMENTS || dir.held_bytes > MAX_HELD_BYTES {
            dir.skip_hole(out, d, sasl);
        }
        return;
    }
    let already = (-offset) as usize;
    if already > 0 {
        d.retransmission = true;
    }
    if already >= payload.len() {
        return;
    }
    dir.next_seq = Some(next.wrapping_add((payload.len() - already) as u32));
    dir.push(&payload[already..], out, d, sasl);
    dir.release_held(out, d, sasl);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::libvirt::{build, Message, MsgType, Status, HEADER_LEN, PROGRAM_REMOTE};
    use std::net::Ipv4Addr;

    const KEY: FlowKey = FlowKey {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        src_port: 40000,
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        dst_port: 16509,
    };

    fn tcp(seq: u32, flags: u8, len: usize) -> TcpInfo {
        TcpInfo { src_port: 40000, dst_port: 16509, seq, ack: 0, flags, window: 0, header_len: 20, payload_len: len }
    }

    fn call(serial: u32, payload_len: usize) -> Vec<u8> {
        build(PROGRAM_REMOTE, 16, MsgType::Call, serial, Status::Ok, &vec![0xab; payload_len])
    }

    /// Feeds (seq, bytes, flags) segments; returns the serials delivered per segment.
    fn run(segments: &[(u32, &[u8], u8)]) -> (Vec<Vec<u32>>, Vec<Delivered>) {
        let mut streams = Streams::default();
        let mut serials = Vec::new();
        let mut all = Vec::new();
        for (seq, bytes, flags) in segments {
            let mut out = Vec::new();
            let d = streams.segment(KEY, Framing::Libvirt, &tcp(*seq, *flags, bytes.len()), bytes, &mut out);
            serials.push(d.messages.iter().map(|r| Message::parse(&out[r.clone()]).unwrap().header.serial).collect());
            all.push(d);
        }
        (serials, all)
    }

    #[test]
    fn messages_split_and_joined_across_segments() {
        let stream: Vec<u8> = [call(1, 10), call(2, 100), call(3, 0)].concat();
        // SYN at 999: data starts at 1000. Cut at 5, 60 and the rest.
        let (serials, d) =
            run(&[(999, &[], SYN), (1000, &stream[..5], 0), (1005, &stream[5..60], 0), (1060, &stream[60..], 0)]);
        assert_eq!(serials, vec![vec![], vec![], vec![1], vec![2, 3]]);
        assert!(d.iter().all(|d| d.from_start && d.gap.is_none() && d.skipped == 0));
    }

    #[test]
    fn retransmissions_and_overlaps_deliver_once() {
        let stream: Vec<u8> = [call(1, 10), call(2, 10)].concat();
        let (serials, d) = run(&[
            (0, &[], SYN),
            (1, &stream[..30], 0),
            (1, &stream[..30], 0),    // retransmitted
            (21, &stream[20..50], 0), // overlaps 10 bytes
            (51, &stream[50..], 0),
        ]);
        assert_eq!(serials, vec![vec![], vec![], vec![], vec![1], vec![2]]);
        assert!(d[2].retransmission && d[3].retransmission && !d[4].retransmission);
    }

    #[test]
    fn out_of_order_segments_wait_for_the_hole() {
        let stream: Vec<u8> = [call(1, 10), call(2, 10)].concat();
        let (serials, d) = run(&[(0, &[], SYN), (31, &stream[30..], 0), (1, &stream[..30], 0)]);
        assert_eq!(serials, vec![vec![], vec![], vec![1, 2]]);
        assert!(d.iter().all(|d| d.gap.is_none()));
    }

    #[test]
    fn a_hole_that_never_fills_is_a_gap_and_decoding_resumes() {
        let stream: Vec<u8> = [call(1, 40), call(2, 10), call(3, 10)].concat();
        // Bytes 20..60 are never captured; the FIN gives up on them.
        let (serials, d) = run(&[(0, &[], SYN), (1, &stream[..20], 0), (61, &stream[60..], FIN)]);
        assert_eq!(serials, vec![vec![], vec![], vec![2, 3]]);
        assert_eq!(d[2].gap, Some(40));
        // Message 1's tail (8 bytes of it) was skipped to find message 2.
        assert_eq!(d[2].skipped, 68 - 60);
    }

    #[test]
    fn joined_mid_stream_skips_to_a_header() {
        let stream: Vec<u8> = [call(1, 40), call(2, 10)].concat();
        let (serials, d) = run(&[(5000, &stream[30..], 0)]);
        assert_eq!(serials, vec![vec![2]]);
        assert_eq!(d[0].skipped, 68 - 30);
        assert!(!d[0].from_start);
    }

    #[test]
    fn garbage_where_a_header_is_due_is_flagged() {
        let mut stream = call(1, 4);
        stream.extend_from_slice(&[0xff; 40]);
        stream.extend(call(2, 4));
        let (serials, d) = run(&[(0, &[], SYN), (1, &stream, 0)]);
        assert_eq!(serials[1], vec![1, 2]);
        assert!(d[1].bad_header);
        assert_eq!(d[1].skipped, 40);
    }

    #[test]
    fn long_messages_keep_their_start_only() {
        let big = call(9, MAX_KEEP + 5000);
        let mut streams = Streams::default();
        let mut out = Vec::new();
        streams.segment(KEY, Framing::Libvirt, &tcp(0, SYN, 0), &[], &mut out);
        let mut delivered = Vec::new();
        for (i, chunk) in big.chunks(1448).enumerate() {
            let d =
                streams.segment(KEY, Framing::Libvirt, &tcp(1 + (i * 1448) as u32, 0, chunk.len()), chunk, &mut out);
            delivered.extend(d.messages);
        }
        assert_eq!(delivered.len(), 1);
        let msg = Message::parse(&out[delivered[0].clone()]).unwrap();
        assert_eq!((msg.header.serial, msg.header.len as usize), (9, big.len()));
        assert_eq!(msg.payload.len(), MAX_KEEP - HEADER_LEN);
    }

    #[test]
    fn bytes_over_all_flows_are_bounded() {
        let mut streams = Streams::default();
        let mut out = Vec::new();
        let waiting = vec![0u8; 60_000];
        // 200 directions, each with a hole and 60 kB waiting past it: 12 MB unbounded.
        for port in 0..200u16 {
            let key = FlowKey { src_port: port, ..KEY };
            streams.segment(key, Framing::Libvirt, &tcp(0, SYN, 0), &[], &mut out);
            streams.segment(key, Framing::Libvirt, &tcp(1000, 0, waiting.len()), &waiting, &mut out);
            let held: usize = streams.flows.values().map(Direction::bytes).sum();
            assert_eq!(held, streams.bytes);
            assert!(streams.bytes <= MAX_BYTES, "{}", streams.bytes);
        }
        assert!(streams.evicted > 0);
        // A FIN gives the hole up and frees the direction's bytes.
        let last = FlowKey { src_port: 199, ..KEY };
        streams.segment(last, Framing::Libvirt, &tcp(1000 + 60_000, FIN, 0), &[], &mut out);
        assert_eq!(streams.bytes, streams.flows.values().map(Direction::bytes).sum::<usize>());
    }

    #[test]
    fn flows_are_bounded() {
        let mut streams = Streams::default();
        let mut out = Vec::new();
        for port in 0..(MAX_FLOWS as u16 + 10) {
            let key = FlowKey { src_port: port, ..KEY };
            streams.segment(key, Framing::Libvirt, &tcp(0, SYN, 0), &[], &mut out);
        }
        assert_eq!(streams.flows.len(), MAX_FLOWS);
        assert_eq!(streams.evicted, 10);
    }

    #[test]
    fn tls_records_are_framed_like_messages() {
        use crate::wire::tls;
        let records = [tls::build_client_hello("kvm1"), tls::build_record(tls::APPLICATION_DATA, &[7; 3000])].concat();
        let mut streams = Streams::default();
        let mut out = Vec::new();
        streams.segment(KEY, Framing::Tls, &tcp(0, SYN, 0), &[], &mut out);
        let first = streams.segment(KEY, Framing::Tls, &tcp(1, 0, 1448), &records[..1448], &mut out);
        let rest = &records[1448..];
        let second = streams.segment(KEY, Framing::Tls, &tcp(1449, 0, rest.len()), rest, &mut out);
        assert_eq!(first.messages.len(), 1);
        assert_eq!(second.messages.len(), 1);
        let record = tls::Record::parse(&out[second.messages[0].clone()]).unwrap();
        assert_eq!((record.content_type, record.fragment.len()), (tls::APPLICATION_DATA, 3000));
    }

    #[test]
    fn after_sasl_authentication_undecodable_bytes_are_encrypted_not_damage() {
        let mut encrypted = 60u32.to_be_bytes().to_vec();
        encrypted.extend_from_slice(&[0x5a; 60]);
        for sasl in [false, true] {
            let mut streams = Streams::default();
            let mut out = Vec::new();
            streams.segment(KEY, Framing::Libvirt, &tcp(0, SYN, 0), &[], &mut out);
            let call = call(1, 4);
            streams.segment(KEY, Framing::Libvirt, &tcp(1, 0, call.len()), &call, &mut out);
            if sasl {
                streams.mark_sasl(KEY);
            }
            let seq = 1 + call.len() as u32;
            let d = streams.segment(KEY, Framing::Libvirt, &tcp(seq, 0, encrypted.len()), &encrypted, &mut out);
            assert_eq!(d.encrypted, sasl);
            assert_eq!(d.bad_header, !sasl);
            assert!(d.messages.is_empty());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_segments_never_panic(segments in proptest::collection::vec(
            (proptest::prelude::any::<u32>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80), 0u8..32),
            0..40,
        )) {
            let mut streams = Streams::default();
            let mut out = Vec::new();
            for (seq, bytes, flags) in &segments {
                let d = streams.segment(KEY, Framing::Libvirt, &tcp(seq % 300, *flags, bytes.len()), bytes, &mut out);
                for r in d.messages {
                    proptest::prop_assert!(r.end <= out.len());
                }
                let held: usize = streams.flows.values().map(Direction::bytes).sum();
                proptest::prop_assert_eq!(held, streams.bytes);
            }
        }
    }
}
