//! One run over a capture: source -> dissect -> output, with the summary.

use std::io::{self, Write};

use std::collections::VecDeque;

use crate::analyze::{self, Analyzer, Annotation, StatsKind};
use crate::capture::writer::FrameWriter;
use crate::capture::{CaptureError, Source, Timestamp};
use crate::dissect::{self, Dissection, Dissector, OwnedDissection};
use crate::filter::Filter;
use crate::output::{self, Packet, Printer, Summary};
use crate::wire::ldm::MsgType;

/// `-w`: a pcapng sink, and whether `--annotate` comments go with the frames.
pub struct WriteTo {
    pub sink: Box<dyn Write>,
    pub annotate: bool,
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
    /// `-z` tables, printed after the packets.
    pub stats: Vec<StatsKind>,
    /// `-Y`: only matching packets are shown (all are analysed and counted).
    pub filter: Option<Filter>,
    /// `-w`: where frames are written.
    pub write: Option<WriteTo>,
    /// Hold a request until its window closes, to list its responses. Off
    /// for live capture, where a quiet link would hold it indefinitely.
    pub hold: bool,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
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
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => return Ok(Some(e)),
        };
        if !dissector.dissect_each(frame, &mut visit)? {
            return Ok(None);
        }
        for (kept, received, total) in dissector.take_incomplete(false) {
            if !visit(&dissector.dissect_incomplete(&kept, received, total))? {
                return Ok(None);
            }
        }
    }
    for (kept, received, total) in dissector.take_incomplete(true) {
        if !visit(&dissector.dissect_incomplete(&kept, received, total))? {
            break;
        }
    }
    Ok(None)
}

/// Like [`walk`], with the analysis: `visit` gets each dissection with what
/// the analysis says of it (an empty annotation for frames that are not ldm).
/// Returns the analyzer, for its statistics.
pub fn walk_analyzed<S: Source, F>(
    reader: S,
    options: dissect::Options,
    analysis: analyze::Options,
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
        } else if d.libvirt.is_some() {
            analyzer.observe_libvirt_into(d, &mut note);
        } else {
            note.clear();
        }
        visit(d, &note)
    })?;
    Ok((error, analyzer))
}

/// Most bytes of frames waiting for their requests' windows to close; past
/// it the oldest is printed early (its list of responses may then be short).
const MAX_HELD_BYTES: usize = 4 << 20;

/// Output waiting so that a request can list its responses: a request is
/// held until its window closes, and whatever follows it waits behind it to
/// keep the order.
struct Held {
    /// Boxed, so that entries move in and out as pointers, and a spent
    /// entry is refilled where it lies.
    queue: VecDeque<Box<HeldEntry>>,
    /// The frame numbers of `queue`, apart: a response's request is found
    /// by binary search, and over the entries themselves (megabytes, out of
    /// the caches) each step was a cache miss.
    numbers: VecDeque<u64>,
    /// Entries already shown, whose buffers the next ones reuse. Boxed
    /// here too: the boxes themselves go back into `queue`.
    #[allow(clippy::vec_box)]
    spent: Vec<Box<HeldEntry>>,
    bytes: usize,
    window: f64,
}

struct HeldEntry {
    owned: OwnedDissection,
    note: Annotation,
    /// A request, waiting for its window to close.
    waits: bool,
}

/// How many entries ahead of its turn a held entry is fetched.
const PREFETCH_AHEAD: usize = 4;

/// Spent entries kept for reuse: one is pushed for each one shown, so a
/// few are enough.
const MAX_SPENT: usize = 8;

impl Held {
    fn new(window: f64) -> Held {
        Held { queue: VecDeque::new(), numbers: VecDeque::new(), spent: Vec::new(), bytes: 0, window }
    }

    /// Bytes an entry costs, its bookkeeping included (but for its box
    /// pointer and its number in `numbers`, 16 bytes, left out so that the
    /// cap holds as many entries as before).
    fn cost(d: &OwnedDissection) -> usize {
        d.size() + std::mem::size_of::<(OwnedDissection, Annotation, bool)>()
    }

    /// Holds a copy of `d` and `note`, in the buffers of a spent entry if
    /// there is one.
    fn push(&mut self, d: &Dissection<'_>, note: &Annotation, waits: bool) {
        let entry = match self.spent.pop() {
            Some(mut entry) => {
                entry.owned.refill(d);
                entry.note.clone_from(note);
                entry.waits = waits;
                entry
            }
            None => Box::new(HeldEntry { owned: d.to_owned(), note: note.clone(), waits }),
        };
        self.bytes += Held::cost(&entry.owned);
        self.numbers.push_back(entry.owned.number());
        self.queue.push_back(entry);
    }

    /// Records a response on its held request. The queue is in frame order,
    /// so the request is found by binary search.
    fn link(&mut self, request: u64, response: u64) {
        let at = self.numbers.partition_point(|&number| number < request);
        if self.numbers.get(at) != Some(&request) {
            return;
        }
        if let Some(entry) = self.queue.get_mut(at) {
            entry.note.response_in.push(response);
        }
    }

    /// The front entry, once its window has closed at `now` (or memory is short).
    /// Asked after every frame, mostly of an empty queue: that answer is
    /// given where it is asked.
    #[inline(always)]
    fn pop_settled(&mut self, now: Option<Timestamp>) -> Option<Box<HeldEntry>> {
        if self.queue.is_empty() {
            return None;
        }
        self.pop_front_settled(now)
    }

    fn pop_front_settled(&mut self, now: Option<Timestamp>) -> Option<Box<HeldEntry>> {
        let front = self.queue.front()?;
        let open = match now {
            Some(now) => now.seconds_since(front.owned.ts()) <= self.window,
            None => false,
        };
        if front.waits && open && self.bytes <= MAX_HELD_BYTES {
            return None;
        }
        let entry = self.queue.pop_front()?;
        self.numbers.pop_front();
        self.bytes -= Held::cost(&entry.owned);
        self.prefetch_next();
        Some(entry)
    }

    /// The held entries fill megabytes, so by their turn they have left
    /// the caches, and reading them waited on memory. Entries leave one per
    /// frame read, in order: each is fetched four frames ahead of its turn,
    /// and its frame two frames later, once the entry is in cache.
    fn prefetch_next(&self) {
        if let Some(next) = self.queue.get(PREFETCH_AHEAD / 2) {
            next.owned.prefetch();
        }
        if let Some(after) = self.queue.get(PREFETCH_AHEAD) {
            crate::prefetch::value(after.as_ref());
        }
    }

    /// Takes back an entry once shown, for its buffers.
    fn recycle(&mut self, entry: Box<HeldEntry>) {
        if self.spent.len() < MAX_SPENT {
            self.spent.push(entry);
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
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
fn annotation(p: &Packet<'_, '_>) -> Option<String> {
    let mut parts: Vec<String> = p.findings().map(|f| format!("{} [{}]", f, f.severity())).collect();
    if let (Some(request), Some(rtt)) = (p.note.request_in, p.note.rtt) {
        parts.push(format!("request in frame {request}, response time {rtt:.6} s"));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!("ldm-sniff: {}", parts.join("; ")))
}

/// Reads `reader` to its end (or `-c`), analyses, and writes packets and
/// statistics to `out`.
pub fn run<S: Source, W: Write>(reader: S, out: W, mut config: Config) -> Result<Outcome, RunError> {
    let mut printer = Printer::new(out, config.output);
    let mut summary = Summary::default();
    let mut held = Held::new(config.analysis.window);
    let filter = config.filter.as_ref();
    let (mut writer, annotate) = match config.write.take() {
        Some(WriteTo { sink, annotate }) => {
            (Some(FrameWriter::new(io::BufWriter::with_capacity(1 << 20, sink))?), annotate)
        }
        None => (None, false),
    };
    let (capture_error, analyzer) = walk_analyzed(reader, config.dissect, config.analysis, |d, note| {
        if !d.replayed && !d.continuation {
            summary.frames += 1;
        }
        printer.saw_frame(d.frame.ts);
        if d.is_shown() {
            summary.packet(d, &note.findings);
        }
        if let Some(request) = note.request_in {
            held.link(request, d.frame.number);
        }
        // -w writes in capture order, as frames are read: with -Y, what
        // matches with what is known of the packet now.
        if let Some(writer) = writer.as_mut().filter(|_| !d.replayed && !d.continuation) {
            let packet = Packet { d, note };
            if filter.is_none_or(|f| f.matches(&packet, printer.relative_time(d.frame.ts))) {
                let comment = if annotate { annotation(&packet) } else { None };
                writer.write(&d.frame, comment.as_deref())?;
            }
        }
        if (d.is_shown() || config.all) && !config.quiet {
            if config.hold && (is_request(d) || !held.is_empty()) {
                held.push(d, note, is_request(d));
            } else {
                emit(&mut printer, filter, d, note)?;
            }
        }
        while let Some(mut entry) = held.pop_settled(Some(d.frame.ts)) {
            emit(&mut printer, filter, &entry.owned.view(), &entry.note)?;
            held.recycle(entry);
        }
        Ok(config.count.is_none_or(|c| summary.shown() < c))
    })?;
    while let Some(mut entry) = held.pop_settled(None) {
        emit(&mut printer, filter, &entry.owned.view(), &entry.note)?;
    }
    summary.evicted = analyzer.evicted();
    for kind in &config.stats {
        printer.stats(*kind, analyzer.stats(), &summary)?;
    }
    printer.finish()?;
    if let Some(writer) = writer {
        writer.into_inner().flush()?;
    }
    Ok(Outcome { summary, capture_error })
}
