//! Hostile capture files, made on demand (never committed: some are
//! megabytes): what an attacker, or a broken writer, hands ldm-sniff. The
//! regression tests of issue 23 (`tests/hostile.rs`) and the flood figures
//! in bench/README.md are made with these.

use std::net::Ipv4Addr;

use crate::capture::writer::{PcapNgWriter, PcapWriter};
use crate::capture::{Linktype, Timestamp};
use crate::wire::ldm::Repr;

use super::{ethernet, ipv4_ethernet, multicast_mac, Ipv4Udp};

const SENDER: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 5);
const SENDER_MAC: [u8; 6] = [0x00, 0x10, 0xe0, 0x01, 0x01, 0x05];

/// An ldm discovery request on Ethernet: a frame that decodes cleanly.
pub fn discovery_frame() -> Vec<u8> {
    ipv4_ethernet(SENDER_MAC, &Ipv4Udp::ldm(SENDER, 1), &Repr::discovery_request().to_bytes())
}

/// A classic pcap: a discovery request, a record of `huge` bytes, and
/// another discovery request.
pub fn pcap_with_huge_record(huge: usize) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), Linktype::ETHERNET, false, false).expect("writing to a Vec");
    let frame = discovery_frame();
    w.write_packet(Timestamp::new(1, 0), &frame, frame.len() as u32).expect("writing to a Vec");
    let big = vec![0x5a; huge];
    w.write_packet(Timestamp::new(2, 0), &big, huge as u32).expect("writing to a Vec");
    w.write_packet(Timestamp::new(3, 0), &frame, frame.len() as u32).expect("writing to a Vec");
    w.into_inner()
}

/// A pcapng: an interface, a discovery request, a block of type 0x0bad
/// whose length fields say `claimed`, then bytes a reader could go on with.
pub fn pcapng_with_block_len(claimed: u32) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).expect("writing to a Vec");
    w.add_interface(Linktype::ETHERNET, "eth0", 6).expect("writing to a Vec");
    let frame = discovery_frame();
    w.write_packet(0, Timestamp::new(1, 0), &frame, frame.len() as u32, None).expect("writing to a Vec");
    let mut out = w.into_inner();
    out.extend_from_slice(&0x0badu32.to_le_bytes());
    out.extend_from_slice(&claimed.to_le_bytes());
    out.extend_from_slice(&[0u8; 64]);
    out
}

/// A pcapng whose section describes `interfaces` interfaces, each with a
/// name of `name_len` bytes, then one packet on the last.
pub fn pcapng_with_interfaces(interfaces: usize, name_len: usize) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).expect("writing to a Vec");
    let name = "n".repeat(name_len);
    for _ in 0..interfaces {
        w.add_interface(Linktype::ETHERNET, &name, 6).expect("writing to a Vec");
    }
    let frame = discovery_frame();
    let last = interfaces.saturating_sub(1) as u32;
    w.write_packet(last, Timestamp::new(1, 0), &frame, frame.len() as u32, None).expect("writing to a Vec");
    w.into_inner()
}

/// A pcapng of one discovery request whose interface has resolution
/// `tsresol` and offset `tsoffset` (seconds), stamped `units`.
pub fn pcapng_with_timestamp(units: u64, tsresol: u8, tsoffset: i64) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).expect("writing to a Vec");
    w.add_interface_with_offset(Linktype::ETHERNET, "eth0", tsresol, tsoffset).expect("writing to a Vec");
    let frame = discovery_frame();
    w.write_packet_units(0, units, &frame, frame.len() as u32, None).expect("writing to a Vec");
    w.into_inner()
}

/// A pcap of `count` IPv4 fragments of `size` bytes of one UDP datagram to
/// the ldm port that never completes (offsets cycle inside 64 KiB), as a
/// fragment flood of one datagram.
pub fn pcap_fragments_of_one_datagram(count: usize, size: usize) -> Vec<u8> {
    let size = size / 8 * 8;
    let sender = Ipv4Udp { id: 0x4242, ..Ipv4Udp::ldm(SENDER, 0x4242) };
    let piece = vec![0x5a; size];
    let mut w = PcapWriter::new(Vec::new(), Linktype::ETHERNET, false, false).expect("writing to a Vec");
    let dst = multicast_mac(crate::wire::ldm::GROUP);
    for i in 0..count {
        // Never offset 0 nor the last fragment: the datagram never completes.
        let offset = 8 + (i * size) % (60_000 - size) / 8 * 8;
        let packet = sender.fragment(&piece, offset, true);
        let frame = ethernet(SENDER_MAC, dst, &[], 0x0800, &packet);
        let ts = Timestamp::new(1, (i % 1_000_000) as u32 * 1000);
        w.write_packet(ts, &frame, frame.len() as u32).expect("writing to a Vec");
    }
    w.into_inner()
}

/// A pcap of the first and last fragments of one datagram, then `count`
/// 8-byte fragments between them that never fill the hole at offset 8:
/// every arrival finds a head and a tail, so a reassembler that checks
/// completeness by collecting its pieces pays for all of them each time.
pub fn pcap_fragments_around_a_hole(count: usize) -> Vec<u8> {
    const END: usize = 64_000;
    let sender = Ipv4Udp { id: 0x4343, ..Ipv4Udp::ldm(SENDER, 0x4343) };
    let mut w = PcapWriter::new(Vec::new(), Linktype::ETHERNET, false, false).expect("writing to a Vec");
    let dst = multicast_mac(crate::wire::ldm::GROUP);
    // The head carries the UDP header of a datagram to the ldm port.
    let datagram = sender.udp_datagram(&vec![0x5a; END]);
    let head = sender.fragment(&datagram[..8], 0, true);
    let tail = sender.fragment(&[0x5a; 8], END, false);
    let middle = (0..count).map(|i| sender.fragment(&[0x5a; 8], 16 + (i * 8) % (END - 16), true));
    for (i, packet) in [head, tail].into_iter().chain(middle).enumerate() {
        let frame = ethernet(SENDER_MAC, dst, &[], 0x0800, &packet);
        let ts = Timestamp::new(1, (i % 1_000_000) as u32 * 1000);
        w.write_packet(ts, &frame, frame.len() as u32).expect("writing to a Vec");
    }
    w.into_inner()
}
