//! Every named field of a dissection, in one walk. JSON, Elasticsearch
//! bulk output (and the display filter) take their field names from here, so a
//! field has one name everywhere: `ldm.mac` in a filter is "mac" in the JSON
//! "ldm" object.

use std::net::IpAddr;

use crate::capture::{linktype_name, Timestamp};
use crate::wire::ldm::{CharField, Payload};
use crate::wire::xdr;

use super::{ChecksumStatus, Dissection, LinkKind};

#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// One of our own names (a type, status or state name): plain ASCII,
    /// nothing to escape.
    Str(&'static str),
    /// A C string's bytes; outputs escape what is not printable.
    Text(&'a [u8]),
    /// The start of a C string the message ends inside: not the sender's
    /// whole value (filters do not see it; outputs mark it).
    CutText(&'a [u8]),
    Mac([u8; 6]),
    Ip(IpAddr),
    /// Epoch seconds with nanoseconds.
    Epoch(Timestamp),
    /// Capture time as RFC 3339 UTC.
    Time(Timestamp),
    U16List(&'a [u16]),
    U64List(&'a [u64]),
    /// A UUID (shown 8-4-4-4-12).
    Uuid([u8; 16]),
    /// Several C strings.
    TextList(&'a [&'a [u8]]),
    /// Opaque bytes (shown in hex).
    Bytes(&'a [u8]),
    /// A UTF-8 string (libvirt's): JSON carries it as the string it is
    /// (`\n` for a newline), where a C string's odd bytes are shown `\xNN`.
    Utf8(&'a [u8]),
    /// Several values of one field (a libvirt array's elements).
    List(&'a [Value<'a>]),
}

/// A field's name, and the JSON key written out beforehand (`,"name":`):
/// JSON writes a key for every field of every record, and a key copied
/// whole costs a fraction of one put together from its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name {
    text: &'static str,
    json_key: Option<&'static str>,
}

impl Name {
    /// A name known only at run time (libvirt's argument names): JSON puts
    /// its key together.
    pub const fn new(text: &'static str) -> Name {
        Name { text, json_key: None }
    }

    /// For `name!`, which spells the key from the text.
    #[doc(hidden)]
    pub const fn with_json_key(text: &'static str, json_key: &'static str) -> Name {
        Name { text, json_key: Some(json_key) }
    }

    pub fn text(self) -> &'static str {
        self.text
    }

    /// `,"name":`, when written out beforehand.
    pub fn json_key(self) -> Option<&'static str> {
        self.json_key
    }
}

/// `name!("mac")`: a field name with its JSON key, `,"mac":`.
macro_rules! name {
    ($text:literal) => {
        $crate::dissect::fields::Name::with_json_key($text, concat!(",\"", $text, "\":"))
    };
}
pub(crate) use name;

/// Receives the layers and fields of one packet, in order.
pub trait FieldSink {
    fn layer(&mut self, name: Name);
    fn field(&mut self, name: Name, value: Value<'_>);
    fn end_layer(&mut self);

    /// Where a request lists its responses (`response_in`), whether or not
    /// it has any yet: output made before they arrive keeps the place, to
    /// fill it in when they have.
    fn responses_here(&mut self) {}
}

/// Escapes a C string as Wireshark shows it: printable ASCII as is,
/// everything else as `\xNN` (and `\\` for a backslash).
pub fn escape_text(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                use std::fmt::Write;
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

pub fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_text(bytes, &mut out);
    out
}

/// "00" to "99", for writing two digits at a time.
pub(crate) const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// A capture time as RFC 3339 UTC with nanoseconds, written without allocating.
pub struct Rfc3339(pub Timestamp);

/// Year, month, day, hour, minute, second of a time (UTC): civil-from-days
/// (H. Hinnant's algorithm), to avoid a date crate for one conversion.
fn civil(ts: Timestamp) -> (i64, i64, i64, i64, i64, i64) {
    let days = ts.secs.div_euclid(86_400);
    let rem = ts.secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

impl Rfc3339 {
    /// The common case (years 0 to 9999) spelled out by hand, for outputs
    /// that write bytes: the formatter's seven padded integers cost more
    /// than a JSON record's other fields together. `None` for other years.
    pub fn bytes(&self) -> Option<[u8; 30]> {
        let mut text = Rfc3339::second_bytes(self.0.secs)?;
        Rfc3339::set_nanos(&mut text, self.0.nanos)?;
        Some(text)
    }

    /// The text of the second `secs` begins (nanoseconds zero), for outputs
    /// that keep it while the seconds stay the same. `None` for years
    /// outside 0 to 9999.
    pub fn second_bytes(secs: i64) -> Option<[u8; 30]> {
        let (year, month, day, hour, minute, second) = civil(Timestamp::new(secs, 0));
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut text = *b"0000-00-00T00:00:00.000000000Z";
        let year = year as u32;
        put_pair(&mut text, 0, year / 100);
        put_pair(&mut text, 2, year);
        put_pair(&mut text, 5, month as u32);
        put_pair(&mut text, 8, day as u32);
        put_pair(&mut text, 11, hour as u32);
        put_pair(&mut text, 14, minute as u32);
        put_pair(&mut text, 17, second as u32);
        Some(text)
    }

    /// Writes `nanos` into the text of its second; `None` if it is not a
    /// fraction of a second.
    pub fn set_nanos(text: &mut [u8; 30], nanos: u32) -> Option<()> {
        if nanos > 999_999_999 {
            return None;
        }
        text[20] = b'0' + (nanos / 100_000_000) as u8;
        put_pair(text, 21, nanos / 1_000_000);
        put_pair(text, 23, nanos / 10_000);
        put_pair(text, 25, nanos / 100);
        put_pair(text, 27, nanos);
        Some(())
    }
}

/// The last two decimal digits of `value` at `text[at..at + 2]`: two at a
/// time from a table, where a digit at a time was a division each.
fn put_pair(text: &mut [u8; 30], at: usize, value: u32) {
    let from = 2 * (value as usize % 100);
    text[at..at + 2].copy_from_slice(&DIGIT_PAIRS[from..from + 2]);
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(text) = self.bytes() {
            return f.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?);
        }
        let ts = self.0;
        let (year, month, day, hour, minute, second) = civil(ts);
        write!(f, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:09}Z", ts.nanos)
    }
}

pub fn rfc3339(ts: Timestamp) -> String {
    Rfc3339(ts).to_string()
}

// Inlined, so that JSON copies the name's key as a constant.
#[inline(always)]
fn text<S: FieldSink>(sink: &mut S, name: Name, field: Option<CharField<'_>>) {
    if let Some(field) = field {
        let value = if field.is_cut() { Value::CutText(field.text()) } else { Value::Text(field.text()) };
        sink.field(name, value);
    }
}

/// Walks every field of `d`. `time_relative` is seconds since the first
/// frame; `ldm_extra` adds fields to the ldm layer (the analysis's links and
/// response times), so this stage needs nothing from later ones.
pub fn walk<S: FieldSink>(
    d: &Dissection<'_>,
    time_relative: f64,
    sink: &mut S,
    ldm_extra: &dyn Fn(&mut dyn FieldSink),
) {
    frame(d, time_relative, sink);
    link(d, sink);
    ip(d, sink);
    udp(d, sink);
    tcp(d, sink);
    ldm(d, sink, ldm_extra);
    libvirt(d, sink, ldm_extra);
    tls(d, sink);
}

fn frame<S: FieldSink>(d: &Dissection<'_>, time_relative: f64, sink: &mut S) {
    let f = &d.frame;
    sink.layer(name!("frame"));
    sink.field(name!("number"), Value::U64(f.number));
    sink.field(name!("time"), Value::Time(f.ts));
    sink.field(name!("time_epoch"), Value::Epoch(f.ts));
    sink.field(name!("time_relative"), Value::F64(time_relative));
    sink.field(name!("len"), Value::U64(f.len.into()));
    sink.field(name!("cap_len"), Value::U64(f.caplen().into()));
    sink.field(name!("interface_id"), Value::U64(f.interface.into()));
    sink.field(name!("linktype"), Value::Str(linktype_name(f.linktype)));
    sink.end_layer();
}

fn link<S: FieldSink>(d: &Dissection<'_>, sink: &mut S) {
    let Some(link) = &d.link else { return };
    match link.kind {
        LinkKind::Ethernet => {
            sink.layer(name!("eth"));
            if let Some(src) = link.src {
                sink.field(name!("src"), Value::Mac(src));
            }
            if let Some(dst) = link.dst {
                sink.field(name!("dst"), Value::Mac(dst));
            }
        }
        LinkKind::LinuxSll | LinkKind::LinuxSll2 => {
            sink.layer(name!("sll"));
            if let Some(src) = link.src {
                sink.field(name!("src"), Value::Mac(src));
            }
            if let Some(pkttype) = link.packet_type {
                sink.field(name!("pkttype"), Value::U64(pkttype.into()));
            }
            if let Some(ifindex) = link.if_index {
                sink.field(name!("ifindex"), Value::U64(ifindex.into()));
            }
        }
        LinkKind::Ipnet => {
            sink.layer(name!("ipnet"));
            if let Some(ipnet) = link.ipnet {
                sink.field(name!("family"), Value::U64(ipnet.family.into()));
                sink.field(name!("htype"), Value::U64(ipnet.hook.into()));
                sink.field(name!("zsrc"), Value::U64(ipnet.zone_src.into()));
                sink.field(name!("zdst"), Value::U64(ipnet.zone_dst.into()));
            }
            if let Some(ifindex) = link.if_index {
                sink.field(name!("ifindex"), Value::U64(ifindex.into()));
            }
        }
        LinkKind::Loopback | LinkKind::RawIp => return,
    }
    if !link.vlans.is_empty() {
        sink.field(name!("vlan"), Value::U16List(&link.vlans));
    }
    sink.end_layer();
}

fn checksum_status(status: ChecksumStatus) -> Value<'static> {
    Value::Str(status.name())
}

fn ip<S: FieldSink>(d: &Dissection<'_>, sink: &mut S) {
    let Some(ip) = &d.ip else { return };
    sink.layer(if ip.version == 4 { name!("ip") } else { name!("ipv6") });
    sink.field(name!("src"), Value::Ip(ip.src));
    sink.field(name!("dst"), Value::Ip(ip.dst));
    sink.field(name!("ttl"), Value::U64(ip.ttl.into()));
    sink.field(name!("proto"), Value::U64(ip.protocol.into()));
    sink.field(name!("len"), Value::U64(ip.total_len as u64));
    if ip.version == 4 {
        sink.field(name!("hdr_len"), Value::U64(ip.header_len as u64));
        sink.field(name!("id"), Value::U64(ip.id.into()));
        sink.field(name!("checksum"), Value::U64(ip.checksum.into()));
        sink.field(name!("checksum_status"), checksum_status(ip.checksum_status));
    }
    if let Some(fragment) = ip.fragment {
        sink.field(name!("flags_mf"), Value::Bool(fragment.more_fragments));
        sink.field(name!("frag_offset"), Value::U64(fragment.offset as u64));
    }
    if let Some(origin) = d.reassembled {
        sink.field(name!("reassembled_fragments"), Value::U64(origin.fragments.into()));
        sink.field(name!("reassembled_first_frame"), Value::U64(origin.first_frame));
    }
    sink.end_layer();
}

fn udp<S: FieldSink>(d: &Dissection<'_>, sink: &mut S) {
    let Some(udp) = &d.udp else { return };
    sink.layer(name!("udp"));
    sink.field(name!("srcport"), Value::U64(udp.src_port.into()));
    sink.field(name!("dstport"), Value::U64(udp.dst_port.into()));
    sink.field(name!("length"), Value::U64(udp.length.into()));
    sink.field(name!("checksum"), Value::U64(udp.checksum.into()));
    sink.field(name!("checksum_status"), checksum_status(udp.checksum_status));
    sink.end_layer();
}

fn tcp<S: FieldSink>(d: &Dissection<'_>, sink: &mut S) {
    let Some(tcp) = &d.tcp else { return };
    sink.layer(name!("tcp"));
    sink.field(name!("srcport"), Value::U64(tcp.src_port.into()));
    sink.field(name!("dstport"), Value::U64(tcp.dst_port.into()));
    sink.field(name!("seq"), Value::U64(tcp.seq.into()));
    sink.field(name!("ack"), Value::U64(tcp.ack.into()));
    sink.field(name!("flags"), Value::U64(tcp.flags.into()));
    sink.field(name!("len"), Value::U64(tcp.payload_len as u64));
    sink.end_layer();
}

/// The libvirt message: header fields by number and by name, the error of an
/// error reply, and (through `extra`) the analysis's pairing and latency.
fn libvirt<S: FieldSink>(d: &Dissection<'_>, sink: &mut S, extra: &dyn Fn(&mut dyn FieldSink)) {
    let Some(msg) = &d.libvirt else { return };
    let h = &msg.header;
    sink.layer(name!("libvirt"));
    sink.field(name!("len"), Value::U64(h.len.into()));
    sink.field(name!("prog"), Value::U64(h.prog.into()));
    if let Some(name) = h.program_name() {
        sink.field(name!("prog_name"), Value::Str(name));
    }
    sink.field(name!("vers"), Value::U64(h.vers.into()));
    sink.field(name!("proc"), Value::I64(h.proc_.into()));
    if let Some(name) = h.procedure_name() {
        sink.field(name!("proc_name"), Value::Str(name));
    }
    sink.field(name!("type"), Value::I64(h.msg_type.to_i32().into()));
    sink.field(name!("type_name"), Value::Str(h.msg_type.name()));
    sink.field(name!("serial"), Value::U64(h.serial.into()));
    sink.field(name!("status"), Value::I64(h.status.to_i32().into()));
    sink.field(name!("status_name"), Value::Str(h.status.name()));
    sink.field(name!("payload_len"), Value::U64(msg.payload_len() as u64));
    if let Some(decoded) = msg.decode_payload() {
        payload_fields(&decoded.root, sink);
    }
    if let Some(error) = msg.error() {
        sink.field(name!("error_code"), Value::I64(error.code.into()));
        sink.field(name!("error_domain"), Value::I64(error.domain.into()));
        if let Some(message) = error.message {
            sink.field(name!("error_message"), Value::Utf8(message));
        }
    }
    extra(sink);
    sink.end_layer();
}

/// A decoded payload's values, one field per `struct.field` path (as
/// libvirt's Wireshark plugin names them), in the order first seen; a path
/// met several times (an array's elements) is one list.
fn payload_fields<S: FieldSink>(root: &xdr::Node<'_>, sink: &mut S) {
    let mut leaves: Vec<(&'static str, Vec<Value<'_>>)> = Vec::new();
    collect_leaves(root, &mut leaves);
    for (path, values) in &leaves {
        match values.as_slice() {
            [one] => sink.field(Name::new(path), *one),
            many => sink.field(Name::new(path), Value::List(many)),
        }
    }
}

fn collect_leaves<'a>(node: &xdr::Node<'a>, leaves: &mut Vec<(&'static str, Vec<Value<'a>>)>) {
    let value = match &node.value {
        xdr::Value::Compound(children) => {
            for child in children {
                collect_leaves(child, leaves);
            }
            return;
        }
        xdr::Value::Null => return,
        xdr::Value::Int(v) | xdr::Value::Enum(v, _) => Value::I64(*v),
        xdr::Value::UInt(v) => Value::U64(*v),
        xdr::Value::Float(v) => Value::F64(*v),
        xdr::Value::Bool(v) => Value::Bool(*v),
        xdr::Value::Str(bytes) => Value::Utf8(bytes),
        xdr::Value::Bytes(bytes) => Value::Bytes(bytes),
        xdr::Value::Uuid(uuid) => Value::Uuid(*uuid),
    };
    match leaves.iter_mut().find(|(path, _)| *path == node.path) {
        Some((_, values)) => values.push(value),
        None => leaves.push((node.path, vec![value])),
    }
}

/// Bytes as Wireshark shows a bytes field: `0a:1b:ff`.
pub fn hex_colon(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A TLS record of libvirt over TLS: the record header and, in a hello, the
/// version and server name.
fn tls<S: FieldSink>(d: &Dissection<'_>, sink: &mut S) {
    let Some(record) = &d.tls else { return };
    sink.layer(name!("tls"));
    sink.field(name!("content_type"), Value::U64(record.content_type.into()));
    sink.field(name!("record"), Value::Str(record.type_name()));
    sink.field(name!("record_version"), Value::U64(record.version.into()));
    sink.field(name!("length"), Value::U64(record.length.into()));
    match record.hello() {
        Some(crate::wire::tls::Hello::Client { version, server_name }) => {
            sink.field(name!("version"), Value::U64(version.into()));
            if let Some(name) = server_name {
                sink.field(name!("server_name"), Value::Text(name));
            }
        }
        Some(crate::wire::tls::Hello::Server { version }) => sink.field(name!("version"), Value::U64(version.into())),
        None => {}
    }
    sink.end_layer();
}

fn ldm<S: FieldSink>(d: &Dissection<'_>, sink: &mut S, extra: &dyn Fn(&mut dyn FieldSink)) {
    let Some(msg) = &d.ldm else { return };
    sink.layer(name!("ldm"));
    sink.field(name!("len"), Value::U64(msg.bytes.len() as u64));
    sink.field(
        name!("byte_order"),
        Value::Str(if msg.byte_order == crate::wire::ldm::ByteOrder::Big { "big" } else { "little" }),
    );
    if let Some(v) = msg.version_no {
        sink.field(name!("version"), Value::U64(v.into()));
    }
    if let Some(m) = msg.magic_no {
        sink.field(name!("magic"), Value::U64(m.into()));
    }
    if let Some(t) = msg.msg_type {
        sink.field(name!("msg_type"), Value::U64(t.to_u32().into()));
        sink.field(name!("msg_type_name"), Value::Str(msg.kind_name()));
    }
    if let Some(r) = msg.resv {
        sink.field(name!("resv"), Value::U64(r.into()));
    }
    // With a wrong magic the rest is not an ldmd message: its bytes are not
    // given meanings (the line and the tree show them raw).
    let payload = if msg.is_bad_magic() { Payload::Opaque(&[]) } else { msg.payload };
    match payload {
        Payload::Lookup(l) => {
            if let Some(raw) = l.mac_addr {
                sink.field(name!("mac"), Value::Mac(crate::wire::ldm::mac_from_u64(raw)));
                sink.field(name!("mac_addr"), Value::U64(raw));
            }
            text(sink, name!("source_ip"), l.source_ip);
        }
        Payload::Discovery(disc) => {
            text(sink, name!("ldmd_version"), disc.ldmd_version);
            text(sink, name!("hostname"), disc.hostname);
            if let Some(ip) = disc.ip_address {
                sink.field(name!("ip_address"), Value::Ip(ip.into()));
            }
            if let Some(port) = disc.port_no {
                sink.field(name!("port"), Value::I64(port.into()));
            }
        }
        Payload::Opaque(_) => {}
    }
    if !msg.trailing().is_empty() {
        sink.field(name!("trailing_len"), Value::U64(msg.trailing().len() as u64));
    }
    extra(sink);
    sink.end_layer();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Rfc3339` wrote before it spelled the common case out by hand.
    fn rfc3339_by_formatter(ts: Timestamp) -> String {
        let (year, month, day, hour, minute, second) = civil(ts);
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:09}Z", ts.nanos)
    }

    #[test]
    fn rfc3339_by_hand_matches_the_formatter() {
        let mut secs = vec![0, -1, 951_782_400, 1_793_611_800, 253_402_300_799, 253_402_300_800, -62_167_219_201];
        secs.extend((0..2_000).map(|i: i64| i * 7_919_993 + i * i * 3_571));
        for secs in secs {
            for nanos in [0, 1, 99, 100, 10_000, 999_999, 1_000_000, 100_000_000, 999_999_999, 123_456_789] {
                let ts = Timestamp::new(secs, nanos);
                assert_eq!(Rfc3339(ts).to_string(), rfc3339_by_formatter(ts));
            }
        }
        assert_eq!(Rfc3339(Timestamp::new(0, 5)).to_string(), "1970-01-01T00:00:00.000000005Z");
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(Timestamp::new(0, 0)), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(Timestamp::new(1_795_046_400, 5)), "2026-11-19T00:00:00.000000005Z");
        assert_eq!(rfc3339(Timestamp::new(951_825_600, 0)), "2000-02-29T12:00:00.000000000Z");
    }

    #[test]
    fn escapes_like_wireshark() {
        assert_eq!(escaped(b"ab\x01\\\xff"), "ab\\x01\\\\\\xff");
    }
}
