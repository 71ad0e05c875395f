//! The libvirt RPC message (libvirtd, TCP 16509; 16514 under TLS), as
//! libvirt's `virnetprotocol.x` defines it: a 4-byte length (the whole
//! message, itself included), then XDR (big-endian) `prog`, `vers`, `proc`,
//! `type`, `serial` and `status`, then the procedure's XDR payload.
//!
//! A zero-copy view parsed with nom, as for ldm. No I/O and no policy: what
//! counts as an anomaly lives in the dissector and the analysis.

use nom::bytes::complete::take;
use nom::number::complete::{be_i32, be_u32};
use nom::{IResult, Parser};

use super::xdr::{self, Ty};

/// libvirtd's plain TCP port.
pub const PORT: u16 = 16509;
/// libvirtd's TLS port.
pub const TLS_PORT: u16 = 16514;

/// The header: length, prog, vers, proc, type, serial, status.
pub const HEADER_LEN: usize = 28;
/// The largest message libvirt accepts (VIR_NET_MESSAGE_MAX, 32 MiB), plus
/// its length word. A length word above it is not a libvirt header.
pub const MAX_LEN: usize = 32 * 1024 * 1024 + 4;

pub const PROGRAM_REMOTE: u32 = 0x2000_8086;
pub const PROGRAM_QEMU: u32 = 0x2000_8087;
pub const PROGRAM_LXC: u32 = 0x0006_8000;
pub const PROGRAM_KEEPALIVE: u32 = 0x6b65_6570;
pub const PROGRAM_ADMIN: u32 = 0x0690_0690;

/// KEEPALIVE_PROC_PING and _PONG.
pub const KEEPALIVE_PING: i32 = 1;
pub const KEEPALIVE_PONG: i32 = 2;

/// Every program libvirt defines is at protocol version 1, so every
/// header has these bytes at `VERSION_AT`: the stream layer finds the next
/// header after a gap by them.
pub const PROGRAM_VERSION: u32 = 1;
pub const VERSION_AT: usize = 8;

/// The programs libvirt defines: (number, name).
const PROGRAMS: [(u32, &str); 5] = [
    (PROGRAM_REMOTE, "REMOTE"),
    (PROGRAM_QEMU, "QEMU"),
    (PROGRAM_LXC, "LXC"),
    (PROGRAM_KEEPALIVE, "KEEPALIVE"),
    (PROGRAM_ADMIN, "ADMIN"),
];

pub fn program_name(prog: u32) -> Option<&'static str> {
    PROGRAMS.iter().find(|(number, _)| *number == prog).map(|(_, name)| *name)
}

/// The protocol version libvirt uses for a known program.
pub fn program_version(prog: u32) -> Option<u32> {
    program_name(prog).map(|_| PROGRAM_VERSION)
}

/// The procedure's name without its program prefix (`DOMAIN_GET_INFO`),
/// from the tables generated from libvirt's protocol definitions.
pub fn procedure_name(prog: u32, proc_: i32) -> Option<&'static str> {
    xdr::procedure(prog, proc_).map(|p| p.name)
}

/// REMOTE_PROC_AUTH_SASL_INIT, _START and _STEP: a connection whose client
/// sends one may switch to a SASL security layer (encrypted) once authenticated.
pub fn starts_sasl(header: &Header) -> bool {
    header.prog == PROGRAM_REMOTE && header.msg_type == MsgType::Call && (67..=69).contains(&header.proc_)
}

/// virNetMessageType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    Call,
    Reply,
    /// An asynchronous event: the daemon sends it unasked.
    Message,
    Stream,
    CallWithFds,
    ReplyWithFds,
    StreamHole,
    Unknown(i32),
}

impl MsgType {
    pub fn from_i32(value: i32) -> MsgType {
        match value {
            0 => MsgType::Call,
            1 => MsgType::Reply,
            2 => MsgType::Message,
            3 => MsgType::Stream,
            4 => MsgType::CallWithFds,
            5 => MsgType::ReplyWithFds,
            6 => MsgType::StreamHole,
            other => MsgType::Unknown(other),
        }
    }

    pub fn to_i32(self) -> i32 {
        match self {
            MsgType::Call => 0,
            MsgType::Reply => 1,
            MsgType::Message => 2,
            MsgType::Stream => 3,
            MsgType::CallWithFds => 4,
            MsgType::ReplyWithFds => 5,
            MsgType::StreamHole => 6,
            MsgType::Unknown(other) => other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MsgType::Call => "CALL",
            MsgType::Reply => "REPLY",
            MsgType::Message => "MESSAGE",
            MsgType::Stream => "STREAM",
            MsgType::CallWithFds => "CALL_WITH_FDS",
            MsgType::ReplyWithFds => "REPLY_WITH_FDS",
            MsgType::StreamHole => "STREAM_HOLE",
            MsgType::Unknown(_) => "UNKNOWN",
        }
    }

    pub fn is_call(self) -> bool {
        matches!(self, MsgType::Call | MsgType::CallWithFds)
    }

    pub fn is_reply(self) -> bool {
        matches!(self, MsgType::Reply | MsgType::ReplyWithFds)
    }
}

/// virNetMessageStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Error,
    /// More stream data follows.
    Continue,
    Unknown(i32),
}

impl Status {
    pub fn from_i32(value: i32) -> Status {
        match value {
            0 => Status::Ok,
            1 => Status::Error,
            2 => Status::Continue,
            other => Status::Unknown(other),
        }
    }

    pub fn to_i32(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Error => 1,
            Status::Continue => 2,
            Status::Unknown(other) => other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Error => "ERROR",
            Status::Continue => "CONTINUE",
            Status::Unknown(_) => "UNKNOWN",
        }
    }
}

/// The fixed header of every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The whole message's length, this word included.
    pub len: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: i32,
    pub msg_type: MsgType,
    pub serial: u32,
    pub status: Status,
}

type ParseResult<'a, T> = IResult<&'a [u8], T>;
type Error<'a> = nom::error::Error<&'a [u8]>;

fn header(input: &[u8]) -> ParseResult<'_, Header> {
    let (rest, (len, prog, vers, proc_, msg_type, serial, status)) =
        (be_u32, be_u32, be_u32, be_i32, be_i32, be_u32, be_i32).parse(input)?;
    let header = Header {
        len,
        prog,
        vers,
        proc_,
        msg_type: MsgType::from_i32(msg_type),
        serial,
        status: Status::from_i32(status),
    };
    Ok((rest, header))
}

impl Header {
    /// Decodes the 28-byte header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        header(bytes).ok().map(|(_, h)| h)
    }

    /// Could these bytes start a libvirt message? Used to find the next
    /// message after a gap in the stream: a length in range, a known program
    /// at its version, and a known type and status.
    pub fn is_plausible(&self) -> bool {
        let len = self.len as usize;
        (HEADER_LEN..=MAX_LEN).contains(&len)
            && program_version(self.prog) == Some(self.vers)
            && !matches!(self.msg_type, MsgType::Unknown(_))
            && !matches!(self.status, Status::Unknown(_))
    }

    pub fn program_name(&self) -> Option<&'static str> {
        program_name(self.prog)
    }

    pub fn procedure_name(&self) -> Option<&'static str> {
        procedure_name(self.prog, self.proc_)
    }
}

/// One libvirt message: its header, and as much of its payload as was kept
/// (`payload.len() < header.len - 28` when a long message was cut to bound memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub header: Header,
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// Decodes a whole message (header and payload) from `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Option<Message<'a>> {
        let header = Header::parse(bytes)?;
        // The header parsed, so at least HEADER_LEN bytes are present.
        let end = (header.len as usize).clamp(HEADER_LEN, bytes.len());
        let payload = bytes.get(HEADER_LEN..end)?;
        Some(Message { header, payload })
    }

    /// The payload's declared length.
    pub fn payload_len(&self) -> usize {
        (self.header.len as usize).saturating_sub(HEADER_LEN)
    }

    /// The header and the kept payload, as bytes again.
    pub fn to_bytes(&self) -> Vec<u8> {
        let h = &self.header;
        let mut out = build(h.prog, h.proc_, h.msg_type, h.serial, h.status, self.payload);
        out[..4].copy_from_slice(&h.len.to_be_bytes());
        out[8..12].copy_from_slice(&h.vers.to_be_bytes());
        out
    }

    /// The payload's XDR type, by the header: a call's arguments, a
    /// reply's return value (or `remote_error` for an error reply), an
    /// event's message, a stream hole; `None` for stream data, keepalives
    /// and unknown procedures (their payload is opaque).
    pub fn payload_type(&self) -> Option<(Ty, &'static str)> {
        let h = &self.header;
        let named = |ty: Ty| match ty {
            Ty::Struct(i) => Some((ty, xdr::STRUCTS[usize::from(i)].name)),
            _ => None,
        };
        if h.msg_type.is_reply() && h.status == Status::Error {
            return xdr::struct_named("remote_error").and_then(named);
        }
        if h.msg_type == MsgType::StreamHole {
            return xdr::struct_named("virNetStreamHole").and_then(named);
        }
        let proc_ = xdr::procedure(h.prog, h.proc_)?;
        let ty = match h.msg_type {
            t if t.is_call() => proc_.args,
            t if t.is_reply() => proc_.ret,
            MsgType::Message => proc_.msg,
            _ => None,
        };
        ty.and_then(named)
    }

    /// The payload decoded by its XDR type (`payload_type`); what precedes
    /// a cut (a payload kept in part) is decoded.
    pub fn decode_payload(&self) -> Option<xdr::Decoded<'a>> {
        let (ty, name) = self.payload_type()?;
        Some(xdr::decode(ty, name, self.payload))
    }

    /// The error an ERROR reply carries.
    pub fn error(&self) -> Option<RemoteError<'a>> {
        if self.header.status != Status::Error || !self.header.msg_type.is_reply() {
            return None;
        }
        RemoteError::parse(self.payload)
    }
}

/// The start of `remote_error` (virterror's virError): what an error reply
/// says. The rest (level's companions: domain object, str1-3, int1-2, network)
/// is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteError<'a> {
    /// virErrorNumber.
    pub code: i32,
    /// virErrorDomain: the part of libvirt that failed.
    pub domain: i32,
    /// The message text, when the daemon sent one.
    pub message: Option<&'a [u8]>,
    /// virErrorLevel: 1 warning, 2 error.
    pub level: Option<i32>,
}

/// An XDR `string<>`: a length, the bytes, padding to 4.
fn xdr_string(input: &[u8]) -> ParseResult<'_, &[u8]> {
    let (rest, len) = be_u32(input)?;
    let (rest, bytes) = take(len as usize).parse(rest)?;
    let pad = (4 - len as usize % 4) % 4;
    let (rest, _) = take(pad.min(rest.len())).parse(rest)?;
    Ok((rest, bytes))
}

/// An XDR optional string (`remote_string`): a boolean, then the string.
fn xdr_optional_string(input: &[u8]) -> ParseResult<'_, Option<&[u8]>> {
    let (rest, present) = be_u32(input)?;
    if present == 0 {
        return Ok((rest, None));
    }
    let (rest, text) = xdr_string(rest)?;
    Ok((rest, Some(text)))
}

impl<'a> RemoteError<'a> {
    pub fn parse(payload: &'a [u8]) -> Option<RemoteError<'a>> {
        let (rest, (code, domain)) = (be_i32::<_, Error<'_>>, be_i32).parse(payload).ok()?;
        let (rest, message) = match xdr_optional_string(rest) {
            Ok(ok) => ok,
            Err(_) => return Some(RemoteError { code, domain, message: None, level: None }),
        };
        let level = be_i32::<_, Error<'_>>(rest).ok().map(|(_, level)| level);
        Some(RemoteError { code, domain, message, level })
    }
}

/// Builds a message's bytes (tests, captures and the generator).
pub fn build(prog: u32, proc_: i32, msg_type: MsgType, serial: u32, status: Status, payload: &[u8]) -> Vec<u8> {
    let len = (HEADER_LEN + payload.len()) as u32;
    let mut out = Vec::with_capacity(len as usize);
    for word in [len, prog, program_version(prog).unwrap_or(1), proc_ as u32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(&msg_type.to_i32().to_be_bytes());
    out.extend_from_slice(&serial.to_be_bytes());
    out.extend_from_slice(&status.to_i32().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of an error reply: code, domain, message, level 2, and the
/// rest of `remote_error` empty.
pub fn build_error_payload(code: i32, domain: i32, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&domain.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message.as_bytes());
    out.resize(out.len() + (4 - message.len() % 4) % 4, 0);
    out.extend_from_slice(&2i32.to_be_bytes());
    // dom, str1, str2, str3 absent; int1, int2 zero; net absent.
    for word in [0u32, 0, 0, 0, 0, 0, 0] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_numbers_are_libvirts() {
        // Spot checks against remote_protocol.x.
        assert_eq!(procedure_name(PROGRAM_REMOTE, 1), Some("CONNECT_OPEN"));
        assert_eq!(procedure_name(PROGRAM_REMOTE, 16), Some("DOMAIN_GET_INFO"));
        assert_eq!(procedure_name(PROGRAM_REMOTE, 66), Some("AUTH_LIST"));
        assert_eq!(procedure_name(PROGRAM_REMOTE, 273), Some("CONNECT_LIST_ALL_DOMAINS"));
        assert_eq!(procedure_name(PROGRAM_REMOTE, 0), None);
        assert_eq!(procedure_name(PROGRAM_REMOTE, -1), None);
        assert_eq!(procedure_name(PROGRAM_REMOTE, 100_000), None);
        assert_eq!(procedure_name(PROGRAM_KEEPALIVE, KEEPALIVE_PONG), Some("PONG"));
        assert_eq!(procedure_name(PROGRAM_ADMIN, 19), Some("CONNECT_SET_DAEMON_TIMEOUT"));
        assert_eq!(procedure_name(PROGRAM_QEMU, 1), Some("DOMAIN_MONITOR_COMMAND"));
        assert_eq!(procedure_name(0x1234, 1), None);
    }

    #[test]
    fn header_and_error_round_trip() {
        let payload = build_error_payload(42, 10, "Domain not found: no domain with matching name 'x'");
        let bytes = build(PROGRAM_REMOTE, 23, MsgType::Reply, 7, Status::Error, &payload);
        let msg = Message::parse(&bytes).expect("parses");
        assert_eq!(msg.header.len as usize, bytes.len());
        assert_eq!(msg.header.procedure_name(), Some("DOMAIN_LOOKUP_BY_NAME"));
        assert_eq!((msg.header.msg_type, msg.header.serial, msg.header.status), (MsgType::Reply, 7, Status::Error));
        assert!(msg.header.is_plausible());
        let error = msg.error().expect("an error reply");
        assert_eq!((error.code, error.domain, error.level), (42, 10, Some(2)));
        assert_eq!(error.message, Some(&b"Domain not found: no domain with matching name 'x'"[..]));
    }

    #[test]
    fn implausible_headers() {
        let good = build(PROGRAM_REMOTE, 1, MsgType::Call, 0, Status::Ok, &[]);
        let mut bad_prog = good.clone();
        bad_prog[4] = 0x99;
        let mut bad_len = good.clone();
        bad_len[..4].copy_from_slice(&27u32.to_be_bytes());
        let mut bad_type = good.clone();
        bad_type[19] = 9;
        for bytes in [bad_prog, bad_len, bad_type] {
            assert!(!Header::parse(&bytes).unwrap().is_plausible());
        }
        assert!(Header::parse(&good[..27]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Some(msg) = Message::parse(&bytes) {
                let _ = msg.error();
                let _ = msg.header.procedure_name();
                proptest::prop_assert!(msg.payload.len() <= bytes.len() - HEADER_LEN);
            }
            let _ = RemoteError::parse(&bytes);
        }
    }
}
