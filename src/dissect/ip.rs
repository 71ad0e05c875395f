//! Network and transport layers: IPv4 (options, fragments), IPv6 (extension
//! headers), UDP, and checksum verification.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::checksum::Sum16BitWords;
use etherparse::{IpNumber, Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice, UdpHeaderSlice};

use crate::capture::KernelChecksum;

/// Outcome of a checksum check, as Wireshark reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumStatus {
    Good,
    Bad {
        computed: u16,
    },
    /// Could not be checked: bytes missing, or the capturing host sent the frame.
    Unverified,
    /// A checksum-offload placeholder (pseudo-header sum only): the NIC fills
    /// in the real value after the capture point.
    Partial,
    /// UDP over IPv4 with checksum 0: the sender computed none (legal).
    Absent,
}

impl ChecksumStatus {
    pub fn name(self) -> &'static str {
        match self {
            ChecksumStatus::Good => "good",
            ChecksumStatus::Bad { .. } => "bad",
            ChecksumStatus::Unverified => "unverified",
            ChecksumStatus::Partial => "partial",
            ChecksumStatus::Absent => "absent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Fragment {
    pub id: u16,
    pub more_fragments: bool,
    /// Offset of this fragment's payload in the datagram, in bytes.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL, or IPv6 hop limit.
    pub ttl: u8,
    pub protocol: u8,
    pub header_len: usize,
    /// Total length (IPv4) or header plus payload length (IPv6).
    pub total_len: usize,
    /// IPv4 identification (0 for IPv6).
    pub id: u16,
    /// IPv4 header checksum field (0 for IPv6).
    pub checksum: u16,
    pub checksum_status: ChecksumStatus,
    /// Set when this packet is a fragment (IPv4 MF or offset, IPv6 fragment header).
    pub fragment: Option<Ipv4Fragment>,
    /// The payload extends past the captured bytes.
    pub payload_cut: bool,
    /// Bytes of the datagram (header included) the frame holds.
    pub available: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpInfo {
    pub src_port: u16,
    pub dst_port: u16,
    pub length: u16,
    pub checksum: u16,
    pub checksum_status: ChecksumStatus,
    /// The length field disagrees with the bytes the IP layer carries.
    pub bad_length: bool,
}

/// Why the IP or UDP layer could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpError {
    BadIpv4Header,
    BadIpv6Header,
    TruncatedUdpHeader,
    TruncatedTcpHeader,
}

impl std::fmt::Display for IpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IpError::BadIpv4Header => "malformed or cut IPv4 header",
            IpError::BadIpv6Header => "malformed or cut IPv6 header",
            IpError::TruncatedUdpHeader => "UDP header cut short",
            IpError::TruncatedTcpHeader => "TCP header cut short",
        })
    }
}

// etherparse sums 16-bit words in native byte order; `.to_be()` turns a result
// into the value of a big-endian field read from the wire.

fn ipv4_header_checksum(header: &[u8]) -> u16 {
    // Sum over the header with the checksum field (bytes 10..12) taken as zero.
    Sum16BitWords::new().add_slice(&header[..10]).add_slice(&header[12..]).ones_complement().to_be()
}

/// Decodes an IPv4 header; returns it with the payload bytes present.
pub fn ipv4(data: &[u8]) -> Result<(IpInfo, &[u8]), IpError> {
    let header = Ipv4HeaderSlice::from_slice(data).map_err(|_| IpError::BadIpv4Header)?;
    let header_len = usize::from(header.ihl()) * 4;
    let total_len = usize::from(header.total_len());
    if total_len < header_len {
        return Err(IpError::BadIpv4Header);
    }
    // Ethernet pads short frames: the IP total length says where the datagram ends.
    let end = total_len.min(data.len());
    let stored = header.header_checksum();
    let offset = usize::from(header.fragments_offset().value()) * 8;
    let fragment = (header.more_fragments() || offset > 0).then_some(Ipv4Fragment {
        id: header.identification(),
        more_fragments: header.more_fragments(),
        offset,
    });
    let info = IpInfo {
        version: 4,
        src: IpAddr::V4(header.source_addr()),
        dst: IpAddr::V4(header.destination_addr()),
        ttl: header.ttl(),
        protocol: header.protocol().0,
        header_len,
        total_len,
        id: header.identification(),
        checksum: stored,
        // Summed by `verify_ipv4_checksum` for the frames whose IP layer matters.
        checksum_status: ChecksumStatus::Unverified,
        fragment,
        payload_cut: total_len > data.len(),
        available: end,
    };
    Ok((info, &data[header_len..end]))
}

/// Sets `ip.checksum_status` of an IPv4 header `ipv4` decoded from `data`.
pub fn verify_ipv4_checksum(data: &[u8], ip: &mut IpInfo) {
    if ip.version != 4 {
        return;
    }
    let computed = ipv4_header_checksum(&data[..ip.header_len]);
    ip.checksum_status = match ip.checksum {
        s if s == computed => ChecksumStatus::Good,
        // Windows and some NICs leave the header checksum 0 on sent frames.
        0 => ChecksumStatus::Unverified,
        _ => ChecksumStatus::Bad { computed },
    };
}

/// Decodes an IPv6 header and its extension headers.
pub fn ipv6(data: &[u8]) -> Result<(IpInfo, &[u8]), IpError> {
    let header = Ipv6HeaderSlice::from_slice(data).map_err(|_| IpError::BadIpv6Header)?;
    let total_len = 40 + usize::from(header.payload_length());
    let end = total_len.min(data.len());
    let after_header = &data[40..end];
    let (exts, next, payload) =
        Ipv6ExtensionsSlice::from_slice(header.next_header(), after_header).map_err(|_| IpError::BadIpv6Header)?;
    let fragment = exts.is_fragmenting_payload().then_some(Ipv4Fragment { id: 0, more_fragments: true, offset: 0 });
    let info = IpInfo {
        version: 6,
        src: IpAddr::V6(header.source_addr()),
        dst: IpAddr::V6(header.destination_addr()),
        ttl: header.hop_limit(),
        protocol: next.0,
        header_len: end - payload.len(),
        total_len,
        id: 0,
        checksum: 0,
        checksum_status: ChecksumStatus::Unverified,
        fragment,
        payload_cut: total_len > data.len(),
        available: end,
    };
    Ok((info, payload))
}

pub fn is_udp(ip: &IpInfo) -> bool {
    ip.protocol == IpNumber::UDP.0
}

/// The pseudo-header sum a NIC with checksum offload expects to find.
fn pseudo_header_sum(ip: &IpInfo, udp_len: u16) -> Sum16BitWords {
    let sum = match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Sum16BitWords::new().add_4bytes(s.octets()).add_4bytes(d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => Sum16BitWords::new().add_16bytes(s.octets()).add_16bytes(d.octets()),
        _ => Sum16BitWords::new(),
    };
    sum.add_2bytes([0, IpNumber::UDP.0]).add_2bytes(udp_len.to_be_bytes())
}

/// Decodes UDP without summing the datagram (`verify_udp_checksum` does
/// that, for the datagrams whose checksum anyone sees: ldm, or all with
/// `--all`).
pub fn udp_unverified<'a>(ip: &IpInfo, ip_payload: &'a [u8]) -> Result<(UdpInfo, &'a [u8]), IpError> {
    let header = UdpHeaderSlice::from_slice(ip_payload).map_err(|_| IpError::TruncatedUdpHeader)?;
    let length = header.length();
    let claimed = usize::from(length);
    let carried = ip_payload.len();
    // The IP layer's length is known exactly unless the capture cut it.
    let bad_length = claimed < 8 || (!ip.payload_cut && claimed != carried);
    // Bytes of the datagram present; the header itself is known to be there.
    let end = claimed.min(carried).max(8);
    let payload = &ip_payload[8..end];
    let info = UdpInfo {
        src_port: header.source_port(),
        dst_port: header.destination_port(),
        length,
        checksum: header.checksum(),
        checksum_status: ChecksumStatus::Unverified,
        bad_length,
    };
    Ok((info, payload))
}

/// Sets `udp.checksum_status` of the datagram `udp_unverified` decoded: by
/// summing it, unless the capturing kernel (`kernel`) already knows.
pub fn verify_udp_checksum(ip: &IpInfo, ip_payload: &[u8], outgoing: bool, kernel: KernelChecksum, udp: &mut UdpInfo) {
    let end = usize::from(udp.length).min(ip_payload.len()).max(8);
    let datagram = &ip_payload[..end];
    udp.checksum_status = udp_checksum_status(ip, datagram, udp.length, udp.checksum, outgoing, kernel, udp.bad_length);
}

fn udp_checksum_status(
    ip: &IpInfo,
    datagram: &[u8],
    length: u16,
    stored: u16,
    outgoing: bool,
    kernel: KernelChecksum,
    bad_length: bool,
) -> ChecksumStatus {
    if stored == 0 && ip.version == 4 {
        return ChecksumStatus::Absent;
    }
    if ip.payload_cut || bad_length {
        return ChecksumStatus::Unverified;
    }
    // The kernel's word is what summing would find (the offload placeholder,
    // or a checksum the NIC checked), at no cost: summing every live datagram
    // was a tenth of live capture's CPU.
    match kernel {
        KernelChecksum::NotReady => return ChecksumStatus::Partial,
        KernelChecksum::Valid => return ChecksumStatus::Good,
        KernelChecksum::Unknown => {}
    }
    let pseudo = pseudo_header_sum(ip, length);
    // Sum the datagram with its checksum field (bytes 6..8) taken as zero.
    let computed = pseudo
        .clone()
        .add_2bytes(folded_sum(&datagram[..6]).to_be_bytes())
        .add_2bytes(folded_sum(&datagram[8..]).to_be_bytes())
        .to_ones_complement_with_no_zero()
        .to_be();
    if computed == stored {
        return ChecksumStatus::Good;
    }
    if outgoing {
        return ChecksumStatus::Unverified;
    }
    // Offload: the stack stores the folded pseudo-header sum and lets the NIC
    // finish. Captured on the sender (or a virtual NIC) it looks wrong but is not.
    let partial = (!pseudo.ones_complement()).to_be();
    if stored == partial {
        return ChecksumStatus::Partial;
    }
    ChecksumStatus::Bad { computed }
}

/// The ones'-complement sum of `bytes` read as big-endian 16-bit words (an odd
/// last byte padded with zero), folded to 16 bits. Every ldm datagram is
/// summed, so this is on the hot path. Two facts make it cheap: 2^16 is 1
/// modulo 0xFFFF, so 64-bit words summed with end-around carry and folded
/// once give the same sum; and the ones'-complement sum of byte-swapped
/// words is the byte-swapped sum (RFC 1071), so the words are read
/// little-endian (a plain load) and the result swapped once.
fn folded_sum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    // 64-bit words with end-around carry (also 1 modulo 0xFFFF), then the
    // 32-bit words left: half the additions of 32-bit words alone.
    let mut longs = bytes.chunks_exact(8);
    for long in &mut longs {
        let word = u64::from_le_bytes([long[0], long[1], long[2], long[3], long[4], long[5], long[6], long[7]]);
        let (added, carry) = sum.overflowing_add(word);
        sum = added + u64::from(carry);
    }
    let mut words = longs.remainder().chunks_exact(4);
    for word in &mut words {
        let (added, carry) = sum.overflowing_add(u64::from(u32::from_le_bytes([word[0], word[1], word[2], word[3]])));
        sum = added + u64::from(carry);
    }
    // Fold to 32 bits first, so the byte additions below cannot overflow.
    sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
    for (i, &byte) in words.remainder().iter().enumerate() {
        let shift = if i % 2 == 0 { 0 } else { 8 };
        sum += u64::from(byte) << shift;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    (sum as u16).swap_bytes()
}

/// The IPv4 source as `Ipv4Addr`, when the packet is IPv4.
pub fn ipv4_source(ip: &IpInfo) -> Option<Ipv4Addr> {
    match ip.src {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    proptest::proptest! {
        #[test]
        fn folded_sum_equals_word_by_word_sum(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let ours = Sum16BitWords::new().add_2bytes(folded_sum(&bytes).to_be_bytes());
            let theirs = Sum16BitWords::new().add_slice(&bytes);
            // Compare as ones'-complement values: 0 and 0xFFFF are one number.
            let norm = |s: Sum16BitWords| s.to_ones_complement_with_no_zero();
            proptest::prop_assert_eq!(norm(ours), norm(theirs));
        }
    }

    /// Decode and verify, as the dissector does for an ldm datagram;
    /// `outgoing`: the capturing host sent it (its checksum may be left to the NIC).
    fn udp<'a>(ip: &IpInfo, ip_payload: &'a [u8], outgoing: bool) -> Result<(UdpInfo, &'a [u8]), IpError> {
        let (mut info, payload) = udp_unverified(ip, ip_payload)?;
        verify_udp_checksum(ip, ip_payload, outgoing, KernelChecksum::Unknown, &mut info);
        Ok((info, payload))
    }

    fn udp_packet(payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ipv4([10, 0, 0, 1], [239, 129, 9, 27], 1).udp(64535, 64535);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn good_checksums() {
        let packet = udp_packet(b"hello");
        let (mut ip, payload) = ipv4(&packet).unwrap();
        assert_eq!(ip.checksum_status, ChecksumStatus::Unverified, "summed only when asked");
        verify_ipv4_checksum(&packet, &mut ip);
        assert_eq!(ip.checksum_status, ChecksumStatus::Good);
        let (udp, data) = udp(&ip, payload, false).unwrap();
        assert_eq!(udp.checksum_status, ChecksumStatus::Good);
        assert_eq!(data, b"hello");
    }

    #[test]
    fn corrupted_and_offloaded_udp_checksums() {
        let mut packet = udp_packet(b"hello");
        let (ip, _) = ipv4(&packet).unwrap();
        let partial = (!pseudo_header_sum(&ip, 13).ones_complement()).to_be();
        packet[26..28].copy_from_slice(&partial.to_be_bytes());
        let (ip, payload) = ipv4(&packet).unwrap();
        assert_eq!(udp(&ip, payload, false).unwrap().0.checksum_status, ChecksumStatus::Partial);
        packet[26..28].copy_from_slice(&[0x12, 0x34]);
        let (ip, payload) = ipv4(&packet).unwrap();
        assert!(matches!(udp(&ip, payload, false).unwrap().0.checksum_status, ChecksumStatus::Bad { .. }));
        assert_eq!(udp(&ip, payload, true).unwrap().0.checksum_status, ChecksumStatus::Unverified);
        packet[10] ^= 0xff;
        let (mut ip, _) = ipv4(&packet).unwrap();
        verify_ipv4_checksum(&packet, &mut ip);
        assert!(matches!(ip.checksum_status, ChecksumStatus::Bad { .. }));
    }

    #[test]
    fn the_kernels_checksum_status_is_taken_without_summing() {
        let mut packet = udp_packet(b"hello");
        packet[26..28].copy_from_slice(&[0x12, 0x34]);
        let (ip, payload) = ipv4(&packet).unwrap();
        let status = |kernel| {
            let (mut info, _) = udp_unverified(&ip, payload).unwrap();
            verify_udp_checksum(&ip, payload, false, kernel, &mut info);
            info.checksum_status
        };
        assert!(matches!(status(KernelChecksum::Unknown), ChecksumStatus::Bad { .. }), "summed");
        assert_eq!(status(KernelChecksum::NotReady), ChecksumStatus::Partial);
        assert_eq!(status(KernelChecksum::Valid), ChecksumStatus::Good);
        // Cut short, a datagram is unverified, and without a checksum it is
        // absent, whatever the kernel says.
        let (cut, cut_payload) = ipv4(&packet[..30]).unwrap();
        let (mut info, _) = udp_unverified(&cut, cut_payload).unwrap();
        verify_udp_checksum(&cut, cut_payload, false, KernelChecksum::Valid, &mut info);
        assert_eq!(info.checksum_status, ChecksumStatus::Unverified);
        packet[26..28].copy_from_slice(&[0, 0]);
        let (ip, payload) = ipv4(&packet).unwrap();
        let (mut info, _) = udp_unverified(&ip, payload).unwrap();
        verify_udp_checksum(&ip, payload, false, KernelChecksum::NotReady, &mut info);
        assert_eq!(info.checksum_status, ChecksumStatus::Absent);
    }

    #[test]
    fn cut_packets_decode_without_verifying() {
        let packet = udp_packet(&[0u8; 312]);
        let (ip, payload) = ipv4(&packet[..100]).unwrap();
        assert!(ip.payload_cut);
        let (udp, data) = udp(&ip, payload, false).unwrap();
        assert_eq!(udp.checksum_status, ChecksumStatus::Unverified);
        assert!(!udp.bad_length);
        assert_eq!(data.len(), 100 - 28);
        assert!(ipv4(&packet[..19]).is_err());
    }
}
