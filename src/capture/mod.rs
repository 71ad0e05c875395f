//! Packet sources and sinks: capture files in, capture files out.

mod file;
#[cfg(feature = "libpcap")]
pub mod libpcap;
pub mod live;
pub mod mapped;
pub mod reader;
pub mod sink;
pub mod snoop;
pub mod writer;

use std::fmt;

pub use pcap_parser::Linktype;

/// LINKTYPE_IPNET: Solaris ipnet devices (pcap-parser has no name for it).
pub const LINKTYPE_IPNET: Linktype = Linktype(226);
pub use file::CaptureReader;
pub use reader::{CaptureError, MAX_RECORD};

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

    /// Packets the capturing tool dropped, when the source records it (a
    /// snoop file's cumulative count).
    fn dropped(&self) -> Option<u64> {
        None
    }
}

impl Source for CaptureReader {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        CaptureReader::next_frame(self)
    }

    fn dropped(&self) -> Option<u64> {
        CaptureReader::dropped(self)
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

    fn dropped(&self) -> Option<u64> {
        (**self).dropped()
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

/// Whether writing `output` would write over the capture `input` ("-" for
/// standard input): the same device and inode, through any symlink or hard
/// link. Asked before `output` is opened, which would truncate it.
pub fn is_same_file(input: &str, output: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let input = if input == "-" { "/dev/stdin" } else { input };
    match (std::fs::metadata(input), std::fs::metadata(output)) {
        (Ok(a), Ok(b)) => a.is_file() && a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Latest capture time shown as it is (9999-12-31T23:59:59Z): a time the
/// file gives past it, or before the epoch, is out of range.
pub const LAST_SECOND: i64 = 253_402_300_799;

/// A frame's time as the file wrote it: units of the interface's resolution
/// (pcapng's if_tsresol byte; 6 or 9 for classic pcap) and its offset in
/// seconds (if_tsoffset). `-w` writes these back, so a time is kept to the
/// unit whatever its decoding made of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTime {
    pub units: u64,
    pub tsresol: u8,
    pub offset_secs: i64,
    /// The time lies outside 1970-9999 (or overflows): `Frame::ts` is then
    /// the nearest end of that range.
    pub out_of_range: bool,
}

impl RawTime {
    /// The time of `units` of resolution `tsresol` after `offset_secs`,
    /// with checked arithmetic; `None` for a resolution that makes no sense.
    pub fn decode(units: u64, tsresol: u8, offset_secs: i64) -> Option<(Timestamp, RawTime)> {
        let per_sec = units_per_sec(tsresol).filter(|&u| u > 0)?;
        let nanos = (u128::from(units % per_sec) * 1_000_000_000 / u128::from(per_sec)) as u32;
        let secs = i64::try_from(units / per_sec).ok().and_then(|secs| secs.checked_add(offset_secs));
        let raw = |out_of_range| RawTime { units, tsresol, offset_secs, out_of_range };
        Some(match secs {
            Some(secs) if (0..=LAST_SECOND).contains(&secs) => (Timestamp::new(secs, nanos), raw(false)),
            Some(secs) if secs < 0 => (Timestamp::new(0, 0), raw(true)),
            _ => (Timestamp::new(LAST_SECOND, 999_999_999), raw(true)),
        })
    }
}

/// Units per second of a pcapng `if_tsresol`: a power of ten, or of two
/// with the top bit set; `None` past what a u64 holds.
pub fn units_per_sec(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent)
    } else {
        1u64.checked_shl(exponent)
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
    /// The time as a capture file wrote it (`None` from a live capture).
    pub raw_time: Option<RawTime>,
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
    pub raw_time: Option<RawTime>,
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
            raw_time: frame.raw_time,
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
            raw_time: self.raw_time,
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
        LINKTYPE_IPNET => "IPNET",
        Linktype(6) => "IEEE802_5",
        Linktype(9) => "PPP",
        Linktype(10) => "FDDI",
        Linktype(105) => "IEEE802_11",
        Linktype(127) => "IEEE802_11_RADIOTAP",
        _ => "UNKNOWN",
    }
}
