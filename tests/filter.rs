//! Display filters on real captures: exact frames matched, and the filter's
//! field list equal to the fields the outputs emit.

use std::collections::BTreeSet;
use std::io::Cursor;

use ldm_sniff::analyze;
use ldm_sniff::capture::CaptureReader;
use ldm_sniff::dissect::fields::{self, FieldSink, Value};
use ldm_sniff::dissect::{self};
use ldm_sniff::filter::{Filter, FIELDS};
use ldm_sniff::output::Packet;
use ldm_sniff::pipeline;
use ldm_sniff::synth::captures;

fn capture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/captures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("capture present")
}

/// Frame numbers of the packets `expression` matches (ldm packets only).
/// `ldm.response_in` is filled by the binary's output queue, so tests/cli.rs
/// covers it.
fn matching(name: &str, expression: &str) -> Vec<u64> {
    let filter = Filter::compile(expression).unwrap_or_else(|e| panic!("{}", e.render(expression)));
    let reader = CaptureReader::from_reader(name, Cursor::new(capture(name))).expect("opens");
    let options = dissect::Options { heuristic: true, ..dissect::Options::default() };
    let mut frames = Vec::new();
    pipeline::walk_analyzed(reader, options, analyze::Options::default(), |d, note| {
        if d.is_ldm() && filter.matches(&Packet { d, note }, 0.0) {
            frames.push(d.frame.number);
        }
        Ok(true)
    })
    .expect("no output error");
    frames
}

#[test]
fn filters_select_exactly_the_right_frames() {
    let cases: &[(&str, &str, &[u64])] = &[
        ("mac-collision.pcapng", "ldm.msg_type == SEND_MSG", &[1, 3]),
        ("mac-collision.pcapng", "ldm.msg_type != SEND_MSG", &[2]),
        ("mac-collision.pcapng", "ldm.mac == 00:14:4f:f8:12:34", &[1, 2]),
        ("mac-collision.pcapng", "ldm.rtt", &[2]),
        ("discovery.pcapng", r#"ldm.hostname matches "^ldom-[ab]$""#, &[2, 3]),
        ("discovery.pcapng", r#"ldm.hostname contains "-c""#, &[4]),
        ("discovery.pcapng", "ip.src == 10.1.1.8/29 and not ldm.hostname == \"ldom-b\"", &[2, 4]),
        ("discovery.pcapng", "ldm.rtt > 0.004 and ldm.rtt <= 0.005", &[3]),
        ("discovery.pcapng", "not (ip.src == 10.1.1.10 or ip.src == 10.1.1.11)", &[1, 4]),
        ("discovery.pcapng", "ip.addr == 10.1.1.5", &[1]),
        ("discovery.pcapng", "ldm.msg_type == 3 && ldm.port == 6482 && ldm.ldmd_version == \"3.6.1.0.11\"", &[2, 3, 4]),
        ("discovery.pcapng", "ldm.source_ip", &[]),
        ("two-owners.pcapng", r#"expert == "ldm.duplicate_owner""#, &[3]),
        ("two-owners.pcapng", r#"expert.severity == "note" and not expert.severity == "error""#, &[2]),
        ("two-owners.pcapng", "ldm.source_ip == 10.1.1.0/24 and ldm.source_ip != 10.1.1.10", &[2, 3]),
        ("vlan.pcapng", "eth.vlan == 200", &[3]),
        ("vlan.pcapng", "eth.vlan == 100", &[1, 2, 3]),
        ("mixed-traffic.pcapng", "udp.port == 5000", &[6]),
        ("mixed-traffic.pcapng", "ip.hdr_len > 20", &[7]),
        ("anomalies.pcapng", "ipv6", &[26]),
        // Sets, ranges and `not in`, as Wireshark writes them.
        ("mac-collision.pcapng", "ldm.msg_type in {SEND_MSG RESPONSE_MSG}", &[1, 2, 3]),
        ("discovery.pcapng", "ip.src in {10.1.1.10 10.1.1.12}", &[2, 4]),
        ("discovery.pcapng", "ip.src in {10.1.1.8/30, 10.1.1.4/30}", &[1, 2, 3]),
        ("discovery.pcapng", "ldm.rtt in {0.004..0.01}", &[3, 4]),
        ("discovery.pcapng", "ip.src not in {10.1.1.10 10.1.1.11}", &[1, 4]),
        ("discovery.pcapng", r#"ldm.hostname in {"ldom-a" "ldom-c"}"#, &[2, 4]),
        ("anomalies.pcapng", "ip.ttl > 1", &[20]),
        ("anomalies.pcapng", "ldm.byte_order == \"little\"", &[3]),
        ("anomalies.pcapng", "frame.cap_len < frame.len or expert == \"frame.truncated\"", &[27]),
    ];
    let mut failures = Vec::new();
    for (capture, expression, expected) in cases {
        let got = matching(capture, expression);
        if got != *expected {
            failures.push(format!("{capture}: {expression}: got {got:?}, expected {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Collects `layer.field` names.
struct Names(BTreeSet<String>, &'static str);

impl FieldSink for Names {
    fn layer(&mut self, name: fields::Name) {
        self.1 = name.text();
    }
    fn field(&mut self, name: fields::Name, _: Value<'_>) {
        // JSON copies a key written out beforehand: it must say the name.
        if let Some(key) = name.json_key() {
            assert_eq!(key, format!(",\"{}\":", name.text()));
        }
        self.0.insert(format!("{}.{}", self.1, name.text()));
    }
    fn end_layer(&mut self) {}
}

#[test]
fn the_filter_knows_every_field_the_outputs_emit() {
    let mut names = Names(BTreeSet::new(), "");
    for g in captures::all() {
        let reader = CaptureReader::from_reader(g.name, Cursor::new(g.bytes)).expect("opens");
        pipeline::walk_analyzed(reader, dissect::Options::default(), analyze::Options::default(), |d, note| {
            fields::walk(d, 0.0, &mut names, &|s| note.fields(s));
            Ok(true)
        })
        .expect("no output error");
    }
    // libvirt payload fields are the generated tables' (wire::xdr::FIELD_PATHS).
    let generated = ldm_sniff::wire::xdr::FIELD_PATHS.iter().map(|(n, _)| *n);
    let known: BTreeSet<&str> = FIELDS.iter().map(|(n, _, _)| *n).chain(generated).collect();
    let unknown: Vec<&String> = names.0.iter().filter(|n| !known.contains(n.as_str())).collect();
    assert!(unknown.is_empty(), "fields emitted but not in filter::FIELDS: {unknown:?}");
    assert!(names.0.len() > 50, "only {} fields seen", names.0.len());
}
