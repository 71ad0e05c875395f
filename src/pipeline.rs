//! One run over a capture: source -> dissect -> output, with the summary.

use std::io::{self, Write};

use std::collections::VecDeque;

use crate::analyze::Summary;
use crate::analyze::{self, Analyzer, Annotation, StatsKind};
use crate::capture::sink::Sink;
use crate::capture::{CaptureError, Source, Timestamp};
use crate::dissect::{self, Dissection, Dissector};
use crate::filter::{Filter, Found};
use crate::metrics::CaptureMetrics;
use crate::output::iostat::IoStat;
use crate::output::{self, Packet, Printer, ResponseSlot};
use crate::report::{Recorder, Report};
use crate::wire::ldm::MsgType;

/// `-w`: the file or ring of files, and whether `--annotate` comments go
/// with the frames.
pub struct WriteTo {
    pub sink: Sink,
    pub annotate: bool,
}

/// One `-z`: a table of the analysis, or frames and bytes per interval
/// (counted as frames come).
pub enum Statistic {
    Table(StatsKind),
    IoStat(Box<IoStat>),
}

pub struct Config {
    pub dissect: dissect::Options,
    pub output: output::Options,
    /// Stop after this many ldm packets.
    pub count: Option<u64>,
    /// Show non-ldm frames too.
    pub all: bool,
    /// No packet output.
    pub quiet: bool,
    pub analysis: analyze::Options,
    /// `-z` tables, printed after the packets, in the order asked.
    pub stats: Vec<Statistic>,
    /// `-Y`: only matching packets are shown (all are analysed and counted).
    pub filter: Option<Filter>,
    /// `-w`: where frames are written.
    pub write: Option<WriteTo>,
    /// Hold a request until its window closes, to list its responses. Off
    /// for live capture, where a quiet link would hold it indefinitely.
    pub hold: bool,
    /// `-T fields`: the columns (`-e`) and their `-E` options.
    pub columns: output::columns::Columns,
    /// `--metrics`: the counters a scraper reads.
    pub metrics: Option<CaptureMetrics>,
    /// `--report`: what the page shows, collected as the run goes.
    pub report: Option<Recorder>,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    /// `--report`: the page's data, for the caller to write with how the run ended.
    pub report: Option<Report>,
    /// The capture could not be read to its end; everything before was processed.
    pub capture_error: Option<CaptureError>,
}

/// Why a run could not produce output at all, or had to stop writing.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
}

/// Reads every frame, dissects it and hands each dissection to `visit`
/// (fragments given up on are handed over as they expire and at the end).
/// `visit` returns whether to go on. A capture error stops the walk after
/// everything before it was visited, and is returned.
pub fn walk<S, F>(mut reader: S, options: dissect::Options, mut visit: F) -> io::Result<Option<CaptureError>>
where
    S: Source,
    F: FnMut(&Dissection<'_>) -> io::Result<bool>,
{
    let mut dissector = Dissector::new(options);
    let mut error = None;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                // What was read before the damage still ends as it would.
                error = Some(e);
                break;
            }
        };
        if !dissector.dissect_each(frame, &mut visit)? {
            return Ok(None);
        }
        for incomplete in dissector.take_incomplete(false) {
            if let Some(d) = dissector.dissect_incomplete(&incomplete) {
                if !visit(&d)? {
                    return Ok(None);
                }
            }
        }
    }
    if !dissector.finish_streams(&mut visit)? {
        return Ok(error);
    }
    for incomplete in dissector.take_incomplete(true) {
        if let Some(d) = dissector.dissect_incomplete(&incomplete) {
            if !visit(&d)? {
                break;
            }
        }
    }
    Ok(error)
}

/// Like [`walk`], with the analysis: `visit` gets each dissection with what
/// the analysis says of it (an empty annotation for frames that are not ldm).
/// Returns the analyzer, for its statistics.
pub fn walk_analyzed<S: Source, F>(
    reader: S,
    options: dissect::Options,
    analysis: analyze::Options,
    visit: F,
) -> io::Result<(Option<CaptureError>, Analyzer)>
where
    F: FnMut(&Dissection<'_>, &Annotation) -> io::Result<bool>,
{
    walk_metered(reader, options, analysis, None, visit)
}

/// Like [`walk_analyzed`], keeping `metrics` up to date with the analysis's
/// tables as it goes.
fn walk_metered<S: Source, F>(
    reader: S,
    options: dissect::Options,
    analysis: analyze::Options,
    metrics: Option<&CaptureMetrics>,
    mut visit: F,
) -> io::Result<(Option<CaptureError>, Analyzer)>
where
    F: FnMut(&Dissection<'_>, &Annotation) -> io::Result<bool>,
{
    let mut analyzer = Analyzer::new(analysis);
    // One annotation for the whole walk, cleared per packet: making one per
    // frame showed in profiles.
    let mut note = Annotation::default();
    let error = walk(reader, options, |d| {
        analyzer.saw_frame(d.frame.ts);
        if d.is_ldm() {
            analyzer.observe_into(d, &mut note);
            if let Some(m) = metrics {
                let (hosts, macs) = analyzer.stats().known();
                m.tables(hosts, macs, analyzer.evicted());
            }
        } else if d.libvirt.is_some() {
            analyzer.observe_libvirt_into(d, &mut note);
        } else {
            note.clear();
            if d.tls.is_some() {
                analyzer.observe_tls(d);
            }
        }
        visit(d, &note)
    })?;
    Ok((error, analyzer))
}

/// Most bytes of output waiting for requests' windows to close; past it the
/// oldest is written early (its list of responses may then be short).
/// About 9,000 JSON records or 5,300 `-V` trees of ldm packets: as many
/// trees as the held dissections fitted in half this before, and as fast,
/// as both are larger than the core's cache.
const MAX_HELD_BYTES: usize = 8 << 20;

/// Output waiting so that a request can list its responses: a request is
/// held until its window closes, and whatever follows it waits behind it to
/// keep the order. Each packet's output is made as it arrives and kept as
/// bytes, with the place where its responses go; they are written in when
/// it leaves.
struct Held {
    text: HeldText,
    entries: VecDeque<HeldEntry>,
    /// The frame numbers of `entries`, apart: a response's request is found
    /// by binary search, and over the entries (hundreds of kilobytes, out
    /// of the first caches) each step was a cache miss.
    numbers: VecDeque<u64>,
    /// Response lists of entries gone, kept for their allocations.
    spare_lists: Vec<Vec<u64>>,
    /// A request's responses, as written into its output.
    responses: Vec<u8>,
    bytes: usize,
    window: f64,
}

struct HeldEntry {
    ts: Timestamp,
    /// A request, waiting for its window to close.
    waits: bool,
    /// Bytes of its output in `Held::text`.
    len: usize,
    slot: Option<ResponseSlot>,
    responses: Vec<u64>,
    /// With a filter that tests responses: what it found, to decide on
    /// once they are known. (Without, only matching packets are held.)
    found: Option<Box<Found>>,
}

/// Spare response lists kept: one comes back for each request written, so
/// a few are enough.
const MAX_SPARE_LISTS: usize = 8;

/// Held output is written and read in sequence, in memory that has left
/// the caches since it was last used (the cap is larger than the core's
/// cache): at each end, the bytes about two records ahead are fetched.
const FETCH_AHEAD: usize = 2048;
const FETCH_BYTES: usize = 1024;

/// A chunk of held output is full past this many bytes.
const CHUNK_BYTES: usize = 64 << 10;

/// The held packets' outputs, in arrival order, in chunks: each output is
/// made straight into the last chunk and read from the first, and a chunk
/// read to its end is used again. Nothing is copied to make room.
#[derive(Default)]
struct HeldText {
    /// The chunk being filled.
    filling: Vec<u8>,
    /// Full chunks, oldest first.
    full: VecDeque<Vec<u8>>,
    /// Bytes already read of the oldest chunk (the first full one, or
    /// `filling` if none is).
    read: usize,
    /// An emptied chunk, for when `filling` is full.
    spare: Option<Vec<u8>>,
}

impl HeldText {
    /// Where the next packet's output is made; the bytes a little past
    /// its end are fetched for the outputs after it.
    fn tail(&mut self) -> &mut Vec<u8> {
        let ahead = self.filling.as_ptr().wrapping_add(self.filling.len() + FETCH_AHEAD);
        crate::prefetch::range(ahead, FETCH_BYTES);
        &mut self.filling
    }

    /// Starts a new chunk once the one being filled is full.
    fn seal(&mut self) {
        if self.filling.len() < CHUNK_BYTES {
            return;
        }
        let next = self.spare.take().unwrap_or_else(|| Vec::with_capacity(2 * CHUNK_BYTES));
        self.full.push_back(std::mem::replace(&mut self.filling, next));
    }

    /// The next `len` bytes: one packet's output, which lies in one chunk.
    fn front(&self, len: usize) -> &[u8] {
        let oldest = self.full.front().unwrap_or(&self.filling);
        crate::prefetch::range(oldest.as_ptr().wrapping_add(self.read + FETCH_AHEAD), FETCH_BYTES);
        &oldest[self.read..self.read + len]
    }

    /// Done with the next `len` bytes.
    fn consume(&mut self, len: usize) {
        self.read += len;
        match self.full.front() {
            Some(oldest) if self.read == oldest.len() => {
                self.read = 0;
                if let Some(mut emptied) = self.full.pop_front() {
                    emptied.clear();
                    self.spare = Some(emptied);
                }
            }
            None if self.read == self.filling.len() => {
                self.read = 0;
                self.filling.clear();
            }
            _ => {}
        }
    }
}

impl Held {
    fn new(window: f64) -> Held {
        Held {
            text: HeldText::default(),
            entries: VecDeque::new(),
            numbers: VecDeque::new(),
            spare_lists: Vec::new(),
            responses: Vec::new(),
            bytes: 0,
            window,
        }
    }

    /// Bytes an entry costs: its output and its bookkeeping (its number in
    /// `numbers` included).
    fn cost(entry: &HeldEntry) -> usize {
        entry.len + std::mem::size_of::<HeldEntry>() + std::mem::size_of::<u64>()
    }

    /// Makes the output of `p` and holds it. With a filter, a packet that
    /// cannot match is not held at all.
    fn push<W: Write>(
        &mut self,
        printer: &mut Printer<W>,
        filter: Option<&Filter>,
        p: &Packet<'_, '_>,
        waits: bool,
    ) -> io::Result<()> {
        let time = printer.relative_time(p.d.frame.ts);
        let found = match filter {
            Some(f) if f.tests_responses() => Some(Box::new(f.found(p, time))),
            Some(f) if !f.matches(p, time) => return Ok(()),
            _ => None,
        };
        let tail = self.text.tail();
        let start = tail.len();
        let slot = printer.render(p, tail)?;
        let len = tail.len() - start;
        self.text.seal();
        let responses = if waits { self.spare_lists.pop().unwrap_or_default() } else { Vec::new() };
        let entry = HeldEntry { ts: p.d.frame.ts, waits, len, slot, responses, found };
        self.bytes += Held::cost(&entry);
        self.entries.push_back(entry);
        self.numbers.push_back(p.d.frame.number);
        Ok(())
    }

    /// Records a response on its held request (an ldm request: a libvirt
    /// call held behind one is not waited for, so it lists none, as when
    /// it is not held). The queue is in frame order, so the request is
    /// found by binary search.
    fn link(&mut self, request: u64, response: u64) {
        let at = self.numbers.partition_point(|&number| number < request);
        if self.numbers.get(at) != Some(&request) {
            return;
        }
        if let Some(entry) = self.entries.get_mut(at).filter(|entry| entry.waits) {
            entry.responses.push(response);
        }
    }

    /// Writes the entries whose windows have closed at `now` (all of them
    /// at the end, `None`), and as many more as memory is short by.
    /// Asked after every frame, mostly of an empty queue: that answer is
    /// given where it is asked.
    #[inline(always)]
    fn write_settled<W: Write>(
        &mut self,
        now: Option<Timestamp>,
        printer: &mut Printer<W>,
        filter: Option<&Filter>,
    ) -> io::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        while let Some(entry) = self.pop_settled(now) {
            self.write(entry, printer, filter)?;
        }
        Ok(())
    }

    fn pop_settled(&mut self, now: Option<Timestamp>) -> Option<HeldEntry> {
        let front = self.entries.front()?;
        let open = now.is_some_and(|now| now.seconds_since(front.ts) <= self.window);
        if front.waits && open && self.bytes <= MAX_HELD_BYTES {
            return None;
        }
        let entry = self.entries.pop_front()?;
        self.numbers.pop_front();
        self.bytes -= Held::cost(&entry);
        Some(entry)
    }

    /// Writes an entry that has left the queue, its responses written in.
    fn write<W: Write>(
        &mut self,
        mut entry: HeldEntry,
        printer: &mut Printer<W>,
        filter: Option<&Filter>,
    ) -> io::Result<()> {
        let shown = match (entry.found.take(), filter) {
            (Some(found), Some(f)) => f.matches_with(*found, &entry.responses),
            _ => true,
        };
        let written = if shown { self.write_text(&entry, printer) } else { Ok(()) };
        self.text.consume(entry.len);
        if entry.waits && self.spare_lists.len() < MAX_SPARE_LISTS {
            entry.responses.clear();
            self.spare_lists.push(entry.responses);
        }
        written
    }

    fn write_text<W: Write>(&mut self, entry: &HeldEntry, printer: &mut Printer<W>) -> io::Result<()> {
        let text = self.text.front(entry.len);
        let Some(slot) = entry.slot else { return printer.write_rendered(&[text]) };
        let (before, after) = text.split_at(slot.at());
        self.responses.clear();
        printer.write_responses(&mut self.responses, slot, &entry.responses);
        printer.write_rendered(&[before, &self.responses, after])
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A request whose responses are worth waiting for.
fn is_request(d: &Dissection<'_>) -> bool {
    matches!(d.ldm.and_then(|m| m.msg_type), Some(MsgType::SendMsg | MsgType::DiscSend))
}

fn emit<W: Write>(
    printer: &mut Printer<W>,
    filter: Option<&Filter>,
    d: &Dissection<'_>,
    note: &Annotation,
) -> io::Result<()> {
    let packet = Packet { d, note };
    if filter.is_some_and(|f| !f.matches(&packet, printer.relative_time(d.frame.ts))) {
        return Ok(());
    }
    printer.packet(&packet)
}

/// The comment `--annotate` puts on a written packet: its findings and links.
fn annotation(p: &Packet<'_, '_>, renumbered: Option<&mut Renumbered>) -> Option<String> {
    let mut parts: Vec<String> = p.findings().map(|f| format!("{} [{}]", f, f.severity())).collect();
    if let (Some(request), Some(rtt)) = (p.note.request_in, p.note.rtt) {
        let in_file = match &renumbered {
            None => String::new(),
            Some(r) => match r.requests.peek(&request) {
                Some(written) => format!(" (frame {written} of this file)"),
                None => " (not in this file)".to_string(),
            },
        };
        parts.push(format!("request in frame {request}{in_file}, response time {rtt:.6} s"));
    }
    if parts.is_empty() {
        return None;
    }
    match renumbered {
        None => Some(format!("ldm-sniff: {}", parts.join("; "))),
        Some(_) => Some(format!(
            "ldm-sniff (frame {} of the capture read; frame numbers here are that capture's): {}",
            p.d.frame.number,
            parts.join("; ")
        )),
    }
}

/// With -Y or -b, the file -w writes numbers its frames anew: comments say whose
/// numbers they give, and where in the file a linked request went.
struct Renumbered {
    /// Frames written so far.
    written: u64,
    /// Requests written, recently: frame in the capture read -> in the file.
    /// A response comes within a minute of its request, so a bounded cache
    /// holds every request a comment can name.
    requests: lru::LruCache<u64, u64>,
}

impl Renumbered {
    fn new() -> Renumbered {
        Renumbered { written: 0, requests: lru::LruCache::new(std::num::NonZeroUsize::new(65_536).expect("not zero")) }
    }

    /// A ring's next file numbers its frames from 1.
    fn start_file(&mut self) {
        self.written = 0;
        self.requests.clear();
    }

    fn wrote(&mut self, original: u64, request: bool) {
        self.written += 1;
        if request {
            self.requests.put(original, self.written);
        }
    }
}

/// Reads `reader` to its end (or `-c`), analyses, and writes packets and
/// statistics to `out`.
pub fn run<S: Source, W: Write>(mut reader: S, out: W, mut config: Config) -> Result<Outcome, RunError> {
    let mut printer = Printer::new(out, config.output).with_columns(std::mem::take(&mut config.columns));
    let mut summary = Summary::default();
    let mut held = Held::new(config.analysis.window);
    let filter = config.filter.as_ref();
    let (mut writer, annotate) = match config.write.take() {
        Some(WriteTo { sink, annotate }) => (Some(sink), annotate),
        None => (None, false),
    };
    // Comments give frame numbers of the capture read; a file that does not
    // hold every frame of it from the first also says where they are in it.
    let renumber = filter.is_some() || writer.as_ref().is_some_and(Sink::is_ring);
    let mut renumbered = (annotate && renumber).then(Renumbered::new);
    let metrics = config.metrics.take();
    let mut recorder = config.report.take();
    let (capture_error, analyzer) =
        walk_metered(&mut reader, config.dissect, config.analysis, metrics.as_ref(), |d, note| {
            if !d.replayed && !d.continuation {
                summary.frames += 1;
                if let Some(m) = &metrics {
                    m.frames(summary.frames);
                }
                if let Some(linktype) = d.undecoded_linktype() {
                    summary.undecoded_link(linktype);
                }
                if let Some(r) = recorder.as_mut() {
                    r.frame(d.frame.ts);
                }
            }
            printer.saw_frame(d.frame.number, d.frame.ts);
            if !d.replayed && !d.continuation {
                for statistic in &mut config.stats {
                    if let Statistic::IoStat(stat) = statistic {
                        stat.frame(&Packet { d, note }, printer.relative_time(d.frame.ts));
                    }
                }
            }
            if d.is_shown() {
                summary.packet(d, &note.findings);
                if let Some(m) = &metrics {
                    m.packet(d, note, &summary);
                }
                if let Some(r) = recorder.as_mut() {
                    let packet = Packet { d, note };
                    let shown = filter.is_none_or(|f| f.matches(&packet, printer.relative_time(d.frame.ts)));
                    r.packet(d, note, shown);
                }
            } else if d.stop == Some(dissect::Stop::LibvirtNotFollowed) {
                summary.libvirt_not_followed += 1;
            }
            if let Some(request) = note.request_in {
                held.link(request, d.frame.number);
            }
            // -w writes in capture order, as frames are read: with -Y, what
            // matches with what is known of the packet now.
            if let Some(writer) = writer.as_mut().filter(|_| !d.replayed && !d.continuation) {
                let packet = Packet { d, note };
                if filter.is_none_or(|f| f.matches(&packet, printer.relative_time(d.frame.ts))) {
                    if writer.start_file_if_due(&d.frame)? {
                        if let Some(r) = renumbered.as_mut() {
                            r.start_file();
                        }
                    }
                    let comment = if annotate { annotation(&packet, renumbered.as_mut()) } else { None };
                    writer.write(&d.frame, comment.as_deref())?;
                    if let Some(r) = renumbered.as_mut() {
                        r.wrote(d.frame.number, is_request(d));
                    }
                }
            }
            if (d.is_shown() || config.all) && !config.quiet {
                let request = is_request(d);
                if config.hold && (request || !held.is_empty()) {
                    held.push(&mut printer, filter, &Packet { d, note }, request)?;
                } else {
                    emit(&mut printer, filter, d, note)?;
                }
            }
            held.write_settled(Some(d.frame.ts), &mut printer, filter)?;
            Ok(config.count.is_none_or(|c| summary.shown() < c))
        })?;
    held.write_settled(None, &mut printer, filter)?;
    summary.evicted = analyzer.evicted();
    summary.capture_dropped = reader.dropped();
    for statistic in &config.stats {
        match statistic {
            Statistic::Table(kind) => printer.stats(*kind, analyzer.stats(), &summary)?,
            Statistic::IoStat(stat) => printer.io_stat(stat)?,
        }
    }
    printer.finish()?;
    if let Some(writer) = writer {
        writer.finish()?;
    }
    let report = recorder.map(|r| r.finish(analyzer.stats(), &summary));
    Ok(Outcome { summary, report, capture_error })
}
