//! A libvirt message as a canonical line, field by field, with what changes
//! from run to run taken out:
//!
//! - values the daemon assigns (UUIDs of objects it creates, callback IDs,
//!   domain IDs, MACs it generates) become symbols numbered by first
//!   appearance (`<uuid-2>`): two runs compare equal when the same objects
//!   appear in the same places;
//! - the fields in `VARIES` (CPU time, clocks, statistics, host names,
//!   creation times) become `<varies>`;
//! - `--redact PATH` blanks more, `--keep PATH` compares a `VARIES` field.
//!
//! Everything else is compared, to the byte.

use std::collections::{BTreeSet, HashMap};

use regex::Regex;

use crate::dissect::fields::escaped;
use crate::wire::libvirt::{Header, Message};
use crate::wire::xdr::{self, Node, Value};

/// The fields whose values change from run to run of the same calls, by
/// field path or, for a whole reply, by struct; and why.
pub const VARIES: [(&str, &str); 18] = [
    ("remote_domain_get_info_ret.cpuTime", "CPU time used so far"),
    ("remote_domain_get_cpu_stats_ret", "CPU statistics"),
    ("remote_domain_get_job_info_ret", "a job's progress and times"),
    ("remote_domain_get_job_stats_ret", "a job's progress and times"),
    ("remote_domain_get_time_ret", "the guest's clock"),
    ("remote_domain_memory_stats_ret", "memory statistics"),
    ("remote_domain_block_stats_ret", "disk statistics"),
    ("remote_domain_block_stats_flags_ret", "disk statistics"),
    ("remote_domain_interface_stats_ret", "network statistics"),
    ("remote_connect_get_all_domain_stats_ret", "statistics"),
    ("remote_node_get_cpu_stats_ret", "host CPU counters"),
    ("remote_node_get_memory_stats_ret", "host memory counters"),
    ("remote_node_get_free_memory_ret.freeMem", "host free memory"),
    ("remote_node_get_cells_free_memory_ret", "host free memory"),
    ("remote_connect_get_hostname_ret.hostname", "the host's name"),
    ("remote_connect_get_sysinfo_ret.sysinfo", "the host's hardware description"),
    ("remote_connect_get_capabilities_ret.capabilities", "the host's description"),
    ("creationTime", "a snapshot's or checkpoint's creation time (an XML element)"),
];

/// What `--redact` and `--keep` take, for the error message.
pub const REDACTABLE_HINT: &str =
    "a libvirt payload field path such as remote_domain_get_info_ret.memory (libvirt.<path> in -Y), or one of the VARIES entries";

/// Strings longer than this are shown by length and fingerprint.
const MAX_SHOWN: usize = 160;

/// Which fields are compared.
#[derive(Debug, Clone)]
pub struct Normalise {
    varies: BTreeSet<String>,
    redacted: BTreeSet<String>,
}

impl Default for Normalise {
    fn default() -> Normalise {
        Normalise { varies: VARIES.iter().map(|(path, _)| path.to_string()).collect(), redacted: BTreeSet::new() }
    }
}

impl Normalise {
    /// `--redact` and `--keep`: field paths as `-Y` names them after
    /// `libvirt.` (or the VARIES entries).
    pub fn new(redact: &[String], keep: &[String]) -> Result<Normalise, String> {
        let mut norm = Normalise::default();
        let known = |name: &String| -> Result<String, String> {
            let name = name.strip_prefix("libvirt.").unwrap_or(name);
            let path = format!("libvirt.{name}");
            let is_path = xdr::FIELD_PATHS.binary_search_by(|(p, _)| (*p).cmp(path.as_str())).is_ok();
            let is_struct = xdr::STRUCTS.iter().any(|s| s.name == name);
            if is_path || is_struct || VARIES.iter().any(|(v, _)| *v == name) {
                Ok(name.to_string())
            } else {
                Err(format!("'{name}' is not a libvirt field to redact or keep: give {REDACTABLE_HINT}"))
            }
        };
        for name in redact {
            norm.redacted.insert(known(name)?);
        }
        for name in keep {
            norm.varies.remove(&known(name)?);
        }
        Ok(norm)
    }

    /// A daemon message as one canonical line.
    pub fn describe(&self, bytes: &[u8], late: bool, symbols: &mut Symbols) -> String {
        let Some(msg) = Message::parse(bytes) else { return "unparsable message".to_string() };
        let h = msg.header;
        let mut line =
            format!("{} {} serial={} status={}", h.msg_type.name(), procedure(&h), h.serial, h.status.name());
        // A listing comes in the daemon's hash-table order: a set.
        let unordered = h.procedure_name().is_some_and(|name| name.contains("LIST"));
        match msg.decode_payload() {
            Some(decoded) => {
                for field in decoded.root.children() {
                    line.push(' ');
                    self.node(field, unordered, symbols, &mut line);
                }
                if decoded.stop.is_some() || decoded.trailing > 0 {
                    line.push_str(" payload=<not its type>");
                }
            }
            None if msg.payload_len() == 0 => {}
            None => line.push_str(&format!(" payload={} bytes fnv={:016x}", msg.payload_len(), fnv1a(msg.payload))),
        }
        if late {
            line.push_str(" LATE");
        }
        line
    }

    /// `name=value` of one node; an array's elements sorted when `unordered`.
    fn node(&self, node: &Node<'_>, unordered: bool, symbols: &mut Symbols, out: &mut String) {
        out.push_str(node.name);
        out.push('=');
        let hidden =
            |set: &BTreeSet<String>| set.contains(node.path) || node.type_name.is_some_and(|t| set.contains(t));
        if hidden(&self.redacted) {
            out.push_str("<redacted>");
            return;
        }
        if hidden(&self.varies) {
            out.push_str("<varies>");
            return;
        }
        match &node.value {
            Value::Compound(children) if node.type_name.is_some() => {
                out.push('{');
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    self.node(child, unordered, symbols, out);
                }
                out.push('}');
            }
            Value::Compound(elements) => {
                let mut order: Vec<&Node<'_>> = elements.iter().collect();
                if unordered {
                    // Sorted by how each element reads before it takes
                    // symbols, so symbols are then numbered in that order.
                    let key = |element: &Node<'_>| {
                        let mut text = String::new();
                        self.node(element, unordered, &mut symbols.clone(), &mut text);
                        text
                    };
                    order.sort_by_cached_key(|element| key(element));
                }
                out.push('[');
                for (i, element) in order.into_iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    // An array's elements: their values alone.
                    let mut text = String::new();
                    self.node(element, unordered, symbols, &mut text);
                    out.push_str(text.split_once('=').map_or(text.as_str(), |(_, v)| v));
                }
                out.push(']');
            }
            value => out.push_str(&self.leaf(node.path, value, symbols)),
        }
    }

    fn leaf(&self, path: &str, value: &Value<'_>, symbols: &mut Symbols) -> String {
        match value {
            Value::Uuid(uuid) => symbols.uuid(*uuid),
            Value::Int(v) if is_callback_id(path) => symbols.callback(*v),
            Value::Int(v) if path == "remote_nonnull_domain.id" && *v >= 0 => symbols.domain_id(*v),
            Value::Int(v) => v.to_string(),
            Value::UInt(v) => v.to_string(),
            Value::Float(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
            Value::Enum(v, Some(name)) => format!("{name}({v})"),
            Value::Enum(v, None) => v.to_string(),
            Value::Null => "null".to_string(),
            Value::Bytes(bytes) => format!("<{} bytes fnv={:016x}>", bytes.len(), fnv1a(bytes)),
            Value::Str(bytes) => self.text(bytes, symbols),
            Value::Compound(_) => String::new(),
        }
    }

    /// A string, escaped; XML inside it normalised (UUIDs and MACs as
    /// symbols, creation times varied); a long one by length and hash.
    fn text(&self, bytes: &[u8], symbols: &mut Symbols) -> String {
        let text = escaped(bytes);
        let text = symbols.in_xml(&text, self.varies.contains("creationTime"));
        if text.len() > MAX_SHOWN {
            return format!("<{} bytes fnv={:016x}>", text.len(), fnv1a(text.as_bytes()));
        }
        format!("\"{}\"", text.replace('"', "\\\""))
    }
}

/// Daemon-assigned values seen so far in a transcript, numbered by first
/// appearance.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    uuids: HashMap<[u8; 16], usize>,
    callbacks: HashMap<i64, usize>,
    domain_ids: HashMap<i64, usize>,
    macs: HashMap<String, usize>,
}

impl Symbols {
    fn uuid(&mut self, uuid: [u8; 16]) -> String {
        let next = self.uuids.len() + 1;
        format!("<uuid-{}>", self.uuids.entry(uuid).or_insert(next))
    }

    fn callback(&mut self, id: i64) -> String {
        let next = self.callbacks.len() + 1;
        format!("<callback-{}>", self.callbacks.entry(id).or_insert(next))
    }

    fn domain_id(&mut self, id: i64) -> String {
        let next = self.domain_ids.len() + 1;
        format!("<id-{}>", self.domain_ids.entry(id).or_insert(next))
    }

    fn mac(&mut self, mac: &str) -> String {
        let next = self.macs.len() + 1;
        format!("<mac-{}>", self.macs.entry(mac.to_ascii_lowercase()).or_insert(next))
    }

    /// XML text with its UUIDs and MAC addresses as symbols and, when
    /// `vary_times`, creation times as `<varies>`.
    fn in_xml(&mut self, text: &str, vary_times: bool) -> String {
        if !text.contains('<') {
            return text.to_string();
        }
        let patterns = xml_patterns();
        let text = patterns.uuid.replace_all(text, |c: &regex::Captures<'_>| match parse_uuid(&c[1]) {
            Some(uuid) => format!("<uuid>{}</uuid>", self.uuid(uuid)),
            None => c[0].to_string(),
        });
        let text =
            patterns.mac.replace_all(&text, |c: &regex::Captures<'_>| format!("{}{}{}", &c[1], self.mac(&c[2]), &c[3]));
        if !vary_times {
            return text.into_owned();
        }
        patterns.creation_time.replace_all(&text, "<creationTime><varies></creationTime>").into_owned()
    }
}

struct XmlPatterns {
    uuid: Regex,
    mac: Regex,
    creation_time: Regex,
}

fn xml_patterns() -> &'static XmlPatterns {
    static PATTERNS: std::sync::OnceLock<XmlPatterns> = std::sync::OnceLock::new();
    PATTERNS.get_or_init(|| XmlPatterns {
        uuid: Regex::new(r"<uuid>([0-9a-fA-F-]{32,36})</uuid>").expect("a valid pattern"),
        mac: Regex::new(r#"(<mac address=['"])([0-9a-fA-F:]{17})(['"])"#).expect("a valid pattern"),
        creation_time: Regex::new(r"<creationTime>[0-9]+</creationTime>").expect("a valid pattern"),
    })
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Callback IDs the daemon hands out (and events carry back).
pub fn is_callback_id(path: &str) -> bool {
    path.ends_with(".callbackID")
}

/// `REMOTE.DOMAIN_GET_INFO`, or the numbers when unknown.
pub fn procedure(h: &Header) -> String {
    match (h.program_name(), h.procedure_name()) {
        (Some(prog), Some(proc_)) => format!("{prog}.{proc_}"),
        (Some(prog), None) => format!("{prog}.{}", h.proc_),
        (None, _) => format!("prog={:#x}.{}", h.prog, h.proc_),
    }
}

/// FNV-1a, 64 bits: a short, stable fingerprint for the transcript.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_uuids_and_macs_become_symbols_and_times_vary() {
        let mut symbols = Symbols::default();
        let xml = "<domain><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><mac address='52:54:00:AA:bb:01'/>\
                   <creationTime>1700000000</creationTime></domain>";
        let shown = symbols.in_xml(xml, true);
        assert_eq!(
            shown,
            "<domain><uuid><uuid-1></uuid><mac address='<mac-1>'/><creationTime><varies></creationTime></domain>"
        );
        // The same UUID outside XML is the same symbol.
        let uuid = parse_uuid("6695eb01-f6a4-8304-79aa-97f2502e193f").unwrap();
        assert_eq!(symbols.uuid(uuid), "<uuid-1>");
    }

    #[test]
    fn redact_and_keep_name_real_fields() {
        let norm = Normalise::new(&["remote_domain_get_info_ret.memory".into()], &["creationTime".into()]).unwrap();
        assert!(norm.redacted.contains("remote_domain_get_info_ret.memory"));
        assert!(!norm.varies.contains("creationTime"));
        let err = Normalise::new(&["nosuch.field".into()], &[]).unwrap_err();
        assert!(err.contains("not a libvirt field"), "{err}");
    }
}
