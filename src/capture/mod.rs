//! Packet sources and sinks: capture files in, capture files out.

#[cfg(feature = "libpcap")]
pub mod libpcap;
pub mod live;
pub mod mapped;
pub mod reader;
pub mod writer;

use std::fmt;

pub use pcap_parser::Linktype;
pub use reader::{CaptureError, CaptureReader};

/// The 32-bit word at `at` in `data`, in the file's byte order; `None` past
/// the end. Capture headers and blocks are made of such words.
#[inline(always)]
pub(crate) fn word_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) })
}

/// Where frames come from: a capture file or a live interface. One pipeline
/// reads both.
pub trait Source {
    /// The next frame; `None` at the end (of the file, or of the capture).
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError>;
}

impl Source for CaptureReader {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        CaptureReader::next_frame(self)
    }
}

impl Source for live::LiveCapture {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        live::LiveCapture::next_frame(self)
    }
}

#[cfg(feature = "libpcap")]
impl Source for libpcap::PcapCapture {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        libpcap::PcapCapture::next_frame(self)
    }
}

impl<S: Source + ?Sized> Source for &mut S {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        (**self).next_frame()
    }
}

/// Capture time of a frame, as the file recorded it (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn new(secs: i64, nanos: u32) -> Timestamp {
        Timestamp { secs, nanos }
    }

    pub fn as_nanos(self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// Seconds from `earlier` to `self` (negative when out of order).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        // Whole seconds and nanoseconds apart: no i128 (its float conversion
        // showed in live profiles), and exact for any timestamps a file holds.
        let secs = self.secs.saturating_sub(earlier.secs) as f64;
        let nanos = f64::from(self.nanos) - f64::from(earlier.nanos);
        secs + nanos / 1e9
    }
}

impl fmt::Display for Timestamp {
    /// Epoch seconds with nanoseconds, as tshark's `frame.time_epoch`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

/// What the capturing kernel said of a frame's transport checksum: Linux
/// live capture reads it from the packet's ring status; frames from files
/// and libpcap say nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChecksum {
    #[default]
    Unknown,
    /// `TP_STATUS_CSUMNOTREADY`: the stack left the checksum to the NIC, so
    /// the field holds the offload placeholder, not a checksum.
    NotReady,
    /// `TP_STATUS_CSUM_VALID`: the NIC or the stack already validated it.
    Valid,
}

/// One captured frame, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// 1-based, as Wireshark numbers frames.
    pub number: u64,
    pub ts: Timestamp,
    /// Bytes on the wire (the frame may have been cut to `data.len()`).
    pub len: u32,
    pub linktype: Linktype,
    /// pcapng interface id (0 for classic pcap).
    pub interface: u32,
    /// Byte offset of the frame's record in the file.
    pub file_offset: u64,
    pub data: &'a [u8],
    /// Lets the dissector skip summing a datagram the kernel already judged.
    pub kernel_checksum: KernelChecksum,
}

impl Frame<'_> {
    pub fn caplen(&self) -> u32 {
        self.data.len() as u32
    }

    /// True when the snap length cut the frame.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.len)
    }
}

/// A frame copied out of the reader's buffer, to be shown later: the first
/// fragment of a datagram given up on, or a TCP segment that waited behind a
/// hole in its stream.
#[derive(Debug, Clone)]
pub struct KeptFrame {
    pub number: u64,
    pub ts: Timestamp,
    pub len: u32,
    pub linktype: Linktype,
    pub interface: u32,
    pub file_offset: u64,
    pub data: Vec<u8>,
}

impl KeptFrame {
    pub fn keep(frame: &Frame<'_>) -> KeptFrame {
        KeptFrame {
            number: frame.number,
            ts: frame.ts,
            len: frame.len,
            linktype: frame.linktype,
            interface: frame.interface,
            file_offset: frame.file_offset,
            data: frame.data.to_vec(),
        }
    }

    /// The frame again, borrowed from the copy (the kernel's checksum
    /// verdict is not kept).
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            number: self.number,
            ts: self.ts,
            len: self.len,
            linktype: self.linktype,
            interface: self.interface,
            file_offset: self.file_offset,
            data: &self.data,
            kernel_checksum: KernelChecksum::Unknown,
        }
    }
}

/// Human name of a link type, as Wireshark and tcpdump say it.
pub fn linktype_name(linktype: Linktype) -> &'static str {
    match linktype {
        Linktype::NULL => "NULL",
        Linktype::ETHERNET => "ETHERNET",
        Linktype::RAW => "RAW",
        Linktype::LOOP => "LOOP",
        Linktype::LINUX_SLL => "LINUX_SLL",
        Linktype::LINUX_SLL2 => "LINUX_SLL2",
        Linktype::IPV4 => "IPV4",
        Linktype::IPV6 => "IPV6",
        Linktype(12) | Linktype(14) => "RAW",
        _ => "UNKNOWN",
    }
}
