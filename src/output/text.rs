//! One line per packet, like tshark's default output.

use std::io::{self, Write};

use crate::dissect::fields::escape_text;
use crate::dissect::{Dissection, Stop};
use crate::expert::{MacAddr, Severity};
use crate::wire::ldm::{CharField, Message, MsgType as LdmType, Payload};
use crate::wire::libvirt::{self, MsgType, Status};
use crate::wire::tls;

use super::numbers::{write_fixed, write_integer, write_ip, write_number};
use super::Packet;

/// ANSI colours, only when writing to a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    // Inline, so that the usual case, no colour, is a copy where it is
    // asked (the colours' formatting stays out of line).
    #[inline(always)]
    pub fn severity(self, severity: Severity, text: &str, out: &mut impl Write) -> io::Result<()> {
        if !self.color {
            return out.write_all(text.as_bytes());
        }
        Style::coloured(severity, text, out)
    }

    fn coloured(severity: Severity, text: &str, out: &mut impl Write) -> io::Result<()> {
        let code = match severity {
            Severity::Error => "1;31",
            Severity::Warn => "33",
            Severity::Note => "36",
        };
        write!(out, "\x1b[{code}m{text}\x1b[0m")
    }

    pub fn bold(self, text: &str, out: &mut impl Write) -> io::Result<()> {
        if self.color {
            write!(out, "\x1b[1m{text}\x1b[0m")
        } else {
            out.write_all(text.as_bytes())
        }
    }
}

/// `SRC → DST`: IP addresses, else MAC addresses. Written straight to the
/// output, as every line starts with them.
fn write_endpoints(out: &mut Vec<u8>, d: &Dissection<'_>) -> io::Result<()> {
    // A TCP connection is told apart by its ports.
    if let (Some(ip), Some(tcp)) = (&d.ip, &d.tcp) {
        let src = std::net::SocketAddr::new(ip.src, tcp.src_port);
        let dst = std::net::SocketAddr::new(ip.dst, tcp.dst_port);
        return write!(out, "{src} → {dst}");
    }
    if let Some(ip) = &d.ip {
        write_ip(out, ip.src);
        out.extend_from_slice(" → ".as_bytes());
        write_ip(out, ip.dst);
        return Ok(());
    }
    let link = d.link.as_ref();
    let mac = |m: Option<[u8; 6]>| m.map(MacAddr);
    match (mac(link.and_then(|l| l.src)), mac(link.and_then(|l| l.dst))) {
        (Some(src), Some(dst)) => write!(out, "{src} → {dst}"),
        (Some(src), None) => write!(out, "{src} → ?"),
        (None, Some(dst)) => write!(out, "? → {dst}"),
        (None, None) => write!(out, "? → ?"),
    }
}

/// Longest text value a line shows; `-V` and JSON show all of it.
const MAX_LINE_TEXT: usize = 64;

/// `bytes` escaped as Wireshark shows text, and shortened.
fn short_text(bytes: &[u8]) -> String {
    let mut value = Vec::new();
    push_short_text(&mut value, bytes);
    // Escaped text is ASCII.
    String::from_utf8_lossy(&value).into_owned()
}

/// Appends what `short_text` returns, in place: no temporary string unless
/// something needs escaping.
fn push_short_text(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    if bytes.iter().all(|&b| (0x20..=0x7e).contains(&b) && b != b'\\') {
        out.extend_from_slice(bytes);
    } else {
        let mut escaped = String::with_capacity(bytes.len() + 8);
        escape_text(bytes, &mut escaped);
        out.extend_from_slice(escaped.as_bytes());
    }
    if out.len() - start > MAX_LINE_TEXT {
        out.truncate(start + MAX_LINE_TEXT - 3);
        out.extend_from_slice(b"...");
    }
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\\\""))
}

/// Text as a line's value: escaped, shortened, and quoted when it is empty or
/// holds what would read as a separator (a space, a quote, a comma).
#[cfg(test)]
fn line_value(bytes: &[u8]) -> String {
    let mut value = Vec::new();
    push_line_value(&mut value, bytes);
    // Escaped text is ASCII.
    String::from_utf8_lossy(&value).into_owned()
}

/// Appends what `line_value` returns, in place (one per ldm line: no
/// temporary string unless it needs escaping or quotes).
fn push_line_value(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    push_short_text(out, bytes);
    let value = &out[start..];
    if value.is_empty() || value.iter().any(|b| matches!(b, b' ' | b'"' | b',')) {
        let value = quoted(&String::from_utf8_lossy(value));
        out.truncate(start);
        out.extend_from_slice(value.as_bytes());
    }
}

/// ` name=value`, the value as `line_value` writes it, and `[cut]` after
/// it when the message ends inside the field.
fn text_field(out: &mut Vec<u8>, name: &str, field: Option<CharField<'_>>) {
    let Some(field) = field else { return };
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    push_line_value(out, field.text());
    if field.is_cut() {
        out.extend_from_slice(b"[cut]");
    }
}

/// The message's key fields, as one line shows them.
pub fn summary_fields(msg: &Message<'_>, out: &mut Vec<u8>) {
    if msg.is_bad_magic() {
        out.extend_from_slice(b" not ldm? raw:");
        for b in msg.bytes.iter().take(16) {
            let _ = write!(out, " {b:02x}");
        }
        if msg.bytes.len() > 16 {
            out.extend_from_slice(b" ...");
        }
        return;
    }
    match msg.payload {
        Payload::Lookup(l) => {
            if let Some(raw) = l.mac_addr {
                out.extend_from_slice(b" mac=");
                out.extend_from_slice(&MacAddr(crate::wire::ldm::mac_from_u64(raw)).text());
            }
            text_field(out, "source_ip", l.source_ip);
        }
        Payload::Discovery(disc) => {
            text_field(out, "host", disc.hostname);
            if let Some(ip) = disc.ip_address {
                out.extend_from_slice(b" ip=");
                write_ip(out, ip.into());
            }
            if let Some(port) = disc.port_no {
                out.extend_from_slice(b" port=");
                write_integer(out, port);
            }
            text_field(out, "version", disc.ldmd_version);
        }
        Payload::Opaque(_) => {
            if let Some(LdmType::Unknown(t)) = msg.msg_type {
                let _ = write!(out, " msg_type={t}");
            }
        }
    }
}

fn type_name(msg: &Message<'_>) -> &'static str {
    msg.kind_name()
}

/// Writes the one-line form of an ldm packet, or (with `--all`) a brief line
/// for any other frame.
pub fn write_line(
    out: &mut Vec<u8>,
    p: &Packet<'_, '_>,
    time_relative: f64,
    time_column: Option<&str>,
    style: Style,
) -> io::Result<()> {
    let d = p.d;
    write_number(out, d.frame.number, 5);
    out.write_all(b" ")?;
    // The relative seconds written without a string (the common case).
    match time_column {
        None => write_fixed(out, time_relative, 6, 11),
        Some(text) => write!(out, "{text:>11}")?,
    }
    out.write_all(b" ")?;
    write_endpoints(out, d)?;
    out.write_all(b" ")?;
    if let Some(msg) = &d.ldm {
        style.bold(type_name(msg), out)?;
        summary_fields(msg, out);
    } else if let Some(msg) = &d.libvirt {
        write_libvirt(out, msg, style)?;
    } else if let Some(record) = &d.tls {
        write_tls(out, record, style)?;
    } else if let (Some(Stop::LibvirtEncrypted), Some(tcp)) = (d.stop, &d.tcp) {
        write!(out, "libvirt SASL-encrypted data, {} bytes", tcp.payload_len)?;
    } else {
        let what = d.stop.map(|s| s.to_string()).unwrap_or_default();
        let ports = d.udp.map(|u| format!(" {} → {}", u.src_port, u.dst_port)).unwrap_or_default();
        write!(out, "{what}{ports} len={}", d.frame.len)?;
    }
    if let Some(rtt) = p.note.rtt {
        out.extend_from_slice(b" rtt=");
        write_fixed(out, rtt, 6, 0);
    }
    if p.has_findings() {
        out.write_all(b" [")?;
        for (i, finding) in p.findings().enumerate() {
            if i > 0 {
                out.write_all(b" ")?;
            }
            style.severity(finding.severity(), finding.key.name(), out)?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b"\n")
}

/// `CALL REMOTE.DOMAIN_GET_INFO serial=8`, with the status of a reply and
/// the error of an error reply.
fn write_libvirt(out: &mut impl Write, msg: &libvirt::Message<'_>, style: Style) -> io::Result<()> {
    let h = &msg.header;
    style.bold(h.msg_type.name(), out)?;
    match (h.program_name(), h.procedure_name()) {
        (Some(prog), Some(proc_)) => write!(out, " {prog}.{proc_}")?,
        (Some(prog), None) => write!(out, " {prog}.{}", h.proc_)?,
        (None, _) => write!(out, " prog={:#x} proc={}", h.prog, h.proc_)?,
    }
    if let MsgType::Unknown(t) = h.msg_type {
        write!(out, " type={t}")?;
    }
    write!(out, " serial={}", h.serial)?;
    if h.msg_type != MsgType::Call || h.status != Status::Ok {
        write!(out, " status={}", h.status.name())?;
    }
    if matches!(h.msg_type, MsgType::Stream | MsgType::StreamHole) {
        write!(out, " bytes={}", msg.payload_len())?;
    }
    // An error reply's error is shown by its code and message below.
    if h.status != Status::Error {
        if let Some(decoded) = msg.decode_payload() {
            for (name, value) in super::xdr::line_fields(&decoded) {
                write!(out, " {name}={value}")?;
            }
        }
    }
    if let Some(error) = msg.error() {
        write!(out, " error_code={} error_domain={}", error.code, error.domain)?;
        if let Some(text) = error.message {
            write!(out, " {}", quoted(&short_text(text)))?;
        }
    }
    Ok(())
}

/// `TLS ClientHello version=TLS 1.3 sni=kvm1.example.com`: libvirt over TLS
/// as an observer sees it.
fn write_tls(out: &mut impl Write, record: &tls::Record<'_>, style: Style) -> io::Result<()> {
    out.write_all(b"TLS ")?;
    style.bold(record.type_name(), out)?;
    match record.hello() {
        Some(tls::Hello::Client { version, server_name }) => {
            write!(out, " version={}", tls::version_name(version))?;
            if let Some(name) = server_name {
                let mut value = String::new();
                escape_text(name, &mut value);
                write!(out, " sni={value}")?;
            }
        }
        Some(tls::Hello::Server { version }) => write!(out, " version={}", tls::version_name(version))?,
        None => write!(out, " len={}", record.length)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_written_as_the_formatter_writes_them() {
        for byte in 0..=255u8 {
            let mac = [byte, 0x14, 0x4f, byte.rotate_left(3), 0, byte ^ 0x5a];
            let want = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            assert_eq!(MacAddr(mac).to_string(), want);
            assert_eq!(format!("{:>20}|{:<18}|", MacAddr(mac), MacAddr(mac)), format!("{want:>20}|{want:<18}|"));
        }
    }

    #[test]
    fn line_values_are_escaped_shortened_and_quoted() {
        let long = "h".repeat(70);
        let cases: [(&[u8], String); 7] = [
            (b"ldom-1", "ldom-1".into()),
            (b"", "\"\"".into()),
            (b"two words", "\"two words\"".into()),
            (b"say \"hi\"", "\"say \\\"hi\\\"\"".into()),
            (b"a\\b\x01", "a\\\\b\\x01".into()),
            (long.as_bytes(), format!("{}...", "h".repeat(MAX_LINE_TEXT - 3))),
            (b"a,b", "\"a,b\"".into()),
        ];
        for (bytes, want) in cases {
            assert_eq!(line_value(bytes), want, "{bytes:?}");
            // Appended after other text, the same value.
            let mut out = b"x=".to_vec();
            push_line_value(&mut out, bytes);
            assert_eq!(out, [b"x=", want.as_bytes()].concat());
        }
    }
}
