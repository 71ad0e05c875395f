//! The canonical transcript of a replay: per request, what was sent and what
//! came back, as normalised text lines that compare equal across runs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::dissect::fields::escaped;
use crate::dissect::{checks, Findings};
use crate::expert::MacAddr;
use crate::wire::ldm::{ByteOrder, CharField, Message, MsgType, Payload};

/// Fields blanked by default: they name the responder, which differs
/// between a recording and a replay against another host.
pub const REDACTED_BY_DEFAULT: [&str; 3] = ["source_ip", "ip_address", "hostname"];
/// Every field `--redact` and `--keep` may name.
pub const REDACTABLE: [&str; 5] = ["source_ip", "ip_address", "hostname", "ldmd_version", "port_no"];

/// Which reply fields are compared.
#[derive(Debug, Clone)]
pub struct Normalise {
    redacted: BTreeSet<&'static str>,
}

impl Normalise {
    pub fn new(redact: &[String], keep: &[String]) -> Result<Normalise, String> {
        let known = |name: &String| {
            REDACTABLE.iter().copied().find(|f| f == name).ok_or_else(|| {
                format!("'{name}' is not a reply field that can be redacted; one of: {}", REDACTABLE.join(", "))
            })
        };
        let mut redacted: BTreeSet<&'static str> = REDACTED_BY_DEFAULT.into_iter().collect();
        for name in redact {
            redacted.insert(known(name)?);
        }
        for name in keep {
            redacted.remove(known(name)?);
        }
        Ok(Normalise { redacted })
    }

    fn show(&self, field: &'static str, value: impl std::fmt::Display) -> String {
        if self.redacted.contains(field) {
            format!("{field}=<redacted>")
        } else {
            format!("{field}={value}")
        }
    }
}

/// One replayed request and its replies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exchange {
    /// 1-based position in the capture's requests.
    pub index: usize,
    /// The request's frame number in the capture.
    pub frame: u64,
    pub request: String,
    /// Canonical reply lines, sorted: replies from several hosts to one
    /// multicast request arrive in any order.
    pub replies: Vec<String>,
}

impl Exchange {
    pub fn heading(&self) -> String {
        format!("request {} (frame {}): {}", self.index, self.frame, self.request)
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "{}", self.heading());
        if self.replies.is_empty() {
            let _ = writeln!(out, "  no reply");
        }
        for reply in &self.replies {
            let _ = writeln!(out, "  reply: {reply}");
        }
    }
}

pub fn render(exchanges: &[Exchange]) -> String {
    let mut out = String::new();
    for exchange in exchanges {
        exchange.render(&mut out);
    }
    out
}

/// Reads a rendered transcript back (a stored snapshot), so reports can
/// compare it request by request. Lines it does not know are ignored; the
/// text diff still shows them.
pub fn parse(text: &str) -> Vec<Exchange> {
    let mut exchanges: Vec<Exchange> = Vec::new();
    for line in text.lines() {
        if let Some(reply) = line.strip_prefix("  reply: ") {
            if let Some(last) = exchanges.last_mut() {
                last.replies.push(reply.to_string());
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("request ") else { continue };
        let Some((numbers, request)) = rest.split_once("): ") else { continue };
        let Some((index, frame)) = numbers.split_once(" (frame ") else { continue };
        let (Ok(index), Ok(frame)) = (index.parse(), frame.parse()) else { continue };
        exchanges.push(Exchange { index, frame, request: request.to_string(), replies: Vec::new() });
    }
    exchanges
}

/// What a request is, for the transcript heading.
pub fn describe_request(msg: &Message<'_>) -> String {
    match (msg.msg_type, msg.mac()) {
        (Some(MsgType::SendMsg), Some(mac)) => format!("SEND_MSG mac={}", MacAddr(mac)),
        (Some(t), _) => t.name().to_string(),
        (None, _) => "?".to_string(),
    }
}

/// A reply as one canonical line: every field, the responder's identity
/// redacted as configured, the anomalies, and whether it came late.
pub fn describe_reply(msg: &Message<'_>, header_src: Option<Ipv4Addr>, late: bool, norm: &Normalise) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.push(msg.msg_type.map_or("?".to_string(), |t| t.name().to_string()));
    parts.push(format!("len={}", msg.bytes.len()));
    if msg.byte_order == ByteOrder::Little {
        parts.push("byte_order=little-endian".into());
    }
    parts.push(format!("version_no={}", opt(msg.version_no)));
    parts.push(match msg.magic_no {
        Some(m) => format!("magic_no={m:#010x}"),
        None => "magic_no=?".into(),
    });
    match msg.payload {
        Payload::Lookup(lookup) => {
            parts.push(format!("mac={}", msg.mac().map_or("?".to_string(), |m| MacAddr(m).to_string())));
            parts.push(norm.show("source_ip", text(lookup.source_ip)));
        }
        Payload::Discovery(d) => {
            parts.push(norm.show("ldmd_version", text(d.ldmd_version)));
            parts.push(norm.show("hostname", text(d.hostname)));
            parts.push(norm.show("ip_address", opt(d.ip_address)));
            parts.push(norm.show("port_no", opt(d.port_no)));
        }
        Payload::Opaque(_) => {}
    }
    let mut findings = Findings::new();
    checks::message(msg, header_src, false, &mut findings);
    if !findings.is_empty() {
        let keys: Vec<&str> = findings.iter().map(|f| f.key.name()).collect();
        parts.push(format!("anomalies={}", keys.join(",")));
    }
    if late {
        parts.push("LATE".into());
    }
    parts.join(" ")
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or("?".to_string(), |v| v.to_string())
}

fn text(field: Option<CharField<'_>>) -> String {
    field.map_or("?".to_string(), |f| format!("\"{}\"", escaped(f.text())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ldm::Repr;

    #[test]
    fn redaction_is_configurable() {
        let bytes = Repr::discovery_response("3.6", "host-a", Ipv4Addr::new(10, 0, 0, 2)).to_bytes();
        let msg = Message::parse(&bytes);
        let default = Normalise::new(&[], &[]).unwrap();
        let line = describe_reply(&msg, Some(Ipv4Addr::new(10, 0, 0, 2)), false, &default);
        assert_eq!(
            line,
            "LDMD_DISC_RESP len=312 version_no=1 magic_no=0x0587e4c4 ldmd_version=\"3.6\" hostname=<redacted> ip_address=<redacted> port_no=6482"
        );
        let keep = Normalise::new(&["ldmd_version".into()], &["hostname".into()]).unwrap();
        let line = describe_reply(&msg, None, true, &keep);
        assert!(
            line.contains("hostname=\"host-a\"") && line.contains("ldmd_version=<redacted>") && line.ends_with("LATE")
        );
        assert!(Normalise::new(&["mac".into()], &[]).unwrap_err().contains("one of"));
    }

    #[test]
    fn rendered_transcripts_read_back() {
        let exchanges = vec![
            Exchange { index: 1, frame: 3, request: "LDMD_DISC_SEND".into(), replies: vec!["a".into(), "b".into()] },
            Exchange { index: 2, frame: 9, request: "SEND_MSG mac=00:14:4f:f8:00:01".into(), replies: vec![] },
        ];
        assert_eq!(parse(&render(&exchanges)), exchanges);
    }
}
