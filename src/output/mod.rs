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

    pub fn packet(&mut self, p: &Packet<'_, '_>) -> io::Result<()> {
        let d = p.d;
        self.saw_frame(d.frame.ts);
        let rel = self.relative(d.frame.ts);
        match self.options.format {
            Format::Text => self.text(p, rel)?,
            Format::Json => {
                self.out.write_all(if self.records == 0 { b"[\n" } else { b",\n" })?;
                self.json(p, rel, json::Layout::Plain, "")?;
            }
            Format::Jsonl => self.json(p, rel, json::Layout::Plain, "\n")?,
            Format::Ek => self.json(p, rel, json::Layout::Ek, "\n")?,
        }
        self.records += 1;
        if self.options.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    fn text(&mut self, p: &Packet<'_, '_>, rel: f64) -> io::Result<()> {
        if self.options.verbose {
            tree::write_tree(&mut self.out, p, rel, self.options.style)?;
        } else {
            // Formatted into a buffer, written once: many small writes through
            // the output's formatter adapter cost more than the formatting.
            self.buf.clear();
            text::write_line(&mut self.buf, p, rel, self.options.style)?;
            self.out.write_all(&self.buf)?;
        }
        if self.options.hex {
            hex::write_hex(&mut self.out, p.d.frame.data)?;
            writeln!(self.out)?;
        }
        Ok(())
    }

    /// One record and what follows it, written to the output at once.
    fn json(&mut self, p: &Packet<'_, '_>, rel: f64, layout: json::Layout, end: &str) -> io::Result<()> {
        self.buf.clear();
        json::write_record(&mut self.buf, &mut self.seconds, p, rel, layout);
        self.buf.extend_from_slice(end.as_bytes());
        self.out.write_all(&self.buf)
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
