//! pcap/pcapng reader over pcap-parser: a regular file is memory-mapped
//! (`mapped.rs`); a stream goes through a fixed buffer filled with
//! large `read()`s, frames handed out borrowed, memory flat for any file size.

use std::io::{self, Cursor, Read};
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError};

use super::mapped::MappedReader;
use super::{units_per_sec, word_at, Frame, KernelChecksum, RawTime, Timestamp};

/// Read size and initial buffer: large reads are what make a file walk fast.
const BUFFER_SIZE: usize = 1 << 20;
/// No capture tool writes a record this large (libpcap's maximum snap length
/// is 256 KiB); a bigger claim means a corrupt file, and we must not allocate it.
pub const MAX_RECORD: usize = 16 << 20;
/// Bytes read before deciding the format. A pcapng section header may be
/// longer (its options have no limit): see `section_header_len`.
const SNIFF_LEN: usize = 64 << 10;

/// Why a capture could not be read (further). Every variant says where.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open: {source}")]
    Open { path: String, source: io::Error },
    #[error("{path}: the file is empty, not a capture; if a capture is still starting, wait for its first packets")]
    Empty { path: String },
    #[error("{path}: not a pcap, pcapng or snoop capture (starts with {start}){hint}; ldm-sniff reads what tcpdump -w, Wireshark, dumpcap and snoop -o write")]
    NotACapture { path: String, start: String, hint: &'static str },
    #[error("{path} is a directory, not a capture file: give a file in it (for example {path}/capture.pcapng)")]
    Directory { path: String },
    #[error("{path}: {what}")]
    Unsupported { path: String, what: String },
    #[error("{path}: the file ends in the middle of a record at byte offset {offset} (after frame {frame}): it was cut short (still being written, or copied incompletely); every frame before it was decoded")]
    Truncated { path: String, offset: u64, frame: u64 },
    #[error("{path}: corrupt record at byte offset {offset} (after frame {frame}): {what}; every frame before it was decoded (editcap or pcapfix may rescue the rest)")]
    Corrupt { path: String, offset: u64, frame: u64, what: String },
    #[error("{path}: record at byte offset {offset} (after frame {frame}) claims {claimed} bytes, more than any capture tool writes (limit {limit}): the file is corrupt; every frame before it was decoded (editcap or pcapfix may rescue the rest)", limit = MAX_RECORD)]
    RecordTooLarge { path: String, offset: u64, frame: u64, claimed: u64 },
    #[error(
        "{path}: read error at byte offset {offset} (after frame {frame}): {what}; every frame before it was decoded"
    )]
    Read { path: String, offset: u64, frame: u64, what: String },
    #[error("{path}: the file shrank while it was read, at byte offset {offset} (after frame {frame}): another program truncated or rewrote it; every frame before it was decoded (to read a capture that is still being written, use -r - < FILE)")]
    Shrank { path: String, offset: u64, frame: u64 },
}

/// Interfaces a pcapng section may describe. Each costs a few dozen bytes
/// (its name and other options are not kept): a file describing more is
/// refused as corrupt, whatever its size, rather than grow memory with it.
pub const MAX_INTERFACES: usize = 65_536;

/// What we know of a pcapng interface: what decoding its packets needs.
#[derive(Debug, Clone)]
pub struct Interface {
    pub linktype: Linktype,
    /// Timestamp units per second, and the if_tsresol byte that says so.
    pub units_per_sec: u64,
    pub tsresol: u8,
    /// Seconds added to every timestamp (if_tsoffset).
    pub offset_secs: i64,
}

/// The container format, with what decoding its records needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg { big_endian: bool },
}

/// Keeps the `io::Error` that pcap-parser reduces to `ReadError`, so the
/// message can say what went wrong.
struct ErrorKeepingReader<R> {
    inner: R,
    last_error: Arc<Mutex<Option<String>>>,
}

impl<R: Read> Read for ErrorKeepingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Ok(mut slot) = self.last_error.lock() {
                        *slot = Some(e.to_string());
                    }
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }
}

/// Where records come from.
enum Parser {
    /// pcap-parser's streaming reader over a byte stream (standard input, a pipe).
    Stream(Box<dyn PcapReaderIterator + Send>),
    /// A memory-mapped file.
    Mapped(MappedReader),
}

impl Parser {
    fn get(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Parser::Stream(stream) => stream.as_mut(),
            Parser::Mapped(mapped) => mapped,
        }
    }

    fn get_ref(&self) -> &dyn PcapReaderIterator {
        match self {
            Parser::Stream(stream) => stream.as_ref(),
            Parser::Mapped(mapped) => mapped,
        }
    }

    // The two calls made for every frame, matched on the concrete reader:
    // through `get` they were calls through the trait object's table.

    fn consume(&mut self, len: usize) {
        match self {
            Parser::Stream(stream) => stream.consume_noshift(len),
            Parser::Mapped(mapped) => mapped.consume_noshift(len),
        }
    }

    /// The unread bytes, and the file offset they start at.
    fn unread(&self) -> (&[u8], usize) {
        match self {
            Parser::Stream(stream) => (stream.data(), stream.consumed()),
            Parser::Mapped(mapped) => (mapped.data(), mapped.consumed()),
        }
    }
}

/// A classic pcap record's time: micro- or nanoseconds, as the file header
/// says (a u32 of seconds is always in range).
fn legacy_timestamp(ts_sec: u32, ts_fraction: u32, format: Format) -> (Timestamp, RawTime) {
    let nanosecond = matches!(format, Format::Pcap { nanosecond: true, .. });
    let (nanos, tsresol, per_sec) =
        if nanosecond { (ts_fraction, 9, 1_000_000_000) } else { (ts_fraction.saturating_mul(1000), 6, 1_000_000) };
    let units = u64::from(ts_sec) * per_sec + u64::from(ts_fraction);
    let raw = RawTime { units, tsresol, offset_secs: 0, out_of_range: false };
    (Timestamp::new(i64::from(ts_sec), nanos.min(999_999_999)), raw)
}

/// A frame's place in the reader's buffer, found while the block was borrowed.
struct PacketAt {
    start: usize,
    len: usize,
    orig_len: u32,
    ts: Timestamp,
    raw_time: RawTime,
    linktype: Linktype,
    interface: u32,
    record_len: usize,
}

/// One step of the block loop, owned so the block's borrow ends before we act.
enum Step {
    Packet(PacketAt),
    Skip(usize),
    Refill,
    Eof,
    Fail(CaptureError),
}

pub struct PcapReader {
    path: String,
    inner: Parser,
    format: Format,
    interfaces: Vec<Interface>,
    /// Legacy pcap: the link type from the file header.
    pcap_linktype: Linktype,
    frames: u64,
    /// Bytes of the last returned record, consumed on the next call.
    pending: usize,
    capacity: usize,
    last_error: Arc<Mutex<Option<String>>>,
}

fn hex_start(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    shown.join(" ")
}

/// Recognises the container from its first bytes.
fn sniff_format(path: &str, prefix: &[u8]) -> Result<Format, CaptureError> {
    if prefix.is_empty() {
        return Err(CaptureError::Empty { path: path.to_string() });
    }
    let not_capture =
        |hint: &'static str| CaptureError::NotACapture { path: path.to_string(), start: hex_start(prefix), hint };
    let Some(magic) = prefix.get(0..4) else {
        return Err(not_capture(""));
    };
    let magic = [magic[0], magic[1], magic[2], magic[3]];
    match u32::from_le_bytes(magic) {
        0xa1b2_c3d4 => return Ok(Format::Pcap { nanosecond: false, big_endian: false }),
        0xa1b2_3c4d => return Ok(Format::Pcap { nanosecond: true, big_endian: false }),
        0xa1b2_cd34 => return Ok(Format::Pcap { nanosecond: false, big_endian: false }),
        _ => {}
    }
    match u32::from_be_bytes(magic) {
        0xa1b2_c3d4 => return Ok(Format::Pcap { nanosecond: false, big_endian: true }),
        0xa1b2_3c4d => return Ok(Format::Pcap { nanosecond: true, big_endian: true }),
        0x0a0d_0d0a => {
            let big_endian = prefix.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d]);
            return Ok(Format::PcapNg { big_endian });
        }
        _ => {}
    }
    let hint = match prefix {
        [0x1f, 0x8b, ..] => ": it is gzip-compressed, run gunzip first",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => ": it is zstd-compressed, run unzstd first",
        [b'X', b'C', b'P', ..] => ": it looks like a NetXray or Sniffer capture; convert it with editcap -F pcapng",
        _ => "",
    };
    Err(not_capture(hint))
}

/// A pcapng packet's time in units of its interface. Microseconds
/// (pcapng's default) and nanoseconds in range divide by constants, which
/// compile to multiplications: a division by a variable, and the u128 one,
/// cost more than the rest of reading a packet block. Anything else (and a
/// time out of range) goes the checked way, `RawTime::decode`.
fn timestamp_from_units(units: u64, iface: &Interface) -> (Timestamp, RawTime) {
    let raw = RawTime { units, tsresol: iface.tsresol, offset_secs: iface.offset_secs, out_of_range: false };
    let fast = match iface.units_per_sec {
        1_000_000 => Some((units / 1_000_000, (units % 1_000_000) as u32 * 1_000)),
        1_000_000_000 => Some((units / 1_000_000_000, (units % 1_000_000_000) as u32)),
        _ => None,
    };
    let in_range = |secs: u64| i64::try_from(secs).ok().and_then(|s| s.checked_add(iface.offset_secs));
    match fast.and_then(|(secs, nanos)| Some((in_range(secs)?, nanos))) {
        Some((secs, nanos)) if (0..=super::LAST_SECOND).contains(&secs) => (Timestamp::new(secs, nanos), raw),
        _ => RawTime::decode(units, iface.tsresol, iface.offset_secs).unwrap_or((Timestamp::default(), raw)),
    }
}

/// The length the record (pcap) or block (pcapng) at the start of `data`
/// claims, from its header; `None` if the header is cut short.
fn claimed_len(data: &[u8], format: Format) -> Option<u64> {
    match format {
        Format::Pcap { big_endian, .. } => word_at(data, 8, big_endian).map(|len| u64::from(len) + 16),
        Format::PcapNg { big_endian } => word_at(data, 4, big_endian).map(u64::from),
    }
}

/// What is wrong with a pcapng block's claimed length, if anything: a block
/// is at least 12 bytes (type, length, length again) and a multiple of 4.
fn impossible_block_len(claimed: u64, format: Format) -> Option<String> {
    if !matches!(format, Format::PcapNg { .. }) || claimed == u64::MAX {
        return None;
    }
    if claimed < 12 || claimed % 4 != 0 {
        return Some(format!(
            "a block claims a length of {claimed} bytes, which no pcapng block can have (at least 12, a multiple of 4)"
        ));
    }
    None
}

/// The length a pcapng file's first block (its section header) claims, or
/// `None` for classic pcap; refused past MAX_RECORD, as any record is (and
/// as the mapped reader refuses it).
fn section_header_len(path: &str, prefix: &[u8], format: Format) -> Result<Option<usize>, CaptureError> {
    if !matches!(format, Format::PcapNg { .. }) {
        return Ok(None);
    }
    let Some(claimed) = claimed_len(prefix, format) else {
        return Ok(None); // cut short: the parser says so
    };
    if claimed > MAX_RECORD as u64 {
        return Err(CaptureError::RecordTooLarge { path: path.to_string(), offset: 0, frame: 0, claimed });
    }
    Ok(Some(claimed as usize))
}

impl PcapReader {
    /// Reads an open pcap or pcapng file: mapped when it can be, else as a
    /// stream.
    pub fn open_file(path: &str, file: std::fs::File) -> Result<PcapReader, CaptureError> {
        if let Some(mapped) = MappedReader::open(&file) {
            let format = sniff_format(path, mapped.prefix(SNIFF_LEN))?;
            let parser = Parser::Mapped(mapped);
            return Ok(PcapReader::with_parser(path.to_string(), parser, format, BUFFER_SIZE, Arc::default()));
        }
        PcapReader::from_reader(path, file)
    }

    /// Reads a capture from any byte stream; `name` is used in messages.
    pub fn from_reader<R: Read + Send + 'static>(name: &str, mut source: R) -> Result<PcapReader, CaptureError> {
        let path = name.to_string();
        let read_error =
            |e: io::Error| CaptureError::Read { path: path.clone(), offset: 0, frame: 0, what: e.to_string() };
        // pcap-parser decides the format from a single read; a pipe may deliver
        // less, so gather a prefix first and replay it.
        let mut prefix = Vec::with_capacity(SNIFF_LEN);
        (&mut source).take(SNIFF_LEN as u64).read_to_end(&mut prefix).map_err(read_error)?;
        let format = sniff_format(name, &prefix)?;
        // pcap-parser checks the section header in its first read, which
        // replays only the prefix: a longer header must be in it whole.
        if let Some(header_len) = section_header_len(name, &prefix, format)? {
            let more = header_len.saturating_sub(prefix.len()) as u64;
            (&mut source).take(more).read_to_end(&mut prefix).map_err(read_error)?;
        }
        let capacity = BUFFER_SIZE.max(prefix.len().next_power_of_two());
        let last_error = Arc::new(Mutex::new(None));
        let stream = ErrorKeepingReader { inner: Cursor::new(prefix).chain(source), last_error: last_error.clone() };
        let inner = pcap_parser::create_reader(capacity, stream).map_err(|e| CaptureError::Corrupt {
            path: path.clone(),
            offset: 0,
            frame: 0,
            what: format!("unreadable file header ({e:?})"),
        })?;
        Ok(PcapReader::with_parser(path, Parser::Stream(inner), format, capacity, last_error))
    }

    fn with_parser(
        path: String,
        inner: Parser,
        format: Format,
        capacity: usize,
        last_error: Arc<Mutex<Option<String>>>,
    ) -> PcapReader {
        PcapReader {
            path,
            inner,
            format,
            interfaces: Vec::new(),
            pcap_linktype: Linktype::ETHERNET,
            frames: 0,
            pending: 0,
            capacity,
            last_error,
        }
    }

    /// The next frame, `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        // No shift on consume: circular's consume moves the unread half of the
        // buffer each time the read position passes the middle (22% of all
        // instructions on a mixed capture); refill shifts the short tail
        // once, when more data is needed anyway.
        if self.pending > 0 {
            self.inner.consume(self.pending);
            self.pending = 0;
        }
        if let Some(at) = self.mapped_packet() {
            self.check_mapped(at.start + at.len)?;
            return Ok(Some(self.frame_at(at)));
        }
        loop {
            let step = self.step();
            // Whatever a mapped file's bytes said, they may be the zeros of
            // pages that vanished under the map.
            self.check_mapped(match &step {
                Step::Packet(at) => at.start + at.len,
                _ => 0,
            })?;
            match step {
                Step::Packet(at) => return Ok(Some(self.frame_at(at))),
                Step::Skip(n) => self.inner.consume(n),
                Step::Refill => self.refill_or_grow()?,
                Step::Eof => return Ok(None),
                Step::Fail(e) => return Err(e),
            }
        }
    }

    /// A mapped file that shrank under its reader (`mapped::on_sigbus`):
    /// an error at the read position, once the record ending at `end` bytes
    /// from it was touched.
    fn check_mapped(&self, end: usize) -> Result<(), CaptureError> {
        let Parser::Mapped(mapped) = &self.inner else { return Ok(()) };
        if !mapped.shrank(end) {
            return Ok(());
        }
        Err(CaptureError::Shrank { path: self.path.clone(), offset: self.offset(), frame: self.frames })
    }

    /// The next packet of a mapped file on the hot path, the common case for
    /// big captures: a classic pcap record, or a pcapng packet block whose
    /// interface is known, read straight from its header without the block
    /// enum. `None` for everything else, which `step` handles and reports.
    fn mapped_packet(&mut self) -> Option<PacketAt> {
        let Parser::Mapped(mapped) = &mut self.inner else {
            return None;
        };
        // A record past the limit is left to `step`, which refuses it.
        if let Some(record) = mapped.next_pcap_record().filter(|r| r.record_len <= MAX_RECORD) {
            let (ts, raw_time) = legacy_timestamp(record.ts_sec, record.ts_usec, self.format);
            return Some(PacketAt {
                start: record.data_start,
                len: record.data_len,
                orig_len: record.origlen,
                ts,
                raw_time,
                linktype: self.pcap_linktype,
                interface: 0,
                record_len: record.record_len,
            });
        }
        let packet = mapped.next_pcapng_packet().filter(|p| p.record_len <= MAX_RECORD)?;
        let iface = self.interfaces.get(packet.interface as usize)?;
        let (ts, raw_time) = timestamp_from_units(packet.ts_units, iface);
        Some(PacketAt {
            start: packet.data_start,
            len: packet.data_len,
            orig_len: packet.origlen,
            ts,
            raw_time,
            linktype: iface.linktype,
            interface: packet.interface,
            record_len: packet.record_len,
        })
    }

    /// The frame at `at` in the buffer; it is consumed before the next one.
    fn frame_at(&mut self, at: PacketAt) -> Frame<'_> {
        self.frames += 1;
        self.pending = at.record_len;
        let (unread, offset) = self.inner.unread();
        Frame {
            number: self.frames,
            ts: at.ts,
            len: at.orig_len,
            linktype: at.linktype,
            interface: at.interface,
            file_offset: offset as u64,
            data: &unread[at.start..at.start + at.len],
            kernel_checksum: KernelChecksum::Unknown,
            raw_time: Some(at.raw_time),
        }
    }

    fn offset(&self) -> u64 {
        self.inner.get_ref().consumed() as u64
    }

    /// Reads more; when that adds nothing although the input goes on, the
    /// buffer is full and the parser still wants more (pcap-parser says
    /// "incomplete" without a size for some blocks): grow it, within
    /// MAX_RECORD, or fail, rather than ask again forever.
    fn refill_or_grow(&mut self) -> Result<(), CaptureError> {
        let before = self.inner.get_ref().data().len();
        self.refill()?;
        if self.inner.get_ref().data().len() > before || self.inner.get_ref().reader_exhausted() {
            return Ok(());
        }
        match self.grow_or_fail() {
            Step::Fail(e) => Err(e),
            _ => self.refill(),
        }
    }

    fn refill(&mut self) -> Result<(), CaptureError> {
        if self.inner.get().refill().is_ok() {
            return Ok(());
        }
        let what =
            self.last_error.lock().ok().and_then(|slot| slot.clone()).unwrap_or_else(|| "read failed".to_string());
        Err(CaptureError::Read { path: self.path.clone(), offset: self.offset(), frame: self.frames, what })
    }

    /// Parses one block and turns it into an owned step.
    fn step(&mut self) -> Step {
        let base = self.inner.get_ref().data().as_ptr() as usize;
        let offset = self.offset();
        let frame = self.frames;
        let result = self.inner.get().next();
        let (record_len, block) = match result {
            // The mapped file holds any record whole; the limit is the
            // stream's, and both refuse the same files.
            Ok((record_len, _)) if record_len > MAX_RECORD => {
                return Step::Fail(CaptureError::RecordTooLarge {
                    path: self.path.clone(),
                    offset,
                    frame,
                    claimed: record_len as u64,
                })
            }
            Ok(ok) => ok,
            Err(PcapError::Eof) => return Step::Eof,
            Err(PcapError::Incomplete(_)) => return Step::Refill,
            Err(PcapError::UnexpectedEof) => return self.truncated_or_too_large(),
            Err(PcapError::BufferTooSmall) => return self.grow_or_fail(),
            Err(PcapError::ReadError) => {
                let what = "read failed".to_string();
                return Step::Fail(CaptureError::Read { path: self.path.clone(), offset, frame, what });
            }
            Err(e) => {
                let what = match e {
                    PcapError::NomError(..) | PcapError::OwnedNomError(..) => None,
                    other => Some(format!("{other:?}")),
                };
                // A block length no pcapng block can have says best what is wrong.
                let impossible = impossible_block_len(self.claimed_record_len(), self.format);
                let what = impossible
                    .or(what)
                    .unwrap_or_else(|| "a record whose length or contents are impossible".to_string());
                return Step::Fail(CaptureError::Corrupt { path: self.path.clone(), offset, frame, what });
            }
        };
        match block {
            PcapBlockOwned::LegacyHeader(header) => {
                self.pcap_linktype = header.network;
                Step::Skip(record_len)
            }
            PcapBlockOwned::Legacy(b) => {
                let (ts, raw_time) = legacy_timestamp(b.ts_sec, b.ts_usec, self.format);
                Step::Packet(PacketAt {
                    start: b.data.as_ptr() as usize - base,
                    len: b.data.len(),
                    orig_len: b.origlen,
                    ts,
                    raw_time,
                    linktype: self.pcap_linktype,
                    interface: 0,
                    record_len,
                })
            }
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                // A new section restarts interface numbering.
                self.interfaces.clear();
                self.format = Format::PcapNg { big_endian: shb.big_endian() };
                Step::Skip(record_len)
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                if self.interfaces.len() >= MAX_INTERFACES {
                    let what = format!("more than {MAX_INTERFACES} interfaces described in one section");
                    return Step::Fail(CaptureError::Corrupt { path: self.path.clone(), offset, frame, what });
                }
                let tsresol = idb.if_tsresol().and_then(Result::ok).unwrap_or(6);
                let Some(per_sec) = units_per_sec(tsresol).filter(|&u| u > 0) else {
                    let what = format!(
                        "interface {} has an impossible timestamp resolution {tsresol:#04x}",
                        self.interfaces.len()
                    );
                    return Step::Fail(CaptureError::Corrupt { path: self.path.clone(), offset, frame, what });
                };
                self.interfaces.push(Interface {
                    linktype: idb.linktype,
                    units_per_sec: per_sec,
                    tsresol,
                    offset_secs: idb.if_tsoffset().and_then(Result::ok).unwrap_or(0),
                });
                Step::Skip(record_len)
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let Some(iface) = self.interfaces.get(epb.if_id as usize) else {
                    let what = format!(
                        "packet names interface {} but the file describes {}",
                        epb.if_id,
                        self.interfaces.len()
                    );
                    return Step::Fail(CaptureError::Corrupt { path: self.path.clone(), offset, frame, what });
                };
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let (ts, raw_time) = timestamp_from_units(units, iface);
                Step::Packet(PacketAt {
                    start: epb.data.as_ptr() as usize - base,
                    len: epb.data.len().min(epb.caplen as usize),
                    orig_len: epb.origlen,
                    ts,
                    raw_time,
                    linktype: iface.linktype,
                    interface: epb.if_id,
                    record_len,
                })
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let Some(iface) = self.interfaces.first() else {
                    let what = "simple packet block before any interface description".to_string();
                    return Step::Fail(CaptureError::Corrupt { path: self.path.clone(), offset, frame, what });
                };
                Step::Packet(PacketAt {
                    start: spb.data.as_ptr() as usize - base,
                    len: spb.data.len().min(spb.origlen as usize),
                    orig_len: spb.origlen,
                    // A simple packet block carries no time.
                    ts: Timestamp::default(),
                    raw_time: RawTime { units: 0, tsresol: iface.tsresol, offset_secs: 0, out_of_range: false },
                    linktype: iface.linktype,
                    interface: 0,
                    record_len,
                })
            }
            // Statistics, name resolution, secrets, custom and unknown blocks.
            PcapBlockOwned::NG(_) => Step::Skip(record_len),
        }
    }

    /// A record larger than the buffer: grow up to MAX_RECORD, else refuse.
    fn grow_or_fail(&mut self) -> Step {
        let claimed = self.claimed_record_len();
        if claimed <= MAX_RECORD as u64 && self.capacity < MAX_RECORD {
            let wanted = (claimed as usize + 64).next_power_of_two().clamp(self.capacity * 2, MAX_RECORD);
            if self.inner.get().grow(wanted) {
                self.capacity = wanted;
                return Step::Refill;
            }
        }
        Step::Fail(CaptureError::RecordTooLarge {
            path: self.path.clone(),
            offset: self.offset(),
            frame: self.frames,
            claimed,
        })
    }

    /// The file ends inside a record: it was cut short, unless the record
    /// claims a length no capture tool writes, or one no pcapng block can
    /// have (then the file is corrupt, and the message says what is wrong).
    fn truncated_or_too_large(&self) -> Step {
        let (path, offset, frame) = (self.path.clone(), self.offset(), self.frames);
        let claimed = self.claimed_record_len();
        if claimed != u64::MAX && claimed > MAX_RECORD as u64 {
            return Step::Fail(CaptureError::RecordTooLarge { path, offset, frame, claimed });
        }
        if let Some(what) = impossible_block_len(claimed, self.format) {
            return Step::Fail(CaptureError::Corrupt { path, offset, frame, what });
        }
        Step::Fail(CaptureError::Truncated { path, offset, frame })
    }

    /// The length the record at the buffer's head claims, from its header.
    /// `u64::MAX` when the header itself is cut short.
    fn claimed_record_len(&self) -> u64 {
        claimed_len(self.inner.get_ref().data(), self.format).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(tsresol: u8, offset_secs: i64) -> Interface {
        let units_per_sec = units_per_sec(tsresol).unwrap();
        Interface { linktype: Linktype::ETHERNET, units_per_sec, tsresol, offset_secs }
    }

    #[test]
    fn resolution_both_forms() {
        assert_eq!(units_per_sec(6), Some(1_000_000));
        assert_eq!(units_per_sec(9), Some(1_000_000_000));
        assert_eq!(units_per_sec(0x80 | 10), Some(1024));
        assert_eq!(units_per_sec(40), None);
        let (ts, _) = timestamp_from_units(1_500_000_123, &iface(9, 10));
        assert_eq!(ts, Timestamp::new(11, 500_000_123));
        let (ts, _) = timestamp_from_units(3 * 1024 + 512, &iface(0x80 | 10, 0));
        assert_eq!(ts, Timestamp::new(3, 500_000_000));
    }

    #[test]
    fn times_out_of_range_are_marked_not_wrapped() {
        // u64::MAX seconds, a huge offset either way, and a time before 1970.
        for (units, tsresol, offset) in [(u64::MAX, 0, 0), (5, 0, i64::MAX), (5, 0, i64::MIN), (5, 6, -10)] {
            let (ts, raw) = timestamp_from_units(units, &iface(tsresol, offset));
            assert!(raw.out_of_range, "{units} {tsresol} {offset}");
            assert!((0..=crate::capture::LAST_SECOND).contains(&ts.secs), "{ts:?}");
            assert_eq!((raw.units, raw.tsresol, raw.offset_secs), (units, tsresol, offset));
        }
        let (_, raw) = timestamp_from_units(1_700_000_000_000_000, &iface(6, 0));
        assert!(!raw.out_of_range);
    }

    proptest::proptest! {
        /// The microsecond and nanosecond shortcuts give what the general
        /// conversion gives.
        #[test]
        fn usual_resolutions_convert_as_the_general_way(units in proptest::prelude::any::<u64>(), offset in -1_000i64..1_000) {
            for tsresol in [6, 9] {
                proptest::prop_assert_eq!(
                    Some(timestamp_from_units(units, &iface(tsresol, offset))),
                    RawTime::decode(units, tsresol, offset)
                );
            }
        }
    }

    #[test]
    fn not_a_capture_says_so() {
        let err = PcapReader::from_reader("x.txt", Cursor::new(b"hello world, plain text".to_vec())).err().unwrap();
        assert!(err.to_string().contains("not a pcap, pcapng or snoop capture"), "{err}");
        let err = PcapReader::from_reader("x.gz", Cursor::new(vec![0x1f, 0x8b, 8, 0, 0, 0])).err().unwrap();
        assert!(err.to_string().contains("gunzip"), "{err}");
        let err = PcapReader::from_reader("empty", Cursor::new(Vec::new())).err().unwrap();
        assert!(matches!(err, CaptureError::Empty { .. }));
    }
}
