//! What the reference ldmd says to one datagram: a pure function of its
//! identity, its MAC table and its faults, so it can be tested and fuzzed
//! without a network.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use crate::dissect::{checks, Findings};
use crate::expert::MacAddr;
use crate::wire::ldm::{self, ByteOrder, Message, MsgType, Repr, ReprPayload};

/// A fault the emulator injects into its replies, for testing harnesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Hold each reply this long before sending it.
    Delay(Duration),
    /// Never send the reply.
    Drop,
    /// Send each reply twice.
    Duplicate,
    /// Byte-swap every integer, as a little-endian host would.
    LittleEndian,
    /// version_no 2 instead of 1.
    BadVersion,
    /// A magic number that is not ldm's.
    BadMagic,
    /// Cut the reply to 100 bytes.
    Truncate,
    /// port_no 6483 instead of 6482 in discovery replies.
    WrongPort,
}

/// The names `--fault` accepts, for error messages and help.
pub const FAULT_NAMES: &str = "delay:MS, drop, duplicate, little-endian, bad-version, bad-magic, truncate, wrong-port";

/// The longest `delay:MS` (a minute: far past any requester's window).
pub const MAX_DELAY_MS: u64 = 60_000;

impl std::fmt::Display for Fault {
    /// The form `--fault` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Delay(d) => write!(f, "delay:{}", d.as_millis()),
            Fault::Drop => f.write_str("drop"),
            Fault::Duplicate => f.write_str("duplicate"),
            Fault::LittleEndian => f.write_str("little-endian"),
            Fault::BadVersion => f.write_str("bad-version"),
            Fault::BadMagic => f.write_str("bad-magic"),
            Fault::Truncate => f.write_str("truncate"),
            Fault::WrongPort => f.write_str("wrong-port"),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Fault, String> {
        if let Some(ms) = text.strip_prefix("delay:") {
            let ms: u64 = ms.parse().map_err(|_| format!("'{text}': delay:MS needs whole milliseconds"))?;
            if ms > MAX_DELAY_MS {
                return Err(format!("'{text}': a delay of at most {MAX_DELAY_MS} ms"));
            }
            return Ok(Fault::Delay(Duration::from_millis(ms)));
        }
        match text {
            "drop" => Ok(Fault::Drop),
            "duplicate" => Ok(Fault::Duplicate),
            "little-endian" => Ok(Fault::LittleEndian),
            "bad-version" => Ok(Fault::BadVersion),
            "bad-magic" => Ok(Fault::BadMagic),
            "truncate" => Ok(Fault::Truncate),
            "wrong-port" => Ok(Fault::WrongPort),
            _ => Err(format!("unknown fault '{text}'; one of: {FAULT_NAMES}")),
        }
    }
}

/// Length of a reply cut by `Fault::Truncate`: past the header, short of
/// every payload's end.
pub const TRUNCATED_LEN: usize = 100;

/// What the emulator answers as.
#[derive(Debug, Clone)]
pub struct Identity {
    pub hostname: String,
    pub ip: Ipv4Addr,
    pub ldmd_version: String,
    pub port_no: i32,
}

/// The emulated ldmd: who it is, which MACs it has assigned, what it breaks.
#[derive(Debug, Clone)]
pub struct Responder {
    pub identity: Identity,
    pub owns: HashSet<[u8; 6]>,
    pub faults: Vec<Fault>,
}

/// The decision about one received datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Replies to send (empty when a fault drops them), after `delay`.
    Reply { request: String, replies: Vec<Vec<u8>>, delay: Duration },
    /// Valid ldm that asks nothing of us.
    Ignore { request: String, reason: &'static str },
    /// Not an ldm request we can read: logged and dropped.
    Malformed { reason: String },
}

impl Responder {
    pub fn handle(&self, datagram: &[u8]) -> Action {
        let msg = Message::parse(datagram);
        if let Some(reason) = unreadable(&msg) {
            return Action::Malformed { reason };
        }
        let Some(msg_type) = msg.msg_type else {
            return Action::Malformed { reason: "no msg_type".into() };
        };
        match msg_type {
            MsgType::DiscSend => self.reply(msg_type.name().to_string(), self.discovery_reply()),
            MsgType::SendMsg => {
                let Some(mac) = msg.mac() else {
                    return Action::Malformed { reason: "SEND_MSG without a complete mac_addr".into() };
                };
                let request = format!("SEND_MSG {}", MacAddr(mac));
                if !self.owns.contains(&mac) {
                    return Action::Ignore { request, reason: "not one of our MACs" };
                }
                self.reply(request, Repr::lookup(MsgType::ResponseMsg, mac, self.identity.ip))
            }
            MsgType::ResponseMsg | MsgType::DiscResp => {
                Action::Ignore { request: msg_type.name().to_string(), reason: "a reply, not a request" }
            }
            MsgType::Unknown(t) => Action::Malformed { reason: format!("unknown msg_type {t}") },
        }
    }

    fn discovery_reply(&self) -> Repr {
        let id = &self.identity;
        let mut reply = Repr::discovery_response(&id.ldmd_version, &id.hostname, id.ip);
        if let ReprPayload::Discovery { port_no, .. } = &mut reply.payload {
            *port_no = id.port_no;
        }
        reply
    }

    /// Applies the faults to a correct reply.
    fn reply(&self, request: String, mut reply: Repr) -> Action {
        let mut copies = 1;
        let mut delay = Duration::ZERO;
        for fault in &self.faults {
            match *fault {
                Fault::Delay(d) => delay += d,
                Fault::Drop => copies = 0,
                Fault::Duplicate => copies *= 2,
                Fault::LittleEndian => reply.byte_order = ByteOrder::Little,
                Fault::BadVersion => reply.version_no = ldm::VERSION + 1,
                Fault::BadMagic => reply.magic_no = !ldm::MAGIC,
                Fault::Truncate => reply.len = TRUNCATED_LEN,
                Fault::WrongPort => {
                    if let ReprPayload::Discovery { port_no, .. } = &mut reply.payload {
                        *port_no = ldm::XMPP_PORT + 1;
                    }
                }
            }
        }
        let bytes = reply.to_bytes();
        Action::Reply { request, replies: vec![bytes; copies], delay }
    }
}

/// Why a datagram cannot be a request a (big-endian, SPARC) ldmd reads.
fn unreadable(msg: &Message<'_>) -> Option<String> {
    if msg.byte_order == ByteOrder::Little {
        return Some("little-endian: a SPARC ldmd reads the magic as 0xc4e48705".into());
    }
    let mut findings = Findings::new();
    checks::message(msg, None, false, &mut findings);
    // Problems that make the request unreadable; others (an unusual length,
    // an odd source_ip) a real ldmd would likely let pass.
    let fatal = findings.iter().find(|f| {
        use crate::expert::Key;
        matches!(f.key, Key::LdmBadMagic | Key::LdmBadVersion | Key::LdmTruncated | Key::LdmUnknownType)
    });
    if let Some(finding) = fatal {
        return Some(finding.to_string());
    }
    if msg.msg_type.is_none() {
        return Some(format!("{} bytes: too short for an ldm header", msg.bytes.len()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x2a];

    fn responder(faults: Vec<Fault>) -> Responder {
        Responder {
            identity: Identity {
                hostname: "emu".into(),
                ip: Ipv4Addr::new(10, 0, 0, 2),
                ldmd_version: "3.6.1.0.11".into(),
                port_no: ldm::XMPP_PORT,
            },
            owns: HashSet::from([MAC]),
            faults,
        }
    }

    fn replies(action: Action) -> Vec<Vec<u8>> {
        match action {
            Action::Reply { replies, .. } => replies,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn answers_discovery_and_owned_macs_only() {
        let r = responder(vec![]);
        let disc = replies(r.handle(&Repr::discovery_request().to_bytes()));
        let expected = Repr::discovery_response("3.6.1.0.11", "emu", Ipv4Addr::new(10, 0, 0, 2)).to_bytes();
        assert_eq!(disc, vec![expected]);
        let lookup = Repr::lookup(MsgType::SendMsg, MAC, Ipv4Addr::new(10, 0, 0, 1)).to_bytes();
        let answer = replies(r.handle(&lookup));
        assert_eq!(answer, vec![Repr::lookup(MsgType::ResponseMsg, MAC, Ipv4Addr::new(10, 0, 0, 2)).to_bytes()]);
        let other = Repr::lookup(MsgType::SendMsg, [0, 0x14, 0x4f, 0xf8, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        assert!(matches!(r.handle(&other.to_bytes()), Action::Ignore { .. }));
        let response = Repr::lookup(MsgType::ResponseMsg, MAC, Ipv4Addr::new(10, 0, 0, 1));
        assert!(matches!(r.handle(&response.to_bytes()), Action::Ignore { .. }));
    }

    #[test]
    fn drops_what_it_cannot_read() {
        let r = responder(vec![]);
        let mut little = Repr::discovery_request();
        little.byte_order = ByteOrder::Little;
        let mut bad_version = Repr::discovery_request();
        bad_version.version_no = 9;
        for bytes in [vec![], vec![0; 7], little.to_bytes(), bad_version.to_bytes(), vec![0xff; 312]] {
            assert!(matches!(r.handle(&bytes), Action::Malformed { .. }), "{bytes:?}");
        }
    }

    #[test]
    fn faults_change_the_reply() {
        let request = Repr::discovery_request().to_bytes();
        let parsed = |faults: Vec<Fault>| {
            let out = replies(responder(faults).handle(&request));
            out.iter().map(|b| Repr::parse(&Message::parse(b))).collect::<Vec<_>>()
        };
        assert!(parsed(vec![Fault::Drop]).is_empty());
        assert_eq!(parsed(vec![Fault::Duplicate]).len(), 2);
        assert_eq!(parsed(vec![Fault::LittleEndian])[0].as_ref().unwrap().byte_order, ByteOrder::Little);
        assert_eq!(parsed(vec![Fault::BadVersion])[0].as_ref().unwrap().version_no, 2);
        assert!(parsed(vec![Fault::Truncate])[0].is_err());
        let port = match &parsed(vec![Fault::WrongPort])[0].as_ref().unwrap().payload {
            ReprPayload::Discovery { port_no, .. } => *port_no,
            other => panic!("{other:?}"),
        };
        assert_eq!(port, 6483);
        let delayed = responder(vec![Fault::Delay(Duration::from_millis(300))]).handle(&request);
        assert!(matches!(delayed, Action::Reply { delay, .. } if delay == Duration::from_millis(300)));
        let bad_magic = replies(responder(vec![Fault::BadMagic]).handle(&request));
        assert!(!Message::parse(&bad_magic[0]).magic_ok());
    }

    proptest::proptest! {
        // Any datagram: an action, never a panic; replies only to requests.
        #[test]
        fn any_datagram_gets_an_action(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            if let Action::Reply { replies, .. } = responder(vec![Fault::Duplicate]).handle(&bytes) {
                let msg = Message::parse(&bytes);
                proptest::prop_assert!(matches!(msg.msg_type, Some(MsgType::SendMsg | MsgType::DiscSend)));
                proptest::prop_assert_eq!(replies.len(), 2);
            }
        }

        // Mutations of a valid request: the same.
        #[test]
        fn mutated_requests_get_an_action(at in 0usize..312, value in proptest::prelude::any::<u8>(), cut in 0usize..=312) {
            let mut bytes = Repr::lookup(MsgType::SendMsg, MAC, Ipv4Addr::new(10, 0, 0, 1)).to_bytes();
            bytes[at] = value;
            bytes.truncate(cut);
            let _ = responder(vec![]).handle(&bytes);
        }
    }

    #[test]
    fn fault_names_parse() {
        assert_eq!("delay:250".parse(), Ok(Fault::Delay(Duration::from_millis(250))));
        assert!("delay:x".parse::<Fault>().is_err());
        assert!("explode".parse::<Fault>().unwrap_err().contains("one of"));
    }
}
