//! Where `-w` puts frames: one capture file in the chosen format (`-F`), or
//! a ring of files (`-b`) named and rotated as dumpcap does.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::writer::{FrameWriter, PcapWriter};
use super::{linktype_name, Frame, Linktype, Timestamp};

/// `-F`: the file format `-w` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FileFormat {
    /// pcapng: several interfaces and link types, packet comments (--annotate).
    #[default]
    Pcapng,
    /// Classic pcap: one link type, no comments; read by every tool.
    Pcap,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Pcapng => "pcapng",
            FileFormat::Pcap => "pcap",
        }
    }
}

type Out = Counted<BufWriter<Box<dyn Write>>>;

/// Counts the bytes written through it: `-b filesize` needs a file's size
/// while its last bytes are still buffered.
pub struct Counted<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One capture file being written.
pub enum FileWriter {
    Pcapng(FrameWriter<Out>),
    Pcap(PcapFile),
}

/// A classic pcap file: its header names one link type and one time
/// resolution, so it is written with the first frame.
pub struct PcapFile {
    waiting: Option<Out>,
    writer: Option<(PcapWriter<Out>, Linktype)>,
    snaplen: u32,
}

impl FileWriter {
    /// Starts a file on `sink` (a pcapng section header goes out now).
    pub fn new(sink: Box<dyn Write>, format: FileFormat, snaplen: u32) -> io::Result<FileWriter> {
        let out = Counted { inner: BufWriter::with_capacity(1 << 20, sink), bytes: 0 };
        Ok(match format {
            FileFormat::Pcapng => FileWriter::Pcapng(FrameWriter::with_snaplen(out, snaplen)?),
            FileFormat::Pcap => FileWriter::Pcap(PcapFile { waiting: Some(out), writer: None, snaplen }),
        })
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        match self {
            FileWriter::Pcapng(w) => w.get_ref().bytes,
            FileWriter::Pcap(p) => match (&p.writer, &p.waiting) {
                (Some((w, _)), _) => w.get_ref().bytes,
                (None, Some(out)) => out.bytes,
                (None, None) => 0,
            },
        }
    }

    /// Writes one frame; a comment is only ever given for pcapng.
    pub fn write(&mut self, frame: &Frame<'_>, comment: Option<&str>) -> io::Result<()> {
        match self {
            FileWriter::Pcapng(w) => w.write(frame, comment),
            FileWriter::Pcap(p) => p.write(frame),
        }
    }

    /// Completes the file (a pcap file that got no frame still gets its
    /// header) and flushes it.
    pub fn finish(self) -> io::Result<()> {
        let mut out = match self {
            FileWriter::Pcapng(w) => w.into_inner(),
            FileWriter::Pcap(p) => p.finish()?,
        };
        out.flush()
    }
}

impl PcapFile {
    fn write(&mut self, frame: &Frame<'_>) -> io::Result<()> {
        if self.writer.is_none() {
            let out = self.waiting.take().ok_or_else(|| io::Error::other("pcap writer already finished"))?;
            // Nanoseconds when the frame has them: live capture, or a file
            // that recorded finer than microseconds.
            let nanosecond = frame.raw_time.is_none_or(|raw| super::units_per_sec(raw.tsresol) > Some(1_000_000));
            let writer = PcapWriter::with_snaplen(out, frame.linktype, nanosecond, false, self.snaplen)?;
            self.writer = Some((writer, frame.linktype));
        }
        let Some((writer, linktype)) = self.writer.as_mut() else {
            return Err(io::Error::other("pcap writer has no header"));
        };
        if frame.linktype != *linktype {
            return Err(io::Error::other(format!(
                "frame {} has link type {} ({}) after {} ({}): a pcap file holds one link type; write pcapng (-F pcapng) instead",
                frame.number,
                linktype_name(frame.linktype),
                frame.linktype.0,
                linktype_name(*linktype),
                linktype.0
            )));
        }
        writer.write_packet(frame.ts, frame.data, frame.len)
    }

    fn finish(self) -> io::Result<Out> {
        match (self.writer, self.waiting) {
            (Some((writer, _)), _) => Ok(writer.into_inner()),
            // No frame came: an empty capture of Ethernet, as tcpdump writes one.
            (None, Some(out)) => {
                Ok(PcapWriter::with_snaplen(out, Linktype::ETHERNET, false, false, self.snaplen)?.into_inner())
            }
            (None, None) => Err(io::Error::other("pcap writer already finished")),
        }
    }
}

/// `-b`: when a ring starts its next file, and how many it keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RingLimits {
    /// `filesize:KB`: once a file holds this many kB (1,000 bytes, as dumpcap's).
    pub filesize_kb: Option<u64>,
    /// `duration:SECS`: once a frame comes SECS after the file's first.
    pub duration: Option<f64>,
    /// `interval:SECS`: at every multiple of SECS since the epoch (every hour on the hour).
    pub interval: Option<u64>,
    /// `packets:N`: once a file holds N frames.
    pub packets: Option<u64>,
    /// `files:N`: keep the newest N files, removing older ones.
    pub files: Option<u32>,
}

impl RingLimits {
    /// Adds one `-b KEY:VALUE`; each key once.
    pub fn set(&mut self, text: &str) -> Result<(), String> {
        let (key, value) = text.split_once(':').ok_or_else(|| ring_usage(text))?;
        let twice =
            || format!("-b {key} is given twice: give each of filesize, duration, interval, packets and files once");
        let number = |max: u64| match value.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("-b {key}:{value}: give a whole number from 1 to {max}")),
        };
        match key {
            "filesize" if self.filesize_kb.is_none() => self.filesize_kb = Some(number(2_000_000_000)?),
            "duration" if self.duration.is_none() => {
                self.duration = Some(match value.parse::<f64>() {
                    Ok(secs) if secs > 0.0 && secs <= crate::cli::MAX_SECS => secs,
                    _ => return Err(format!("-b duration:{value}: give seconds, more than 0 and at most a year")),
                })
            }
            "interval" if self.interval.is_none() => self.interval = Some(number(crate::cli::MAX_SECS as u64)?),
            "packets" if self.packets.is_none() => self.packets = Some(number(u64::from(u32::MAX))?),
            "files" if self.files.is_none() => self.files = Some(number(99_999)? as u32),
            "filesize" | "duration" | "interval" | "packets" | "files" => return Err(twice()),
            _ => return Err(ring_usage(text)),
        }
        Ok(())
    }

    /// Whether anything says when to start the next file (files:N alone does not).
    pub fn rotates(&self) -> bool {
        self.filesize_kb.is_some() || self.duration.is_some() || self.interval.is_some() || self.packets.is_some()
    }
}

fn ring_usage(text: &str) -> String {
    format!(
        "-b '{text}' is not one of filesize:KB, duration:SECS, interval:SECS, packets:N, files:N \
         (as dumpcap's -b; repeat -b for several)"
    )
}

/// A ring of capture files, `PREFIX_NNNNN_YYYYMMDDhhmmss.EXT` after the
/// `-w` name, each complete (its own header and interfaces), the time
/// being when the file was started (local time, as dumpcap's).
pub struct Ring {
    /// `-w` without its extension, and the extension (with its dot, or empty).
    prefix: String,
    extension: String,
    format: FileFormat,
    snaplen: u32,
    limits: RingLimits,
    /// Number of the current file (1 for the first).
    number: u32,
    current: FileWriter,
    /// Time of the current file's first frame, and its frame count.
    first: Option<Timestamp>,
    packets: u64,
    /// Files written, oldest first (the current one last).
    files: VecDeque<PathBuf>,
}

impl Ring {
    /// Starts the first file, now: a directory that cannot take it is said
    /// before the capture starts.
    pub fn create(path: &str, format: FileFormat, snaplen: u32, limits: RingLimits) -> Result<Ring, String> {
        let (prefix, extension) = split_extension(path);
        let first_name = file_name(&prefix, &extension, 1);
        let current = open(&first_name, format, snaplen)?;
        Ok(Ring {
            prefix,
            extension,
            format,
            snaplen,
            limits,
            number: 1,
            current,
            first: None,
            packets: 0,
            files: VecDeque::from([first_name]),
        })
    }

    /// Starts the next file when `frame` would overfill the current one;
    /// returns whether it did.
    pub fn start_file_if_due(&mut self, frame: &Frame<'_>) -> io::Result<bool> {
        if !self.is_due(frame.ts) {
            return Ok(false);
        }
        self.number += 1;
        let name = file_name(&self.prefix, &self.extension, self.number);
        let next = open(&name, self.format, self.snaplen).map_err(io::Error::other)?;
        std::mem::replace(&mut self.current, next).finish()?;
        self.first = None;
        self.packets = 0;
        self.files.push_back(name);
        self.remove_beyond_limit()?;
        Ok(true)
    }

    fn is_due(&self, ts: Timestamp) -> bool {
        let Some(first) = self.first else {
            return false;
        };
        let limits = &self.limits;
        limits.filesize_kb.is_some_and(|kb| self.current.bytes() >= kb.saturating_mul(1000))
            || limits.packets.is_some_and(|n| self.packets >= n)
            || limits.duration.is_some_and(|secs| ts.seconds_since(first) >= secs)
            || limits.interval.is_some_and(|secs| {
                let secs = secs as i64;
                ts.secs.div_euclid(secs) != first.secs.div_euclid(secs)
            })
    }

    fn remove_beyond_limit(&mut self) -> io::Result<()> {
        let Some(keep) = self.limits.files else {
            return Ok(());
        };
        while self.files.len() > keep as usize {
            let Some(oldest) = self.files.pop_front() else {
                break;
            };
            match std::fs::remove_file(&oldest) {
                Ok(()) => {}
                // Someone else removed it already: what files:N wants.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(io::Error::new(e.kind(), format!("{}: cannot remove: {e}", oldest.display())));
                }
            }
        }
        Ok(())
    }

    pub fn write(&mut self, frame: &Frame<'_>, comment: Option<&str>) -> io::Result<()> {
        self.first.get_or_insert(frame.ts);
        self.packets += 1;
        self.current.write(frame, comment)
    }

    pub fn finish(self) -> io::Result<()> {
        self.current.finish()
    }
}

/// `out.pcapng` -> (`out`, `.pcapng`); `dir.d/out` -> (`dir.d/out`, ``).
fn split_extension(path: &str) -> (String, String) {
    let file = Path::new(path).file_name().and_then(|f| f.to_str()).unwrap_or("");
    match file.rfind('.') {
        Some(dot) if dot > 0 => {
            let cut = path.len() - (file.len() - dot);
            (path[..cut].to_string(), path[cut..].to_string())
        }
        _ => (path.to_string(), String::new()),
    }
}

fn file_name(prefix: &str, extension: &str, number: u32) -> PathBuf {
    let started = chrono::Local::now().format("%Y%m%d%H%M%S");
    PathBuf::from(format!("{prefix}_{number:05}_{started}{extension}"))
}

fn open(path: &Path, format: FileFormat, snaplen: u32) -> Result<FileWriter, String> {
    let file = std::fs::File::create(path)
        .map_err(|e| format!("{}: cannot create: {e}; check the directory exists and is writable", path.display()))?;
    FileWriter::new(Box::new(file), format, snaplen).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// Where `-w` writes: one file, or a ring of them.
pub enum Sink {
    File(FileWriter),
    Ring(Ring),
}

impl Sink {
    /// A ring starts its next file when `frame` is due in it; returns
    /// whether one started (frame numbers in comments start again).
    pub fn start_file_if_due(&mut self, frame: &Frame<'_>) -> io::Result<bool> {
        match self {
            Sink::File(_) => Ok(false),
            Sink::Ring(ring) => ring.start_file_if_due(frame),
        }
    }

    pub fn is_ring(&self) -> bool {
        matches!(self, Sink::Ring(_))
    }

    pub fn write(&mut self, frame: &Frame<'_>, comment: Option<&str>) -> io::Result<()> {
        match self {
            Sink::File(file) => file.write(frame, comment),
            Sink::Ring(ring) => ring.write(frame, comment),
        }
    }

    pub fn finish(self) -> io::Result<()> {
        match self {
            Sink::File(file) => file.finish(),
            Sink::Ring(ring) => ring.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_names_keep_the_directory_and_the_extension() {
        assert_eq!(split_extension("out.pcapng"), ("out".into(), ".pcapng".into()));
        assert_eq!(split_extension("/tmp/a.b/out"), ("/tmp/a.b/out".into(), String::new()));
        assert_eq!(split_extension("/tmp/a.b/out.x.pcap"), ("/tmp/a.b/out.x".into(), ".pcap".into()));
        assert_eq!(split_extension(".hidden"), (".hidden".into(), String::new()));
    }

    #[test]
    fn ring_options_are_checked_as_dumpcap_checks_them() {
        let mut limits = RingLimits::default();
        limits.set("files:3").unwrap();
        assert!(!limits.rotates());
        limits.set("filesize:10").unwrap();
        limits.set("duration:0.5").unwrap();
        assert!(limits.rotates());
        assert_eq!(limits.filesize_kb, Some(10));
        assert_eq!(limits.duration, Some(0.5));
        assert!(limits.set("files:4").unwrap_err().contains("twice"));
        assert!(limits.set("files:0").is_err());
        assert!(RingLimits::default().set("files:100000").is_err());
        assert!(RingLimits::default().set("duration:-1").is_err());
        assert!(RingLimits::default().set("size:10").unwrap_err().contains("filesize:KB"));
        assert!(RingLimits::default().set("filesize").unwrap_err().contains("filesize:KB"));
    }
}
