//! Link layer: from a frame to its network-layer bytes.
//!
//! etherparse decodes Ethernet II, 802.1Q/QinQ and Linux cooked capture v1;
//! it has no Linux cooked v2 (what `tcpdump -i any` writes today) and no BSD
//! loopback, so those two small headers are read here.

use arrayvec::ArrayVec;
use etherparse::{Ethernet2Slice, LinuxSllProtocolType, LinuxSllSlice, SingleVlanSlice};

use crate::capture::{Linktype, LINKTYPE_IPNET};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// Most VLAN tags we unwrap (QinQ is two).
pub const MAX_VLANS: usize = 4;
const SLL2_LEN: usize = 20;
const IPNET_LEN: usize = 24;
/// Solaris's AF_INET and AF_INET6, as the ipnet header gives them.
const SOLARIS_AF_INET: u8 = 2;
const SOLARIS_AF_INET6: u8 = 26;
/// Linux `PACKET_OUTGOING`: the capturing host sent the frame.
pub const PACKET_OUTGOING: u16 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    /// BSD/Linux loopback with a 4-byte address family (NULL and LOOP).
    Loopback,
    RawIp,
    /// Solaris ipnet (DLT_IPNET): what Solaris 11's tcpdump writes on an
    /// ipnet device (`-i ipnet/net0`), a 24-byte header before IP.
    Ipnet,
}

impl LinkKind {
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Ethernet => "Ethernet II",
            LinkKind::LinuxSll => "Linux cooked capture v1",
            LinkKind::LinuxSll2 => "Linux cooked capture v2",
            LinkKind::Loopback => "Null/Loopback",
            LinkKind::RawIp => "Raw IP",
            LinkKind::Ipnet => "Solaris ipnet",
        }
    }
}

/// Which network protocol the link layer says follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetProto {
    Ipv4,
    Ipv6,
    /// Another ethertype (ARP, LLDP, ...).
    Other(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub kind: LinkKind,
    /// Ethernet source, or the cooked header's link-layer address.
    pub src: Option<[u8; 6]>,
    pub dst: Option<[u8; 6]>,
    pub vlans: ArrayVec<u16, MAX_VLANS>,
    /// Linux cooked packet type (0 to us, 1 broadcast, 2 multicast, 3 other host, 4 outgoing).
    pub packet_type: Option<u16>,
    /// Linux cooked v2 (and Solaris ipnet) interface index.
    pub if_index: Option<u32>,
    /// The Solaris ipnet header's other fields.
    pub ipnet: Option<IpnetInfo>,
    pub proto: NetProto,
}

/// What a Solaris ipnet header says besides the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpnetInfo {
    /// Solaris address family: 2 IPv4, 26 IPv6.
    pub family: u8,
    /// Hook: 0 inbound, 1 outbound, 2 local (between zones).
    pub hook: u16,
    pub zone_src: u32,
    pub zone_dst: u32,
}

impl IpnetInfo {
    pub fn hook_name(&self) -> &'static str {
        match self.hook {
            0 => "inbound",
            1 => "outbound",
            2 => "local",
            _ => "unknown",
        }
    }
}

impl Link {
    fn new(kind: LinkKind, proto: NetProto) -> Link {
        Link {
            kind,
            src: None,
            dst: None,
            vlans: ArrayVec::new(),
            packet_type: None,
            if_index: None,
            ipnet: None,
            proto,
        }
    }

    /// True when the capturing host sent this frame (checksum offload applies).
    pub fn is_outgoing(&self) -> bool {
        self.packet_type == Some(PACKET_OUTGOING)
    }
}

/// Why the link layer could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    UnsupportedLinktype(i32),
    Truncated(&'static str),
    TooManyVlans,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::UnsupportedLinktype(t) => write!(f, "link type {t} is not supported"),
            LinkError::Truncated(what) => write!(f, "{what} header is cut short"),
            LinkError::TooManyVlans => write!(f, "more than {MAX_VLANS} VLAN tags"),
        }
    }
}

fn proto_from_ethertype(ether_type: u16) -> NetProto {
    match ether_type {
        ETHERTYPE_IPV4 => NetProto::Ipv4,
        ETHERTYPE_IPV6 => NetProto::Ipv6,
        other => NetProto::Other(other),
    }
}

fn proto_from_version(data: &[u8]) -> NetProto {
    match data.first().map(|b| b >> 4) {
        Some(4) => NetProto::Ipv4,
        Some(6) => NetProto::Ipv6,
        _ => NetProto::Other(0),
    }
}

fn mac6(bytes: &[u8]) -> Option<[u8; 6]> {
    bytes.get(..6).map(|b| [b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// Decodes the link layer; returns it with the network-layer bytes.
pub fn decode(linktype: Linktype, data: &[u8]) -> Result<(Link, &[u8]), LinkError> {
    match linktype {
        Linktype::ETHERNET => ethernet(data),
        Linktype::LINUX_SLL => linux_sll(data),
        Linktype::LINUX_SLL2 => linux_sll2(data),
        Linktype::NULL | Linktype::LOOP => loopback(data),
        LINKTYPE_IPNET => ipnet(data),
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 | Linktype(12) | Linktype(14) => {
            Ok((Link::new(LinkKind::RawIp, proto_from_version(data)), data))
        }
        Linktype(other) => Err(LinkError::UnsupportedLinktype(other)),
    }
}

fn ethernet(data: &[u8]) -> Result<(Link, &[u8]), LinkError> {
    let eth = Ethernet2Slice::from_slice_without_fcs(data).map_err(|_| LinkError::Truncated("Ethernet"))?;
    let mut link = Link::new(LinkKind::Ethernet, NetProto::Other(0));
    link.src = Some(eth.source());
    link.dst = Some(eth.destination());
    let (ether_type, payload) = unwrap_vlans(&mut link, eth.ether_type().0, eth.payload_slice())?;
    link.proto = proto_from_ethertype(ether_type);
    Ok((link, payload))
}

/// Strips 802.1Q / 802.1ad tags, recording their VLAN ids.
fn unwrap_vlans<'a>(link: &mut Link, mut ether_type: u16, mut payload: &'a [u8]) -> Result<(u16, &'a [u8]), LinkError> {
    while ETHERTYPE_VLAN.contains(&ether_type) {
        let vlan = SingleVlanSlice::from_slice(payload).map_err(|_| LinkError::Truncated("802.1Q VLAN"))?;
        link.vlans.try_push(vlan.vlan_identifier().value()).map_err(|_| LinkError::TooManyVlans)?;
        ether_type = vlan.ether_type().0;
        payload = vlan.payload_slice();
    }
    Ok((ether_type, payload))
}

fn linux_sll(data: &[u8]) -> Result<(Link, &[u8]), LinkError> {
    let sll = LinuxSllSlice::from_slice(data).map_err(|_| LinkError::Truncated("Linux cooked v1"))?;
    let ether_type = match sll.protocol_type() {
        LinuxSllProtocolType::EtherType(et) => et.0,
        _ => 0,
    };
    let mut link = Link::new(LinkKind::LinuxSll, NetProto::Other(ether_type));
    link.src = mac6(sll.sender_address());
    link.packet_type = Some(u16::from(sll.packet_type()));
    let (ether_type, payload) = unwrap_vlans(&mut link, ether_type, sll.payload_slice())?;
    link.proto = proto_from_ethertype(ether_type);
    Ok((link, payload))
}

/// LINKTYPE_LINUX_SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8).
fn linux_sll2(data: &[u8]) -> Result<(Link, &[u8]), LinkError> {
    let Some(header) = data.get(..SLL2_LEN) else {
        return Err(LinkError::Truncated("Linux cooked v2"));
    };
    let ether_type = u16::from_be_bytes([header[0], header[1]]);
    let mut link = Link::new(LinkKind::LinuxSll2, NetProto::Other(ether_type));
    link.if_index = Some(u32::from_be_bytes([header[4], header[5], header[6], header[7]]));
    link.packet_type = Some(u16::from(header[10]));
    if header[11] == 6 {
        link.src = mac6(&header[12..]);
    }
    let (ether_type, payload) = unwrap_vlans(&mut link, ether_type, &data[SLL2_LEN..])?;
    link.proto = proto_from_ethertype(ether_type);
    Ok((link, payload))
}

/// NULL/LOOP: a 4-byte address family, in the capturing host's byte order for
/// NULL, so both orders are accepted. AF_INET is 2 everywhere; AF_INET6 is 10,
/// 24, 28 or 30 depending on the OS.
fn loopback(data: &[u8]) -> Result<(Link, &[u8]), LinkError> {
    let Some(family) = data.get(..4) else {
        return Err(LinkError::Truncated("loopback"));
    };
    let family = [family[0], family[1], family[2], family[3]];
    let family = match u32::from_le_bytes(family) {
        small if small < 256 => small,
        _ => u32::from_be_bytes(family),
    };
    let proto = match family {
        2 => NetProto::Ipv4,
        10 | 24 | 28 | 30 => NetProto::Ipv6,
        other => NetProto::Other(other as u16),
    };
    Ok((Link::new(LinkKind::Loopback, proto), &data[4..]))
}

/// DLT_IPNET: version(1) family(1) hook(2) packet length(4) ifindex(4)
/// group ifindex(4) source zone(4) destination zone(4), big-endian.
fn ipnet(data: &[u8]) -> Result<(Link, &[u8]), LinkError> {
    let Some(header) = data.get(..IPNET_LEN) else {
        return Err(LinkError::Truncated("Solaris ipnet"));
    };
    let word = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let family = header[1];
    let proto = match family {
        SOLARIS_AF_INET => NetProto::Ipv4,
        SOLARIS_AF_INET6 => NetProto::Ipv6,
        other => NetProto::Other(u16::from(other)),
    };
    let mut link = Link::new(LinkKind::Ipnet, proto);
    link.if_index = Some(word(8));
    link.ipnet = Some(IpnetInfo {
        family,
        hook: u16::from_be_bytes([header[2], header[3]]),
        zone_src: word(16),
        zone_dst: word(20),
    });
    Ok((link, &data[IPNET_LEN..]))
}
