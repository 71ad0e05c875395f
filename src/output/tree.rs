//! `-V`: every layer and every ldm field, with its offset in the message, its
//! raw bytes and its meaning; then the findings with severity and explanation.

use std::io::{self, Write};
use std::ops::Range;

use crate::capture::linktype_name;
use crate::dissect::fields::{escaped, rfc3339};
use crate::dissect::{ChecksumStatus, Dissection, IpInfo, Link, LinkKind, TcpInfo, UdpInfo};
use crate::expert::format_mac;
use crate::wire::ldm::{self, field, CharField, Message, Payload};
use crate::wire::libvirt;
use crate::wire::tls;

use super::text::Style;
use super::{Packet, ResponseSlot};

/// Appends the tree of one packet to `out`; returns where it lists the
/// packet's responses (see [`write_responses`]).
pub fn write_tree(
    out: &mut Vec<u8>,
    p: &Packet<'_, '_>,
    time_relative: f64,
    style: Style,
) -> io::Result<Option<ResponseSlot>> {
    let d = p.d;
    let f = &d.frame;
    writeln!(
        out,
        "Frame {}: {} bytes on wire, {} bytes captured, interface {}, {}",
        f.number,
        f.len,
        f.caplen(),
        f.interface,
        linktype_name(f.linktype)
    )?;
    writeln!(out, "    Arrival time: {} (epoch {})", rfc3339(f.ts), f.ts)?;
    writeln!(out, "    Time since first frame: {time_relative:.9} s")?;
    if let Some(link) = &d.link {
        write_link(out, link)?;
    }
    if let Some(ip) = &d.ip {
        write_ip(out, ip, d)?;
    }
    if let Some(udp) = &d.udp {
        write_udp(out, udp)?;
    }
    if let Some(tcp) = &d.tcp {
        write_tcp(out, tcp)?;
    }
    if let Some(stop) = d.stop {
        writeln!(out, "[Not decoded further: {stop}]")?;
    }
    let mut responses = None;
    if let Some(msg) = &d.ldm {
        write_ldm(out, msg)?;
        responses = Some(ResponseSlot::tree(out.len()));
        write_links(out, p)?;
    }
    if let Some(msg) = &d.libvirt {
        write_libvirt(out, msg, d.continuation)?;
        responses = Some(ResponseSlot::tree(out.len()));
        write_links(out, p)?;
    }
    if let Some(record) = &d.tls {
        write_tls(out, record)?;
    }
    if p.has_findings() {
        writeln!(out, "Expert info")?;
        for finding in p.findings() {
            let info = finding.key.info();
            write!(out, "    [")?;
            style.severity(finding.severity(), finding.severity().name(), out)?;
            write!(out, "] {}", finding.key)?;
            match finding.detail {
                crate::expert::Detail::None => writeln!(out)?,
                detail => writeln!(out, ": {detail}")?,
            }
            writeln!(out, "        {}", info.meaning)?;
            writeln!(out, "        What to do: {}", info.action)?;
        }
    }
    writeln!(out)?;
    Ok(responses)
}

/// Wireshark's request/response links.
fn write_links(out: &mut Vec<u8>, p: &Packet<'_, '_>) -> io::Result<()> {
    write_responses(out, &p.note.response_in)?;
    if let Some(frame) = p.note.request_in {
        writeln!(out, "    [Request in frame: {frame}]")?;
    }
    if let Some(rtt) = p.note.rtt {
        writeln!(out, "    [Response time: {rtt:.9} s]")?;
    }
    Ok(())
}

/// A request's responses, one line each.
pub fn write_responses(out: &mut Vec<u8>, responses: &[u64]) -> io::Result<()> {
    for frame in responses {
        writeln!(out, "    [Response in frame: {frame}]")?;
    }
    Ok(())
}

fn write_link(out: &mut impl Write, link: &Link) -> io::Result<()> {
    let mac = |m: Option<[u8; 6]>| m.map(format_mac).unwrap_or_else(|| "-".to_string());
    match link.kind {
        LinkKind::Ethernet => writeln!(out, "{}, Src: {}, Dst: {}", link.kind.name(), mac(link.src), mac(link.dst))?,
        LinkKind::LinuxSll | LinkKind::LinuxSll2 => {
            writeln!(out, "{}", link.kind.name())?;
            if let Some(pkttype) = link.packet_type {
                writeln!(out, "    Packet type: {pkttype} ({})", packet_type_name(pkttype))?;
            }
            if let Some(ifindex) = link.if_index {
                writeln!(out, "    Interface index: {ifindex}")?;
            }
            writeln!(out, "    Source: {}", mac(link.src))?;
        }
        LinkKind::Loopback | LinkKind::RawIp => writeln!(out, "{}", link.kind.name())?,
        LinkKind::Ipnet => {
            writeln!(out, "{}", link.kind.name())?;
            if let Some(ipnet) = link.ipnet {
                let family = match ipnet.family {
                    2 => "IPv4",
                    26 => "IPv6",
                    _ => "unknown",
                };
                writeln!(out, "    Family: {family} ({})", ipnet.family)?;
                writeln!(out, "    Hook: {} ({})", ipnet.hook_name(), ipnet.hook)?;
                writeln!(out, "    Zones: {} > {}", ipnet.zone_src, ipnet.zone_dst)?;
            }
            if let Some(ifindex) = link.if_index {
                writeln!(out, "    Interface index: {ifindex}")?;
            }
        }
    }
    for vlan in &link.vlans {
        writeln!(out, "802.1Q Virtual LAN, ID: {vlan}")?;
    }
    Ok(())
}

fn packet_type_name(pkttype: u16) -> &'static str {
    match pkttype {
        0 => "unicast to us",
        1 => "broadcast",
        2 => "multicast",
        3 => "unicast to another host",
        4 => "sent by us",
        _ => "unknown",
    }
}

fn checksum_text(stored: u16, status: ChecksumStatus) -> String {
    match status {
        ChecksumStatus::Good => format!("{stored:#06x} [correct]"),
        ChecksumStatus::Bad { computed } => {
            format!("{stored:#06x} [incorrect, should be {computed:#06x}]")
        }
        ChecksumStatus::Unverified => format!("{stored:#06x} [unverified]"),
        ChecksumStatus::Partial => {
            format!("{stored:#06x} [partial: checksum offload, finished by the NIC]")
        }
        ChecksumStatus::Absent => format!("{stored:#06x} [none]"),
    }
}

fn write_ip(out: &mut impl Write, ip: &IpInfo, d: &Dissection<'_>) -> io::Result<()> {
    writeln!(out, "Internet Protocol Version {}, Src: {}, Dst: {}", ip.version, ip.src, ip.dst)?;
    writeln!(out, "    Header length: {} bytes", ip.header_len)?;
    writeln!(out, "    Total length: {}", ip.total_len)?;
    if ip.version == 4 {
        writeln!(out, "    Identification: {:#06x} ({})", ip.id, ip.id)?;
    }
    if let Some(fragment) = ip.fragment {
        writeln!(out, "    Fragment: offset {}, more fragments: {}", fragment.offset, fragment.more_fragments)?;
    }
    writeln!(out, "    {}: {}", if ip.version == 4 { "Time to live" } else { "Hop limit" }, ip.ttl)?;
    writeln!(out, "    Protocol: {}", ip.protocol)?;
    if ip.version == 4 {
        writeln!(out, "    Header checksum: {}", checksum_text(ip.checksum, ip.checksum_status))?;
    }
    if let Some(origin) = d.reassembled {
        writeln!(
            out,
            "    [Reassembled from {} fragments, frames {}-{}]",
            origin.fragments, origin.first_frame, d.frame.number
        )?;
    }
    Ok(())
}

fn write_udp(out: &mut impl Write, udp: &UdpInfo) -> io::Result<()> {
    writeln!(out, "User Datagram Protocol, Src Port: {}, Dst Port: {}", udp.src_port, udp.dst_port)?;
    writeln!(out, "    Length: {}", udp.length)?;
    writeln!(out, "    Checksum: {}", checksum_text(udp.checksum, udp.checksum_status))
}

fn write_tcp(out: &mut impl Write, tcp: &TcpInfo) -> io::Result<()> {
    writeln!(out, "Transmission Control Protocol, Src Port: {}, Dst Port: {}", tcp.src_port, tcp.dst_port)?;
    writeln!(out, "    Sequence number: {}  Acknowledgment number: {}", tcp.seq, tcp.ack)?;
    writeln!(out, "    Flags: {:#04x} [{}]  Window: {}", tcp.flags, tcp.flag_letters(), tcp.window)?;
    writeln!(out, "    Payload: {} bytes", tcp.payload_len)
}

/// The libvirt header field by field, with names, and an error reply's error.
fn write_libvirt(out: &mut impl Write, msg: &libvirt::Message<'_>, continuation: bool) -> io::Result<()> {
    let h = &msg.header;
    let named = |name: Option<&str>| name.map(|n| format!(" ({n})")).unwrap_or_default();
    let more = if continuation { ", another message completed by this frame" } else { "" };
    writeln!(out, "libvirt RPC{more}")?;
    writeln!(out, "    Length: {}", h.len)?;
    writeln!(out, "    Program: {:#010x}{}", h.prog, named(h.program_name()))?;
    writeln!(out, "    Version: {}", h.vers)?;
    writeln!(out, "    Procedure: {}{}", h.proc_, named(h.procedure_name()))?;
    writeln!(out, "    Type: {} ({})", h.msg_type.to_i32(), h.msg_type.name())?;
    writeln!(out, "    Serial: {}", h.serial)?;
    writeln!(out, "    Status: {} ({})", h.status.to_i32(), h.status.name())?;
    let kept = if msg.payload.len() < msg.payload_len() {
        format!(" (first {} kept)", msg.payload.len())
    } else {
        String::new()
    };
    writeln!(out, "    Payload: {} bytes of XDR{kept}", msg.payload_len())?;
    // An error reply's payload is its remote_error: code, domain, message...
    if let Some(decoded) = msg.decode_payload() {
        super::xdr::write_tree(out, &decoded, 8)?;
    }
    Ok(())
}

fn write_tls(out: &mut impl Write, record: &tls::Record<'_>) -> io::Result<()> {
    writeln!(out, "Transport Layer Security (libvirt over TLS)")?;
    let kind = if record.content_type == tls::HANDSHAKE { "Handshake" } else { record.type_name() };
    writeln!(out, "    Content type: {} ({kind})", record.content_type)?;
    if record.content_type == tls::HANDSHAKE {
        writeln!(out, "    Handshake: {}", record.type_name())?;
    }
    writeln!(out, "    Record version: {}", tls::version_name(record.version))?;
    writeln!(out, "    Length: {}", record.length)?;
    match record.hello() {
        Some(tls::Hello::Client { version, server_name }) => {
            writeln!(out, "    Highest version offered: {}", tls::version_name(version))?;
            if let Some(name) = server_name {
                writeln!(out, "    Server name: {}", escaped(name))?;
            }
        }
        Some(tls::Hello::Server { version }) => writeln!(out, "    Version chosen: {}", tls::version_name(version))?,
        None => {}
    }
    Ok(())
}

fn raw_hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 8 { " ..." } else { "" };
    format!("{}{more}", shown.join(" "))
}

/// `    [a..b]  name: value (raw xx xx xx xx) meaning`
fn line(out: &mut impl Write, msg: &Message<'_>, range: Range<usize>, name: &str, value: &str) -> io::Result<()> {
    let end = range.end.min(msg.bytes.len());
    let raw = msg.bytes.get(range.start..end).unwrap_or(&[]);
    writeln!(out, "    {:<11}{name}: {value}  (raw {})", format!("[{}..{}]", range.start, end), raw_hex(raw))
}

fn chars(
    out: &mut impl Write,
    msg: &Message<'_>,
    range: Range<usize>,
    name: &str,
    field: Option<CharField<'_>>,
) -> io::Result<()> {
    let Some(field) = field else {
        return writeln!(
            out,
            "    {:<11}{name}: [missing: message ends at byte {}]",
            format!("[{}..]", range.start),
            msg.bytes.len()
        );
    };
    let mut notes = Vec::new();
    if !field.complete() {
        notes.push(format!("cut short: {} of {} bytes", field.raw.len(), field.size));
    } else if !field.nul_terminated() {
        notes.push("no terminating NUL".to_string());
    }
    if !field.is_text() {
        notes.push("not printable text".to_string());
    }
    let note = if notes.is_empty() { String::new() } else { format!(" [{}]", notes.join(", ")) };
    let value = format!("\"{}\"{note}", escaped(field.text()));
    line(out, msg, range, name, &value)
}

fn int(
    out: &mut impl Write,
    msg: &Message<'_>,
    range: Range<usize>,
    name: &str,
    value: Option<String>,
) -> io::Result<()> {
    match value {
        Some(value) => line(out, msg, range, name, &value),
        None => writeln!(
            out,
            "    {:<11}{name}: [missing: message ends at byte {}]",
            format!("[{}..]", range.start),
            msg.bytes.len()
        ),
    }
}

fn write_ldm(out: &mut impl Write, msg: &Message<'_>) -> io::Result<()> {
    let kind = msg.kind_name();
    let verdict = if msg.is_bad_magic() { " (not an ldmd message?)" } else { "" };
    writeln!(
        out,
        "ldmd multicast message (multicast_msg_t), {kind}{verdict}, {}, {} bytes",
        msg.byte_order.name(),
        msg.bytes.len()
    )?;
    let version = msg
        .version_no
        .map(|v| format!("{v}{}", if v == ldm::VERSION { " (MAC_MULTI_VERSION)" } else { " (expected 1)" }));
    int(out, msg, field::VERSION_NO, "version_no", version)?;
    let magic = msg.magic_no.map(|m| {
        let meaning = if m == ldm::MAGIC { "MAC_MULTI_MAGIC_NO" } else { "wrong: expected 0x0587e4c4" };
        format!("{m:#010x} ({meaning})")
    });
    int(out, msg, field::MAGIC_NO, "magic_no", magic)?;
    if msg.is_bad_magic() {
        writeln!(out, "    [Not an ldmd message: raw payload follows]")?;
        return super::hex::write_hex(out, msg.bytes);
    }
    let msg_type = msg.msg_type.map(|t| format!("{} ({})", t.to_u32(), t.name()));
    int(out, msg, field::MSG_TYPE, "msg_type", msg_type)?;
    int(out, msg, field::RESV, "resv", msg.resv.map(|r| r.to_string()))?;
    match msg.payload {
        Payload::Lookup(l) => {
            let mac = l.mac_addr.map(|raw| format!("{} ({raw:#018x})", format_mac(ldm::mac_from_u64(raw))));
            int(out, msg, field::MAC_ADDR, "mac_addr", mac)?;
            chars(out, msg, field::SOURCE_IP, "source_ip", l.source_ip)?;
        }
        Payload::Discovery(disc) => {
            chars(out, msg, field::LDMD_VERSION, "ldmd_version", disc.ldmd_version)?;
            chars(out, msg, field::HOSTNAME, "hostname", disc.hostname)?;
            int(out, msg, field::IP_ADDRESS, "ip_address", disc.ip_address.map(|ip| ip.to_string()))?;
            let port = disc.port_no.map(|p| format!("{p}{}", if p == ldm::XMPP_PORT { " (ldmd XMPP)" } else { "" }));
            int(out, msg, field::PORT_NO, "port_no", port)?;
        }
        Payload::Opaque(raw) => {
            if !raw.is_empty() {
                let zero = raw.iter().all(|&b| b == 0);
                let what = if zero { "all zero" } else { "not zero" };
                writeln!(out, "    [16..{}]  payload: {} bytes, {what}", 16 + raw.len(), raw.len())?;
            }
        }
    }
    if !msg.trailing().is_empty() {
        writeln!(out, "    [312..{}] trailing bytes: {}", msg.bytes.len(), raw_hex(msg.trailing()))?;
    }
    Ok(())
}
