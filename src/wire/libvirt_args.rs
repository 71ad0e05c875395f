//! The payloads of the common REMOTE procedures, decoded from XDR (as
//! libvirt's `remote_protocol.x` defines them): connection open, auth, domain
//! lookup, list, info, state, define, create, destroy and lifecycle events.
//! Other procedures' payloads stay opaque. A payload that ends early keeps
//! the fields decoded before the end.

use nom::bytes::complete::take;
use nom::number::complete::{be_i32, be_u32, be_u64};
use nom::Parser;

use super::libvirt::{Message, MsgType, PROGRAM_REMOTE};

/// One decoded argument or return value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg<'a> {
    Int(i64),
    Text(&'a [u8]),
    Uuid([u8; 16]),
    Ints(Vec<u64>),
    Texts(Vec<&'a [u8]>),
    /// The name of an enumerated value (a domain state, an event).
    Name(&'static str),
}

/// A UUID as libvirt prints it: `6695eb01-f6a4-8304-79aa-97f2502e193f`.
pub struct UuidText(pub [u8; 16]);

impl std::fmt::Display for UuidText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// (field name, value), in payload order.
pub type Args<'a> = Vec<(&'static str, Arg<'a>)>;

/// Every field name `decode` may produce, for the display filter.
pub const FIELDS: [&str; 28] = [
    "uri",
    "flags",
    "auth_types",
    "mechlist",
    "hv_type",
    "hv_version",
    "lib_version",
    "hostname",
    "count",
    "max",
    "need_results",
    "domain_ids",
    "domains",
    "domain",
    "uuid",
    "domain_id",
    "xml_len",
    "state",
    "state_name",
    "reason",
    "max_mem",
    "memory",
    "vcpus",
    "cpu_time",
    "callback_id",
    "event",
    "event_name",
    "event_detail",
];

/// Calls whose arguments are a domain, and whether `unsigned int flags` follows it.
const DOMAIN_CALLS: [(&str, bool); 20] = [
    ("DOMAIN_GET_INFO", false),
    ("DOMAIN_HAS_MANAGED_SAVE_IMAGE", false),
    ("DOMAIN_GET_SECURITY_LABEL", false),
    ("DOMAIN_GET_MESSAGES", false),
    ("DOMAIN_CREATE", false),
    ("DOMAIN_DESTROY", false),
    ("DOMAIN_SUSPEND", false),
    ("DOMAIN_RESUME", false),
    ("DOMAIN_SHUTDOWN", false),
    ("DOMAIN_UNDEFINE", false),
    ("DOMAIN_GET_OS_TYPE", false),
    ("DOMAIN_IS_ACTIVE", false),
    ("DOMAIN_IS_PERSISTENT", false),
    ("DOMAIN_GET_AUTOSTART", false),
    ("DOMAIN_CREATE_WITH_FLAGS", true),
    ("DOMAIN_DESTROY_FLAGS", true),
    ("DOMAIN_UNDEFINE_FLAGS", true),
    ("DOMAIN_REBOOT", true),
    ("DOMAIN_GET_STATE", true),
    ("DOMAIN_GET_XML_DESC", true),
];

/// Replies that are one domain.
const DOMAIN_REPLIES: [&str; 7] = [
    "DOMAIN_LOOKUP_BY_NAME",
    "DOMAIN_LOOKUP_BY_UUID",
    "DOMAIN_LOOKUP_BY_ID",
    "DOMAIN_DEFINE_XML",
    "DOMAIN_DEFINE_XML_FLAGS",
    "DOMAIN_CREATE_XML",
    "DOMAIN_CREATE_WITH_FLAGS",
];

/// virDomainState.
fn state_name(state: i32) -> &'static str {
    match state {
        0 => "nostate",
        1 => "running",
        2 => "blocked",
        3 => "paused",
        4 => "shutdown",
        5 => "shutoff",
        6 => "crashed",
        7 => "pmsuspended",
        _ => "unknown",
    }
}

/// virDomainEventType.
fn event_name(event: i32) -> &'static str {
    match event {
        0 => "defined",
        1 => "undefined",
        2 => "started",
        3 => "suspended",
        4 => "resumed",
        5 => "stopped",
        6 => "shutdown",
        7 => "pmsuspended",
        8 => "crashed",
        _ => "unknown",
    }
}

/// Reads XDR items one after another; every read fails once the bytes end.
struct Xdr<'a> {
    rest: &'a [u8],
}

type NomError<'a> = nom::error::Error<&'a [u8]>;

/// Longest list decoded (libvirt allows 16384 domains; a line needs far fewer).
const MAX_LIST: u32 = 4096;

impl<'a> Xdr<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (rest, v) = be_u32::<_, NomError<'a>>(self.rest).ok()?;
        self.rest = rest;
        Some(v)
    }

    fn i32(&mut self) -> Option<i32> {
        let (rest, v) = be_i32::<_, NomError<'a>>(self.rest).ok()?;
        self.rest = rest;
        Some(v)
    }

    fn u64(&mut self) -> Option<u64> {
        let (rest, v) = be_u64::<_, NomError<'a>>(self.rest).ok()?;
        self.rest = rest;
        Some(v)
    }

    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let (rest, v) = take::<_, _, NomError<'a>>(len).parse(self.rest).ok()?;
        self.rest = rest;
        Some(v)
    }

    /// `string<>`: length, bytes, padding to a multiple of 4.
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        let text = self.bytes(len)?;
        self.bytes((4 - len % 4) % 4)?;
        Some(text)
    }

    /// `remote_string`: a present-flag, then the string.
    fn optional_string(&mut self) -> Option<Option<&'a [u8]>> {
        match self.u32()? {
            0 => Some(None),
            _ => self.string().map(Some),
        }
    }

    fn uuid(&mut self) -> Option<[u8; 16]> {
        self.bytes(16)?.try_into().ok()
    }

    fn count(&mut self) -> Option<u32> {
        self.u32().filter(|&n| n <= MAX_LIST)
    }
}

/// Decodes the payload of a common REMOTE procedure; empty for others.
pub fn decode<'a>(msg: &Message<'a>) -> Args<'a> {
    let mut out = Args::new();
    let h = msg.header;
    if h.prog != PROGRAM_REMOTE || h.status != super::libvirt::Status::Ok {
        return out;
    }
    let Some(name) = h.procedure_name() else { return out };
    let mut x = Xdr { rest: msg.payload };
    // `None` from a step means the payload ended: keep what was decoded.
    let _ = match h.msg_type {
        MsgType::Call | MsgType::CallWithFds => call(name, &mut x, &mut out),
        MsgType::Reply | MsgType::ReplyWithFds => reply(name, &mut x, &mut out),
        MsgType::Message => event(name, &mut x, &mut out),
        _ => None,
    };
    out
}

fn int(out: &mut Args<'_>, name: &'static str, value: impl Into<i64>) {
    out.push((name, Arg::Int(value.into())));
}

/// `remote_nonnull_domain`: name, uuid, id.
fn domain<'a>(x: &mut Xdr<'a>, out: &mut Args<'a>) -> Option<()> {
    out.push(("domain", Arg::Text(x.string()?)));
    out.push(("uuid", Arg::Uuid(x.uuid()?)));
    int(out, "domain_id", x.i32()?);
    Some(())
}

fn call<'a>(name: &str, x: &mut Xdr<'a>, out: &mut Args<'a>) -> Option<()> {
    match name {
        "CONNECT_OPEN" => {
            if let Some(uri) = x.optional_string()? {
                out.push(("uri", Arg::Text(uri)));
            }
            int(out, "flags", x.u32()?);
        }
        "CONNECT_LIST_DOMAINS" | "CONNECT_LIST_DEFINED_DOMAINS" => int(out, "max", x.i32()?),
        "CONNECT_LIST_ALL_DOMAINS" => {
            int(out, "need_results", x.i32()?);
            int(out, "flags", x.u32()?);
        }
        "DOMAIN_LOOKUP_BY_NAME" => out.push(("domain", Arg::Text(x.string()?))),
        "DOMAIN_LOOKUP_BY_UUID" => out.push(("uuid", Arg::Uuid(x.uuid()?))),
        "DOMAIN_LOOKUP_BY_ID" => int(out, "domain_id", x.i32()?),
        "DOMAIN_DEFINE_XML" => int(out, "xml_len", x.string()?.len() as i64),
        "DOMAIN_DEFINE_XML_FLAGS" | "DOMAIN_CREATE_XML" => {
            int(out, "xml_len", x.string()?.len() as i64);
            int(out, "flags", x.u32()?);
        }
        _ => {
            let Some(&(_, flags)) = DOMAIN_CALLS.iter().find(|(call, _)| *call == name) else { return Some(()) };
            domain(x, out)?;
            if flags {
                int(out, "flags", x.u32()?);
            }
        }
    }
    Some(())
}

fn reply<'a>(name: &str, x: &mut Xdr<'a>, out: &mut Args<'a>) -> Option<()> {
    match name {
        "AUTH_LIST" => {
            let n = x.count()?;
            let types = (0..n).map(|_| x.u32().map(u64::from)).collect::<Option<Vec<u64>>>()?;
            out.push(("auth_types", Arg::Ints(types)));
        }
        "AUTH_SASL_INIT" => out.push(("mechlist", Arg::Text(x.string()?))),
        "CONNECT_GET_TYPE" => out.push(("hv_type", Arg::Text(x.string()?))),
        "CONNECT_GET_VERSION" => int(out, "hv_version", x.u64()? as i64),
        "CONNECT_GET_LIB_VERSION" => int(out, "lib_version", x.u64()? as i64),
        "CONNECT_GET_HOSTNAME" => out.push(("hostname", Arg::Text(x.string()?))),
        "CONNECT_NUM_OF_DOMAINS" | "CONNECT_NUM_OF_DEFINED_DOMAINS" => int(out, "count", x.i32()?),
        "CONNECT_LIST_DOMAINS" => {
            let n = x.count()?;
            let ids = (0..n).map(|_| x.u32().map(u64::from)).collect::<Option<Vec<u64>>>()?;
            out.push(("domain_ids", Arg::Ints(ids)));
        }
        "CONNECT_LIST_DEFINED_DOMAINS" => {
            let n = x.count()?;
            let names = (0..n).map(|_| x.string()).collect::<Option<Vec<_>>>()?;
            out.push(("domains", Arg::Texts(names)));
        }
        "CONNECT_LIST_ALL_DOMAINS" => {
            let n = x.count()?;
            let mut names = Vec::new();
            for _ in 0..n {
                names.push(x.string()?);
                x.uuid()?;
                x.i32()?;
            }
            out.push(("domains", Arg::Texts(names)));
            int(out, "count", x.u32()?);
        }
        "DOMAIN_GET_INFO" => {
            let state = x.u32()? as i32;
            int(out, "state", state);
            out.push(("state_name", Arg::Name(state_name(state))));
            int(out, "max_mem", x.u64()? as i64);
            int(out, "memory", x.u64()? as i64);
            int(out, "vcpus", x.u32()?);
            int(out, "cpu_time", x.u64()? as i64);
        }
        "DOMAIN_GET_STATE" => {
            let state = x.i32()?;
            int(out, "state", state);
            out.push(("state_name", Arg::Name(state_name(state))));
            int(out, "reason", x.i32()?);
        }
        _ if DOMAIN_REPLIES.contains(&name) => domain(x, out)?,
        _ => {}
    }
    Some(())
}

fn event<'a>(name: &str, x: &mut Xdr<'a>, out: &mut Args<'a>) -> Option<()> {
    let callback = match name {
        "DOMAIN_EVENT_LIFECYCLE" => false,
        "DOMAIN_EVENT_CALLBACK_LIFECYCLE" => true,
        _ => return Some(()),
    };
    if callback {
        int(out, "callback_id", x.i32()?);
    }
    domain(x, out)?;
    let event = x.i32()?;
    int(out, "event", event);
    out.push(("event_name", Arg::Name(event_name(event))));
    int(out, "event_detail", x.i32()?);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::libvirt::{build, Status};

    fn xdr_string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out.resize(out.len() + (4 - s.len() % 4) % 4, 0);
        out
    }

    fn domain_bytes(name: &str, id: i32) -> Vec<u8> {
        [xdr_string(name), vec![0xab; 16], id.to_be_bytes().to_vec()].concat()
    }

    fn decoded(proc_: i32, t: MsgType, payload: &[u8]) -> Vec<(&'static str, Arg<'static>)> {
        let bytes: &'static [u8] =
            Box::leak(build(PROGRAM_REMOTE, proc_, t, 1, Status::Ok, payload).into_boxed_slice());
        decode(&Message::parse(bytes).unwrap())
    }

    #[test]
    fn connect_open_and_lookups() {
        let open = [1u32.to_be_bytes().to_vec(), xdr_string("test:///default"), 0u32.to_be_bytes().to_vec()].concat();
        assert_eq!(
            decoded(1, MsgType::Call, &open),
            vec![("uri", Arg::Text(b"test:///default")), ("flags", Arg::Int(0))]
        );
        assert_eq!(decoded(23, MsgType::Call, &xdr_string("ldom-a")), vec![("domain", Arg::Text(b"ldom-a"))]);
        assert_eq!(
            decoded(23, MsgType::Reply, &domain_bytes("ldom-a", 3)),
            vec![("domain", Arg::Text(b"ldom-a")), ("uuid", Arg::Uuid([0xab; 16])), ("domain_id", Arg::Int(3))]
        );
    }

    #[test]
    fn info_state_and_events() {
        let info = [
            1u32.to_be_bytes().to_vec(),
            8u64.to_be_bytes().to_vec(),
            4u64.to_be_bytes().to_vec(),
            2u32.to_be_bytes().to_vec(),
            99u64.to_be_bytes().to_vec(),
        ]
        .concat();
        let got = decoded(16, MsgType::Reply, &info);
        assert_eq!(got[1], ("state_name", Arg::Name("running")));
        assert_eq!(got[4], ("vcpus", Arg::Int(2)));
        assert_eq!(got[5], ("cpu_time", Arg::Int(99)));
        // DOMAIN_EVENT_LIFECYCLE (107): dom, event 5 (stopped), detail 1.
        let event = [domain_bytes("ldom-a", -1), 5i32.to_be_bytes().to_vec(), 1i32.to_be_bytes().to_vec()].concat();
        let got = decoded(107, MsgType::Message, &event);
        assert_eq!(
            got[3..],
            [("event", Arg::Int(5)), ("event_name", Arg::Name("stopped")), ("event_detail", Arg::Int(1))]
        );
    }

    #[test]
    fn a_short_payload_keeps_what_came_before() {
        let open = [1u32.to_be_bytes().to_vec(), xdr_string("qemu:///system")].concat();
        assert_eq!(decoded(1, MsgType::Call, &open), vec![("uri", Arg::Text(b"qemu:///system"))]);
        assert!(decoded(273, MsgType::Reply, &u32::MAX.to_be_bytes()).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_payload_of_any_procedure_decodes_without_panic(
            proc_ in 0i32..450,
            kind in 0i32..3,
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
        ) {
            let bytes = build(PROGRAM_REMOTE, proc_, MsgType::from_i32(kind), 1, Status::Ok, &payload);
            let _ = decode(&Message::parse(&bytes).unwrap());
        }
    }
}
