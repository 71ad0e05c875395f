//! Bounded IPv4 reassembly for UDP datagrams.
//!
//! ldmd messages fit one frame, so fragments are rare and suspicious; we still
//! put them back together so the message can be checked. Each datagram keeps
//! its pieces in offset order (a B-tree: each fragment costs O(log n)) and
//! counts the bytes it covers, so completion needs no rescan. Memory is capped
//! by the datagrams in flight (`MAX_DATAGRAMS`) and by the bytes held, every
//! fragment's counted with its bookkeeping (`MAX_BYTES`, also within one
//! datagram); past either the oldest datagram is given up. A datagram is
//! given up after `TIMEOUT_SECS` of capture time, as Linux does.
//!
//! Overlapping fragments are kept first-come (the bytes a receiver already
//! holds are not replaced) and reported with Linux's verdict: a fragment
//! wholly inside bytes already received is a duplicate, dropped, and the
//! datagram goes on; any other overlap makes Linux discard the whole
//! datagram (since 4.19, as RFC 5722 asks of IPv6; `inet_frag_queue_insert`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::capture::{KeptFrame, Timestamp};

/// Datagrams being reassembled at once.
pub const MAX_DATAGRAMS: usize = 256;
/// Bytes held in fragments (with `PIECE_COST` each), over all datagrams.
pub const MAX_BYTES: usize = 4 << 20;
/// Bookkeeping of one kept piece, counted against `MAX_BYTES`: a flood of
/// 8-byte fragments is bounded by its number, not only its bytes.
const PIECE_COST: usize = 64;
/// Largest IPv4 payload.
const MAX_DATAGRAM: usize = 65_535 - 20;
pub const TIMEOUT_SECS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DatagramKey {
    src: IpAddr,
    dst: IpAddr,
    id: u16,
    protocol: u8,
}

/// Two fragments that carry the same bytes of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// The frame whose bytes are kept, and the later one.
    pub first_frame: u64,
    pub frame: u64,
    /// The datagram bytes both carry (the first overlap seen).
    pub from: usize,
    pub to: usize,
    /// Some shared byte differs.
    pub conflict: bool,
    /// Linux discards the whole datagram (the later fragment is not wholly
    /// inside bytes already received).
    pub linux_discards: bool,
}

/// Bytes of a datagram from one frame.
#[derive(Debug)]
struct Piece {
    data: Vec<u8>,
    frame: u64,
}

#[derive(Debug)]
struct Datagram {
    /// Its place in the age order.
    age: u64,
    first_ts: Timestamp,
    first_frame: u64,
    /// Pieces by offset, never overlapping.
    pieces: BTreeMap<usize, Piece>,
    /// Bytes the pieces cover.
    covered: usize,
    /// Known once the fragment without "more fragments" arrived.
    total_len: Option<usize>,
    /// Fragments received, duplicates included.
    count: u32,
    /// What the pieces cost against `MAX_BYTES`.
    cost: usize,
    overlap: Option<Overlap>,
    /// The frame holding offset 0 (with the UDP header), for showing it if the
    /// datagram never completes.
    head: Option<KeptFrame>,
}

impl Datagram {
    fn is_complete(&self) -> bool {
        self.total_len.is_some_and(|total| self.covered >= total)
    }

    fn assemble(&self) -> Vec<u8> {
        let total = self.total_len.unwrap_or(self.covered);
        let mut out = Vec::with_capacity(total);
        for piece in self.pieces.values() {
            out.extend_from_slice(&piece.data);
        }
        out.truncate(total);
        out
    }

    /// Adds the bytes of `[offset, offset + data.len())` not yet held;
    /// returns what they cost. Shared bytes are compared with those held.
    fn insert(&mut self, offset: usize, data: &[u8], frame: u64) -> usize {
        let end = offset + data.len();
        // Pieces that could overlap: the one starting before `offset`, and
        // those starting inside.
        let before = self.pieces.range(..offset).next_back().map(|(at, _)| *at);
        let overlapping: Vec<usize> = before
            .into_iter()
            .chain(self.pieces.range(offset..end).map(|(at, _)| *at))
            .filter(|at| at + self.pieces[at].data.len() > offset)
            .collect();
        let mut gaps = Vec::new();
        let mut next = offset;
        for at in &overlapping {
            let piece = &self.pieces[at];
            let (from, to) = ((*at).max(offset), (at + piece.data.len()).min(end));
            let shared = (&piece.data[from - at..to - at], &data[from - offset..to - offset]);
            note_overlap(&mut self.overlap, (from, to), shared, (piece.frame, frame));
            if from > next {
                gaps.push((next, from));
            }
            next = next.max(to);
        }
        if next < end {
            gaps.push((next, end));
        }
        let whole = overlapping.is_empty();
        let inside = !whole && gaps.is_empty();
        if let Some(overlap) = self.overlap.as_mut().filter(|o| o.frame == frame) {
            // A fragment inside bytes already received is a duplicate to Linux.
            overlap.linux_discards |= !inside;
        }
        let mut cost = 0;
        for (from, to) in gaps {
            let piece = Piece { data: data[from - offset..to - offset].to_vec(), frame };
            cost += piece.data.len() + PIECE_COST;
            self.covered += to - from;
            self.pieces.insert(from, piece);
        }
        cost
    }
}

/// Records an overlap of the bytes `from..to` (held, then new; carried by
/// the frames `first_frame`, then `frame`), if it is the first one, or the
/// first that conflicts.
fn note_overlap(
    overlap: &mut Option<Overlap>,
    (from, to): (usize, usize),
    (held, new): (&[u8], &[u8]),
    (first_frame, frame): (u64, u64),
) {
    let conflict = held != new;
    if overlap.is_some_and(|o| o.conflict || !conflict) {
        return;
    }
    *overlap = Some(Overlap { first_frame, frame, from, to, conflict, linux_discards: false });
}

/// A datagram given up on: what arrived of it.
#[derive(Debug, Clone)]
pub struct Incomplete {
    pub head: Option<KeptFrame>,
    pub received: usize,
    pub total_len: Option<usize>,
    pub overlap: Option<Overlap>,
}

/// A reassembled datagram.
#[derive(Debug, Clone)]
pub struct Complete {
    pub payload: Vec<u8>,
    pub count: u32,
    pub first_frame: u64,
    pub overlap: Option<Overlap>,
}

/// One fragment as the dissector sees it.
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u16,
    pub protocol: u8,
    pub offset: usize,
    pub more_fragments: bool,
    pub payload: &'a [u8],
}

#[derive(Debug, Default)]
pub struct Reassembler {
    datagrams: HashMap<DatagramKey, Datagram, ahash::RandomState>,
    /// The datagrams by age: the first is the oldest, the next to go.
    ages: BTreeMap<u64, DatagramKey>,
    next_age: u64,
    bytes: usize,
    given_up: Vec<Incomplete>,
    pub evicted: u64,
    pub completed: u64,
}

impl Reassembler {
    /// Adds a fragment; returns the datagram when this fragment completes it.
    /// `head` is the whole frame, kept only for the fragment at offset 0.
    pub fn add(
        &mut self,
        fragment: Fragment<'_>,
        ts: Timestamp,
        frame_number: u64,
        head: impl FnOnce() -> KeptFrame,
    ) -> Option<Complete> {
        self.expire(ts);
        let end = fragment.offset + fragment.payload.len();
        if end > MAX_DATAGRAM {
            return None;
        }
        let key = DatagramKey { src: fragment.src, dst: fragment.dst, id: fragment.id, protocol: fragment.protocol };
        // Room for the fragment's bytes, whichever datagram they go to.
        self.make_room(fragment.payload.len() + PIECE_COST, key);
        if !self.datagrams.contains_key(&key) {
            let age = self.next_age;
            self.next_age += 1;
            self.ages.insert(age, key);
            self.datagrams.insert(
                key,
                Datagram {
                    age,
                    first_ts: ts,
                    first_frame: frame_number,
                    pieces: BTreeMap::new(),
                    covered: 0,
                    total_len: None,
                    count: 0,
                    cost: 0,
                    overlap: None,
                    head: None,
                },
            );
        }
        let datagram = self.datagrams.get_mut(&key)?;
        if fragment.offset == 0 && datagram.head.is_none() {
            datagram.head = Some(head());
        }
        if !fragment.more_fragments {
            datagram.total_len = Some(end);
        }
        datagram.count = datagram.count.saturating_add(1);
        let cost = datagram.insert(fragment.offset, fragment.payload, frame_number);
        datagram.cost += cost;
        self.bytes += cost;
        if !datagram.is_complete() {
            return None;
        }
        let done = self.remove(&key)?;
        self.completed += 1;
        Some(Complete {
            payload: done.assemble(),
            count: done.count,
            first_frame: done.first_frame,
            overlap: done.overlap,
        })
    }

    /// Gives up the oldest datagrams until `incoming` more bytes fit (the
    /// datagram `adding` to last: its own bytes count too).
    fn make_room(&mut self, incoming: usize, adding: DatagramKey) {
        let new = !self.datagrams.contains_key(&adding);
        let too_many = |r: &Reassembler| new && r.datagrams.len() >= MAX_DATAGRAMS;
        while too_many(self) || self.bytes + incoming > MAX_BYTES {
            let oldest = self.ages.values().copied().find(|key| *key != adding);
            let Some(oldest) = oldest.or(Some(adding).filter(|k| self.datagrams.contains_key(k))) else { break };
            self.give_up(&oldest);
            self.evicted += 1;
        }
    }

    fn remove(&mut self, key: &DatagramKey) -> Option<Datagram> {
        let d = self.datagrams.remove(key)?;
        self.ages.remove(&d.age);
        self.bytes -= d.cost;
        Some(d)
    }

    fn give_up(&mut self, key: &DatagramKey) {
        let Some(d) = self.remove(key) else { return };
        self.given_up.push(Incomplete {
            head: d.head,
            received: d.covered,
            total_len: d.total_len,
            overlap: d.overlap,
        });
    }

    /// Gives up datagrams older than the timeout (capture time).
    fn expire(&mut self, now: Timestamp) {
        while let Some((_, key)) = self.ages.first_key_value() {
            let key = *key;
            let started = self.datagrams.get(&key).map_or(now, |d| d.first_ts);
            if now.secs.saturating_sub(started.secs) <= TIMEOUT_SECS {
                break;
            }
            self.give_up(&key);
        }
    }

    /// Datagrams given up since the last call.
    pub fn take_given_up(&mut self) -> Vec<Incomplete> {
        std::mem::take(&mut self.given_up)
    }

    /// Whether any datagram was given up since the last `take_given_up`.
    pub fn has_given_up(&self) -> bool {
        !self.given_up.is_empty()
    }

    /// At the end of input: give up everything still open.
    pub fn finish(&mut self) -> Vec<Incomplete> {
        while let Some((_, key)) = self.ages.first_key_value() {
            let key = *key;
            self.give_up(&key);
        }
        self.take_given_up()
    }

    pub fn in_flight(&self) -> usize {
        self.datagrams.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn frag(id: u16, offset: usize, more: bool, payload: &[u8]) -> Fragment<'_> {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(239, 129, 9, 27));
        Fragment { src: a, dst: b, id, protocol: 17, offset, more_fragments: more, payload }
    }

    fn kept() -> KeptFrame {
        KeptFrame {
            number: 1,
            ts: Timestamp::default(),
            len: 0,
            linktype: crate::capture::Linktype::RAW,
            interface: 0,
            file_offset: 0,
            data: vec![],
            raw_time: None,
        }
    }

    #[test]
    fn out_of_order_fragments_complete() {
        let mut r = Reassembler::default();
        let ts = Timestamp::new(1, 0);
        assert!(r.add(frag(7, 16, false, &[2; 8]), ts, 1, kept).is_none());
        let done = r.add(frag(7, 0, true, &[1; 16]), ts, 2, kept).unwrap();
        assert_eq!(done.payload.len(), 24);
        assert_eq!(&done.payload[..16], &[1; 16]);
        assert_eq!((done.count, done.overlap), (2, None));
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn a_flood_stays_within_caps() {
        let mut r = Reassembler::default();
        let big = vec![0u8; 1400];
        for id in 0..10_000u16 {
            r.add(frag(id, 0, true, &big), Timestamp::new(1, 0), u64::from(id), kept);
            assert!(r.in_flight() <= MAX_DATAGRAMS);
            assert!(r.bytes <= MAX_BYTES);
        }
        assert!(r.evicted > 9_000);
        assert_eq!(r.take_given_up().len() as u64, r.evicted);
    }

    #[test]
    fn one_datagram_in_flight_is_bounded_too() {
        // 150,000 fragments of 1,480 bytes of one datagram that never
        // completes (222 MB if each were kept): the bytes of the datagram
        // being built count, and a byte already held is not kept again.
        let mut r = Reassembler::default();
        let piece = [7u8; 1480];
        for i in 0..150_000usize {
            r.add(frag(1, (i * 1480) % 63_000 / 8 * 8, true, &piece), Timestamp::new(1, 0), i as u64, kept);
            assert!(r.bytes <= MAX_BYTES, "{}", r.bytes);
        }
        assert!(r.bytes < 70_000, "{}", r.bytes);
    }

    #[test]
    fn many_datagrams_in_flight_are_bounded_by_their_bytes() {
        let mut r = Reassembler::default();
        let piece = [7u8; 1480];
        for id in 0..200u16 {
            for i in 0..40 {
                r.add(frag(id, i * 1480, true, &piece), Timestamp::new(1, 0), u64::from(id), kept);
                assert!(r.bytes <= MAX_BYTES, "{}", r.bytes);
            }
        }
        assert!(r.evicted > 100, "{}", r.evicted);
    }

    #[test]
    fn many_small_fragments_cost_log_time_each() {
        // 8,000 fragments of 8 bytes, in reverse order, then the first: one
        // datagram of 64,000 bytes, each fragment counted (no u16 wrap).
        let mut r = Reassembler::default();
        let ts = Timestamp::new(1, 0);
        let pieces = 8_000usize;
        for i in (1..pieces).rev() {
            let more = i + 1 < pieces;
            assert!(r.add(frag(3, i * 8, more, &[(i % 251) as u8; 8]), ts, i as u64, kept).is_none());
        }
        let done = r.add(frag(3, 0, true, &[0; 8]), ts, 0, kept).unwrap();
        assert_eq!((done.payload.len(), done.count), (pieces * 8, pieces as u32));
        assert!(done.payload.chunks(8).enumerate().all(|(i, c)| c == [(i % 251) as u8; 8]));
    }

    #[test]
    fn overlaps_keep_the_first_bytes_and_say_what_linux_does() {
        let ts = Timestamp::new(1, 0);
        // A: bytes 0-207; B: bytes 80-319, the 128 shared bytes differing.
        let mut r = Reassembler::default();
        r.add(frag(9, 0, true, &[1; 208]), ts, 5, kept);
        let done = r.add(frag(9, 80, false, &[2; 240]), ts, 6, kept).unwrap();
        assert_eq!(&done.payload[..208], &[1; 208][..], "the first copy is kept");
        assert_eq!(&done.payload[208..], &[2; 112][..]);
        let overlap = Overlap { first_frame: 5, frame: 6, from: 80, to: 208, conflict: true, linux_discards: true };
        assert_eq!(done.overlap, Some(overlap));
        // The same bytes again, wholly inside what arrived: a duplicate.
        let mut r = Reassembler::default();
        r.add(frag(9, 0, true, &[1; 208]), ts, 5, kept);
        r.add(frag(9, 16, true, &[1; 32]), ts, 6, kept);
        let done = r.add(frag(9, 208, false, &[3; 8]), ts, 7, kept).unwrap();
        let overlap = Overlap { first_frame: 5, frame: 6, from: 16, to: 48, conflict: false, linux_discards: false };
        assert_eq!((done.overlap, done.count), (Some(overlap), 3));
    }

    #[test]
    fn timeout_gives_up() {
        let mut r = Reassembler::default();
        r.add(frag(1, 0, true, &[0; 8]), Timestamp::new(0, 0), 1, kept);
        r.add(frag(2, 0, true, &[0; 8]), Timestamp::new(100, 0), 2, kept);
        let given_up = r.take_given_up();
        assert_eq!(given_up.len(), 1);
        assert_eq!(given_up[0].received, 8);
        assert_eq!(r.finish().len(), 1);
    }
}
