//! JSON records (`-T json` array, `-T jsonl` lines) and Elasticsearch bulk
//! (`-T ek`, as tshark writes it). Written straight into a reused buffer: no
//! intermediate document per packet.

use std::io::Write as _;

use crate::capture::Timestamp;
use crate::dissect::fields::{self, name, FieldSink, Name, Rfc3339, Value};
use crate::expert::MacAddr;
use crate::wire::xdr::UuidText;

use super::numbers::{write_fixed, write_integer, write_ip, write_nanos};
use super::{Packet, ResponseSlot};

/// JSON record layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{"frame":{"number":1,...},"ip":{...},...,"expert":[...]}`
    Plain,
    /// tshark's ek: `{"timestamp":"ms","layers":{"frame":{"frame_frame_number":1,...}}}`
    Ek,
}

/// The text of the second last written, as a date and as epoch seconds:
/// records come in time order, many to a second, and spelling the same
/// second out again for each record cost more than most of its fields.
#[derive(Debug, Default)]
pub struct SecondText {
    secs: Option<i64>,
    /// `2026-11-02T09:30:00.000000000Z`; `None` for years outside 0 to 9999.
    date: Option<[u8; 30]>,
    epoch: Vec<u8>,
}

impl SecondText {
    fn update(&mut self, secs: i64) {
        if self.secs == Some(secs) {
            return;
        }
        self.secs = Some(secs);
        self.date = Rfc3339::second_bytes(secs);
        self.epoch.clear();
        write_integer(&mut self.epoch, secs);
    }

    /// A capture time, RFC 3339.
    fn write_time(&mut self, buf: &mut Vec<u8>, ts: Timestamp) {
        self.update(ts.secs);
        if let Some(mut text) = self.date {
            if Rfc3339::set_nanos(&mut text, ts.nanos).is_some() {
                buf.extend_from_slice(&text);
                return;
            }
        }
        let _ = write!(buf, "{}", Rfc3339(ts));
    }

    /// `{secs}.{nanos:09}`, as a timestamp's `Display` writes it.
    fn write_epoch(&mut self, buf: &mut Vec<u8>, ts: Timestamp) {
        self.update(ts.secs);
        buf.extend_from_slice(&self.epoch);
        buf.push(b'.');
        write_nanos(buf, ts.nanos);
    }
}

struct Sink<'b> {
    /// The record's buffer, moved in for the walk: held by value, each
    /// append reaches its length and capacity in one step, where through a
    /// reference it took two.
    buf: Vec<u8>,
    seconds: &'b mut SecondText,
    layout: Layout,
    layer: &'static str,
    first_layer: bool,
    first_field: bool,
    /// Where the record lists its responses.
    responses: Option<ResponseSlot>,
}

/// Whether JSON needs any of `bytes` escaped (most values need none).
/// Without an early exit, so that the compiler checks many bytes per step.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |any, &b| any | !(0x20..=0x7e).contains(&b) | (b == b'"') | (b == b'\\'))
}

fn string(buf: &mut Vec<u8>, s: &str) {
    // Most values need no escaping: copied as they are.
    if !needs_escape(s.as_bytes()) {
        plain_string(buf, s);
        return;
    }
    // serde_json escapes exactly as JSON requires; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// `"s"` for text known to need no escaping (our own names).
#[inline(always)]
fn plain_string(buf: &mut Vec<u8>, s: &str) {
    debug_assert!(!needs_escape(s.as_bytes()), "{s}");
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

/// `"text"` for text that needs no escaping (addresses, times).
fn quoted(buf: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    buf.push(b'"');
    write(buf);
    buf.push(b'"');
}

/// A C string as a JSON string, escaped as Wireshark shows it (`\xNN` for
/// what is not printable ASCII), written straight into the buffer.
fn text(buf: &mut Vec<u8>, bytes: &[u8]) {
    // Most text needs nothing escaped: copied whole.
    if !needs_escape(bytes) {
        buf.push(b'"');
        buf.extend_from_slice(bytes);
        buf.push(b'"');
        return;
    }
    buf.push(b'"');
    for &b in bytes {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\\\\\"),
            0x20..=0x7e => buf.push(b),
            _ => {
                let _ = write!(buf, "\\\\x{b:02x}");
            }
        }
    }
    buf.push(b'"');
}

fn number_list(buf: &mut Vec<u8>, values: impl Iterator<Item = u64>) {
    buf.push(b'[');
    for (i, v) in values.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_integer(buf, v);
    }
    buf.push(b']');
}

/// `"name":`, after a comma unless `first`.
#[inline(always)]
fn plain_key(buf: &mut Vec<u8>, name: Name, first: bool) {
    match name.json_key() {
        // Two copies of known length (the comma or not), not one of a
        // length known only at run time: those are copied in place.
        Some(key) if first => buf.extend_from_slice(&key.as_bytes()[1..]),
        Some(key) => buf.extend_from_slice(key.as_bytes()),
        None => {
            if !first {
                buf.push(b',');
            }
            // Field names are our own identifiers: nothing to escape.
            plain_string(buf, name.text());
            buf.push(b':');
        }
    }
}

impl Sink<'_> {
    #[inline(always)]
    fn key(&mut self, name: Name) {
        let first = std::mem::replace(&mut self.first_field, false);
        if self.layout == Layout::Plain {
            plain_key(&mut self.buf, name, first);
            return;
        }
        // tshark's ek names: layer_layer_field, dots as underscores.
        if !first {
            self.buf.push(b',');
        }
        let layer = self.layer.as_bytes();
        self.buf.push(b'"');
        self.buf.extend_from_slice(layer);
        self.buf.push(b'_');
        self.buf.extend_from_slice(layer);
        self.buf.push(b'_');
        self.buf.extend(name.text().bytes().map(|c| if c == b'.' { b'_' } else { c }));
        self.buf.extend_from_slice(b"\":");
    }
}

impl FieldSink for Sink<'_> {
    #[inline(always)]
    fn layer(&mut self, name: Name) {
        let first = std::mem::replace(&mut self.first_layer, false);
        self.layer = name.text();
        plain_key(&mut self.buf, name, first);
        self.buf.push(b'{');
        self.first_field = true;
    }

    // Inlined into each call of the (generic) field walk, where the name and
    // the kind of value are known: a fifth of a record's cost went to the
    // call, the dispatch on the value and copying names of unknown length.
    #[inline(always)]
    fn field(&mut self, name: Name, value: Value<'_>) {
        self.key(name);
        self.value(value);
    }

    fn end_layer(&mut self) {
        self.buf.push(b'}');
    }

    fn responses_here(&mut self) {
        self.responses = Some(ResponseSlot { at: self.buf.len(), layer: self.layer, first: self.first_field });
    }
}

impl Sink<'_> {
    #[inline(always)]
    fn value(&mut self, value: Value<'_>) {
        let buf = &mut self.buf;
        match value {
            Value::U64(v) => write_integer(buf, v),
            Value::I64(v) => write_integer(buf, v),
            Value::F64(v) => write_fixed(buf, v, 9, 0),
            Value::Bool(v) => buf.extend_from_slice(if v { b"true" } else { b"false" }),
            Value::Str(name) => plain_string(buf, name),
            Value::Text(bytes) => text(buf, bytes),
            Value::CutText(bytes) => {
                buf.extend_from_slice(b"{\"cut\":");
                text(buf, bytes);
                buf.push(b'}');
            }
            Value::Mac(mac) => quoted(buf, |buf| buf.extend_from_slice(&MacAddr(mac).text())),
            Value::Ip(ip) => quoted(buf, |buf| write_ip(buf, ip)),
            Value::Epoch(ts) => quoted(buf, |buf| self.seconds.write_epoch(buf, ts)),
            Value::Time(ts) => quoted(buf, |buf| self.seconds.write_time(buf, ts)),
            Value::U16List(list) => number_list(buf, list.iter().map(|&v| u64::from(v))),
            Value::U64List(list) => number_list(buf, list.iter().copied()),
            Value::Uuid(uuid) => {
                let _ = write!(buf, "\"{}\"", UuidText(uuid));
            }
            Value::TextList(list) => {
                buf.push(b'[');
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    text(buf, item);
                }
                buf.push(b']');
            }
            Value::Utf8(bytes) => {
                let _ = serde_json::to_writer(&mut *buf, &String::from_utf8_lossy(bytes));
            }
            Value::Bytes(bytes) => {
                quoted(buf, |buf| buf.extend_from_slice(crate::dissect::fields::hex_colon(bytes).as_bytes()))
            }
            Value::List(values) => {
                self.buf.push(b'[');
                for (i, item) in values.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    self.value(*item);
                }
                self.buf.push(b']');
            }
        }
    }
}

/// A request's `response_in`, written at the place its record keeps for it
/// (`slot`), as the record would have had it.
pub fn write_responses(buf: &mut Vec<u8>, layout: Layout, slot: ResponseSlot, responses: &[u64]) {
    if responses.is_empty() {
        return;
    }
    let mut seconds = SecondText::default(); // a list of numbers has no time
    let mut sink = Sink {
        buf: std::mem::take(buf),
        seconds: &mut seconds,
        layout,
        layer: slot.layer,
        first_layer: false,
        first_field: slot.first,
        responses: None,
    };
    sink.field(name!("response_in"), Value::U64List(responses));
    *buf = sink.buf;
}

/// A finding's detail as a JSON string, formatted straight into `buf`, and
/// escaped afterwards only if it needs it (no detail quotes packet text
/// today; one that did would).
fn detail(buf: &mut Vec<u8>, detail: &crate::expert::Detail) {
    let start = buf.len();
    buf.push(b'"');
    super::detail::write_detail(buf, detail);
    if !needs_escape(&buf[start + 1..]) {
        buf.push(b'"');
        return;
    }
    let text = String::from_utf8_lossy(&buf[start + 1..]).into_owned();
    buf.truncate(start);
    string(buf, &text);
}

fn expert_plain(buf: &mut Vec<u8>, p: &Packet<'_, '_>) {
    buf.extend_from_slice(b",\"expert\":[");
    for (i, finding) in p.findings().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"key\":");
        plain_string(buf, finding.key.name());
        buf.extend_from_slice(b",\"severity\":");
        plain_string(buf, finding.severity().name());
        if finding.detail != crate::expert::Detail::None {
            buf.extend_from_slice(b",\"detail\":");
            detail(buf, &finding.detail);
        }
        buf.push(b'}');
    }
    buf.push(b']');
}

fn expert_ek(buf: &mut Vec<u8>, p: &Packet<'_, '_>) {
    buf.extend_from_slice(b",\"expert\":{\"expert_expert_key\":[");
    for (i, finding) in p.findings().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        plain_string(buf, finding.key.name());
    }
    buf.extend_from_slice(b"],\"expert_expert_severity\":[");
    for (i, finding) in p.findings().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        plain_string(buf, finding.severity().name());
    }
    buf.extend_from_slice(b"]}");
}

/// Appends one record (no trailing newline) to `buf`; returns where it lists
/// the packet's responses (see [`write_responses`]).
pub fn write_record(
    buf: &mut Vec<u8>,
    seconds: &mut SecondText,
    p: &Packet<'_, '_>,
    time_relative: f64,
    layout: Layout,
) -> Option<ResponseSlot> {
    let d = p.d;
    match layout {
        Layout::Plain => buf.push(b'{'),
        Layout::Ek => {
            // tshark's index name: packets-YYYY-MM-DD (the first 10 bytes of the time).
            let _ = write!(buf, "{{\"index\":{{\"_index\":\"packets-");
            let start = buf.len();
            seconds.write_time(buf, d.frame.ts);
            buf.truncate(start + 10);
            let _ = writeln!(buf, "\"}}}}");
            let millis = d.frame.ts.as_nanos().div_euclid(1_000_000);
            let _ = write!(buf, "{{\"timestamp\":\"{millis}\",\"layers\":{{");
        }
    }
    let mut sink = Sink {
        buf: std::mem::take(buf),
        seconds,
        layout,
        layer: "",
        first_layer: true,
        first_field: true,
        responses: None,
    };
    fields::walk(d, time_relative, &mut sink, &|s| p.note.fields(s));
    let responses = sink.responses;
    *buf = sink.buf;
    match layout {
        Layout::Plain => {
            expert_plain(buf, p);
            buf.push(b'}');
        }
        Layout::Ek => {
            expert_ek(buf, p);
            buf.extend_from_slice(b"}}");
        }
    }
    responses
}

#[cfg(test)]
mod tests {
    use super::SecondText;
    use crate::capture::Timestamp;
    use crate::dissect::fields::Rfc3339;
    use crate::expert::Detail;

    #[test]
    fn a_kept_second_reads_as_the_time_itself() {
        let mut seconds = SecondText::default();
        let far = 253_402_300_800; // year 10000: no kept date text
        let times = [(5, 1), (5, 999_999_999), (6, 0), (5, 7), (far, 3), (far, 4), (-1, 5), (6, 1_500_000_000), (6, 2)];
        for (secs, nanos) in times {
            let ts = Timestamp::new(secs, nanos);
            let mut time = Vec::new();
            seconds.write_time(&mut time, ts);
            assert_eq!(String::from_utf8(time).unwrap(), Rfc3339(ts).to_string(), "{ts:?}");
            let mut epoch = Vec::new();
            seconds.write_epoch(&mut epoch, ts);
            assert_eq!(String::from_utf8(epoch).unwrap(), ts.to_string(), "{ts:?}");
        }
    }

    #[test]
    fn epochs_are_written_as_display_writes_them() {
        let damaged = (7, 1_500_000_000);
        let cases = [
            (0, 0),
            (1_793_611_800, 5),
            (-1, 999_999_999),
            (i64::MAX, 123_456_789),
            (3, 10),
            (4, 100_000_000),
            damaged,
        ];
        // One kept second for all, as records share it.
        let mut seconds = SecondText::default();
        for (secs, nanos) in cases {
            let ts = Timestamp::new(secs, nanos);
            let mut epoch = Vec::new();
            seconds.write_epoch(&mut epoch, ts);
            assert_eq!(String::from_utf8(epoch).unwrap(), ts.to_string());
        }
    }

    #[test]
    fn a_detail_that_needs_escaping_is_escaped() {
        for (detail, want) in [(Detail::Field("source_ip"), "in source_ip"), (Detail::Field("a\"b\\c"), "in a\"b\\c")] {
            let mut buf = b"x".to_vec();
            super::detail(&mut buf, &detail);
            let parsed: String = serde_json::from_slice(&buf[1..]).expect("a JSON string");
            assert_eq!(parsed, want);
        }
    }
}
