//! Frames that are certainly neither ldm nor libvirt, told apart before any
//! dissection is built: most of a busy link's traffic, settled by the link
//! header, the IPv4 protocol and the ports (what tcpdump's capture filter
//! tests). Anything this is unsure of (IPv6, fragments, damaged headers,
//! the ldm and libvirt ports) goes through the full dissection, so a frame
//! skimmed here is one the dissection would not show and keeps no state for.

use super::link::{Link, LinkError, NetProto, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};
use super::Options;

const UDP: u8 = 17;
const TCP: u8 = 6;
const ETHERNET_LEN: usize = 14;

/// Whether an Ethernet frame is other traffic, read from its bytes without
/// decoding the link layer (a busy link's usual frame): the answer
/// [`is_other_traffic`] would give, or `None` for a VLAN-tagged or cut
/// frame, which is told apart after decoding the link.
pub fn ethernet_is_other(frame: &[u8], options: &Options) -> Option<bool> {
    let &[high, low] = frame.get(12..ETHERNET_LEN)? else {
        return None;
    };
    match u16::from_be_bytes([high, low]) {
        ETHERTYPE_IPV4 => Some(ipv4_is_other(&frame[ETHERNET_LEN..], options)),
        ETHERTYPE_IPV6 => Some(false),
        tagged if ETHERTYPE_VLAN.contains(&tagged) => None,
        _ => Some(true),
    }
}

/// Whether a frame, decoded as `link`, is other traffic: not IP, or IPv4
/// neither ldm nor libvirt.
pub fn is_other_traffic(link: &Result<(Link, &[u8]), LinkError>, options: &Options) -> bool {
    let Ok((link, net)) = link else {
        return false;
    };
    match link.proto {
        NetProto::Other(_) => true,
        NetProto::Ipv4 => ipv4_is_other(net, options),
        NetProto::Ipv6 => false,
    }
}

fn ipv4_is_other(packet: &[u8], options: &Options) -> bool {
    let Some(&[version_ihl, _, _, _, _, _, flags_offset, offset_low, _, protocol]) = packet.get(..10) else {
        return false;
    };
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    // More fragments, or a fragment offset: reassembly keeps state.
    let fragment = flags_offset & 0x3f != 0 || offset_low != 0;
    if version_ihl >> 4 != 4 || header_len < 20 || fragment {
        return false;
    }
    let ports = || {
        let bytes = packet.get(header_len..header_len + 4)?;
        Some([u16::from_be_bytes([bytes[0], bytes[1]]), u16::from_be_bytes([bytes[2], bytes[3]])])
    };
    match protocol {
        UDP if options.heuristic => false,
        UDP => ports().is_some_and(|p| !p.contains(&options.port)),
        TCP => ports().is_some_and(|p| !p.contains(&options.libvirt_port) && !p.contains(&options.libvirt_tls_port)),
        _ => true,
    }
}
