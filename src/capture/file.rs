//! A capture file of any format we read: pcap and pcapng (`reader.rs`,
//! over pcap-parser) or snoop (`snoop.rs`), told apart by their first bytes.

use std::io::{self, BufReader, Cursor, Read};
use std::os::unix::fs::FileExt;

use super::reader::{CaptureError, PcapReader};
use super::snoop::{self, SnoopReader};
use super::Frame;

/// Buffer of a snoop stream: its records are read one at a time.
const SNOOP_BUFFER: usize = 1 << 20;

pub struct CaptureReader {
    inner: Inner,
}

enum Inner {
    Pcap(PcapReader),
    Snoop(SnoopReader),
}

impl CaptureReader {
    /// Opens a file, or standard input for "-".
    pub fn open(path: &str) -> Result<CaptureReader, CaptureError> {
        if path == "-" {
            return CaptureReader::from_reader("standard input", io::stdin());
        }
        let file = std::fs::File::open(path).map_err(|source| CaptureError::Open { path: path.to_string(), source })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(CaptureError::Directory { path: path.to_string() });
        }
        // Peeked where it lies, so the file's position stays at its start;
        // a file that cannot be read at an offset (a FIFO) is read as a stream.
        let mut start = [0u8; 8];
        match file.read_at(&mut start, 0) {
            Ok(8) if &start == snoop::MAGIC => {
                let source = BufReader::with_capacity(SNOOP_BUFFER, file);
                Ok(CaptureReader { inner: Inner::Snoop(SnoopReader::new(path, Box::new(source))?) })
            }
            Ok(_) => Ok(CaptureReader { inner: Inner::Pcap(PcapReader::open_file(path, file)?) }),
            Err(_) => CaptureReader::from_reader(path, file),
        }
    }

    /// Reads a capture from any byte stream; `name` is used in messages.
    pub fn from_reader<R: Read + Send + 'static>(name: &str, mut source: R) -> Result<CaptureReader, CaptureError> {
        let mut start = Vec::with_capacity(snoop::MAGIC.len());
        (&mut source).take(snoop::MAGIC.len() as u64).read_to_end(&mut start).map_err(|e| CaptureError::Read {
            path: name.to_string(),
            offset: 0,
            frame: 0,
            what: e.to_string(),
        })?;
        let is_snoop = start == snoop::MAGIC;
        let whole = Cursor::new(start).chain(source);
        if is_snoop {
            let buffered = BufReader::with_capacity(SNOOP_BUFFER, whole);
            return Ok(CaptureReader { inner: Inner::Snoop(SnoopReader::new(name, Box::new(buffered))?) });
        }
        Ok(CaptureReader { inner: Inner::Pcap(PcapReader::from_reader(name, whole)?) })
    }

    /// The next frame, `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match &mut self.inner {
            Inner::Pcap(reader) => reader.next_frame(),
            Inner::Snoop(reader) => reader.next_frame(),
        }
    }

    /// Packets the capturing tool dropped, when the file records it (snoop).
    pub fn dropped(&self) -> Option<u64> {
        match &self.inner {
            Inner::Pcap(_) => None,
            Inner::Snoop(reader) => Some(reader.dropped()),
        }
    }
}
