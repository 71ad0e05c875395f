//! TCP stream reassembly for libvirt, per direction, with every cost bounded
//! by design.
//!
//! Bytes are delivered in sequence order: a retransmitted or overlapping
//! segment gives only its new bytes, and a segment ahead of a hole waits
//! until the hole fills. A hole is declared a gap (never captured) as soon
//! as the capture shows it will not fill: the other direction acknowledges
//! bytes past it, `HOLD_SECS` of capture time pass, too much waits
//! (`MAX_HELD_SEGMENTS`, `MAX_HELD_BYTES`), the stream closes, or the capture
//! ends. The segments that waited are then decoded as the frames that
//! carried them (`Origin::Kept`), and the first of them carries the gap.
//!
//! A direction first seen without its SYN (a connection joined mid-way) is
//! followed from its first segment that starts with a plausible header, as
//! tshark does; the segments before it cost a table probe and a header
//! check, and are only counted (`Report::unfollowed`): a port scan or a
//! flood of junk on the port costs little more than other traffic.
//!
//! After a gap, the bytes are searched for the next plausible header:
//! candidates are found by the fixed bytes every header has (SIMD
//! `memmem`/`memchr`), and only those are parsed. A direction that shows no
//! header for longer than any message can be (`Framing::give_up_after`), or
//! whose very first bytes after its SYN are not one, is given up: reported
//! once, and its later segments cost a table probe.
//!
//! Directions closed by FIN or RST are remembered (`MAX_CLOSED`, for
//! `CLOSED_SECS` of capture time, as TIME_WAIT), so that a segment
//! retransmitted after the close is recognised, not decoded again.
//!
//! Memory: at most `MAX_FLOWS` directions in least-recently-used order
//! (dropping the oldest is O(1)), each holding at most `MAX_KEEP` bytes of
//! the message being assembled and `MAX_HELD_BYTES` of waiting segments,
//! and `MAX_BYTES` over all of them (buffers counted by capacity). In steady
//! state (segments in order) a segment allocates nothing.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::LazyLock;

use ahash::RandomState;
use lru::LruCache;
use memchr::memmem;

use crate::capture::{Frame, KeptFrame, Timestamp};
use crate::wire::libvirt::{self, Header};
use crate::wire::tls;

use super::tcp::{TcpInfo, ACK, FIN, RST, SYN};

/// Directions tracked at once (16,384 connections); the least recently used
/// is dropped beyond. About 270 bytes each with the table's own.
pub const MAX_FLOWS: usize = 32_768;
/// Bytes of one message kept for decoding.
pub const MAX_KEEP: usize = 256 * 1024;
/// Out-of-order segments (and their frames' bytes) waiting for a hole to fill.
pub const MAX_HELD_SEGMENTS: usize = 64;
pub const MAX_HELD_BYTES: usize = 1 << 20;
/// Bytes held over all directions.
pub const MAX_BYTES: usize = 8 << 20;
/// Capture time a segment waits for the hole before it: a lost segment is
/// retransmitted after the sender's retransmission timeout (at least 200 ms
/// on Linux), and reordering on a path takes far less.
pub const HOLD_SECS: f64 = 1.0;
/// Closed directions remembered, and for how long (Linux's TIME_WAIT).
pub const MAX_CLOSED: usize = MAX_FLOWS;
pub const CLOSED_SECS: f64 = 60.0;
/// An acknowledgement further ahead than this is not believed.
const MAX_ACK_AHEAD: i64 = 1 << 30;
/// Bytes without a header after which a libvirt direction that never showed
/// one is given up (`Framing::give_up_after`).
pub const NEVER_IN_STEP_BYTES: usize = 4096;
/// A buffer emptied with more room than this gives the room back.
const SHRINK_ABOVE: usize = 64 * 1024;

/// How a stream is cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// libvirt RPC: a 4-byte length, then the rest of the message.
    Libvirt,
    /// TLS records: a 5-byte header whose last two bytes are the fragment length.
    Tls,
}

/// `00 00 00 01`: the version word at `libvirt::VERSION_AT` of every header.
static LIBVIRT_VERSION: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(&LIBVIRT_VERSION_BYTES));
const LIBVIRT_VERSION_BYTES: [u8; 4] = libvirt::PROGRAM_VERSION.to_be_bytes();

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
            Framing::Libvirt => {
                // The version word first: most bytes that are no header fail here.
                let version = libvirt::VERSION_AT..libvirt::VERSION_AT + LIBVIRT_VERSION_BYTES.len();
                if bytes.get(version)? != LIBVIRT_VERSION_BYTES {
                    return None;
                }
                Header::parse(bytes).filter(Header::is_plausible).map(|h| h.len as usize)
            }
            Framing::Tls => {
                // The major version first, as for libvirt's version word.
                if *bytes.get(1)? != 3 {
                    return None;
                }
                tls::Record::parse(bytes)
                    .filter(tls::Record::is_plausible)
                    .map(|r| tls::HEADER_LEN + usize::from(r.length))
            }
        }
    }

    /// The offset of the first plausible header that lies whole in `bytes`.
    fn find_header(self, bytes: &[u8]) -> Option<usize> {
        let last = bytes.len().checked_sub(self.header_len())?;
        let mut from = 0;
        while from <= last {
            let candidate = from + self.next_candidate(&bytes[from..], last - from)?;
            if self.message_len(&bytes[candidate..]).is_some() {
                return Some(candidate);
            }
            from = candidate + 1;
        }
        None
    }

    /// The first place, at most `max_start`, where a header could start in
    /// `bytes`: one with the fixed bytes every header has. Only these are
    /// parsed; the search for them runs at memory speed.
    fn next_candidate(self, bytes: &[u8], max_start: usize) -> Option<usize> {
        match self {
            // The version word, `00 00 00 01`.
            Framing::Libvirt => {
                let at = libvirt::VERSION_AT;
                LIBVIRT_VERSION.find(bytes.get(at..max_start + at + LIBVIRT_VERSION_BYTES.len())?)
            }
            // The record's major version, 3.
            Framing::Tls => memchr::memchr(3, bytes.get(1..max_start + 2)?),
        }
    }

    /// Bytes looked through without a header before a direction is given
    /// up. After a gap in a stream that was in step, the next header is at
    /// most one message away (libvirt's largest, or a TLS record). A
    /// direction never in step (bad from its first bytes) would have shown
    /// one by now: a libvirt connection opens with messages of a few dozen
    /// bytes (AUTH_LIST, CONNECT_OPEN), a TLS one with a hello.
    fn give_up_after(self, was_in_step: bool) -> usize {
        match (self, was_in_step) {
            (Framing::Libvirt, true) => libvirt::MAX_LEN,
            (Framing::Libvirt, false) => NEVER_IN_STEP_BYTES,
            (Framing::Tls, _) => 2 * (tls::HEADER_LEN + tls::MAX_FRAGMENT),
        }
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
        if (self.src, self.src_port) <= (self.dst, self.dst_port) {
            *self
        } else {
            self.reversed()
        }
    }

    /// The other direction.
    pub fn reversed(&self) -> FlowKey {
        FlowKey { src: self.dst, src_port: self.dst_port, dst: self.src, dst_port: self.src_port }
    }
}

/// Bytes of a direction that were never captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Relative sequence number of the first byte missing (the first byte
    /// of the stream is 1, as Wireshark counts).
    pub from: u32,
    pub len: u64,
    /// The last frame whose bytes came before the hole.
    pub after_frame: Option<u64>,
}

/// Which frame a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The frame being read.
    Current,
    /// An earlier frame, held behind a hole (`Deliveries::kept`).
    Kept(usize),
}

/// What the stream layer says of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub origin: Origin,
    pub flow: FlowKey,
    /// Bytes never captured before this frame's bytes.
    pub gap: Option<Gap>,
    /// Bytes skipped while looking for a message header.
    pub skipped: usize,
    /// The segment repeated bytes already delivered (or sent before the
    /// direction closed).
    pub retransmission: bool,
    /// Where a header was due, the bytes were not one; `true` when they
    /// start like a TLS record.
    pub bad_header: Option<bool>,
    /// The direction was given up here: (bytes without a header, the bytes
    /// start like a TLS record).
    pub given_up: Option<(u64, bool)>,
    /// The direction carries SASL-encrypted data (bytes not decoded).
    pub encrypted: bool,
    /// The direction was seen from its SYN (so every message of it was seen).
    pub from_start: bool,
    /// The other direction lost bytes to the capture, or skipped bytes it
    /// could not read (a call or reply there may be missing).
    pub peer_lost: bool,
    /// A segment of a direction not followed yet: joined mid-way, and no
    /// segment of it has started with a header so far.
    pub unfollowed: bool,
}

impl Report {
    fn new(origin: Origin, flow: FlowKey, from_start: bool) -> Report {
        Report {
            origin,
            flow,
            gap: None,
            skipped: 0,
            retransmission: false,
            bad_header: None,
            given_up: None,
            encrypted: false,
            from_start,
            peer_lost: false,
            unfollowed: false,
        }
    }
}

/// What the stream layer delivered while one frame was read: whole messages
/// (or TLS records), each with the frame it belongs to, and a report per
/// frame. Reused from frame to frame, so that a segment allocates nothing.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// The messages' bytes.
    pub bytes: Vec<u8>,
    /// Each message: where it is in `bytes`, and its frame's report.
    pub messages: Vec<(Range<usize>, usize)>,
    /// One per frame concerned, in the order they were reached.
    pub reports: Vec<Report>,
    /// Earlier frames whose held bytes were delivered now.
    pub kept: Vec<KeptFrame>,
}

impl Deliveries {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.messages.clear();
        self.reports.clear();
        self.kept.clear();
    }

    /// The messages of report `index`, in stream order.
    pub fn messages_of(&self, index: usize) -> impl Iterator<Item = &[u8]> + '_ {
        self.messages.iter().filter(move |(_, report)| *report == index).map(|(range, _)| &self.bytes[range.clone()])
    }

    /// The report of (`origin`, `flow`), made if there is none yet.
    fn report_of(&mut self, origin: Origin, flow: FlowKey, from_start: bool) -> usize {
        let found = self.reports.iter().rposition(|r| r.origin == origin && r.flow == flow);
        found.unwrap_or_else(|| {
            self.reports.push(Report::new(origin, flow, from_start));
            self.reports.len() - 1
        })
    }

    fn message(&mut self, report: usize, message: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(message);
        self.messages.push((start..self.bytes.len(), report));
    }
}

/// How a direction's bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In step: a header is due at the start of the pending bytes.
    InStep,
    /// Looking for the next plausible header.
    Seeking,
    /// After SASL authentication with a security layer: every byte is
    /// encrypted, and nothing more is decoded.
    Encrypted,
    /// Not libvirt: nothing more is looked at.
    GivenUp,
}

/// Cutting a direction's in-order bytes into messages.
#[derive(Debug)]
struct Framer {
    framing: Framing,
    mode: Mode,
    /// A header was found once: the direction speaks libvirt (or TLS).
    in_step_once: bool,
    /// The first bad bytes started like a TLS record.
    tls_like: bool,
    /// Bytes looked through for a header since the last one.
    sought: usize,
    /// Bytes skipped so far (not decoded: a message may have been in them).
    skipped_total: u64,
    /// The kept start of an over-long message, and its bytes still to come.
    long: Vec<u8>,
    discard: usize,
    /// Bytes of one message kept (`Limits::keep`).
    keep: usize,
}

impl Framer {
    fn new(framing: Framing, mode: Mode, keep: usize) -> Framer {
        Framer {
            keep,
            framing,
            mode,
            in_step_once: false,
            tls_like: false,
            sought: 0,
            skipped_total: 0,
            long: Vec::new(),
            discard: 0,
        }
    }

    /// Cuts `bytes` (in order, after whatever was consumed before) into
    /// messages for report `report`; returns how many bytes were used up.
    /// The rest (the start of a message, or of a header) is to be given
    /// again with the bytes that follow.
    fn consume(&mut self, bytes: &[u8], sasl: bool, out: &mut Deliveries, report: usize) -> usize {
        let header_len = self.framing.header_len();
        let mut start = 0;
        loop {
            let avail = &bytes[start..];
            match self.mode {
                Mode::Encrypted => {
                    out.reports[report].encrypted = true;
                    return bytes.len();
                }
                Mode::GivenUp => return bytes.len(),
                Mode::InStep | Mode::Seeking => {}
            }
            if self.discard > 0 {
                let n = self.discard.min(avail.len());
                self.discard -= n;
                start += n;
                if self.discard > 0 {
                    return start;
                }
                out.message(report, &self.long);
                self.long = Vec::new();
                continue;
            }
            if self.mode == Mode::Seeking {
                let Some(at) = self.framing.find_header(avail) else {
                    // Keep a tail that may be the start of a header.
                    let skip = avail.len().saturating_sub(header_len - 1);
                    out.reports[report].skipped += skip;
                    self.skipped_total += skip as u64;
                    self.sought = self.sought.saturating_add(skip);
                    if self.sought > self.framing.give_up_after(self.in_step_once) {
                        // The bytes kept for a header's start count too.
                        self.give_up(self.sought + avail.len() - skip, out, report);
                        return bytes.len();
                    }
                    return start + skip;
                };
                out.reports[report].skipped += at;
                self.skipped_total += at as u64;
                start += at;
                self.sought = 0;
                self.mode = Mode::InStep;
                continue;
            }
            if avail.len() < header_len {
                return start;
            }
            let Some(len) = self.framing.message_len(avail) else {
                // After SASL authentication, bytes that are not a header are
                // the security layer's: encrypted from here on.
                if sasl {
                    self.mode = Mode::Encrypted;
                    continue;
                }
                let tls_like = tls::Record::parse(avail).is_some_and(|r| r.is_plausible());
                self.tls_like |= tls_like && !self.in_step_once;
                out.reports[report].bad_header = Some(tls_like);
                self.mode = Mode::Seeking;
                continue;
            };
            self.in_step_once = true;
            if len > self.keep {
                if avail.len() < self.keep {
                    return start;
                }
                // Keep the start; count the rest as it comes.
                self.long = avail[..self.keep].to_vec();
                self.discard = len - self.keep;
                start += self.keep;
                continue;
            }
            if avail.len() < len {
                return start;
            }
            out.message(report, &avail[..len]);
            start += len;
        }
    }

    /// Gives the direction up after `bytes` without a header.
    fn give_up(&mut self, bytes: usize, out: &mut Deliveries, report: usize) {
        self.mode = Mode::GivenUp;
        self.long = Vec::new();
        self.discard = 0;
        out.reports[report].given_up = Some((bytes as u64, self.tls_like));
    }

    /// The direction closed with `pending` bytes not yet a message: if it
    /// never showed a header, it was not libvirt (a short exchange of
    /// something else on the port).
    fn close(&mut self, pending: usize, out: &mut Deliveries, report: usize) {
        if !self.in_step_once && self.mode == Mode::Seeking {
            self.give_up(self.sought + pending, out, report);
        }
    }

    /// A hole: whatever was being assembled is lost.
    fn lose_place(&mut self) {
        self.long = Vec::new();
        self.discard = 0;
        self.sought = 0;
        if self.mode == Mode::InStep {
            self.mode = Mode::Seeking;
        }
    }
}

/// A segment that arrived ahead of a hole.
#[derive(Debug)]
struct HeldSegment {
    seq: u32,
    frame: KeptFrame,
    /// Where the TCP payload lies in the frame.
    payload: Range<usize>,
}

impl HeldSegment {
    fn payload(&self) -> &[u8] {
        &self.frame.data[self.payload.clone()]
    }
}

/// One direction of a TCP connection.
#[derive(Debug)]
struct Direction {
    framer: Framer,
    /// The next byte expected.
    next_seq: u32,
    /// The sequence number before the first byte (the SYN's): relative
    /// numbers count from it.
    base_seq: u32,
    syn_seen: bool,
    /// In-order bytes not yet a whole message.
    pending: Vec<u8>,
    held: Vec<HeldSegment>,
    held_bytes: usize,
    /// When the oldest held segment arrived.
    held_since: Option<Timestamp>,
    /// In `Streams::deadlines`.
    queued: bool,
    /// The other direction acknowledged bytes up to here, past `next_seq`.
    peer_ack: Option<u32>,
    /// Bytes lost by the capture so far.
    lost: u64,
    /// The last frame whose bytes were delivered in order.
    last_frame: Option<u64>,
}

/// Sequence distance from `from` to `to` (negative: `to` is before `from`).
fn seq_diff(to: u32, from: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

/// What a direction needs to know of the frame being read.
struct Reading<'r, 'f> {
    frame: &'r Frame<'f>,
    flow: FlowKey,
    sasl: bool,
}

impl Direction {
    fn new(framing: Framing, mode: Mode, next_seq: u32, syn_seen: bool, keep: usize) -> Direction {
        Direction {
            framer: Framer::new(framing, mode, keep),
            next_seq,
            base_seq: next_seq.wrapping_sub(1),
            syn_seen,
            pending: Vec::new(),
            held: Vec::new(),
            held_bytes: 0,
            held_since: None,
            queued: false,
            peer_ack: None,
            lost: 0,
            last_frame: None,
        }
    }

    /// Bytes this direction holds (buffers by capacity).
    fn bytes(&self) -> usize {
        self.pending.capacity() + self.framer.long.capacity() + self.held_bytes
    }

    /// Bytes of this direction the capture lost, is known to be missing, or
    /// that could not be read (skipped): a message may have been in them.
    fn lost_any(&self) -> bool {
        self.lost > 0
            || self.framer.skipped_total > 0
            || self.peer_ack.is_some_and(|ack| seq_diff(ack, self.next_seq) > 0)
    }

    fn relative(&self, seq: u32) -> u32 {
        seq.wrapping_sub(self.base_seq)
    }

    fn report(&self, origin: Origin, flow: FlowKey, out: &mut Deliveries) -> usize {
        out.report_of(origin, flow, self.syn_seen)
    }

    /// One segment's payload.
    fn feed(&mut self, seq: u32, payload: &[u8], r: &Reading<'_, '_>, out: &mut Deliveries) {
        if self.framer.mode == Mode::GivenUp {
            return;
        }
        let offset = seq_diff(seq, self.next_seq);
        if offset > 0 {
            self.ahead(seq, payload, r, out);
            return;
        }
        // Made here, not sooner: earlier frames released above come first.
        let report = self.report(Origin::Current, r.flow, out);
        let already = offset.unsigned_abs() as usize;
        if already > 0 {
            out.reports[report].retransmission = true;
        }
        if already >= payload.len() {
            return;
        }
        self.next_seq = seq.wrapping_add(payload.len() as u32);
        self.last_frame = Some(r.frame.number);
        self.push(&payload[already..], report, r, out);
        // The hole before held segments may be filled now: they complete
        // in this frame.
        self.release(None, r, out);
    }

    /// A segment past a hole.
    fn ahead(&mut self, seq: u32, payload: &[u8], r: &Reading<'_, '_>, out: &mut Deliveries) {
        if self.framer.mode != Mode::InStep && self.held.is_empty() {
            // Nothing is assembled: the bytes in the hole matter no more
            // than those skipped while seeking. Go on from here.
            self.next_seq = seq;
            self.feed(seq, payload, r, out);
            return;
        }
        self.hold(seq, payload, r.frame);
        while self.hole_is_lost() {
            self.skip_hole(r, out);
        }
    }

    /// Keeps a segment (with its frame) until the hole before it is settled.
    fn hold(&mut self, seq: u32, payload: &[u8], frame: &Frame<'_>) {
        // The payload is a part of the frame's bytes: find where.
        let at = (payload.as_ptr() as usize).wrapping_sub(frame.data.as_ptr() as usize);
        let kept = KeptFrame::keep(frame);
        let segment = if at.checked_add(payload.len()).is_some_and(|end| end <= kept.data.len()) {
            HeldSegment { seq, frame: kept, payload: at..at + payload.len() }
        } else {
            let len = payload.len();
            HeldSegment { seq, frame: KeptFrame { data: payload.to_vec(), ..kept }, payload: 0..len }
        };
        self.held_bytes += segment.frame.data.len();
        self.held.push(segment);
        self.held_since.get_or_insert(frame.ts);
    }

    /// The hole before the held segments will not fill: the other side
    /// acknowledged bytes past it, or too much waits.
    fn hole_is_lost(&self) -> bool {
        if self.held.is_empty() {
            return false;
        }
        let acked_past = self.peer_ack.is_some_and(|ack| seq_diff(ack, self.next_seq) > 0);
        acked_past || self.held.len() > MAX_HELD_SEGMENTS || self.held_bytes > MAX_HELD_BYTES
    }

    /// Gives up the hole before the earliest held segment; the held
    /// segments that now continue the stream are decoded as their frames.
    fn skip_hole(&mut self, r: &Reading<'_, '_>, out: &mut Deliveries) {
        let next = self.next_seq;
        let Some(earliest) = self.held.iter().map(|h| h.seq).min_by_key(|seq| seq_diff(*seq, next)) else {
            return;
        };
        let len = seq_diff(earliest, next).max(0) as u64;
        let gap = Gap { from: self.relative(next), len, after_frame: self.last_frame };
        self.lost += len;
        self.pending.clear();
        self.framer.lose_place();
        self.next_seq = earliest;
        self.release(Some(gap), r, out);
    }

    /// Delivers held segments that now continue the stream. After a hole
    /// was given up (`gap`), each is decoded as its own frame, the first
    /// with the gap; otherwise (the hole filled) in the frame being read.
    fn release(&mut self, mut gap: Option<Gap>, r: &Reading<'_, '_>, out: &mut Deliveries) {
        let declared = gap.is_some();
        loop {
            let next = self.next_seq;
            let Some(i) = self.held.iter().position(|h| seq_diff(h.seq, next) <= 0) else { break };
            let segment = self.held.swap_remove(i);
            self.held_bytes -= segment.frame.data.len();
            // The frame is moved to `out.kept` once its bytes are delivered.
            let kept = declared && segment.frame.number != r.frame.number;
            let origin = if kept { Origin::Kept(out.kept.len()) } else { Origin::Current };
            let report = self.report(origin, r.flow, out);
            if let Some(gap) = gap.take() {
                out.reports[report].gap = Some(gap);
            }
            let already = (-seq_diff(segment.seq, next)) as usize;
            let payload = segment.payload();
            if already < payload.len() {
                self.next_seq = next.wrapping_add((payload.len() - already) as u32);
                self.last_frame = Some(segment.frame.number);
                self.push(&payload[already..], report, r, out);
            }
            if kept {
                out.kept.push(segment.frame);
            }
        }
        if self.held.is_empty() {
            self.held_since = None;
            self.held_bytes = 0;
        }
    }

    /// In-order bytes: whole messages go out, the rest waits in `pending`.
    fn push(&mut self, data: &[u8], report: usize, r: &Reading<'_, '_>, out: &mut Deliveries) {
        if self.pending.is_empty() {
            // Messages whole in the segment are cut from it directly.
            let used = self.framer.consume(data, r.sasl, out, report);
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let used = self.framer.consume(&self.pending, r.sasl, out, report);
            self.pending.drain(..used);
        }
        if self.framer.mode == Mode::GivenUp {
            self.give_up_buffers();
        }
        if self.pending.is_empty() && self.pending.capacity() > SHRINK_ABOVE {
            self.pending = Vec::new();
        }
    }

    fn give_up_buffers(&mut self) {
        self.pending = Vec::new();
        self.held = Vec::new();
        self.held_bytes = 0;
        self.held_since = None;
    }

    /// The other side acknowledged up to `ack`.
    fn acknowledged(&mut self, ack: u32, r: &Reading<'_, '_>, flow: FlowKey, out: &mut Deliveries) {
        let ahead = seq_diff(ack, self.next_seq);
        if ahead <= 0 || ahead > MAX_ACK_AHEAD || self.framer.mode == Mode::GivenUp {
            return;
        }
        self.peer_ack = Some(ack);
        let r = Reading { flow, ..*r };
        while self.hole_is_lost() {
            self.skip_hole(&r, out);
        }
    }

    /// Gives up every hole (the stream ended, or waited too long).
    fn give_up_holes(&mut self, r: &Reading<'_, '_>, flow: FlowKey, out: &mut Deliveries) {
        let r = Reading { flow, ..*r };
        while !self.held.is_empty() {
            self.skip_hole(&r, out);
        }
    }
}

/// What feeding a followed direction changed, for the table to settle.
struct Fed {
    bytes_before: usize,
    bytes_after: usize,
    /// The direction closed: where its bytes end.
    closed: Option<u32>,
    /// It began holding segments at this time (not yet queued).
    queue: Option<Timestamp>,
    from_start: bool,
    /// It lost bytes, or skipped some (for the other direction's replies).
    lost: bool,
}

/// One segment into a direction that is followed.
fn feed_followed(dir: &mut Direction, tcp: &TcpInfo, payload: &[u8], r: &Reading<'_, '_>, out: &mut Deliveries) -> Fed {
    let bytes_before = dir.bytes();
    if !payload.is_empty() || tcp.has(FIN | RST) {
        dir.feed(tcp.seq, payload, r, out);
    }
    let mut closed = None;
    if tcp.has(FIN | RST) {
        // Nothing more comes: a hole still open will never fill.
        dir.give_up_holes(r, r.flow, out);
        let report = dir.report(Origin::Current, r.flow, out);
        dir.framer.close(dir.pending.len(), out, report);
        closed = Some(dir.next_seq.wrapping_add(u32::from(tcp.has(FIN))));
    }
    let queue = dir.held_since.filter(|_| !dir.queued);
    dir.queued |= queue.is_some();
    Fed { bytes_before, bytes_after: dir.bytes(), closed, queue, from_start: dir.syn_seen, lost: dir.lost_any() }
}

/// A direction closed by FIN or RST: where its bytes ended, and when.
#[derive(Debug, Clone, Copy)]
struct Closed {
    end: u32,
    at: Timestamp,
}

type Table<V> = LruCache<FlowKey, V, RandomState>;

fn table<V>(cap: usize) -> Table<V> {
    // Keys come from the network: a randomly keyed hasher.
    LruCache::with_hasher(NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN), RandomState::new())
}

/// Every tracked direction.
pub struct Streams {
    flows: Table<Direction>,
    closed: Table<Closed>,
    /// Connections that began SASL authentication.
    sasl: Table<()>,
    /// Directions holding segments, by when their hold ends (each at most
    /// once; entries of directions gone since are skipped).
    deadlines: VecDeque<(Timestamp, FlowKey)>,
    /// Bytes held over all directions.
    bytes: usize,
    /// Directions dropped to stay under `MAX_FLOWS` and `MAX_BYTES`.
    pub evicted: u64,
    limits: Limits,
}

/// What one message and all directions may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one message kept (the rest counted, not kept).
    pub keep: usize,
    /// Bytes held over all directions.
    pub bytes: usize,
}

impl Limits {
    /// For analysis: bounded whatever the traffic.
    pub const ANALYSIS: Limits = Limits { keep: MAX_KEEP, bytes: MAX_BYTES };
    /// For `conform`, which must replay every message whole: up to
    /// libvirt's own message limit.
    pub const WHOLE_MESSAGES: Limits = Limits { keep: libvirt::MAX_LEN, bytes: 2 * libvirt::MAX_LEN + MAX_BYTES };
}

impl Default for Streams {
    fn default() -> Streams {
        Streams::new(Limits::ANALYSIS)
    }
}

impl Streams {
    pub fn new(limits: Limits) -> Streams {
        Streams {
            limits,
            flows: table(MAX_FLOWS),
            closed: table(MAX_CLOSED),
            sasl: table(MAX_FLOWS),
            deadlines: VecDeque::new(),
            bytes: 0,
            evicted: 0,
        }
    }
}

/// When a hold that began at `since` ends.
fn hold_deadline(since: Timestamp) -> Timestamp {
    Timestamp::new(since.secs.saturating_add(HOLD_SECS as i64), since.nanos)
}

impl Streams {
    /// The connection of `key` began SASL authentication: bytes that are not
    /// a header from now on are its security layer, not damage.
    pub fn mark_sasl(&mut self, key: FlowKey) {
        self.sasl.put(key.connection(), ());
    }

    /// Is a hold due to end at `now`? Cheap: asked for every frame.
    #[inline]
    pub fn has_due(&self, now: Timestamp) -> bool {
        self.deadlines.front().is_some_and(|(deadline, _)| *deadline <= now)
    }

    /// Gives up the holes of directions that waited `HOLD_SECS` by `now`
    /// (`frame` is the frame being read, which none of them is).
    pub fn expire(&mut self, frame: &Frame<'_>, out: &mut Deliveries) {
        while let Some(&(deadline, key)) = self.deadlines.front() {
            if deadline > frame.ts {
                break;
            }
            self.deadlines.pop_front();
            self.settle_hold(key, frame, out, false);
        }
        self.peer_losses_of_all(out);
    }

    /// A queued direction's hold: given up if it waited long enough (or
    /// `now_anyway`), queued again if a later hold began since.
    fn settle_hold(&mut self, key: FlowKey, frame: &Frame<'_>, out: &mut Deliveries, now_anyway: bool) {
        let sasl = self.sasl.contains(&key.connection());
        let Some(dir) = self.flows.peek_mut(&key) else { return };
        dir.queued = false;
        let Some(since) = dir.held_since else { return };
        let before = dir.bytes();
        if now_anyway || frame.ts.seconds_since(since) >= HOLD_SECS {
            let r = Reading { frame, flow: key, sasl };
            dir.give_up_holes(&r, key, out);
        } else {
            dir.queued = true;
            self.deadlines.push_back((hold_deadline(since), key));
        }
        let after = dir.bytes();
        self.bytes = self.bytes - before + after;
    }

    /// Feeds one segment of `frame`; what it (and any earlier frame it
    /// settles) delivers is added to `out`, which the caller clears per frame.
    pub fn segment(
        &mut self,
        key: FlowKey,
        framing: Framing,
        tcp: &TcpInfo,
        payload: &[u8],
        frame: &Frame<'_>,
        out: &mut Deliveries,
    ) {
        if tcp.has(SYN) {
            // A new connection (or a repeated SYN): start over.
            self.sasl.pop(&key.connection());
            self.closed.pop(&key);
            let fresh = Direction::new(framing, Mode::InStep, tcp.seq.wrapping_add(1), true, self.limits.keep);
            self.insert(key, fresh);
            out.report_of(Origin::Current, key, true);
            return;
        }
        let sasl = !self.sasl.is_empty() && self.sasl.contains(&key.connection());
        let r = Reading { frame, flow: key, sasl };
        // The other direction first: what this segment acknowledges of it,
        // and whether it lost bytes (for this direction's replies).
        let peer_lost = if tcp.has(ACK) {
            self.acknowledge(key.reversed(), tcp.ack, &r, out)
        } else {
            self.flows.peek(&key.reversed()).is_some_and(Direction::lost_any)
        };
        // One probe for a direction already followed.
        let fed = match self.flows.get_mut(&key) {
            Some(dir) => feed_followed(dir, tcp, payload, &r, out),
            None => match self.start_following(key, framing, tcp, payload, frame, out) {
                Some(()) => match self.flows.get_mut(&key) {
                    Some(dir) => feed_followed(dir, tcp, payload, &r, out),
                    None => return,
                },
                None => {
                    self.note_peer_losses(out, key, peer_lost, false);
                    return;
                }
            },
        };
        self.bytes = self.bytes + fed.bytes_after - fed.bytes_before;
        if let Some(end) = fed.closed {
            self.remove(&key);
            self.closed.put(key, Closed { end, at: frame.ts });
        }
        if let Some(since) = fed.queue {
            self.queue_deadline(hold_deadline(since), key, frame, out);
        }
        while self.bytes > self.limits.bytes && self.evict_oldest() {}
        out.report_of(Origin::Current, key, fed.from_start);
        self.note_peer_losses(out, key, peer_lost, fed.lost);
    }

    /// A segment of a direction not followed: followed from now on if it
    /// starts a message (`Some`); otherwise reported as it is (`None`).
    fn start_following(
        &mut self,
        key: FlowKey,
        framing: Framing,
        tcp: &TcpInfo,
        payload: &[u8],
        frame: &Frame<'_>,
        out: &mut Deliveries,
    ) -> Option<()> {
        if payload.is_empty() && !tcp.has(FIN | RST) {
            out.report_of(Origin::Current, key, false);
            return None;
        }
        if self.after_close(key, tcp.seq, frame.ts) {
            let report = out.report_of(Origin::Current, key, true);
            out.reports[report].retransmission = true;
            return None;
        }
        // Joined mid-way: followed from a segment that starts a message.
        if framing.message_len(payload).is_none() {
            let report = out.report_of(Origin::Current, key, false);
            out.reports[report].unfollowed = true;
            return None;
        }
        self.insert(key, Direction::new(framing, Mode::InStep, tcp.seq, false, self.limits.keep));
        Some(())
    }

    /// Gives up every hole still open (the capture ended): the held
    /// segments are delivered as their frames.
    pub fn finish(&mut self, out: &mut Deliveries) {
        // No frame is being read: number 0 is none of the capture's.
        let end = Frame {
            number: 0,
            ts: Timestamp::default(),
            len: 0,
            linktype: crate::capture::Linktype::RAW,
            interface: 0,
            file_offset: 0,
            data: &[],
            kernel_checksum: crate::capture::KernelChecksum::Unknown,
            raw_time: None,
        };
        let holding: Vec<FlowKey> =
            self.flows.iter().filter(|(_, dir)| !dir.held.is_empty()).map(|(key, _)| *key).collect();
        for key in holding {
            self.settle_hold(key, &end, out, true);
        }
        self.deadlines.clear();
        self.peer_losses_of_all(out);
    }

    /// Marks every report whose direction's other side lost bytes.
    fn peer_losses_of_all(&mut self, out: &mut Deliveries) {
        for report in &mut out.reports {
            report.peer_lost = self.flows.peek(&report.flow.reversed()).is_some_and(Direction::lost_any);
        }
    }

    fn queue_deadline(&mut self, deadline: Timestamp, key: FlowKey, frame: &Frame<'_>, out: &mut Deliveries) {
        // Each direction is queued at most once, but entries of directions
        // dropped since stay until due: past this many, the oldest is
        // settled early.
        if self.deadlines.len() >= 2 * MAX_FLOWS {
            if let Some((_, oldest)) = self.deadlines.pop_front() {
                self.settle_hold(oldest, frame, out, true);
            }
        }
        self.deadlines.push_back((deadline, key));
    }

    /// The segment acknowledged direction `key` (its other one) up to
    /// `ack`; returns whether that direction lost bytes.
    fn acknowledge(&mut self, key: FlowKey, ack: u32, r: &Reading<'_, '_>, out: &mut Deliveries) -> bool {
        let Some(dir) = self.flows.peek_mut(&key) else { return false };
        let before = dir.bytes();
        dir.acknowledged(ack, r, key, out);
        let lost = dir.lost_any();
        self.bytes = self.bytes - before + dir.bytes();
        lost
    }

    /// Is this segment of a direction closed before? True when it repeats
    /// bytes sent before the close.
    fn after_close(&mut self, key: FlowKey, seq: u32, now: Timestamp) -> bool {
        if self.closed.is_empty() {
            return false;
        }
        let Some(closed) = self.closed.peek(&key).copied() else { return false };
        if now.seconds_since(closed.at) > CLOSED_SECS || seq_diff(seq, closed.end) >= 0 {
            // Long closed, or new bytes: a new connection whose SYN was not seen.
            self.closed.pop(&key);
            return false;
        }
        true
    }

    /// Marks the reports of directions whose other side lost bytes (for
    /// their messages' sake: a reply whose call may be lost). What the
    /// segment of `key` already learnt of both its directions is used.
    fn note_peer_losses(&mut self, out: &mut Deliveries, key: FlowKey, reverse_lost: bool, this_lost: bool) {
        if out.messages.is_empty() {
            return;
        }
        for (index, report) in out.reports.iter_mut().enumerate() {
            if !out.messages.iter().any(|(_, of)| *of == index) {
                continue;
            }
            report.peer_lost = if report.flow == key {
                reverse_lost
            } else if report.flow == key.reversed() {
                this_lost
            } else {
                self.flows.peek(&report.flow.reversed()).is_some_and(Direction::lost_any)
            };
        }
    }

    fn insert(&mut self, key: FlowKey, dir: Direction) {
        let added = dir.bytes();
        // Full, the oldest direction goes (its node serves the new one).
        if let Some((old_key, old)) = self.flows.push(key, dir) {
            self.bytes -= old.bytes();
            if old_key != key {
                self.evicted += 1;
            }
        }
        self.bytes += added;
    }

    fn remove(&mut self, key: &FlowKey) {
        if let Some(dir) = self.flows.pop(key) {
            self.bytes -= dir.bytes();
        }
    }

    /// Drops the least recently used direction; false if there is none
    /// other than the one just used.
    fn evict_oldest(&mut self) -> bool {
        if self.flows.len() < 2 {
            return false;
        }
        let Some((_, dir)) = self.flows.pop_lru() else { return false };
        self.bytes -= dir.bytes();
        self.evicted += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{KernelChecksum, Linktype};
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

    fn frame(number: u64, secs: i64, data: &[u8]) -> Frame<'_> {
        Frame {
            number,
            ts: Timestamp::new(secs, 0),
            len: data.len() as u32,
            linktype: Linktype::RAW,
            interface: 0,
            file_offset: 0,
            data,
            kernel_checksum: KernelChecksum::Unknown,
            raw_time: None,
        }
    }

    /// What a frame gave: (frame number, serials) per report, and the reports.
    type Given = (Vec<(u64, Vec<u32>)>, Vec<Report>);

    /// One segment of `key` at capture time `secs`, as frame `number`.
    fn feed(streams: &mut Streams, key: FlowKey, number: u64, secs: i64, tcp: TcpInfo, bytes: &[u8]) -> Given {
        let mut out = Deliveries::default();
        let f = frame(number, secs, bytes);
        if streams.has_due(f.ts) {
            streams.expire(&f, &mut out);
        }
        streams.segment(key, Framing::Libvirt, &tcp, bytes, &f, &mut out);
        given(&out, number)
    }

    fn given(out: &Deliveries, current: u64) -> Given {
        let per_frame = (0..out.reports.len())
            .map(|i| {
                let number = match out.reports[i].origin {
                    Origin::Current => current,
                    Origin::Kept(k) => out.kept[k].number,
                };
                let serials = out.messages_of(i).map(|m| Message::parse(m).unwrap().header.serial).collect();
                (number, serials)
            })
            .collect();
        (per_frame, out.reports.clone())
    }

    /// Feeds (seq, bytes, flags) segments as frames 1, 2, ... one second
    /// apart when `secs` is set; returns the serials delivered per segment
    /// (to whichever frame) and the current frame's reports.
    fn run(segments: &[(u32, &[u8], u8)]) -> (Vec<Vec<u32>>, Vec<Report>) {
        let mut streams = Streams::default();
        let mut serials = Vec::new();
        let mut reports = Vec::new();
        for (i, (seq, bytes, flags)) in segments.iter().enumerate() {
            let (per_frame, all) = feed(&mut streams, KEY, i as u64 + 1, 0, tcp(*seq, *flags, bytes.len()), bytes);
            serials.push(per_frame.iter().flat_map(|(_, s)| s.clone()).collect());
            reports.push(*all.iter().find(|r| r.origin == Origin::Current).expect("a report of the frame"));
        }
        (serials, reports)
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
    fn a_hole_that_never_fills_is_a_gap_and_decoding_resumes_in_the_frame_after_it() {
        let stream: Vec<u8> = [call(1, 40), call(2, 10), call(3, 10)].concat();
        // Bytes 20..60 are never captured; the FIN gives up on them.
        let mut streams = Streams::default();
        feed(&mut streams, KEY, 1, 0, tcp(0, SYN, 0), &[]);
        feed(&mut streams, KEY, 2, 0, tcp(1, 0, 20), &stream[..20]);
        let (held, _) = feed(&mut streams, KEY, 3, 0, tcp(61, 0, 30), &stream[60..90]);
        assert_eq!(held, vec![(3, vec![])], "waits for the hole");
        let rest = &stream[90..];
        let (per_frame, reports) = feed(&mut streams, KEY, 4, 0, tcp(91, FIN, rest.len()), rest);
        // Frame 3 is shown as itself, after the gap; message 2 starts in it
        // and ends in frame 4.
        assert_eq!(per_frame, vec![(3, vec![]), (4, vec![2, 3])]);
        let kept = reports.iter().find(|r| r.origin == Origin::Kept(0)).unwrap();
        assert_eq!(kept.gap, Some(Gap { from: 21, len: 40, after_frame: Some(2) }));
        // Message 1's tail (8 bytes of it) was skipped to find message 2:
        // 3 in frame 3 (the rest might have begun a header), 5 in frame 4.
        let current = reports.iter().find(|r| r.origin == Origin::Current).unwrap();
        assert_eq!((kept.skipped, current.skipped), (3, 5));
    }

    #[test]
    fn an_acknowledgement_past_a_hole_declares_it_at_once() {
        let client: Vec<u8> = [call(1, 12), call(2, 12), call(3, 12)].concat();
        let server = KEY.reversed();
        let mut streams = Streams::default();
        feed(&mut streams, KEY, 1, 0, tcp(0, SYN, 0), &[]);
        feed(&mut streams, server, 2, 0, TcpInfo { ack: 1, ..tcp(500, SYN | ACK, 0) }, &[]);
        feed(&mut streams, KEY, 3, 0, tcp(1, ACK, 40), &client[..40]);
        // Call 2 (bytes 41..80) is lost by the capture; the daemon's reply
        // acknowledges it before the client's next call arrives.
        let reply = build(PROGRAM_REMOTE, 16, MsgType::Reply, 2, Status::Ok, &[]);
        let ack = TcpInfo { ack: 81, ..tcp(501, ACK, reply.len()) };
        let (_, reports) = feed(&mut streams, server, 4, 0, ack, &reply);
        assert!(reports[0].peer_lost, "the reply's direction knows its peer lost bytes");
        let (per_frame, reports) = feed(&mut streams, KEY, 5, 0, tcp(81, ACK, 40), &client[80..]);
        assert_eq!(per_frame, vec![(5, vec![3])], "decoded in its own frame, not held");
        assert_eq!(reports[0].gap, Some(Gap { from: 41, len: 40, after_frame: Some(3) }));
        assert_eq!(reports[0].skipped, 0);
    }

    #[test]
    fn an_acknowledgement_settles_segments_already_waiting() {
        let client: Vec<u8> = [call(1, 12), call(2, 12), call(3, 12)].concat();
        let mut streams = Streams::default();
        feed(&mut streams, KEY, 1, 0, tcp(0, SYN, 0), &[]);
        feed(&mut streams, KEY, 2, 0, tcp(1, 0, 40), &client[..40]);
        feed(&mut streams, KEY, 3, 0, tcp(81, 0, 40), &client[80..]);
        let ack = TcpInfo { ack: 121, src_port: 16509, dst_port: 40000, ..tcp(501, ACK, 0) };
        let (per_frame, reports) = feed(&mut streams, KEY.reversed(), 4, 0, ack, &[]);
        // Frame 3's call, shown as frame 3 before frame 4 itself.
        assert_eq!(per_frame, vec![(3, vec![3]), (4, vec![])]);
        assert_eq!(reports[0].gap.map(|g| (g.from, g.len)), Some((41, 40)));
    }

    #[test]
    fn a_hold_ends_after_its_time() {
        let client: Vec<u8> = [call(1, 12), call(2, 12), call(3, 12)].concat();
        let other = FlowKey { src_port: 40001, ..KEY };
        let mut streams = Streams::default();
        feed(&mut streams, KEY, 1, 0, tcp(0, SYN, 0), &[]);
        feed(&mut streams, KEY, 2, 0, tcp(1, 0, 40), &client[..40]);
        feed(&mut streams, KEY, 3, 10, tcp(81, 0, 40), &client[80..]);
        let (per_frame, _) = feed(&mut streams, other, 4, 10, tcp(7, SYN, 0), &[]);
        assert_eq!(per_frame, vec![(4, vec![])], "not yet");
        let (per_frame, reports) = feed(&mut streams, other, 5, 11, tcp(8, 0, 0), &[]);
        assert_eq!(per_frame, vec![(3, vec![3]), (5, vec![])]);
        assert!(reports[0].gap.is_some());
    }

    #[test]
    fn a_retransmission_after_the_close_is_not_decoded_again() {
        let stream: Vec<u8> = [call(1, 10), call(2, 10)].concat();
        let (serials, d) = run(&[
            (0, &[], SYN),
            (1, &stream, 0),
            (1 + stream.len() as u32, &[], FIN),
            (1, &stream, 0), // spurious retransmission after the FIN
        ]);
        assert_eq!(serials, vec![vec![], vec![1, 2], vec![], vec![]]);
        assert!(d[3].retransmission);
    }

    #[test]
    fn joined_mid_stream_is_followed_from_a_segment_that_starts_a_message() {
        let stream: Vec<u8> = [call(1, 40), call(2, 10), call(3, 10)].concat();
        let (serials, d) = run(&[(5000, &stream[30..90], 0), (5060, &stream[90..], 0), (5068, &call(4, 0), 0)]);
        assert_eq!(serials, vec![vec![], vec![], vec![4]], "call 2 began inside the first segment seen");
        assert!(d[0].unfollowed && d[1].unfollowed && !d[2].unfollowed);
        assert!(d.iter().all(|d| d.skipped == 0 && !d.from_start));
        let (serials, _) = run(&[(5000, &stream[68..], 0)]);
        assert_eq!(serials, vec![vec![2, 3]]);
    }

    #[test]
    fn garbage_where_a_header_is_due_is_flagged() {
        let mut stream = call(1, 4);
        stream.extend_from_slice(&[0xff; 40]);
        stream.extend(call(2, 4));
        let (serials, d) = run(&[(0, &[], SYN), (1, &stream, 0)]);
        assert_eq!(serials[1], vec![1, 2]);
        assert_eq!(d[1].bad_header, Some(false));
        assert_eq!(d[1].skipped, 40);
    }

    #[test]
    fn a_connection_that_closes_without_a_header_was_not_libvirt() {
        let tls = tls::build_client_hello("kvm1");
        let end = 1 + tls.len() as u32;
        let (serials, d) = run(&[(0, &[], SYN), (1, &tls, 0), (end, &[], FIN)]);
        assert_eq!(serials, vec![Vec::<u32>::new(); 3]);
        assert_eq!(d[1].bad_header, Some(true), "the bytes start like TLS");
        assert_eq!(d[2].given_up, Some((tls.len() as u64, true)), "said once, at the FIN");
    }

    #[test]
    fn a_bad_first_header_costs_that_message_only() {
        let mut first = call(1, 8);
        first[5] ^= 0xff; // the program
        let stream = [first, call(2, 4)].concat();
        let (serials, d) = run(&[(0, &[], SYN), (1, &stream, 0)]);
        assert_eq!(serials[1], vec![2]);
        assert_eq!((d[1].bad_header, d[1].skipped, d[1].given_up), (Some(false), 36, None));
    }

    #[test]
    fn a_connection_with_no_header_in_its_first_4_kib_is_given_up() {
        let junk = vec![0x5a; 1000];
        let mut segments: Vec<(u32, &[u8], u8)> = vec![(0, &[], SYN)];
        for i in 0..6 {
            segments.push((1 + i * 1000, &junk, 0));
        }
        let (_, d) = run(&segments);
        let given_up: Vec<usize> = (0..d.len()).filter(|i| d[*i].given_up.is_some()).collect();
        assert_eq!(given_up, vec![5], "past 4 KiB, once");
    }

    #[test]
    fn a_direction_with_no_header_after_a_gap_is_given_up_past_the_longest_message() {
        let junk = vec![0x5a; 64 * 1024];
        let mut streams = Streams::default();
        feed(&mut streams, KEY, 1, 0, tcp(6, 0, 28), &call(1, 0));
        // Bad bytes where a header is due: seek, and give up once past 32 MiB.
        let mut given_up = Vec::new();
        for i in 0..600u32 {
            let seq = 34 + i * junk.len() as u32;
            let (_, reports) = feed(&mut streams, KEY, u64::from(i) + 2, 0, tcp(seq, 0, junk.len()), &junk);
            if reports[0].given_up.is_some() {
                given_up.push(i);
            }
        }
        assert_eq!(given_up, vec![(libvirt::MAX_LEN / junk.len()) as u32], "once, past the longest message");
        assert_eq!(streams.bytes, streams.flows.iter().map(|(_, d)| d.bytes()).sum::<usize>());
    }

    #[test]
    fn candidates_are_found_at_every_offset_and_only_whole() {
        let message = call(9, 4);
        for framing in [Framing::Libvirt] {
            for pad in 0..40 {
                let mut bytes = vec![0u8; pad];
                bytes.extend_from_slice(&message);
                assert_eq!(framing.find_header(&bytes), Some(pad), "{pad}");
                // Cut inside the header: not found (the caller keeps the tail).
                assert_eq!(framing.find_header(&bytes[..pad + HEADER_LEN - 1]), None, "{pad}");
            }
        }
        let record = tls::build_record(tls::APPLICATION_DATA, &[1; 10]);
        for pad in 0..10 {
            let mut bytes = vec![0x5a; pad];
            bytes.extend_from_slice(&record);
            assert_eq!(Framing::Tls.find_header(&bytes), Some(pad));
        }
    }

    #[test]
    fn long_messages_keep_their_start_only() {
        let big = call(9, MAX_KEEP + 5000);
        let mut streams = Streams::default();
        feed(&mut streams, KEY, 1, 0, tcp(0, SYN, 0), &[]);
        let mut delivered = Vec::new();
        for (i, chunk) in big.chunks(1448).enumerate() {
            let mut out = Deliveries::default();
            let f = frame(i as u64 + 2, 0, chunk);
            streams.segment(KEY, Framing::Libvirt, &tcp(1 + (i * 1448) as u32, 0, chunk.len()), chunk, &f, &mut out);
            delivered.extend(out.messages_of(0).map(<[u8]>::to_vec));
        }
        assert_eq!(delivered.len(), 1);
        let msg = Message::parse(&delivered[0]).unwrap();
        assert_eq!((msg.header.serial, msg.header.len as usize), (9, big.len()));
        assert_eq!(msg.payload.len(), MAX_KEEP - HEADER_LEN);
    }

    #[test]
    fn bytes_over_all_flows_are_bounded() {
        let mut streams = Streams::default();
        let waiting = vec![0u8; 60_000];
        // 200 directions, each with a hole and 60 kB waiting past it: 12 MB unbounded.
        for port in 0..200u16 {
            let key = FlowKey { src_port: port, ..KEY };
            feed(&mut streams, key, 1, 0, tcp(0, SYN, 0), &[]);
            feed(&mut streams, key, 1, 0, tcp(0, 0, 10), &call(1, 0)[..10]);
            feed(&mut streams, key, 2, 0, tcp(1000, 0, waiting.len()), &waiting);
            let held: usize = streams.flows.iter().map(|(_, d)| d.bytes()).sum();
            assert_eq!(held, streams.bytes);
            assert!(streams.bytes <= MAX_BYTES, "{}", streams.bytes);
        }
        assert!(streams.evicted > 0);
        // A FIN gives the hole up and frees the direction's bytes.
        let last = FlowKey { src_port: 199, ..KEY };
        feed(&mut streams, last, 3, 0, tcp(1000 + 60_000, FIN, 0), &[]);
        assert_eq!(streams.bytes, streams.flows.iter().map(|(_, d)| d.bytes()).sum::<usize>());
    }

    #[test]
    fn flows_are_bounded() {
        let mut streams = Streams::default();
        for port in 0..(MAX_FLOWS as u32 + 10) {
            let key = FlowKey { src_port: port as u16, src: IpAddr::V4(Ipv4Addr::from(port)), ..KEY };
            feed(&mut streams, key, 1, 0, tcp(0, SYN, 0), &[]);
        }
        assert_eq!(streams.flows.len(), MAX_FLOWS);
        assert_eq!(streams.evicted, 10);
    }

    #[test]
    fn tls_records_are_framed_like_messages() {
        let records = [tls::build_client_hello("kvm1"), tls::build_record(tls::APPLICATION_DATA, &[7; 3000])].concat();
        let mut streams = Streams::default();
        let mut out = Deliveries::default();
        let f = frame(1, 0, &[]);
        streams.segment(KEY, Framing::Tls, &tcp(0, SYN, 0), &[], &f, &mut out);
        let mut counts = Vec::new();
        let mut last = Vec::new();
        for (seq, bytes) in [(1u32, &records[..1448]), (1449, &records[1448..])] {
            out.clear();
            streams.segment(KEY, Framing::Tls, &tcp(seq, 0, bytes.len()), bytes, &frame(2, 0, bytes), &mut out);
            counts.push(out.messages.len());
            last = out.messages_of(0).last().map(<[u8]>::to_vec).unwrap_or_default();
        }
        assert_eq!(counts, vec![1, 1]);
        let record = tls::Record::parse(&last).unwrap();
        assert_eq!((record.content_type, record.fragment.len()), (tls::APPLICATION_DATA, 3000));
    }

    #[test]
    fn after_sasl_authentication_undecodable_bytes_are_encrypted_not_damage() {
        let mut encrypted = 60u32.to_be_bytes().to_vec();
        encrypted.extend_from_slice(&[0x5a; 60]);
        for sasl in [false, true] {
            let mut streams = Streams::default();
            feed(&mut streams, KEY, 1, 0, tcp(0, SYN, 0), &[]);
            let call = call(1, 4);
            feed(&mut streams, KEY, 2, 0, tcp(1, 0, call.len()), &call);
            if sasl {
                streams.mark_sasl(KEY);
            }
            let seq = 1 + call.len() as u32;
            let (per_frame, reports) = feed(&mut streams, KEY, 3, 0, tcp(seq, 0, encrypted.len()), &encrypted);
            assert_eq!(reports[0].encrypted, sasl);
            assert_eq!(reports[0].bad_header.is_some(), !sasl);
            assert_eq!(per_frame, vec![(3, vec![])]);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_segments_never_panic(segments in proptest::collection::vec(
            (proptest::prelude::any::<u32>(), proptest::prelude::any::<u32>(),
             proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80), 0u8..32, proptest::prelude::any::<bool>()),
            0..40,
        )) {
            let mut streams = Streams::default();
            for (i, (seq, ack, bytes, flags, reverse)) in segments.iter().enumerate() {
                let key = if *reverse { KEY.reversed() } else { KEY };
                let tcp = TcpInfo { ack: ack % 400, ..tcp(seq % 300, *flags, bytes.len()) };
                let mut out = Deliveries::default();
                let f = frame(i as u64 + 1, i as i64 / 4, bytes);
                if streams.has_due(f.ts) {
                    streams.expire(&f, &mut out);
                }
                streams.segment(key, Framing::Libvirt, &tcp, bytes, &f, &mut out);
                for (range, report) in &out.messages {
                    proptest::prop_assert!(range.end <= out.bytes.len() && *report < out.reports.len());
                }
                for report in &out.reports {
                    if let Origin::Kept(k) = report.origin {
                        proptest::prop_assert!(k < out.kept.len());
                    }
                }
                let held: usize = streams.flows.iter().map(|(_, d)| d.bytes()).sum();
                proptest::prop_assert_eq!(held, streams.bytes);
            }
            let mut out = Deliveries::default();
            streams.finish(&mut out);
            proptest::prop_assert!(streams.flows.iter().all(|(_, d)| d.held.is_empty()));
        }
    }
}
