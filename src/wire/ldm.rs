//! The ldmd multicast message, `multicast_msg_t` (see PROTOCOL.md).
//!
//! Two types, as in smoltcp: [`Message`], a zero-copy view parsed with nom that
//! decodes as far as the bytes allow (every field is `Option`, a string field may
//! be cut short), and [`Repr`], an owned meaning that can be emitted back to bytes.
//! No I/O and no policy here: what counts as an anomaly lives in `dissect::checks`.

use std::net::Ipv4Addr;

use nom::bytes::complete::take;
use nom::number::complete::{i32 as nom_i32, u32 as nom_u32, u64 as nom_u64};
use nom::number::Endianness;
use nom::{IResult, Parser};

/// UDP port of both ends of every conversation.
pub const PORT: u16 = 64535;
/// The IPv4 multicast group.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 129, 9, 27);
/// MAC_MULTI_VERSION.
pub const VERSION: u32 = 1;
/// MAC_MULTI_MAGIC_NO (92792004).
pub const MAGIC: u32 = 0x0587_E4C4;
/// The ldmd XMPP port that discovery responses advertise.
pub const XMPP_PORT: i32 = 6482;
/// sizeof(multicast_msg_t).
pub const FULL_LEN: usize = 312;
/// Header plus `mac_lookup_t`: the plausible short form of a MAC lookup.
pub const SHORT_LOOKUP_LEN: usize = 40;
/// The fixed header before the payload union.
pub const HEADER_LEN: usize = 16;

/// Byte ranges of every field, named once.
pub mod field {
    use std::ops::Range;
    pub type Field = Range<usize>;

    pub const VERSION_NO: Field = 0..4;
    pub const MAGIC_NO: Field = 4..8;
    pub const MSG_TYPE: Field = 8..12;
    pub const RESV: Field = 12..16;
    pub const PAYLOAD: Field = 16..312;
    // mac_lookup_t (msg_type 0 and 1)
    pub const MAC_ADDR: Field = 16..24;
    pub const SOURCE_IP: Field = 24..40;
    // ldmd_discovery_t (msg_type 2 and 3)
    pub const LDMD_VERSION: Field = 16..48;
    pub const HOSTNAME: Field = 48..304;
    pub const IP_ADDRESS: Field = 304..308;
    pub const PORT_NO: Field = 308..312;
}

/// The four message types, plus whatever else a sender put there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    SendMsg,
    ResponseMsg,
    DiscSend,
    DiscResp,
    Unknown(u32),
}

impl MsgType {
    pub fn from_u32(value: u32) -> MsgType {
        match value {
            0 => MsgType::SendMsg,
            1 => MsgType::ResponseMsg,
            2 => MsgType::DiscSend,
            3 => MsgType::DiscResp,
            other => MsgType::Unknown(other),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            MsgType::SendMsg => 0,
            MsgType::ResponseMsg => 1,
            MsgType::DiscSend => 2,
            MsgType::DiscResp => 3,
            MsgType::Unknown(other) => other,
        }
    }

    /// The C constant's name, as a user of the Oracle guides knows it.
    pub fn name(self) -> &'static str {
        match self {
            MsgType::SendMsg => "SEND_MSG",
            MsgType::ResponseMsg => "RESPONSE_MSG",
            MsgType::DiscSend => "LDMD_DISC_SEND",
            MsgType::DiscResp => "LDMD_DISC_RESP",
            MsgType::Unknown(_) => "UNKNOWN",
        }
    }

    pub fn is_lookup(self) -> bool {
        matches!(self, MsgType::SendMsg | MsgType::ResponseMsg)
    }

    /// Shortest length a complete message of this type can have.
    pub fn min_len(self) -> usize {
        match self {
            MsgType::SendMsg | MsgType::ResponseMsg => SHORT_LOOKUP_LEN,
            MsgType::DiscSend => HEADER_LEN,
            MsgType::DiscResp => FULL_LEN,
            MsgType::Unknown(_) => HEADER_LEN,
        }
    }
}

/// Wire byte order. SPARC hosts send big-endian; a little-endian sender is
/// recognised by a byte-swapped magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    Big,
    Little,
}

impl ByteOrder {
    fn nom(self) -> Endianness {
        match self {
            ByteOrder::Big => Endianness::Big,
            ByteOrder::Little => Endianness::Little,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ByteOrder::Big => "big-endian",
            ByteOrder::Little => "little-endian",
        }
    }

    fn u32_bytes(self, value: u32) -> [u8; 4] {
        match self {
            ByteOrder::Big => value.to_be_bytes(),
            ByteOrder::Little => value.to_le_bytes(),
        }
    }
}

/// A fixed-size C `char[]` field as found on the wire, possibly cut short by
/// the end of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharField<'a> {
    /// The bytes present (the whole field unless `complete` is false).
    pub raw: &'a [u8],
    /// The field's declared size.
    pub size: usize,
}

impl<'a> CharField<'a> {
    pub fn complete(&self) -> bool {
        self.raw.len() == self.size
    }

    /// The C string: the bytes before the first NUL.
    pub fn text(&self) -> &'a [u8] {
        match self.raw.iter().position(|&b| b == 0) {
            Some(nul) => &self.raw[..nul],
            None => self.raw,
        }
    }

    pub fn nul_terminated(&self) -> bool {
        self.raw.contains(&0)
    }

    /// The message ends inside the field before its NUL: the text is only
    /// the start of what the sender wrote.
    pub fn is_cut(&self) -> bool {
        !self.complete() && !self.nul_terminated()
    }

    /// Printable ASCII only (what hostnames, versions and dotted quads are).
    pub fn is_text(&self) -> bool {
        self.text().iter().all(|b| (0x20..0x7f).contains(b))
    }

    /// The text as `&str` when it is printable ASCII.
    pub fn as_str(&self) -> Option<&'a str> {
        if self.is_text() {
            std::str::from_utf8(self.text()).ok()
        } else {
            None
        }
    }

    /// source_ip parsed as a dotted quad, if it is one (the strict form std
    /// accepts: four decimal parts of 0..=255, no leading zeros).
    pub fn as_ipv4(&self) -> Option<Ipv4Addr> {
        parse_dotted_quad(self.text())
    }
}

/// A dotted quad from bytes. Every lookup carries one, so this skips the
/// UTF-8 check and string parser of `str::parse` (std's byte parser,
/// `Ipv4Addr::parse_ascii`, is not stable yet).
pub fn parse_dotted_quad(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut part = 0;
    let mut value: u16 = 0;
    let mut digits = 0;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                // No leading zeros ("01"), at most three digits, at most 255.
                if digits == 3 || (digits == 1 && value == 0) {
                    return None;
                }
                value = value * 10 + u16::from(b - b'0');
                digits += 1;
                if value > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && part < 3 => {
                octets[part] = value as u8;
                part += 1;
                (value, digits) = (0, 0);
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    octets[3] = value as u8;
    Some(Ipv4Addr::from(octets))
}

/// `mac_lookup_t` (msg_type 0 and 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// The raw u64; the MAC is in its low 48 bits.
    pub mac_addr: Option<u64>,
    pub source_ip: Option<CharField<'a>>,
}

/// `ldmd_discovery_t` (msg_type 2 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discovery<'a> {
    pub ldmd_version: Option<CharField<'a>>,
    pub hostname: Option<CharField<'a>>,
    pub ip_address: Option<Ipv4Addr>,
    pub port_no: Option<i32>,
}

/// The payload union, read as the msg_type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// msg_type 0 or 1.
    Lookup(Lookup<'a>),
    /// msg_type 3.
    Discovery(Discovery<'a>),
    /// msg_type 2 (meaningless payload), an unknown msg_type, or no msg_type at all.
    Opaque(&'a [u8]),
}

/// A zero-copy view of one message: every field the bytes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The whole UDP payload, trailing bytes included.
    pub bytes: &'a [u8],
    pub byte_order: ByteOrder,
    pub version_no: Option<u32>,
    pub magic_no: Option<u32>,
    pub msg_type: Option<MsgType>,
    pub resv: Option<u32>,
    pub payload: Payload<'a>,
}

type ParseResult<'a, T> = IResult<&'a [u8], T>;

/// Reads one integer field if the input holds all of it.
fn opt_u32(input: &[u8], order: ByteOrder) -> (Option<u32>, &[u8]) {
    let parsed: ParseResult<u32> = nom_u32(order.nom()).parse(input);
    match parsed {
        Ok((rest, value)) => (Some(value), rest),
        Err(_) => (None, &input[input.len()..]),
    }
}

fn opt_u64(input: &[u8], order: ByteOrder) -> (Option<u64>, &[u8]) {
    let parsed: ParseResult<u64> = nom_u64(order.nom()).parse(input);
    match parsed {
        Ok((rest, value)) => (Some(value), rest),
        Err(_) => (None, &input[input.len()..]),
    }
}

fn opt_i32(input: &[u8], order: ByteOrder) -> (Option<i32>, &[u8]) {
    let parsed: ParseResult<i32> = nom_i32(order.nom()).parse(input);
    match parsed {
        Ok((rest, value)) => (Some(value), rest),
        Err(_) => (None, &input[input.len()..]),
    }
}

/// Reads a `char[size]` field; a cut-short field keeps what is there.
fn opt_chars(input: &[u8], size: usize) -> (Option<CharField<'_>>, &[u8]) {
    if input.is_empty() {
        return (None, input);
    }
    let parsed: ParseResult<&[u8]> = take(size).parse(input);
    match parsed {
        Ok((rest, raw)) => (Some(CharField { raw, size }), rest),
        Err(_) => (Some(CharField { raw: input, size }), &input[input.len()..]),
    }
}

fn opt_in_addr(input: &[u8]) -> (Option<Ipv4Addr>, &[u8]) {
    let parsed: ParseResult<&[u8]> = take(4usize).parse(input);
    match parsed {
        Ok((rest, raw)) => (Some(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])), rest),
        Err(_) => (None, &input[input.len()..]),
    }
}

/// The byte order a message claims: big-endian unless only the byte-swapped
/// magic matches. Too short to hold the magic: big-endian, the standard.
pub fn detect_byte_order(bytes: &[u8]) -> ByteOrder {
    let Some(magic) = bytes.get(field::MAGIC_NO) else {
        return ByteOrder::Big;
    };
    let magic: [u8; 4] = [magic[0], magic[1], magic[2], magic[3]];
    if u32::from_be_bytes(magic) != MAGIC && u32::from_le_bytes(magic) == MAGIC {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    }
}

/// True when the bytes start like an ldm message in either byte order
/// (used by `--heuristic` to recognise ldm on any UDP port).
pub fn looks_like_ldm(bytes: &[u8]) -> bool {
    let Some(magic) = bytes.get(field::MAGIC_NO) else {
        return false;
    };
    let magic = [magic[0], magic[1], magic[2], magic[3]];
    u32::from_be_bytes(magic) == MAGIC || u32::from_le_bytes(magic) == MAGIC
}

impl<'a> Message<'a> {
    /// Decodes every field the bytes hold. Never fails: what is missing is `None`.
    pub fn parse(bytes: &'a [u8]) -> Message<'a> {
        let order = detect_byte_order(bytes);
        let (version_no, rest) = opt_u32(bytes, order);
        let (magic_no, rest) = opt_u32(rest, order);
        let (msg_type, rest) = opt_u32(rest, order);
        let (resv, rest) = opt_u32(rest, order);
        let msg_type = msg_type.map(MsgType::from_u32);
        let payload = match msg_type {
            Some(MsgType::SendMsg | MsgType::ResponseMsg) => Payload::Lookup(parse_lookup(rest, order)),
            Some(MsgType::DiscResp) => Payload::Discovery(parse_discovery(rest, order)),
            _ => Payload::Opaque(payload_bytes(bytes)),
        };
        Message { bytes, byte_order: order, version_no, magic_no, msg_type, resv, payload }
    }

    pub fn magic_ok(&self) -> bool {
        self.magic_no == Some(MAGIC)
    }

    /// A magic number that is there and wrong: not an ldmd message, whatever
    /// its other bytes say.
    pub fn is_bad_magic(&self) -> bool {
        self.magic_no.is_some() && !self.magic_ok()
    }

    /// What the message is, in one word, as every output names it: its type,
    /// BAD_MAGIC (not an ldmd message), or TRUNCATED (cut before its type).
    pub fn kind_name(&self) -> &'static str {
        if self.is_bad_magic() {
            return "BAD_MAGIC";
        }
        self.msg_type.map_or("TRUNCATED", MsgType::name)
    }

    /// Bytes beyond sizeof(multicast_msg_t).
    pub fn trailing(&self) -> &'a [u8] {
        self.bytes.get(FULL_LEN..).unwrap_or(&[])
    }

    /// The looked-up MAC (low 48 bits of mac_addr), when present.
    pub fn mac(&self) -> Option<[u8; 6]> {
        match self.payload {
            Payload::Lookup(Lookup { mac_addr: Some(raw), .. }) => Some(mac_from_u64(raw)),
            _ => None,
        }
    }
}

fn payload_bytes(bytes: &[u8]) -> &[u8] {
    let end = bytes.len().min(FULL_LEN);
    bytes.get(HEADER_LEN..end).unwrap_or(&[])
}

fn parse_lookup(input: &[u8], order: ByteOrder) -> Lookup<'_> {
    let (mac_addr, rest) = opt_u64(input, order);
    let (source_ip, _) = opt_chars(rest, field::SOURCE_IP.len());
    Lookup { mac_addr, source_ip }
}

fn parse_discovery(input: &[u8], order: ByteOrder) -> Discovery<'_> {
    let (ldmd_version, rest) = opt_chars(input, field::LDMD_VERSION.len());
    let (hostname, rest) = opt_chars(rest, field::HOSTNAME.len());
    let (ip_address, rest) = opt_in_addr(rest);
    // port_no is an int in host order: byte-swapped on a little-endian sender.
    let (port_no, _) = opt_i32(rest, order);
    Discovery { ldmd_version, hostname, ip_address, port_no }
}

/// The 48-bit MAC held in the low 6 bytes of mac_addr.
pub fn mac_from_u64(raw: u64) -> [u8; 6] {
    let b = raw.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

pub fn mac_to_u64(mac: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]])
}

/// Owned meaning of a payload, for building messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReprPayload {
    /// `mac_lookup_t`. `source_ip` is the char[16] content, trailing NUL padding removed.
    Lookup { mac_addr: u64, source_ip: Vec<u8> },
    /// `ldmd_discovery_t`. Text fields hold the char[] content, trailing NUL padding removed.
    Discovery { ldmd_version: Vec<u8>, hostname: Vec<u8>, ip_address: Ipv4Addr, port_no: i32 },
    /// Raw payload bytes (discovery request, unknown type), trailing zeros removed.
    Opaque(Vec<u8>),
}

/// An owned message that can be emitted: the emulator, replay and the capture
/// generator build packets with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub byte_order: ByteOrder,
    pub version_no: u32,
    pub magic_no: u32,
    pub msg_type: MsgType,
    pub resv: u32,
    pub payload: ReprPayload,
    /// Bytes on the wire: 312 normally, 40 for the short lookup form. Emitting
    /// zero-fills up to it and cuts everything past it (to build truncations).
    pub len: usize,
}

/// Why bytes do not make a complete [`Repr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReprError {
    #[error("message is {len} bytes, shorter than the {need} bytes its type needs")]
    Truncated { len: usize, need: usize },
}

fn strip_nul_padding(raw: &[u8]) -> Vec<u8> {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
    raw[..end].to_vec()
}

fn write_chars(buf: &mut [u8], range: field::Field, content: &[u8]) {
    let dst = &mut buf[range];
    let n = content.len().min(dst.len());
    dst[..n].copy_from_slice(&content[..n]);
}

impl Repr {
    /// A standard (big-endian, 312-byte) MAC lookup or its response.
    pub fn lookup(msg_type: MsgType, mac: [u8; 6], source_ip: Ipv4Addr) -> Repr {
        Repr::standard(
            msg_type,
            ReprPayload::Lookup { mac_addr: mac_to_u64(mac), source_ip: source_ip.to_string().into_bytes() },
        )
    }

    /// A standard discovery request.
    pub fn discovery_request() -> Repr {
        Repr::standard(MsgType::DiscSend, ReprPayload::Opaque(Vec::new()))
    }

    /// A standard discovery response.
    pub fn discovery_response(ldmd_version: &str, hostname: &str, ip_address: Ipv4Addr) -> Repr {
        Repr::standard(
            MsgType::DiscResp,
            ReprPayload::Discovery {
                ldmd_version: ldmd_version.as_bytes().to_vec(),
                hostname: hostname.as_bytes().to_vec(),
                ip_address,
                port_no: XMPP_PORT,
            },
        )
    }

    fn standard(msg_type: MsgType, payload: ReprPayload) -> Repr {
        Repr {
            byte_order: ByteOrder::Big,
            version_no: VERSION,
            magic_no: MAGIC,
            msg_type,
            resv: 0,
            payload,
            len: FULL_LEN,
        }
    }

    /// The meaning of a complete message.
    pub fn parse(msg: &Message<'_>) -> Result<Repr, ReprError> {
        let len = msg.bytes.len();
        let (Some(version_no), Some(magic_no), Some(msg_type), Some(resv)) =
            (msg.version_no, msg.magic_no, msg.msg_type, msg.resv)
        else {
            return Err(ReprError::Truncated { len, need: HEADER_LEN });
        };
        let truncated = ReprError::Truncated { len, need: msg_type.min_len() };
        let payload = match msg.payload {
            Payload::Lookup(Lookup { mac_addr: Some(mac_addr), source_ip: Some(ip) }) if ip.complete() => {
                ReprPayload::Lookup { mac_addr, source_ip: strip_nul_padding(ip.raw) }
            }
            Payload::Discovery(Discovery {
                ldmd_version: Some(version),
                hostname: Some(host),
                ip_address: Some(ip_address),
                port_no: Some(port_no),
            }) => ReprPayload::Discovery {
                ldmd_version: strip_nul_padding(version.raw),
                hostname: strip_nul_padding(host.raw),
                ip_address,
                port_no,
            },
            Payload::Opaque(raw) => ReprPayload::Opaque(strip_nul_padding(raw)),
            _ => return Err(truncated),
        };
        Ok(Repr { byte_order: msg.byte_order, version_no, magic_no, msg_type, resv, payload, len })
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        self.len
    }

    /// Writes the message into `buf[..self.len]`.
    ///
    /// # Panics
    /// If `buf` is shorter than `buffer_len()`; callers size it from that.
    pub fn emit(&self, buf: &mut [u8]) {
        let out = &mut buf[..self.len];
        let mut full = [0u8; FULL_LEN];
        self.emit_full(&mut full);
        let n = out.len().min(FULL_LEN);
        out[..n].copy_from_slice(&full[..n]);
        out[n..].fill(0);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf);
        buf
    }

    fn emit_full(&self, buf: &mut [u8; FULL_LEN]) {
        let order = self.byte_order;
        buf[field::VERSION_NO].copy_from_slice(&order.u32_bytes(self.version_no));
        buf[field::MAGIC_NO].copy_from_slice(&order.u32_bytes(self.magic_no));
        buf[field::MSG_TYPE].copy_from_slice(&order.u32_bytes(self.msg_type.to_u32()));
        buf[field::RESV].copy_from_slice(&order.u32_bytes(self.resv));
        match &self.payload {
            ReprPayload::Lookup { mac_addr, source_ip } => {
                let mac = match order {
                    ByteOrder::Big => mac_addr.to_be_bytes(),
                    ByteOrder::Little => mac_addr.to_le_bytes(),
                };
                buf[field::MAC_ADDR].copy_from_slice(&mac);
                write_chars(buf, field::SOURCE_IP, source_ip);
            }
            ReprPayload::Discovery { ldmd_version, hostname, ip_address, port_no } => {
                write_chars(buf, field::LDMD_VERSION, ldmd_version);
                write_chars(buf, field::HOSTNAME, hostname);
                buf[field::IP_ADDRESS].copy_from_slice(&ip_address.octets());
                let port = match order {
                    ByteOrder::Big => port_no.to_be_bytes(),
                    ByteOrder::Little => port_no.to_le_bytes(),
                };
                buf[field::PORT_NO].copy_from_slice(&port);
            }
            ReprPayload::Opaque(raw) => write_chars(buf, field::PAYLOAD, raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // The byte parser must accept exactly what std's string parser does.
        #[test]
        fn dotted_quad_agrees_with_std(text in "[0-9.a ]{0,17}") {
            prop_assert_eq!(parse_dotted_quad(text.as_bytes()), text.parse::<Ipv4Addr>().ok());
        }

        #[test]
        fn dotted_quad_reads_every_address(octets in any::<[u8; 4]>()) {
            let addr = Ipv4Addr::from(octets);
            prop_assert_eq!(parse_dotted_quad(addr.to_string().as_bytes()), Some(addr));
        }
    }

    #[test]
    fn dotted_quad_edge_cases() {
        for text in
            ["", ".", "1.2.3", "1.2.3.4.", "1.2.3.4.5", "01.2.3.4", "256.0.0.0", "1..2.3", "1.2.3.4 ", "+1.2.3.4"]
        {
            assert_eq!(parse_dotted_quad(text.as_bytes()), None, "{text:?}");
        }
        assert_eq!(parse_dotted_quad(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_dotted_quad(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
    }

    /// A discovery response as a SPARC ldmd would send it, written out by hand.
    fn disc_resp_bytes() -> Vec<u8> {
        let mut b = vec![0u8; FULL_LEN];
        b[0..4].copy_from_slice(&[0, 0, 0, 1]);
        b[4..8].copy_from_slice(&[0x05, 0x87, 0xE4, 0xC4]);
        b[8..12].copy_from_slice(&[0, 0, 0, 3]);
        b[16..21].copy_from_slice(b"3.6.1");
        b[48..54].copy_from_slice(b"ldom-a");
        b[304..308].copy_from_slice(&[10, 1, 1, 10]);
        b[308..312].copy_from_slice(&[0, 0, 0x19, 0x52]);
        b
    }

    fn send_msg_bytes() -> Vec<u8> {
        let mut b = vec![0u8; SHORT_LOOKUP_LEN];
        b[0..4].copy_from_slice(&[0, 0, 0, 1]);
        b[4..8].copy_from_slice(&[0x05, 0x87, 0xE4, 0xC4]);
        b[16..24].copy_from_slice(&[0, 0, 0x00, 0x14, 0x4F, 0xF8, 0x12, 0x34]);
        b[24..32].copy_from_slice(b"10.1.1.5");
        b
    }

    #[test]
    fn deconstruct_discovery_response() {
        let bytes = disc_resp_bytes();
        let msg = Message::parse(&bytes);
        assert_eq!(msg.byte_order, ByteOrder::Big);
        assert_eq!(msg.version_no, Some(1));
        assert_eq!(msg.magic_no, Some(MAGIC));
        assert_eq!(msg.msg_type, Some(MsgType::DiscResp));
        assert_eq!(msg.resv, Some(0));
        let Payload::Discovery(d) = msg.payload else { panic!("not discovery: {:?}", msg.payload) };
        assert_eq!(d.ldmd_version.unwrap().as_str(), Some("3.6.1"));
        assert_eq!(d.hostname.unwrap().as_str(), Some("ldom-a"));
        assert!(d.hostname.unwrap().complete());
        assert_eq!(d.ip_address, Some(Ipv4Addr::new(10, 1, 1, 10)));
        assert_eq!(d.port_no, Some(6482));
        assert!(msg.trailing().is_empty());
    }

    #[test]
    fn deconstruct_short_lookup() {
        let bytes = send_msg_bytes();
        let msg = Message::parse(&bytes);
        assert_eq!(msg.msg_type, Some(MsgType::SendMsg));
        let Payload::Lookup(l) = msg.payload else { panic!("not lookup") };
        assert_eq!(l.mac_addr, Some(0x0000_0014_4FF8_1234));
        assert_eq!(msg.mac(), Some([0x00, 0x14, 0x4F, 0xF8, 0x12, 0x34]));
        assert_eq!(l.source_ip.unwrap().as_ipv4(), Some(Ipv4Addr::new(10, 1, 1, 5)));
    }

    #[test]
    fn construct_matches_hand_written_bytes() {
        let resp = Repr::discovery_response("3.6.1", "ldom-a", Ipv4Addr::new(10, 1, 1, 10));
        assert_eq!(resp.to_bytes(), disc_resp_bytes());
        let mut send = Repr::lookup(MsgType::SendMsg, [0x00, 0x14, 0x4F, 0xF8, 0x12, 0x34], Ipv4Addr::new(10, 1, 1, 5));
        send.len = SHORT_LOOKUP_LEN;
        assert_eq!(send.to_bytes(), send_msg_bytes());
    }

    #[test]
    fn little_endian_is_detected_and_decoded() {
        let mut resp = Repr::discovery_response("3.6.1", "x86", Ipv4Addr::new(10, 0, 0, 9));
        resp.byte_order = ByteOrder::Little;
        let bytes = resp.to_bytes();
        assert_eq!(&bytes[4..8], &[0xC4, 0xE4, 0x87, 0x05]);
        let msg = Message::parse(&bytes);
        assert_eq!(msg.byte_order, ByteOrder::Little);
        assert!(msg.magic_ok());
        assert_eq!(msg.msg_type, Some(MsgType::DiscResp));
        let Payload::Discovery(d) = msg.payload else { panic!() };
        assert_eq!(d.port_no, Some(6482));
        // struct in_addr stays in network order whatever the host's order.
        assert_eq!(d.ip_address, Some(Ipv4Addr::new(10, 0, 0, 9)));

        let mut lookup = Repr::lookup(MsgType::ResponseMsg, [0, 0x14, 0x4F, 0xF9, 0, 1], Ipv4Addr::LOCALHOST);
        lookup.byte_order = ByteOrder::Little;
        let bytes = lookup.to_bytes();
        let msg = Message::parse(&bytes);
        assert_eq!(msg.mac(), Some([0, 0x14, 0x4F, 0xF9, 0, 1]));
    }

    #[test]
    fn bad_magic_is_read_big_endian() {
        let mut bytes = disc_resp_bytes();
        bytes[4..8].copy_from_slice(b"XXXX");
        let msg = Message::parse(&bytes);
        assert_eq!(msg.byte_order, ByteOrder::Big);
        assert!(!msg.magic_ok());
        assert!(!looks_like_ldm(&bytes));
        assert!(looks_like_ldm(&disc_resp_bytes()));
        let mut little = Repr::discovery_request();
        little.byte_order = ByteOrder::Little;
        assert!(looks_like_ldm(&little.to_bytes()));
        assert!(!looks_like_ldm(&disc_resp_bytes()[..7]));
    }

    #[test]
    fn unterminated_and_binary_strings() {
        let mut bytes = disc_resp_bytes();
        bytes[field::LDMD_VERSION].fill(b'A');
        bytes[48] = 0x01;
        let msg = Message::parse(&bytes);
        let Payload::Discovery(d) = msg.payload else { panic!() };
        let version = d.ldmd_version.unwrap();
        assert!(!version.nul_terminated());
        assert_eq!(version.text().len(), 32);
        assert!(!d.hostname.unwrap().is_text());
    }

    #[test]
    fn every_truncation_point_decodes_what_is_there() {
        for (full, kind) in [
            (disc_resp_bytes(), "discovery"),
            (Repr::lookup(MsgType::SendMsg, [0; 6], Ipv4Addr::LOCALHOST).to_bytes(), "lookup"),
        ] {
            for len in 0..=FULL_LEN {
                let msg = Message::parse(&full[..len]);
                assert_eq!(msg.version_no.is_some(), len >= 4, "{kind} len {len}");
                assert_eq!(msg.magic_no.is_some(), len >= 8, "{kind} len {len}");
                assert_eq!(msg.msg_type.is_some(), len >= 12, "{kind} len {len}");
                assert_eq!(msg.resv.is_some(), len >= 16, "{kind} len {len}");
                match msg.payload {
                    Payload::Discovery(d) => {
                        assert!(len >= 12);
                        assert_eq!(d.ldmd_version.is_some(), len > 16, "len {len}");
                        assert_eq!(d.ldmd_version.is_some_and(|f| f.complete()), len >= 48);
                        assert_eq!(d.hostname.is_some(), len > 48, "len {len}");
                        assert_eq!(d.hostname.is_some_and(|f| f.complete()), len >= 304);
                        assert_eq!(d.ip_address.is_some(), len >= 308);
                        assert_eq!(d.port_no.is_some(), len >= 312);
                    }
                    Payload::Lookup(l) => {
                        assert!(len >= 12);
                        assert_eq!(l.mac_addr.is_some(), len >= 24, "len {len}");
                        assert_eq!(l.source_ip.is_some(), len > 24, "len {len}");
                        assert_eq!(l.source_ip.is_some_and(|f| f.complete()), len >= 40);
                    }
                    Payload::Opaque(raw) => {
                        assert!(len < 12, "{kind} len {len} gave opaque");
                        assert!(raw.is_empty());
                    }
                }
                let complete = len >= msg.msg_type.map_or(HEADER_LEN, MsgType::min_len) && len >= HEADER_LEN;
                assert_eq!(Repr::parse(&msg).is_ok(), complete, "{kind} len {len}");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_kept() {
        let mut bytes = disc_resp_bytes();
        bytes.extend_from_slice(b"extra");
        let msg = Message::parse(&bytes);
        assert_eq!(msg.trailing(), b"extra");
        assert!(matches!(msg.payload, Payload::Discovery(Discovery { port_no: Some(6482), .. })));
    }

    fn chars(max: usize) -> impl Strategy<Value = Vec<u8>> {
        // No trailing NUL: Repr holds the content with its NUL padding removed.
        prop::collection::vec(any::<u8>(), 0..=max).prop_map(|mut v| {
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        })
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        let order = prop_oneof![Just(ByteOrder::Big), Just(ByteOrder::Little)];
        let lookup = (0u32..2, any::<u64>(), chars(16), prop_oneof![Just(40usize), Just(312usize)]).prop_map(
            |(t, mac_addr, source_ip, len)| (MsgType::from_u32(t), ReprPayload::Lookup { mac_addr, source_ip }, len),
        );
        let discovery = (chars(32), chars(256), any::<[u8; 4]>(), any::<i32>()).prop_map(|(v, h, ip, port_no)| {
            let payload = ReprPayload::Discovery { ldmd_version: v, hostname: h, ip_address: ip.into(), port_no };
            (MsgType::DiscResp, payload, FULL_LEN)
        });
        let opaque = (prop_oneof![Just(2u32), 4u32..], chars(296), 16usize..=312).prop_map(|(t, mut raw, len)| {
            raw.truncate(len - HEADER_LEN);
            while raw.last() == Some(&0) {
                raw.pop();
            }
            (MsgType::from_u32(t), ReprPayload::Opaque(raw), len)
        });
        (order, any::<u32>(), any::<u32>(), prop_oneof![lookup, discovery, opaque]).prop_map(
            |(byte_order, version_no, resv, (msg_type, payload, len))| {
                // The magic decides the byte order, so a round trip needs the real one.
                Repr { byte_order, version_no, magic_no: MAGIC, msg_type, resv, payload, len }
            },
        )
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(repr in arb_repr()) {
            let bytes = repr.to_bytes();
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            let msg = Message::parse(&bytes);
            prop_assert_eq!(Repr::parse(&msg), Ok(repr));
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let msg = Message::parse(&bytes);
            let _ = Repr::parse(&msg);
            let _ = msg.mac();
        }
    }
}
