//! Per-packet checks: every deviation PROTOCOL.md lists under "Per packet",
//! turned into findings from the catalogue. Pure functions of one packet.

use std::net::{IpAddr, Ipv4Addr};

use crate::expert::{Detail, Finding, Key};
use crate::wire::ldm::{self, CharField, Discovery, Lookup, Message, MsgType, Payload};

use super::ip::{ChecksumStatus, IpInfo, UdpInfo};
use super::stream::Report;
use super::Findings;
use crate::wire::libvirt;

const AUTO_FIRST: u64 = 0x0014_4FF8_0000;
const AUTO_LAST: u64 = 0x0014_4FFB_FFFF;

/// Transport-level findings: checksums, TTL, destination.
pub fn transport(ip: &IpInfo, udp: &UdpInfo, out: &mut Findings) {
    if let ChecksumStatus::Bad { computed } = ip.checksum_status {
        out.push(Finding::new(Key::IpBadChecksum, Detail::Checksum { got: ip.checksum, want: computed }));
    }
    if let ChecksumStatus::Bad { computed } = udp.checksum_status {
        out.push(Finding::new(Key::UdpBadChecksum, Detail::Checksum { got: udp.checksum, want: computed }));
    }
    if udp.bad_length {
        let carried = ip.total_len.saturating_sub(ip.header_len);
        out.push(Finding::new(
            Key::UdpBadLength,
            Detail::Expected { field: "length", got: udp.length.into(), want: carried as u64 },
        ));
    }
    if ip.ttl > 1 {
        out.push(Finding::new(Key::IpTtlAboveOne, Detail::Ttl(ip.ttl)));
    }
    match ip.dst {
        IpAddr::V4(dst) if dst == ldm::GROUP => {}
        IpAddr::V4(dst) if dst.is_multicast() => out.push(Finding::new(Key::IpWrongGroup, Detail::Addr(ip.dst))),
        IpAddr::V4(_) => out.push(Finding::new(Key::IpNotMulticast, Detail::Addr(ip.dst))),
        IpAddr::V6(_) => out.push(Finding::new(Key::IpIpv6Transport, Detail::Addr(ip.dst))),
    }
}

/// Findings about the ldm message. `ip_src` is the IP header's source, for
/// the address cross-checks; `cut_by_capture` suppresses ldm.truncated when
/// the capture (snap length, lost fragments) rather than the sender cut it.
pub fn message(msg: &Message<'_>, ip_src: Option<Ipv4Addr>, cut_by_capture: bool, out: &mut Findings) {
    // A byte-swapped magic was already read little-endian, so a magic that
    // does not match now matches in neither order.
    if let Some(magic) = msg.magic_no.filter(|&m| m != ldm::MAGIC) {
        out.push(Finding::new(Key::LdmBadMagic, Detail::Hex { field: "magic_no", got: magic.into() }));
        // Probably not ldm: further findings would be noise. Outputs show the raw bytes.
        return;
    }
    if msg.byte_order == ldm::ByteOrder::Little {
        out.push(Finding::new(Key::LdmByteSwapped, Detail::None));
    }
    if let Some(version) = msg.version_no.filter(|&v| v != ldm::VERSION) {
        out.push(Finding::new(
            Key::LdmBadVersion,
            Detail::Expected { field: "version_no", got: version.into(), want: ldm::VERSION.into() },
        ));
    }
    if let Some(MsgType::Unknown(t)) = msg.msg_type {
        out.push(Finding::new(Key::LdmUnknownType, Detail::Value { field: "msg_type", got: t.into() }));
    }
    if let Some(resv) = msg.resv.filter(|&r| r != 0) {
        out.push(Finding::new(Key::LdmResvNonzero, Detail::Hex { field: "resv", got: resv.into() }));
    }
    length(msg, cut_by_capture, out);
    match msg.payload {
        Payload::Lookup(lookup) => lookup_fields(&lookup, ip_src, out),
        Payload::Discovery(discovery) => discovery_fields(&discovery, ip_src, out),
        Payload::Opaque(_) => {}
    }
}

fn length(msg: &Message<'_>, cut_by_capture: bool, out: &mut Findings) {
    let len = msg.bytes.len();
    let need = msg.msg_type.map_or(ldm::HEADER_LEN, MsgType::min_len).max(ldm::HEADER_LEN);
    if len < need {
        if !cut_by_capture {
            out.push(Finding::new(Key::LdmTruncated, Detail::Length { got: len, want: need }));
        }
        return;
    }
    if len > ldm::FULL_LEN {
        out.push(Finding::new(Key::LdmTrailingBytes, Detail::Length { got: len, want: ldm::FULL_LEN }));
        return;
    }
    let known_short = match msg.msg_type {
        Some(t) if t.is_lookup() => len == ldm::SHORT_LOOKUP_LEN,
        Some(MsgType::DiscSend) => len == ldm::HEADER_LEN,
        _ => false,
    };
    if len != ldm::FULL_LEN && !known_short {
        out.push(Finding::new(Key::LdmUnusualLength, Detail::Length { got: len, want: ldm::FULL_LEN }));
    }
}

fn text_field(field: Option<CharField<'_>>, name: &'static str, out: &mut Findings) {
    let Some(field) = field else { return };
    // One scan for the NUL, one over the text: every field of every ldm
    // packet passes here.
    let text = field.text();
    let nul_terminated = text.len() < field.raw.len();
    if field.complete() && !nul_terminated {
        out.push(Finding::new(Key::LdmStringUnterminated, Detail::Field(name)));
    }
    if !text.iter().all(|b| (0x20..0x7f).contains(b)) {
        out.push(Finding::new(Key::LdmStringNotText, Detail::Field(name)));
    }
}

fn lookup_fields(lookup: &Lookup<'_>, ip_src: Option<Ipv4Addr>, out: &mut Findings) {
    if let Some(raw) = lookup.mac_addr {
        mac(raw, out);
    }
    let Some(source_ip) = lookup.source_ip.filter(CharField::complete) else {
        return;
    };
    // One scan for the NUL serves the parse and the terminator check.
    let text = source_ip.text();
    let parsed = ldm::parse_dotted_quad(text);
    if parsed.is_some() {
        // A dotted quad is printable text: only its terminator needs a look.
        if text.len() == source_ip.raw.len() {
            out.push(Finding::new(Key::LdmStringUnterminated, Detail::Field("source_ip")));
        }
    } else {
        text_field(Some(source_ip), "source_ip", out);
    }
    match parsed {
        None => out.push(Finding::new(Key::LdmBadSourceIp, Detail::None)),
        Some(said) => {
            if let Some(header) = ip_src.filter(|&h| h != said) {
                let detail = Detail::AddrMismatch { field: "source_ip", said: said.into(), header: header.into() };
                out.push(Finding::new(Key::LdmSourceIpMismatch, detail));
            }
        }
    }
}

fn mac(raw: u64, out: &mut Findings) {
    if raw >> 48 != 0 {
        out.push(Finding::new(Key::LdmMacHighBits, Detail::Hex { field: "mac_addr", got: raw }));
    }
    let mac_value = raw & 0xFFFF_FFFF_FFFF;
    let mac = ldm::mac_from_u64(mac_value);
    if mac_value == 0 {
        out.push(Finding::new(Key::LdmMacZero, Detail::None));
    } else if mac[0] & 1 == 1 {
        // The group bit: multicast, broadcast included.
        out.push(Finding::new(Key::LdmMacMulticast, Detail::Mac(mac)));
    }
    // Said of every MAC outside the range, an invalid one too: each key
    // answers its own question (a filter on one must not miss the other).
    if !(AUTO_FIRST..=AUTO_LAST).contains(&mac_value) {
        out.push(Finding::new(Key::LdmMacNotAuto, Detail::Mac(mac)));
    }
}

fn discovery_fields(d: &Discovery<'_>, ip_src: Option<Ipv4Addr>, out: &mut Findings) {
    text_field(d.ldmd_version, "ldmd_version", out);
    text_field(d.hostname, "hostname", out);
    if let (Some(said), Some(header)) = (d.ip_address, ip_src) {
        if said != header {
            let detail = Detail::AddrMismatch { field: "ip_address", said: said.into(), header: header.into() };
            out.push(Finding::new(Key::LdmIpAddressMismatch, detail));
        }
    }
    if let Some(port) = d.port_no.filter(|&p| p != ldm::XMPP_PORT) {
        out.push(Finding::new(
            Key::LdmBadPort,
            Detail::Expected { field: "port_no", got: port as u32 as u64, want: ldm::XMPP_PORT as u64 },
        ));
    }
}

/// What reassembling a libvirt segment found about the stream.
pub fn stream(report: &Report, out: &mut Findings) {
    if let Some(gap) = report.gap {
        let detail = Detail::StreamGap { from: gap.from, len: gap.len, after_frame: gap.after_frame };
        out.push(Finding::new(Key::LibvirtStreamGap, detail));
    }
    if let Some((bytes, tls)) = report.given_up {
        out.push(Finding::new(Key::LibvirtNotLibvirt, Detail::NotLibvirt { bytes, tls }));
    }
    if let Some(tls) = report.bad_header {
        let detail = if tls { Detail::LooksLikeTls } else { Detail::None };
        out.push(Finding::new(Key::LibvirtBadHeader, detail));
    }
    if report.skipped > 0 {
        out.push(Finding::new(Key::LibvirtSkippedBytes, Detail::Bytes(report.skipped as u64)));
    }
    if report.retransmission {
        out.push(Finding::new(Key::LibvirtRetransmission, Detail::None));
    }
}

/// Findings about one libvirt message's header.
pub fn libvirt(msg: Option<&libvirt::Message<'_>>, out: &mut Findings) {
    let Some(msg) = msg else { return };
    let h = &msg.header;
    if h.program_name().is_some() && h.procedure_name().is_none() {
        out.push(Finding::new(
            Key::LibvirtUnknownProcedure,
            Detail::Value { field: "proc", got: h.proc_ as u32 as u64 },
        ));
    }
}
