//! Bounded IPv4 reassembly for UDP datagrams.
//!
//! ldmd messages fit one frame, so fragments are rare and suspicious; we still
//! put them back together so the message can be checked. Memory is capped by
//! the number of datagrams in flight and the bytes held; the oldest datagram
//! is given up first, and a datagram is given up after `TIMEOUT_SECS` of
//! capture time, as Linux does.

use std::net::IpAddr;

use crate::capture::{KeptFrame, Timestamp};

/// Datagrams being reassembled at once.
pub const MAX_DATAGRAMS: usize = 256;
/// Bytes held in fragments, over all datagrams.
pub const MAX_BYTES: usize = 4 << 20;
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

#[derive(Debug)]
struct Datagram {
    key: DatagramKey,
    first_ts: Timestamp,
    first_frame: u64,
    fragments: Vec<(usize, Vec<u8>)>,
    /// Known once the fragment without "more fragments" arrived.
    total_len: Option<usize>,
    bytes: usize,
    /// The frame holding offset 0 (with the UDP header), for showing it if the
    /// datagram never completes.
    head: Option<KeptFrame>,
}

impl Datagram {
    fn received(&self) -> usize {
        self.fragments.iter().map(|(_, data)| data.len()).sum()
    }

    /// The payload, once fragments cover 0..total_len without gaps.
    fn assemble(&self) -> Option<Vec<u8>> {
        let total = self.total_len?;
        let mut order: Vec<&(usize, Vec<u8>)> = self.fragments.iter().collect();
        order.sort_by_key(|(offset, _)| *offset);
        let mut covered = 0;
        for (offset, data) in &order {
            if *offset > covered {
                return None;
            }
            covered = covered.max(offset + data.len());
        }
        if covered < total {
            return None;
        }
        let mut out = vec![0u8; total];
        for (offset, data) in order {
            let end = (offset + data.len()).min(total);
            if *offset < end {
                out[*offset..end].copy_from_slice(&data[..end - offset]);
            }
        }
        Some(out)
    }
}

/// A datagram given up on: what arrived of it.
#[derive(Debug, Clone)]
pub struct Incomplete {
    pub head: Option<KeptFrame>,
    pub received: usize,
    pub total_len: Option<usize>,
}

/// A reassembled datagram.
#[derive(Debug, Clone)]
pub struct Complete {
    pub payload: Vec<u8>,
    pub count: u16,
    pub first_frame: u64,
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
    /// In arrival order: the front is the oldest.
    datagrams: Vec<Datagram>,
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
        if fragment.offset + fragment.payload.len() > MAX_DATAGRAM {
            return None;
        }
        let key = DatagramKey { src: fragment.src, dst: fragment.dst, id: fragment.id, protocol: fragment.protocol };
        let index = match self.datagrams.iter().position(|d| d.key == key) {
            Some(i) => i,
            None => {
                self.make_room(fragment.payload.len());
                self.datagrams.push(Datagram {
                    key,
                    first_ts: ts,
                    first_frame: frame_number,
                    fragments: Vec::new(),
                    total_len: None,
                    bytes: 0,
                    head: None,
                });
                self.datagrams.len() - 1
            }
        };
        let datagram = &mut self.datagrams[index];
        if fragment.offset == 0 && datagram.head.is_none() {
            datagram.head = Some(head());
        }
        if !fragment.more_fragments {
            datagram.total_len = Some(fragment.offset + fragment.payload.len());
        }
        datagram.fragments.push((fragment.offset, fragment.payload.to_vec()));
        datagram.bytes += fragment.payload.len();
        self.bytes += fragment.payload.len();
        let payload = datagram.assemble()?;
        let done = self.datagrams.remove(index);
        self.bytes -= done.bytes;
        self.completed += 1;
        Some(Complete { payload, count: done.fragments.len() as u16, first_frame: done.first_frame })
    }

    fn make_room(&mut self, incoming: usize) {
        while !self.datagrams.is_empty() && (self.datagrams.len() >= MAX_DATAGRAMS || self.bytes + incoming > MAX_BYTES)
        {
            self.give_up(0);
            self.evicted += 1;
        }
    }

    fn give_up(&mut self, index: usize) {
        let d = self.datagrams.remove(index);
        self.bytes -= d.bytes;
        let received = d.received();
        self.given_up.push(Incomplete { head: d.head, received, total_len: d.total_len });
    }

    /// Gives up datagrams older than the timeout (capture time).
    fn expire(&mut self, now: Timestamp) {
        while let Some(oldest) = self.datagrams.first() {
            if now.secs - oldest.first_ts.secs <= TIMEOUT_SECS {
                break;
            }
            self.give_up(0);
        }
    }

    /// Datagrams given up since the last call.
    pub fn take_given_up(&mut self) -> Vec<Incomplete> {
        std::mem::take(&mut self.given_up)
    }

    /// At the end of input: give up everything still open.
    pub fn finish(&mut self) -> Vec<Incomplete> {
        while !self.datagrams.is_empty() {
            self.give_up(0);
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
        assert_eq!(done.count, 2);
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
