//! Solaris snoop files (RFC 1761, version 2): what `snoop -o FILE` writes on
//! the control domains where ldmd runs. Big-endian throughout: a 16-byte
//! file header ("snoop\0\0\0", version, datalink type), then records of a
//! 24-byte header (original length, included length, record length,
//! cumulative drops, seconds, microseconds), the packet and padding.
//!
//! pcap-parser does not read snoop, and the format is small: records are
//! read here, one at a time, from a buffered stream.

use std::io::{self, Read};

use pcap_parser::Linktype;

use super::reader::{CaptureError, MAX_RECORD};
use super::{Frame, KernelChecksum, RawTime, Timestamp, LINKTYPE_IPNET};

pub const MAGIC: &[u8; 8] = b"snoop\0\0\0";
const FILE_HEADER_LEN: u64 = 16;
const RECORD_HEADER_LEN: usize = 24;
/// The datalink types Solaris writes that we decode: IEEE 802.3 and
/// Ethernet (RFC 1761's 0 and 4), and ipnet (Solaris's private type 5,
/// with the private bit set).
const DL_CSMACD: u32 = 0;
const DL_ETHER: u32 = 4;
const DL_IPNET: u32 = 0x8000_0005;

pub struct SnoopReader {
    path: String,
    source: Box<dyn Read + Send>,
    linktype: Linktype,
    /// The current record's packet and padding.
    record: Vec<u8>,
    /// File offset of the next record.
    offset: u64,
    frames: u64,
    /// The latest record's cumulative drop count.
    drops: u32,
}

/// The pcap link type of a snoop datalink type, or why it is not read.
fn linktype_of(datalink: u32) -> Result<Linktype, String> {
    match datalink {
        DL_CSMACD | DL_ETHER => Ok(Linktype::ETHERNET),
        DL_IPNET => Ok(LINKTYPE_IPNET),
        other => Err(format!(
            "snoop datalink type {other:#x} is not read (ldm-sniff reads snoop captures of Ethernet and ipnet links); \
             convert it with editcap -F pcapng if tshark reads it"
        )),
    }
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` when the stream ends before
/// the first byte, an `UnexpectedEof` error when it ends inside.
fn read_all_or_none(source: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn be_word(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl SnoopReader {
    /// Reads the file header from `source`, which starts at the file's start.
    pub fn new(path: &str, mut source: Box<dyn Read + Send>) -> Result<SnoopReader, CaptureError> {
        let path = path.to_string();
        let mut header = [0u8; FILE_HEADER_LEN as usize];
        match read_all_or_none(source.as_mut(), &mut header) {
            Ok(true) => {}
            Ok(false) => return Err(CaptureError::Empty { path }),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(CaptureError::Truncated { path, offset: 0, frame: 0 })
            }
            Err(e) => return Err(CaptureError::Read { path, offset: 0, frame: 0, what: e.to_string() }),
        }
        let version = be_word(&header, 8);
        if version != 2 {
            let what = format!(
                "snoop version {version} is not read (Solaris snoop writes version 2; 3-5 are Shomiti Surveyor's): \
                 convert it with editcap -F pcapng"
            );
            return Err(CaptureError::Unsupported { path, what });
        }
        let linktype =
            linktype_of(be_word(&header, 12)).map_err(|what| CaptureError::Unsupported { path: path.clone(), what })?;
        Ok(SnoopReader { path, source, linktype, record: Vec::new(), offset: FILE_HEADER_LEN, frames: 0, drops: 0 })
    }

    /// Packets the capturing snoop dropped, up to the last record read.
    pub fn dropped(&self) -> u64 {
        u64::from(self.drops)
    }

    /// The next frame, `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let at = self.offset;
        let mut header = [0u8; RECORD_HEADER_LEN];
        match read_all_or_none(self.source.as_mut(), &mut header) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(self.read_error(at, e)),
        }
        let orig_len = be_word(&header, 0);
        let incl_len = be_word(&header, 4) as usize;
        let record_len = be_word(&header, 8) as usize;
        if record_len > MAX_RECORD {
            return Err(CaptureError::RecordTooLarge {
                path: self.path.clone(),
                offset: at,
                frame: self.frames,
                claimed: record_len as u64,
            });
        }
        if record_len < RECORD_HEADER_LEN + incl_len {
            let what = format!(
                "a record of {record_len} bytes cannot hold its {RECORD_HEADER_LEN}-byte header and {incl_len} captured bytes"
            );
            return Err(CaptureError::Corrupt { path: self.path.clone(), offset: at, frame: self.frames, what });
        }
        self.record.resize(record_len - RECORD_HEADER_LEN, 0);
        match read_all_or_none(self.source.as_mut(), &mut self.record) {
            Ok(true) => {}
            Ok(false) if self.record.is_empty() => {}
            Ok(false) => {
                return Err(CaptureError::Truncated { path: self.path.clone(), offset: at, frame: self.frames })
            }
            Err(e) => return Err(self.read_error(at, e)),
        }
        self.drops = be_word(&header, 12);
        self.offset += record_len as u64;
        self.frames += 1;
        let (ts, raw_time) = record_time(be_word(&header, 16), be_word(&header, 20));
        Ok(Some(Frame {
            number: self.frames,
            ts,
            len: orig_len.max(incl_len as u32),
            linktype: self.linktype,
            interface: 0,
            file_offset: at,
            data: &self.record[..incl_len],
            kernel_checksum: KernelChecksum::Unknown,
            raw_time: Some(raw_time),
        }))
    }

    fn read_error(&self, offset: u64, e: io::Error) -> CaptureError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return CaptureError::Truncated { path: self.path.clone(), offset, frame: self.frames };
        }
        CaptureError::Read { path: self.path.clone(), offset, frame: self.frames, what: e.to_string() }
    }
}

/// A record's time: seconds and microseconds. Microseconds past a second
/// (a broken writer) are kept in the raw units and shown as the second's
/// last microsecond.
fn record_time(secs: u32, micros: u32) -> (Timestamp, RawTime) {
    let units = u64::from(secs) * 1_000_000 + u64::from(micros);
    let raw = RawTime { units, tsresol: 6, offset_secs: 0, out_of_range: false };
    (Timestamp::new(i64::from(secs), micros.min(999_999) * 1_000), raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snoop(datalink: u32, records: &[(&[u8], u32, u32)]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(2u32.to_be_bytes());
        out.extend(datalink.to_be_bytes());
        for (data, drops, padding) in records {
            let record_len = RECORD_HEADER_LEN as u32 + data.len() as u32 + padding;
            for word in [data.len() as u32, data.len() as u32, record_len, *drops, 1_700_000_000, 250_000] {
                out.extend(word.to_be_bytes());
            }
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0u8, *padding as usize));
        }
        out
    }

    fn reader(bytes: Vec<u8>) -> Result<SnoopReader, CaptureError> {
        SnoopReader::new("t.snoop", Box::new(io::Cursor::new(bytes)))
    }

    #[test]
    fn records_are_read_with_their_padding_time_and_drops() {
        let bytes = snoop(DL_ETHER, &[(b"first", 0, 3), (b"second!!", 7, 0)]);
        let mut r = reader(bytes).unwrap();
        let first = r.next_frame().unwrap().unwrap();
        assert_eq!((first.data, first.number, first.file_offset), (&b"first"[..], 1, 16));
        assert_eq!(first.ts, Timestamp::new(1_700_000_000, 250_000_000));
        assert_eq!(first.linktype, Linktype::ETHERNET);
        let second = r.next_frame().unwrap().unwrap();
        assert_eq!((second.data, second.file_offset), (&b"second!!"[..], 16 + 24 + 5 + 3));
        assert!(r.next_frame().unwrap().is_none());
        assert_eq!(r.dropped(), 7);
    }

    #[test]
    fn ipnet_is_read_and_other_datalinks_are_named() {
        let mut r = reader(snoop(DL_IPNET, &[(b"x", 0, 0)])).unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().linktype, LINKTYPE_IPNET);
        let err = reader(snoop(8, &[])).err().unwrap().to_string();
        assert!(err.contains("datalink type 0x8 is not read"), "{err}");
    }

    #[test]
    fn damage_is_named_with_its_offset() {
        let mut cut = snoop(DL_ETHER, &[(b"abcdef", 0, 2)]);
        cut.truncate(cut.len() - 3);
        let mut r = reader(cut).unwrap();
        let err = r.next_frame().err().unwrap().to_string();
        assert!(err.contains("ends in the middle of a record at byte offset 16"), "{err}");

        let mut lying = snoop(DL_ETHER, &[(b"abcdef", 0, 0)]);
        lying[16 + 8..16 + 12].copy_from_slice(&10u32.to_be_bytes());
        let err = reader(lying).unwrap().next_frame().err().unwrap().to_string();
        assert!(err.contains("cannot hold its 24-byte header and 6 captured bytes"), "{err}");

        let mut version = snoop(DL_ETHER, &[]);
        version[8..12].copy_from_slice(&3u32.to_be_bytes());
        assert!(reader(version).err().unwrap().to_string().contains("snoop version 3 is not read"));
    }
}
