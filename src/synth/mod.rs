//! Packet builders for generated captures (and, later, the emulator and
//! replay): ldm messages from `wire::ldm::Repr`, headers from etherparse.

pub mod captures;
pub mod hostile;
pub mod variants;

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, Ipv4Options, Ipv6FlowLabel, Ipv6Header,
    SingleVlanHeader, UdpHeader, VlanId, VlanPcp,
};

use crate::dissect::link::ETHERTYPE_IPV4;
use crate::wire::ldm;

/// The Ethernet multicast address of an IPv4 group (01:00:5e + low 23 bits).
pub fn multicast_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// An IPv4/UDP sender: everything the IP and UDP headers need.
#[derive(Debug, Clone)]
pub struct Ipv4Udp {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub id: u16,
    pub src_port: u16,
    pub dst_port: u16,
    /// IPv4 options bytes (a multiple of 4, at most 40).
    pub options: Vec<u8>,
}

impl Ipv4Udp {
    /// ldmd's defaults: to the group, port 64535 both ends, TTL 1.
    pub fn ldm(src: Ipv4Addr, id: u16) -> Ipv4Udp {
        Ipv4Udp { src, dst: ldm::GROUP, ttl: 1, id, src_port: ldm::PORT, dst_port: ldm::PORT, options: Vec::new() }
    }

    fn header(&self, payload_len: usize) -> Ipv4Header {
        let mut header =
            Ipv4Header::new(payload_len as u16, self.ttl, IpNumber::UDP, self.src.octets(), self.dst.octets())
                .expect("payload fits an IPv4 datagram");
        header.identification = self.id;
        // ldmd sends small datagrams without DF; fragments must not carry it.
        header.dont_fragment = false;
        header.options = Ipv4Options::try_from(self.options.as_slice()).expect("valid IPv4 options length");
        // The total length counts the options, which `new` did not know of.
        header.set_payload_len(payload_len).expect("payload fits an IPv4 datagram");
        header
    }

    /// UDP header (with a correct checksum) and payload.
    pub fn udp_datagram(&self, payload: &[u8]) -> Vec<u8> {
        let ip = self.header(8 + payload.len());
        let udp = UdpHeader::with_ipv4_checksum(self.src_port, self.dst_port, &ip, payload).expect("payload fits UDP");
        let mut out = udp.to_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// A whole IPv4 packet with correct checksums.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let datagram = self.udp_datagram(payload);
        let header = self.header(datagram.len());
        let mut out = Vec::with_capacity(header.header_len() + datagram.len());
        header.write(&mut out).expect("writing to a Vec");
        out.extend_from_slice(&datagram);
        out
    }

    /// One IPv4 fragment carrying `piece` at byte `offset` (a multiple of 8)
    /// of the UDP datagram: for fragments that overlap or disagree.
    pub fn fragment(&self, piece: &[u8], offset: usize, more_fragments: bool) -> Vec<u8> {
        let mut header = self.header(piece.len());
        header.more_fragments = more_fragments;
        header.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).expect("offset fits");
        let mut out = Vec::new();
        header.write(&mut out).expect("writing to a Vec");
        out.extend_from_slice(piece);
        out
    }

    /// The packet split into IPv4 fragments carrying at most `chunk` bytes of
    /// the UDP datagram each (`chunk` a multiple of 8).
    pub fn fragments(&self, payload: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let datagram = self.udp_datagram(payload);
        let pieces: Vec<&[u8]> = datagram.chunks(chunk).collect();
        let last = pieces.len() - 1;
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let mut header = self.header(piece.len());
                header.more_fragments = i < last;
                header.fragment_offset = IpFragOffset::try_new((i * chunk / 8) as u16).expect("offset fits");
                let mut out = Vec::new();
                header.write(&mut out).expect("writing to a Vec");
                out.extend_from_slice(piece);
                out
            })
            .collect()
    }
}

/// An IPv6/UDP packet with a correct checksum.
pub fn ipv6_udp(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, ports: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let header = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length: (8 + payload.len()) as u16,
        next_header: IpNumber::UDP,
        hop_limit,
        source: src.octets(),
        destination: dst.octets(),
    };
    let udp = UdpHeader::with_ipv6_checksum(ports.0, ports.1, &header, payload).expect("payload fits UDP");
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&udp.to_bytes());
    out.extend_from_slice(payload);
    out
}

/// An Ethernet II frame, with 802.1Q/802.1ad tags `(tpid, vlan id)` outermost first.
pub fn ethernet(src: [u8; 6], dst: [u8; 6], vlans: &[(u16, u16)], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let first_type = vlans.first().map_or(ether_type, |(tpid, _)| *tpid);
    let eth = Ethernet2Header { source: src, destination: dst, ether_type: EtherType(first_type) };
    let mut out = eth.to_bytes().to_vec();
    for (i, (_, id)) in vlans.iter().enumerate() {
        let inner_type = vlans.get(i + 1).map_or(ether_type, |(tpid, _)| *tpid);
        let tag = SingleVlanHeader {
            pcp: VlanPcp::ZERO,
            drop_eligible_indicator: false,
            vlan_id: VlanId::try_new(*id).expect("VLAN id below 4095"),
            ether_type: EtherType(inner_type),
        };
        out.extend_from_slice(&tag.to_bytes());
    }
    out.extend_from_slice(payload);
    pad_ethernet(out)
}

/// Ethernet frames are at least 60 bytes before the FCS; short ones are padded.
fn pad_ethernet(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

pub fn ipv4_ethernet(src_mac: [u8; 6], ip: &Ipv4Udp, payload: &[u8]) -> Vec<u8> {
    let dst_mac = if ip.dst.is_multicast() { multicast_mac(ip.dst) } else { [0x00, 0x10, 0xe0, 0x00, 0x00, 0xfe] };
    ethernet(src_mac, dst_mac, &[], ETHERTYPE_IPV4, &ip.packet(payload))
}

/// Linux cooked capture v2 (`tcpdump -i any`): 20-byte header, then the packet.
pub fn sll2(protocol: u16, if_index: u32, packet_type: u8, src_mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + payload.len());
    out.extend_from_slice(&protocol.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&if_index.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    out.push(packet_type);
    out.push(6);
    out.extend_from_slice(&src_mac);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    out
}

/// Linux cooked capture v1: 16-byte header, then the packet.
pub fn sll(packet_type: u16, src_mac: [u8; 6], protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&packet_type.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    out.extend_from_slice(&6u16.to_be_bytes());
    out.extend_from_slice(&src_mac);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&protocol.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// BSD loopback (LINKTYPE_NULL): address family in the capturing host's order
/// (little-endian here, as on x86).
/// Solaris ipnet (DLT_IPNET): a 24-byte big-endian header (version 1,
/// family 2 IPv4 or 26 IPv6, hook, packet length, interface, group
/// interface, zones), then the packet.
pub fn ipnet(family: u8, hook: u16, if_index: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + payload.len());
    out.extend_from_slice(&[1, family]);
    out.extend_from_slice(&hook.to_be_bytes());
    for word in [payload.len() as u32, if_index, 0, 0, 0] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// A snoop file (RFC 1761, version 2) of `datalink` frames: (time, data,
/// cumulative drops) each, records padded to 4 bytes as snoop pads them.
pub fn snoop_file(datalink: u32, records: &[(crate::capture::Timestamp, &[u8], u32)]) -> Vec<u8> {
    let mut out = crate::capture::snoop::MAGIC.to_vec();
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&datalink.to_be_bytes());
    for (ts, data, drops) in records {
        let padding = (4 - data.len() % 4) % 4;
        let record_len = 24 + data.len() + padding;
        let secs = u32::try_from(ts.secs).unwrap_or(0);
        for word in [data.len() as u32, data.len() as u32, record_len as u32, *drops, secs, ts.nanos / 1000] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(0u8, padding));
    }
    out
}

pub fn null_loopback(family: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = family.to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}
