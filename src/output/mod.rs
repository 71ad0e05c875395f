//! Everything a human or a program reads: packet lines, trees, hex, JSON, and
//! the closing summary.

pub mod columns;
pub mod detail;
pub mod hex;
pub mod iostat;
pub mod json;
pub mod numbers;
mod summary;
pub mod table;
pub mod text;
pub mod time;
pub mod tree;
pub mod xdr;

use std::io::{self, Write};

use crate::analyze::{Stats, StatsKind, Summary};
use crate::capture::Timestamp;

pub use crate::analyze::Packet;
pub use crate::escape::escape_controls;
pub use text::Style;

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
    /// The fields chosen with -e, one line per packet, as tshark -T fields.
    Fields,
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
    /// `-t`: the time column of packet lines.
    pub time_format: time::TimeFormat,
}

/// Writes packets in the chosen format; keeps JSON well-formed whatever happens.
pub struct Printer<W: Write> {
    out: W,
    options: Options,
    clock: time::Clock,
    /// `-T fields`: the columns, and whether their header is out.
    columns: columns::Columns,
    header_written: bool,
    records: u64,
    buf: Vec<u8>,
    seconds: json::SecondText,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, options: Options) -> Printer<W> {
        Printer {
            out,
            clock: time::Clock::new(options.time_format),
            columns: columns::Columns::default(),
            header_written: false,
            options,
            records: 0,
            buf: Vec::with_capacity(4096),
            seconds: json::SecondText::default(),
        }
    }

    /// `-T fields`: the columns to write.
    pub fn with_columns(mut self, columns: columns::Columns) -> Printer<W> {
        self.columns = columns;
        self
    }

    /// Every frame read, ldm or not: relative times count from the first,
    /// `-t d` from the one before.
    pub fn saw_frame(&mut self, number: u64, ts: Timestamp) {
        self.clock.saw(number, ts);
    }

    /// Seconds since the first frame, as the outputs show it.
    pub fn relative_time(&self, ts: Timestamp) -> f64 {
        self.clock.relative(ts)
    }

    fn relative(&self, ts: Timestamp) -> f64 {
        self.clock.relative(ts)
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
            Format::Fields => {
                if !self.header_written {
                    self.columns.header(buf);
                    self.header_written = true;
                }
                self.columns.write(buf, p, rel)?;
                None
            }
        };
        Ok(slot.map(|slot| ResponseSlot { at: slot.at - start, ..slot }))
    }

    /// Writes a request's responses into its rendered output, at `slot`.
    pub fn write_responses(&self, buf: &mut Vec<u8>, slot: ResponseSlot, responses: &[u64]) {
        match self.options.format {
            // Into a Vec: cannot fail.
            Format::Text => drop(tree::write_responses(buf, responses)),
            // Not held (see `cmd::analyze::config`): no responses to write.
            Format::Fields => {}
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
            let column = self.clock.column(p.d.frame.number, p.d.frame.ts);
            text::write_line(buf, p, rel, column.as_deref(), self.options.style)?;
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
        let rows = stats.rows(kind, summary);
        if matches!(self.options.format, Format::Text | Format::Fields) {
            writeln!(self.out, "===== {} =====", kind.name())?;
            table::write_aligned(&mut self.out, &rows)?;
            return writeln!(self.out);
        }
        self.stats_record(kind.name(), table::to_json(&rows))
    }

    /// Writes one `-z io,stat` table: tshark's layout, or for JSON outputs
    /// a last record `{"stats": {"io,stat": {...}}}`.
    pub fn io_stat(&mut self, stat: &iostat::IoStat) -> io::Result<()> {
        if matches!(self.options.format, Format::Text | Format::Fields) {
            return stat.write_text(&mut self.out);
        }
        self.stats_record("io,stat", stat.to_json())
    }

    fn stats_record(&mut self, name: &str, value: serde_json::Value) -> io::Result<()> {
        let record = serde_json::json!({ "stats": { name: value } });
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
