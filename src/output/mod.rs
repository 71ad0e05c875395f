//! Everything a human or a program reads: packet lines, trees, hex, JSON, and
//! the closing summary.

pub mod detail;
pub mod hex;
pub mod json;
pub mod numbers;
pub mod summary;
pub mod table;
pub mod text;
pub mod tree;

use std::io::{self, Write};

use crate::analyze::{Annotation, Stats, StatsKind};
use crate::capture::Timestamp;
use crate::dissect::Dissection;
use crate::expert::Finding;

pub use summary::Summary;
pub use text::Style;

/// What the outputs show of one frame: its dissection and what the analysis
/// says of it.
pub struct Packet<'r, 'a> {
    pub d: &'r Dissection<'a>,
    pub note: &'r Annotation,
}

impl Packet<'_, '_> {
    /// Per-packet findings, then those over time.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.d.findings.iter().chain(self.note.findings.iter())
    }

    pub fn has_findings(&self) -> bool {
        !self.d.findings.is_empty() || !self.note.findings.is_empty()
    }
}

/// Where a packet's output lists its responses (`ldm.response_in`), kept for
/// output made before they arrive: a request is held until its window
/// closes, and its responses are then written in there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseSlot {
    /// Bytes into the packet's output.
    at: usize,
    /// For JSON, whose key and comma depend on them: the layer, and whether
    /// it had no field before.
    layer: &'static str,
    first: bool,
}

impl ResponseSlot {
    pub fn at(self) -> usize {
        self.at
    }

    fn tree(at: usize) -> ResponseSlot {
        ResponseSlot { at, layer: "", first: false }
    }
}

/// `-T`: how packets are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per packet (with -V, a tree).
    Text,
    /// One JSON array of records.
    Json,
    /// One JSON record per line.
    Jsonl,
    /// Elasticsearch bulk format, as tshark -T ek.
    Ek,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub format: Format,
    /// `-V`: a tree per packet.
    pub verbose: bool,
    /// `-x`: hex dump of each frame.
    pub hex: bool,
    pub style: Style,
    /// `-l`: flush after every packet.
    pub line_buffered: bool,
}

/// Writes packets in the chosen format; keeps JSON well-formed whatever happens.
pub struct Printer<W: Write> {
    out: W,
    options: Options,
    first_ts: Option<Timestamp>,
    records: u64,
    buf: Vec<u8>,
    seconds: json::SecondText,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, options: Options) -> Printer<W> {
        Printer {
            out,
            options,
            first_ts: None,
            records: 0,
            buf: Vec::with_capacity(4096),
            seconds: json::SecondText::default(),
        }
    }

    /// Relative times count from the first frame read, ldm or not.
    pub fn saw_frame(&mut self, ts: Timestamp) {
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
        }
    }

    /// Seconds since the first frame, as the outputs show it.
    pub fn relative_time(&self, ts: Timestamp) -> f64 {
        self.relative(ts)
    }

    fn relative(&self, ts: Timestamp) -> f64 {
        self.first_ts.map_or(0.0, |first| ts.seconds_since(first))
    }

    /// Writes the output of one packet.
    pub fn packet(&mut self, p: &Packet<'_, '_>) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let written = self.render(p, &mut buf).and_then(|_| self.write_rendered(&[&buf]));
        self.buf = buf;
        written
    }

    /// Appends the output of one packet to `buf`, for [`Printer::write_rendered`]
    /// to write later; returns where in it the packet lists its responses
    /// (from the first byte appended), for [`Printer::write_responses`].
    pub fn render(&mut self, p: &Packet<'_, '_>, buf: &mut Vec<u8>) -> io::Result<Option<ResponseSlot>> {
        self.saw_frame(p.d.frame.ts);
        let rel = self.relative(p.d.frame.ts);
        let start = buf.len();
        let slot = match self.options.format {
            Format::Text => self.text(buf, p, rel)?,
            Format::Json => json::write_record(buf, &mut self.seconds, p, rel, json::Layout::Plain),
            Format::Jsonl | Format::Ek => {
                let layout = if self.options.format == Format::Ek { json::Layout::Ek } else { json::Layout::Plain };
                let slot = json::write_record(buf, &mut self.seconds, p, rel, layout);
                buf.push(b'\n');
                slot
            }
        };
        Ok(slot.map(|slot| ResponseSlot { at: slot.at - start, ..slot }))
    }

    /// Writes a request's responses into its rendered output, at `slot`.
    pub fn write_responses(&self, buf: &mut Vec<u8>, slot: ResponseSlot, responses: &[u64]) {
        match self.options.format {
            // Into a Vec: cannot fail.
            Format::Text => drop(tree::write_responses(buf, responses)),
            Format::Json | Format::Jsonl => json::write_responses(buf, json::Layout::Plain, slot, responses),
            Format::Ek => json::write_responses(buf, json::Layout::Ek, slot, responses),
        }
    }

    /// Writes the output of one packet, as [`Printer::render`] made it, in
    /// pieces (with its responses written in between).
    #[inline(always)]
    pub fn write_rendered(&mut self, pieces: &[&[u8]]) -> io::Result<()> {
        if self.options.format == Format::Json {
            self.out.write_all(if self.records == 0 { b"[\n" } else { b",\n" })?;
        }
        for piece in pieces {
            self.out.write_all(piece)?;
        }
        self.records += 1;
        if self.options.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    fn text(&mut self, buf: &mut Vec<u8>, p: &Packet<'_, '_>, rel: f64) -> io::Result<Option<ResponseSlot>> {
        let slot = if self.options.verbose {
            tree::write_tree(buf, p, rel, self.options.style)?
        } else {
            text::write_line(buf, p, rel, self.options.style)?;
            None
        };
        if self.options.hex {
            hex::write_hex(buf, p.d.frame.data)?;
            buf.push(b'\n');
        }
        Ok(slot)
    }

    /// Writes one `-z` table after the packets: aligned text, or for JSON
    /// outputs a last record `{"stats": {"ldm,hosts": [...]}}`.
    pub fn stats(&mut self, kind: StatsKind, stats: &Stats, summary: &Summary) -> io::Result<()> {
        if self.options.format == Format::Text {
            return stats.write_table(kind, summary, &mut self.out);
        }
        let record = serde_json::json!({ "stats": { kind.name(): stats.to_json(kind, summary) } });
        if self.options.format == Format::Json {
            self.out.write_all(if self.records == 0 { b"[\n" } else { b",\n" })?;
        }
        serde_json::to_writer(&mut self.out, &record)?;
        self.records += 1;
        if self.options.format != Format::Json {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Closes the JSON array (also when reading stopped on an error) and flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.options.format == Format::Json {
            self.out.write_all(if self.records == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }
}

/// `text` for a terminal: control characters (other than line breaks) as
/// `\xNN`, bidirectional overrides as `\u{NNNN}`, so that an error message quoting a user's input
/// (a filter, a config file, a path) cannot move the cursor or recolour
/// the terminal, as packet text cannot.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push('\n'),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            // Bidirectional overrides and isolates reorder what a terminal shows.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
