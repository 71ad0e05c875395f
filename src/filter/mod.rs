//! Display filters (`-Y`), Wireshark style: fields of every layer we decode,
//! `== != < > <= >= contains matches`, CIDR and MAC literals, symbolic
//! msg_type names, `and or not`, parentheses, and bare fields (present).
//! Applied after the analysis, so filtered output keeps every verdict.

pub mod parse;

use std::net::IpAddr;

use regex::Regex;

use crate::analyze::Packet;
use crate::dissect::fields::{self, FieldSink, Value};
use crate::expert::parse_mac;
use crate::wire::ldm::MsgType;

pub use parse::FilterError;
use parse::{Ast, Spanned, Token};

/// What a field holds, for checking comparisons when the filter is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Text,
    Addr,
    /// Text that holds an address (ldm.source_ip): compares as either.
    AddrText,
    Mac,
    Bool,
}

/// Every field a filter can name: the JSON layers' fields (see
/// `dissect::fields::walk` and `analyze::Annotation::fields`; a test keeps
/// this list equal to what they emit), the analysis's, and a few
/// Wireshark conveniences (`ip.addr`, `udp.port`, `eth.addr`).
pub const FIELDS: &[(&str, Kind, &str)] = &[
    ("frame.number", Kind::Number, "Frame number in the capture"),
    ("frame.time", Kind::Text, "Capture time (RFC 3339, UTC)"),
    ("frame.time_epoch", Kind::Text, "Capture time in seconds since 1970"),
    ("frame.time_relative", Kind::Number, "Seconds since the first frame"),
    ("frame.len", Kind::Number, "Length on the wire"),
    ("frame.cap_len", Kind::Number, "Length captured"),
    ("frame.interface_id", Kind::Number, "Capture interface index (pcapng)"),
    ("frame.linktype", Kind::Text, "Link type of the frame"),
    ("eth.src", Kind::Mac, "Ethernet source"),
    ("eth.dst", Kind::Mac, "Ethernet destination"),
    ("eth.vlan", Kind::Number, "802.1Q VLAN IDs, outer first"),
    ("sll.src", Kind::Mac, "Linux cooked capture: link-layer source"),
    ("sll.pkttype", Kind::Number, "Linux cooked capture: packet type (4 sent by the capturing host)"),
    ("sll.ifindex", Kind::Number, "Linux cooked capture v2: interface index"),
    ("sll.vlan", Kind::Number, "Linux cooked capture: VLAN IDs"),
    ("ipnet.family", Kind::Number, "Solaris ipnet: address family (2 IPv4, 26 IPv6)"),
    ("ipnet.htype", Kind::Number, "Solaris ipnet: hook (0 inbound, 1 outbound, 2 local)"),
    ("ipnet.zsrc", Kind::Number, "Solaris ipnet: source zone"),
    ("ipnet.zdst", Kind::Number, "Solaris ipnet: destination zone"),
    ("ipnet.ifindex", Kind::Number, "Solaris ipnet: interface index"),
    ("ip.src", Kind::Addr, "IPv4 source"),
    ("ip.dst", Kind::Addr, "IPv4 destination"),
    ("ip.ttl", Kind::Number, "IPv4 time to live"),
    ("ip.proto", Kind::Number, "IPv4 protocol"),
    ("ip.len", Kind::Number, "IPv4 total length"),
    ("ip.hdr_len", Kind::Number, "IPv4 header length"),
    ("ip.id", Kind::Number, "IPv4 identification"),
    ("ip.checksum", Kind::Number, "IPv4 header checksum"),
    ("ip.checksum_status", Kind::Text, "IPv4 header checksum verdict (good, bad, unverified)"),
    ("ip.flags_mf", Kind::Bool, "IPv4 more-fragments flag"),
    ("ip.frag_offset", Kind::Number, "IPv4 fragment offset in bytes"),
    ("ip.reassembled_fragments", Kind::Number, "Fragments the datagram was reassembled from"),
    ("ip.reassembled_first_frame", Kind::Number, "Frame of the datagram's first fragment"),
    ("ipv6.src", Kind::Addr, "IPv6 source"),
    ("ipv6.dst", Kind::Addr, "IPv6 destination"),
    ("ipv6.ttl", Kind::Number, "IPv6 hop limit"),
    ("ipv6.proto", Kind::Number, "IPv6 next header (after extension headers)"),
    ("ipv6.len", Kind::Number, "IPv6 payload length"),
    ("ipv6.flags_mf", Kind::Bool, "IPv6 fragment header: more fragments"),
    ("ipv6.frag_offset", Kind::Number, "IPv6 fragment offset in bytes"),
    ("udp.srcport", Kind::Number, "UDP source port"),
    ("udp.dstport", Kind::Number, "UDP destination port"),
    ("udp.length", Kind::Number, "UDP length"),
    ("udp.checksum", Kind::Number, "UDP checksum"),
    ("udp.checksum_status", Kind::Text, "UDP checksum verdict (good, bad, partial, unverified)"),
    ("ldm.len", Kind::Number, "ldm message length"),
    ("ldm.byte_order", Kind::Text, "ldm byte order (big, little)"),
    ("ldm.version", Kind::Number, "ldm version_no"),
    ("ldm.magic", Kind::Number, "ldm magic_no"),
    ("ldm.msg_type", Kind::Number, "ldm msg_type (0 SEND_MSG, 1 RESPONSE_MSG, 2 LDMD_DISC_SEND, 3 LDMD_DISC_RESP)"),
    ("ldm.msg_type_name", Kind::Text, "ldm msg_type by name (BAD_MAGIC for a wrong magic)"),
    ("ldm.resv", Kind::Number, "ldm resv"),
    ("ldm.mac", Kind::Mac, "MAC looked up"),
    ("ldm.mac_addr", Kind::Number, "MAC looked up, as the u64 mac_addr"),
    ("ldm.source_ip", Kind::AddrText, "Requester's address in a lookup (text)"),
    ("ldm.ldmd_version", Kind::Text, "ldmd version in a discovery response"),
    ("ldm.hostname", Kind::Text, "Host name in a discovery response"),
    ("ldm.ip_address", Kind::Addr, "Address in a discovery response"),
    ("ldm.port", Kind::Number, "XMPP port in a discovery response"),
    ("ldm.trailing_len", Kind::Number, "Bytes after the 312-byte message"),
    ("ldm.request_in", Kind::Number, "Frame of the request this response answers"),
    ("ldm.rtt", Kind::Number, "Response time in seconds"),
    ("ldm.response_in", Kind::Number, "Frames of this request's responses"),
    ("tcp.srcport", Kind::Number, "TCP source port"),
    ("tcp.dstport", Kind::Number, "TCP destination port"),
    ("tcp.seq", Kind::Number, "TCP sequence number"),
    ("tcp.ack", Kind::Number, "TCP acknowledgement number"),
    ("tcp.flags", Kind::Number, "TCP flags"),
    ("tcp.len", Kind::Number, "TCP payload length"),
    ("libvirt.len", Kind::Number, "libvirt message length"),
    ("libvirt.prog", Kind::Number, "libvirt program number"),
    ("libvirt.prog_name", Kind::Text, "libvirt program (REMOTE, QEMU, LXC, KEEPALIVE, ADMIN)"),
    ("libvirt.vers", Kind::Number, "libvirt protocol version"),
    ("libvirt.proc", Kind::Number, "libvirt procedure number"),
    ("libvirt.proc_name", Kind::Text, "libvirt procedure name"),
    ("libvirt.type", Kind::Number, "libvirt message type (0 CALL, 1 REPLY, 2 MESSAGE, 3 STREAM ...)"),
    ("libvirt.type_name", Kind::Text, "libvirt message type by name"),
    ("libvirt.serial", Kind::Number, "libvirt serial"),
    ("libvirt.status", Kind::Number, "libvirt status (0 OK, 1 ERROR, 2 CONTINUE)"),
    ("libvirt.status_name", Kind::Text, "libvirt status by name"),
    ("libvirt.payload_len", Kind::Number, "libvirt payload length"),
    ("libvirt.error_code", Kind::Number, "libvirt error code (virErrorNumber)"),
    ("libvirt.error_domain", Kind::Number, "libvirt error domain (virErrorDomain)"),
    ("libvirt.error_message", Kind::Text, "libvirt error message"),
    ("libvirt.request_in", Kind::Number, "Frame of the call this reply answers"),
    ("libvirt.rtt", Kind::Number, "Call to reply time in seconds"),
    ("tls.content_type", Kind::Number, "TLS record content type"),
    ("tls.record", Kind::Text, "TLS record kind (ClientHello, ServerHello, ApplicationData ...)"),
    ("tls.record_version", Kind::Number, "TLS record layer version"),
    ("tls.length", Kind::Number, "TLS record length"),
    ("tls.version", Kind::Number, "TLS version offered (ClientHello) or chosen (ServerHello)"),
    ("tls.server_name", Kind::Text, "TLS server name indication"),
    ("expert", Kind::Text, "Anomaly keys of the packet"),
    ("expert.severity", Kind::Text, "Severities of its anomalies (note, warn, error)"),
];

/// Layer names: a bare layer is true when the packet has it.
const LAYERS: &[&str] =
    &["frame", "eth", "sll", "ipnet", "ip", "ipv6", "udp", "tcp", "ldm", "libvirt", "tls", "expert"];

/// Names that stand for two fields (either matches).
const ALIASES: &[(&str, [&str; 2])] = &[
    ("ip.addr", ["ip.src", "ip.dst"]),
    ("ipv6.addr", ["ipv6.src", "ipv6.dst"]),
    ("udp.port", ["udp.srcport", "udp.dstport"]),
    ("tcp.port", ["tcp.srcport", "tcp.dstport"]),
    ("eth.addr", ["eth.src", "eth.dst"]),
];

/// Short names for the libvirt objects every procedure names, after the
/// generated paths they stand for (`libvirt.domain.name` is any domain's
/// name, in any procedure's arguments, reply or event).
const LIBVIRT_OBJECTS: &[(&str, &str)] = &[
    ("libvirt.domain.name", "libvirt.remote_nonnull_domain.name"),
    ("libvirt.domain.uuid", "libvirt.remote_nonnull_domain.uuid"),
    ("libvirt.domain.id", "libvirt.remote_nonnull_domain.id"),
    ("libvirt.network.name", "libvirt.remote_nonnull_network.name"),
    ("libvirt.network.uuid", "libvirt.remote_nonnull_network.uuid"),
    ("libvirt.storage_pool.name", "libvirt.remote_nonnull_storage_pool.name"),
    ("libvirt.storage_pool.uuid", "libvirt.remote_nonnull_storage_pool.uuid"),
    ("libvirt.storage_vol.name", "libvirt.remote_nonnull_storage_vol.name"),
    ("libvirt.storage_vol.key", "libvirt.remote_nonnull_storage_vol.key"),
    ("libvirt.interface.name", "libvirt.remote_nonnull_interface.name"),
    ("libvirt.node_device.name", "libvirt.remote_nonnull_node_device.name"),
    ("libvirt.secret.uuid", "libvirt.remote_nonnull_secret.uuid"),
    ("libvirt.snapshot.name", "libvirt.remote_nonnull_domain_snapshot.name"),
    ("libvirt.checkpoint.name", "libvirt.remote_nonnull_domain_checkpoint.name"),
    ("libvirt.nwfilter.name", "libvirt.remote_nonnull_nwfilter.name"),
];

/// The kind of a generated libvirt payload field.
fn xdr_kind(ty: crate::wire::xdr::Ty) -> Kind {
    use crate::wire::xdr::Ty;
    match ty {
        Ty::Array(elem, _) | Ty::FixedArray(elem, _) | Ty::Optional(elem) => xdr_kind(*elem),
        Ty::Str(_) | Ty::Opaque(_) | Ty::FixedOpaque(_) | Ty::Struct(_) | Ty::Union(_) => Kind::Text,
        Ty::Bool => Kind::Bool,
        _ => Kind::Number,
    }
}

/// A literal, already checked against the field's kind.
#[derive(Debug, Clone)]
enum Literal {
    Number(f64),
    Text(String),
    /// An address, or a network with a prefix length.
    Net {
        addr: IpAddr,
        prefix: u8,
    },
    Mac([u8; 6]),
    Bool(bool),
    Regex(Regex),
    /// Another field (indexes into `Filter::fields`), Wireshark's `a < b`.
    Field(Vec<usize>),
}

/// A compiled filter node; fields are indexes into `Filter::fields`.
#[derive(Debug, Clone)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Layer(&'static str),
    Present(Vec<usize>),
    Compare { fields: Vec<usize>, kind: Kind, op: &'static str, literal: Literal },
}

/// A field value as the filter compares it.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Number(f64),
    Text(String),
    Addr(IpAddr),
    Mac([u8; 6]),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
    /// Field names the expression uses.
    fields: Vec<&'static str>,
    /// Whether one of them is `ldm.response_in`, known only after the
    /// request (asked for every packet held for responses).
    tests_responses: bool,
}

/// One entry of the field registry (`-G fields`): name, kind, what it is,
/// and its layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: &'static str,
    pub kind: String,
    pub about: String,
    pub layer: &'static str,
}

/// Every name a filter (and `-T fields`, and JSON) knows: the fields, the
/// aliases, the libvirt objects' short names, and every libvirt payload
/// field of the generated tables.
pub fn registry() -> Vec<FieldInfo> {
    let layer_of = |name: &'static str| name.split('.').next().unwrap_or(name);
    let mut out: Vec<FieldInfo> = FIELDS
        .iter()
        .map(|(name, kind, about)| FieldInfo {
            name,
            kind: kind_name(*kind).to_string(),
            about: about.to_string(),
            layer: layer_of(name),
        })
        .collect();
    for (alias, [a, b]) in ALIASES {
        let kind = kind_of(a).map_or("text", |(_, k)| kind_name(k)).to_string();
        out.push(FieldInfo { name: alias, kind, about: format!("Either {a} or {b}"), layer: layer_of(alias) });
    }
    for (short, path) in LIBVIRT_OBJECTS {
        let kind = kind_of(path).map_or("text", |(_, k)| kind_name(k)).to_string();
        out.push(FieldInfo { name: short, kind, about: format!("Any {path}"), layer: "libvirt" });
    }
    for (path, ty) in crate::wire::xdr::FIELD_PATHS.iter() {
        let (record, field) = path.trim_start_matches("libvirt.").split_once('.').unwrap_or((path, ""));
        out.push(FieldInfo {
            name: path,
            kind: kind_name(xdr_kind(*ty)).to_string(),
            about: format!("{field} of {record} (XDR {})", crate::wire::xdr::type_text(*ty)),
            layer: "libvirt",
        });
    }
    out
}

/// The layers, for `-G protocols`: name and what it is.
pub const PROTOCOLS: [(&str, &str); 12] = [
    ("frame", "Frame (capture metadata)"),
    ("eth", "Ethernet II, with 802.1Q/QinQ tags"),
    ("sll", "Linux cooked capture (v1 and v2)"),
    ("ipnet", "Solaris ipnet"),
    ("ip", "Internet Protocol version 4"),
    ("ipv6", "Internet Protocol version 6"),
    ("udp", "User Datagram Protocol"),
    ("tcp", "Transmission Control Protocol"),
    ("ldm", "ldmd multicast message (Oracle VM Server for SPARC)"),
    ("libvirt", "libvirt RPC"),
    ("tls", "Transport Layer Security records (libvirt over TLS)"),
    ("expert", "ldm-sniff's findings"),
];

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Number => "number",
        Kind::Text => "text",
        Kind::Addr => "address",
        Kind::AddrText => "address text",
        Kind::Mac => "mac",
        Kind::Bool => "bool",
    }
}

/// The fields a name stands for (`ip.addr`: `ip.src` and `ip.dst`), for
/// `-T fields -e`; an unknown name is an error naming the closest one.
pub fn field_names(name: &str) -> Result<Vec<&'static str>, String> {
    if let Some((_, pair)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Ok(pair.to_vec());
    }
    if let Some((known, _)) = kind_of(name) {
        return Ok(vec![known]);
    }
    Err(match suggest(name) {
        Some(s) => format!("-e {name}: unknown field; did you mean {s}? (ldm-sniff -G fields lists every field)"),
        None => format!("-e {name}: unknown field (ldm-sniff -G fields lists every field)"),
    })
}

fn kind_of(name: &str) -> Option<(&'static str, Kind)> {
    if let Some((known, kind, _)) = FIELDS.iter().find(|(n, _, _)| *n == name) {
        return Some((*known, *kind));
    }
    let name = LIBVIRT_OBJECTS.iter().find(|(short, _)| *short == name).map_or(name, |(_, path)| *path);
    let paths = &crate::wire::xdr::FIELD_PATHS;
    let at = paths.binary_search_by(|(path, _)| (*path).cmp(name)).ok()?;
    Some((paths[at].0, xdr_kind(paths[at].1)))
}

/// The closest known name, for "did you mean".
fn suggest(name: &str) -> Option<&'static str> {
    let names = FIELDS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(ALIASES.iter().map(|(n, _)| *n))
        .chain(LAYERS.iter().copied())
        .chain(LIBVIRT_OBJECTS.iter().map(|(n, _)| *n))
        .chain(crate::wire::xdr::FIELD_PATHS.iter().map(|(n, _)| *n));
    names.min_by_key(|candidate| edit_distance(name, candidate)).filter(|candidate| edit_distance(name, candidate) <= 3)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (row[j + 1] + 1).min(row[j] + 1).min(previous + usize::from(ca != *cb));
            previous = current;
        }
    }
    row[b.len()]
}

/// A name that stands for a number: `SEND_MSG`, `CALL`, `ERROR`, `REMOTE`,
/// `DOMAIN_GET_INFO`.
fn symbolic_value(field: &str, word: &str) -> Option<f64> {
    use crate::wire::libvirt;
    let upper = word.to_ascii_uppercase();
    match field {
        "ldm.msg_type" => msg_type_value(word).map(f64::from),
        "libvirt.type" => (0..=6).find(|&t| libvirt::MsgType::from_i32(t).name() == upper).map(f64::from),
        "libvirt.status" => (0..=2).find(|&s| libvirt::Status::from_i32(s).name() == upper).map(f64::from),
        "libvirt.prog" => [
            libvirt::PROGRAM_REMOTE,
            libvirt::PROGRAM_QEMU,
            libvirt::PROGRAM_LXC,
            libvirt::PROGRAM_KEEPALIVE,
            libvirt::PROGRAM_ADMIN,
        ]
        .into_iter()
        .find(|&p| libvirt::program_name(p) == Some(upper.as_str()))
        .map(f64::from),
        "libvirt.proc" => {
            let name = upper.trim_start_matches("REMOTE_PROC_");
            (1..1000).find(|&p| libvirt::procedure_name(libvirt::PROGRAM_REMOTE, p) == Some(name)).map(f64::from)
        }
        _ => None,
    }
}

fn msg_type_value(word: &str) -> Option<u32> {
    [MsgType::SendMsg, MsgType::ResponseMsg, MsgType::DiscSend, MsgType::DiscResp]
        .into_iter()
        .find(|t| {
            t.name().eq_ignore_ascii_case(word) || t.name().trim_start_matches("LDMD_").eq_ignore_ascii_case(word)
        })
        .map(MsgType::to_u32)
}

fn parse_net(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some((addr, prefix))
}

fn parse_number(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

impl Filter {
    /// Compiles an expression, checking every field and value.
    pub fn compile(expression: &str) -> Result<Filter, FilterError> {
        let ast = parse::parse(expression)?;
        let mut fields = Vec::new();
        let root = compile_node(&ast, &mut fields)?;
        let tests_responses = fields.contains(&"ldm.response_in");
        Ok(Filter { root, fields, tests_responses })
    }

    /// Whether the packet matches.
    pub fn matches(&self, p: &Packet<'_, '_>, time_relative: f64) -> bool {
        self.matches_with(self.found(p, time_relative), &[])
    }

    /// Whether the expression tests a request's responses
    /// (`ldm.response_in`), which are known only after the request.
    pub fn tests_responses(&self) -> bool {
        self.tests_responses
    }

    /// What the expression looks for in the packet, to decide whether it
    /// matches once its responses are known ([`Filter::matches_with`]).
    pub fn found(&self, p: &Packet<'_, '_>, time_relative: f64) -> Found {
        let mut values = Values { wanted: &self.fields, found: Found::default() };
        fields::walk(p.d, time_relative, &mut values, &|s| p.note.fields(s));
        for finding in p.findings() {
            values.push("expert", Got::Text(finding.key.name().to_string()));
            values.push("expert.severity", Got::Text(finding.severity().name().to_string()));
        }
        if p.has_findings() {
            values.found.layers.push("expert");
        }
        values.found
    }

    /// Whether a packet matches, from what [`Filter::found`] found in it and
    /// the responses to it that came after.
    pub fn matches_with(&self, found: Found, responses: &[u64]) -> bool {
        let mut values = Values { wanted: &self.fields, found };
        if let Some(layer) = values.found.responses_layer.filter(|_| !responses.is_empty()) {
            ValueSink { values: &mut values, layer }.field("response_in", Value::U64List(responses));
        }
        eval(&self.root, &values.found)
    }
}

fn compile_node(ast: &Ast, fields: &mut Vec<&'static str>) -> Result<Node, FilterError> {
    Ok(match ast {
        Ast::Or(terms) => Node::Or(terms.iter().map(|t| compile_node(t, fields)).collect::<Result<_, _>>()?),
        Ast::And(terms) => Node::And(terms.iter().map(|t| compile_node(t, fields)).collect::<Result<_, _>>()?),
        Ast::Not(a) => Node::Not(Box::new(compile_node(a, fields)?)),
        Ast::Present { field, at } => {
            if let Some(layer) = LAYERS.iter().find(|l| **l == field.as_str()) {
                return Ok(Node::Layer(layer));
            }
            let (indexes, _) = resolve(field, *at, fields)?;
            Node::Present(indexes)
        }
        Ast::Compare { field, field_at, op, value } => {
            let (indexes, kind) = resolve(field, *field_at, fields)?;
            let literal = match other_field(value) {
                Some(name) => {
                    let (other, other_kind) = resolve(name, value.at, fields)?;
                    if other_kind != kind || matches!(*op, "contains" | "matches") {
                        let message = format!("{field} and {name} cannot be compared with {op}");
                        return Err(FilterError::new(message, value.at, value.len));
                    }
                    Literal::Field(other)
                }
                None => literal(field, kind, op, value)?,
            };
            Node::Compare { fields: indexes, kind, op, literal }
        }
    })
}

/// A bare word naming a known field (field names always have a dot, or are
/// `expert`), so the comparison is field against field.
fn other_field(value: &Spanned) -> Option<&str> {
    let Token::Word(word) = &value.token else { return None };
    let known = kind_of(word).is_some() || ALIASES.iter().any(|(alias, _)| alias == word);
    (known && (word.contains('.') || word == "expert")).then_some(word.as_str())
}

/// A field name to its indexes in `fields` (two for an alias) and its kind.
fn resolve(name: &str, at: usize, fields: &mut Vec<&'static str>) -> Result<(Vec<usize>, Kind), FilterError> {
    let names: Vec<&'static str> = match ALIASES.iter().find(|(alias, _)| *alias == name) {
        Some((_, pair)) => pair.to_vec(),
        None => match kind_of(name) {
            Some((known, _)) => vec![known],
            None => {
                let err = FilterError::new(format!("unknown field '{name}'"), at, name.len());
                return Err(match suggest(name) {
                    Some(s) => err.hint(format!("did you mean {s}? ldm-sniff -G fields lists every field")),
                    None => err.hint("ldm-sniff -G fields lists every field"),
                });
            }
        },
    };
    let kind = kind_of(names[0]).map_or(Kind::Text, |(_, k)| k);
    let indexes = names
        .into_iter()
        .map(|n| match fields.iter().position(|f| *f == n) {
            Some(i) => i,
            None => {
                fields.push(n);
                fields.len() - 1
            }
        })
        .collect();
    Ok((indexes, kind))
}

fn literal(field: &str, kind: Kind, op: &'static str, value: &Spanned) -> Result<Literal, FilterError> {
    let (text, quoted) = match &value.token {
        Token::Word(w) => (w.as_str(), false),
        Token::Str(s) => (s.as_str(), true),
        _ => return Err(FilterError::new("expected a value", value.at, value.len)),
    };
    let bad = |what: &str, example: &str| {
        FilterError::new(format!("{field} is {what}; '{text}' is not"), value.at, value.len)
            .hint(format!("for example {field} {op} {example}"))
    };
    if op == "matches" {
        if !matches!(kind, Kind::Text | Kind::AddrText) {
            return Err(FilterError::new(
                format!("matches works on text fields; {field} is not one"),
                value.at,
                value.len,
            ));
        }
        return Regex::new(text)
            .map(Literal::Regex)
            .map_err(|e| FilterError::new(format!("bad regular expression: {e}"), value.at, value.len));
    }
    if op == "contains" && !matches!(kind, Kind::Text | Kind::AddrText) {
        return Err(FilterError::new(
            format!("contains works on text fields; {field} is not one"),
            value.at,
            value.len,
        )
        .hint("use == or a network such as 10.1.0.0/16"));
    }
    let ordering = matches!(op, "<" | ">" | "<=" | ">=");
    Ok(match kind {
        Kind::Number => {
            if let Some(value) = symbolic_value(field, text) {
                return Ok(Literal::Number(value));
            }
            let example = match field {
                "ldm.msg_type" => "SEND_MSG (or 0-3)",
                "libvirt.type" => "CALL (or 0-6)",
                "libvirt.status" => "ERROR (or 0-2)",
                "libvirt.prog" => "REMOTE (or 0x20008086)",
                "libvirt.proc" => "DOMAIN_GET_INFO (a REMOTE procedure) or its number",
                _ => "1",
            };
            Literal::Number(parse_number(text).ok_or_else(|| bad("a number", example))?)
        }
        Kind::Addr => {
            let (addr, prefix) = parse_net(text).ok_or_else(|| bad("an address", "10.1.1.5 or 10.1.0.0/16"))?;
            if ordering {
                return Err(FilterError::new(
                    format!("{field} is an address: use == or != (with a network for ranges)"),
                    value.at,
                    value.len,
                ));
            }
            Literal::Net { addr, prefix }
        }
        Kind::AddrText => match parse_net(text) {
            Some((addr, prefix)) if !quoted && !ordering => Literal::Net { addr, prefix },
            _ => Literal::Text(text.to_string()),
        },
        Kind::Mac => Literal::Mac(parse_mac(text).ok_or_else(|| bad("a MAC address", "00:14:4f:f8:12:34"))?),
        Kind::Bool => match text {
            "1" | "true" | "True" => Literal::Bool(true),
            "0" | "false" | "False" => Literal::Bool(false),
            _ => return Err(bad("true or false", "1")),
        },
        Kind::Text => Literal::Text(text.to_string()),
    })
}

/// What a filter found in one packet: the values of the fields it names,
/// and the layers present.
#[derive(Debug, Default)]
pub struct Found {
    got: Vec<(usize, Got)>,
    layers: Vec<&'static str>,
    /// The layer that lists the packet's responses, if it has that place.
    responses_layer: Option<&'static str>,
}

/// Collects what the filter names from the walk of a packet.
struct Values<'f> {
    wanted: &'f [&'static str],
    found: Found,
}

impl Values<'_> {
    fn push(&mut self, name: &str, got: Got) {
        if let Some(i) = self.wanted.iter().position(|w| *w == name) {
            self.found.got.push((i, got));
        }
    }
}

/// Receives the walk of a packet, keeping only what the filter names.
struct ValueSink<'v, 'f> {
    values: &'v mut Values<'f>,
    layer: &'static str,
}

impl FieldSink for Values<'_> {
    fn layer(&mut self, name: fields::Name) {
        self.found.layers.push(name.text());
    }

    fn field(&mut self, name: fields::Name, value: Value<'_>) {
        let Some(layer) = self.found.layers.last().copied() else { return };
        let mut sink = ValueSink { values: self, layer };
        sink.field(name.text(), value);
    }

    fn end_layer(&mut self) {}

    fn responses_here(&mut self) {
        self.found.responses_layer = self.found.layers.last().copied();
    }
}

impl ValueSink<'_, '_> {
    fn field(&mut self, name: &'static str, value: Value<'_>) {
        // Compare "layer.name" without building the string.
        let layer = self.layer;
        let Some(i) = self.values.wanted.iter().position(|w| {
            w.len() == layer.len() + 1 + name.len()
                && w.starts_with(layer)
                && w.ends_with(name)
                && w.as_bytes()[layer.len()] == b'.'
        }) else {
            return;
        };
        add_value(value, &mut |got| self.values.found.got.push((i, got)));
    }
}

/// What a field's value offers to comparisons; every element of a list.
fn add_value(value: Value<'_>, add: &mut dyn FnMut(Got)) {
    match value {
        Value::U64(v) => add(Got::Number(v as f64)),
        Value::I64(v) => add(Got::Number(v as f64)),
        Value::F64(v) => add(Got::Number(v)),
        Value::Bool(v) => add(Got::Bool(v)),
        Value::Str(s) => add(Got::Text(s.to_string())),
        Value::Text(bytes) => add(Got::Text(fields::escaped(bytes))),
        // Only the start of the sender's value: as if absent, as Wireshark
        // leaves out a field the packet ends inside.
        Value::CutText(_) => {}
        Value::Mac(mac) => add(Got::Mac(mac)),
        Value::Ip(ip) => add(Got::Addr(ip)),
        Value::Epoch(ts) => add(Got::Text(ts.to_string())),
        Value::Time(ts) => add(Got::Text(fields::Rfc3339(ts).to_string())),
        Value::U16List(list) => list.iter().for_each(|v| add(Got::Number(f64::from(*v)))),
        Value::U64List(list) => list.iter().for_each(|v| add(Got::Number(*v as f64))),
        Value::Uuid(uuid) => add(Got::Text(crate::wire::xdr::UuidText(uuid).to_string())),
        Value::TextList(list) => list.iter().for_each(|text| add(Got::Text(fields::escaped(text)))),
        Value::Bytes(bytes) => add(Got::Text(fields::hex_colon(bytes))),
        Value::Utf8(bytes) => add(Got::Text(String::from_utf8_lossy(bytes).into_owned())),
        Value::List(values) => values.iter().for_each(|v| add_value(*v, add)),
    }
}

fn eval(node: &Node, values: &Found) -> bool {
    match node {
        Node::Or(terms) => terms.iter().any(|t| eval(t, values)),
        Node::And(terms) => terms.iter().all(|t| eval(t, values)),
        Node::Not(a) => !eval(a, values),
        Node::Layer(layer) => values.layers.contains(layer),
        Node::Present(fields) => values.got.iter().any(|(i, _)| fields.contains(i)),
        Node::Compare { fields, op, literal: Literal::Field(others), .. } => {
            let mine = values.got.iter().filter(|(i, _)| fields.contains(i)).map(|(_, g)| g);
            let theirs: Vec<&Got> = values.got.iter().filter(|(i, _)| others.contains(i)).map(|(_, g)| g).collect();
            let mut pairs = mine.flat_map(|a| theirs.iter().map(move |b| (a, *b)));
            if *op == "!=" {
                pairs.all(|(a, b)| !compare_values(a, "==", b))
            } else {
                pairs.any(|(a, b)| compare_values(a, op, b))
            }
        }
        Node::Compare { fields, kind, op, literal } => {
            let mut got = values.got.iter().filter(|(i, _)| fields.contains(i)).map(|(_, g)| g);
            // Wireshark's rule: != holds when no value equals; the rest when any value does.
            if *op == "!=" {
                got.all(|g| !compare(g, *kind, "==", literal))
            } else {
                got.any(|g| compare(g, *kind, op, literal))
            }
        }
    }
}

fn in_net(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn ordered<T: PartialOrd>(a: T, op: &str, b: T) -> bool {
    match op {
        "==" => a == b,
        "<" => a < b,
        ">" => a > b,
        "<=" => a <= b,
        ">=" => a >= b,
        _ => false,
    }
}

/// Two field values of the same kind.
fn compare_values(a: &Got, op: &str, b: &Got) -> bool {
    match (a, b) {
        (Got::Number(a), Got::Number(b)) => ordered(*a, op, *b),
        (Got::Text(a), Got::Text(b)) => ordered(a.as_str(), op, b.as_str()),
        (Got::Addr(a), Got::Addr(b)) => op == "==" && a == b,
        (Got::Mac(a), Got::Mac(b)) => ordered(a, op, b),
        (Got::Bool(a), Got::Bool(b)) => op == "==" && a == b,
        _ => false,
    }
}

fn compare(got: &Got, kind: Kind, op: &str, literal: &Literal) -> bool {
    match (got, literal) {
        (Got::Number(a), Literal::Number(b)) => ordered(*a, op, *b),
        (Got::Addr(a), Literal::Net { addr, prefix }) => op == "==" && in_net(*a, *addr, *prefix),
        (Got::Text(text), Literal::Net { addr, prefix }) if kind == Kind::AddrText => {
            op == "==" && text.parse::<IpAddr>().is_ok_and(|a| in_net(a, *addr, *prefix))
        }
        (Got::Mac(a), Literal::Mac(b)) => ordered(a, op, b),
        (Got::Bool(a), Literal::Bool(b)) => op == "==" && a == b,
        (Got::Text(a), Literal::Text(b)) => match op {
            "contains" => a.contains(b.as_str()),
            _ => ordered(a.as_str(), op, b.as_str()),
        },
        (Got::Text(a), Literal::Regex(re)) => re.is_match(a),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_bad_values_are_explained() {
        let err = Filter::compile("ldm.hostnme == \"a\"").unwrap_err();
        assert_eq!((err.at, err.len), (0, 11));
        assert!(err.hint.as_deref().unwrap_or("").contains("ldm.hostname"), "{err:?}");
        let err = Filter::compile("ip.src == not-an-ip").unwrap_err();
        assert_eq!(err.at, 10);
        let err = Filter::compile("ldm.mac == 00:14:4f").unwrap_err();
        assert!(err.message.contains("MAC"), "{err:?}");
        let err = Filter::compile("ip.src > 10.0.0.1").unwrap_err();
        assert!(err.message.contains("address"), "{err:?}");
        let err = Filter::compile("ldm.hostname matches \"(\"").unwrap_err();
        assert!(err.message.contains("regular expression"), "{err:?}");
        let err = Filter::compile("ldm.port contains 1").unwrap_err();
        assert!(err.message.contains("contains"), "{err:?}");
        let err = Filter::compile("ldm.msg_type == SEND").unwrap_err();
        assert!(err.hint.as_deref().unwrap_or("").contains("SEND_MSG"), "{err:?}");
    }

    #[test]
    fn literals() {
        assert_eq!(msg_type_value("send_msg"), Some(0));
        assert_eq!(msg_type_value("DISC_RESP"), Some(3));
        assert_eq!(parse_mac("00-14-4F-F8-12-34"), Some([0, 0x14, 0x4f, 0xf8, 0x12, 0x34]));
        assert_eq!(parse_net("10.1.0.0/16"), Some(("10.1.0.0".parse().unwrap(), 16)));
        assert_eq!(parse_net("10.1.0.0/33"), None);
        assert!(in_net("10.1.7.9".parse().unwrap(), "10.1.0.0".parse().unwrap(), 16));
        assert!(!in_net("10.2.7.9".parse().unwrap(), "10.1.0.0".parse().unwrap(), 16));
        assert!(in_net("fe80::1".parse().unwrap(), "fe80::".parse().unwrap(), 10));
        assert_eq!(parse_number("0x1952"), Some(6482.0));
    }
}
