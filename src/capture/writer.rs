//! Capture writers: classic pcap (either byte order, micro- or nanosecond) and
//! pcapng (several interfaces, packet comments).
//!
//! pcapng blocks are built with pcap-parser's serializer. Classic pcap is
//! written here because that serializer only writes little-endian, and the
//! format is a 24-byte header plus 16-byte record headers.

use std::borrow::Cow;
use std::io::{self, Write};

use pcap_parser::pcapng::{
    EnhancedPacketBlock, InterfaceDescriptionBlock, OptionCode, PcapNGOption, SectionHeaderBlock,
};
use pcap_parser::{Linktype, ToVec};

use super::Timestamp;

/// Largest snap length we declare, as libpcap does.
pub const SNAPLEN: u32 = 262_144;

pub struct PcapWriter<W: Write> {
    out: W,
    nanosecond: bool,
    big_endian: bool,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(out: W, linktype: Linktype, nanosecond: bool, big_endian: bool) -> io::Result<PcapWriter<W>> {
        PcapWriter::with_snaplen(out, linktype, nanosecond, big_endian, SNAPLEN)
    }

    /// As `new`, declaring `snaplen` (`-s`) in the header.
    pub fn with_snaplen(
        mut out: W,
        linktype: Linktype,
        nanosecond: bool,
        big_endian: bool,
        snaplen: u32,
    ) -> io::Result<PcapWriter<W>> {
        let magic: u32 = if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&u32b(magic));
        header.extend_from_slice(&u16b(2));
        header.extend_from_slice(&u16b(4));
        header.extend_from_slice(&u32b(0)); // thiszone
        header.extend_from_slice(&u32b(0)); // sigfigs
        header.extend_from_slice(&u32b(snaplen));
        header.extend_from_slice(&u32b(linktype.0 as u32));
        out.write_all(&header)?;
        Ok(PcapWriter { out, nanosecond, big_endian })
    }

    /// Writes one record; `orig_len` larger than `data` records a snap-length cut.
    /// A time the 32-bit seconds cannot hold is written as the nearest they can.
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let secs = u32::try_from(ts.secs.max(0)).unwrap_or(u32::MAX);
        let frac = if self.nanosecond { ts.nanos } else { ts.nanos / 1000 };
        let u32b = |v: u32| {
            if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&u32b(secs));
        record[4..8].copy_from_slice(&u32b(frac));
        record[8..12].copy_from_slice(&u32b(data.len() as u32));
        record[12..16].copy_from_slice(&u32b(orig_len));
        self.out.write_all(&record)?;
        self.out.write_all(data)
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn option(code: OptionCode, value: Vec<u8>) -> PcapNGOption<'static> {
    PcapNGOption { code, len: value.len() as u16, value: Cow::Owned(value) }
}

fn serialize_error(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("pcapng serialisation failed: {e:?}"))
}

pub struct PcapNgWriter<W: Write> {
    out: W,
    /// if_tsresol of each interface, by id.
    resolutions: Vec<u8>,
    /// Declared in each interface description.
    snaplen: u32,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the section header, naming us as the writing application.
    pub fn new(mut out: W) -> io::Result<PcapNgWriter<W>> {
        let app = concat!("ldm-sniff ", env!("CARGO_PKG_VERSION")).as_bytes().to_vec();
        let mut shb = SectionHeaderBlock {
            block_type: 0,
            block_len1: 0,
            bom: 0,
            major_version: 1,
            minor_version: 0,
            section_len: -1,
            options: vec![option(OptionCode::ShbUserAppl, app)],
            block_len2: 0,
        };
        out.write_all(&shb.to_vec().map_err(serialize_error)?)?;
        Ok(PcapNgWriter { out, resolutions: Vec::new(), snaplen: SNAPLEN })
    }

    /// The snap length the interfaces added from now on declare (`-s`).
    pub fn set_snaplen(&mut self, snaplen: u32) {
        self.snaplen = snaplen;
    }

    /// Describes an interface; `tsresol` is pcapng's if_tsresol (6 = µs, 9 = ns).
    /// Returns its id for `write_packet`.
    pub fn add_interface(&mut self, linktype: Linktype, name: &str, tsresol: u8) -> io::Result<u32> {
        self.add_interface_with_offset(linktype, name, tsresol, 0)
    }

    /// As `add_interface`, with an if_tsoffset (seconds added to every
    /// time) when it is not 0.
    pub fn add_interface_with_offset(
        &mut self,
        linktype: Linktype,
        name: &str,
        tsresol: u8,
        tsoffset: i64,
    ) -> io::Result<u32> {
        let mut options =
            vec![option(OptionCode::IfName, name.as_bytes().to_vec()), option(OptionCode::IfTsresol, vec![tsresol])];
        if tsoffset != 0 {
            options.push(option(OptionCode::IfTsoffset, tsoffset.to_le_bytes().to_vec()));
        }
        let mut idb = InterfaceDescriptionBlock {
            block_type: 0,
            block_len1: 0,
            linktype,
            reserved: 0,
            snaplen: self.snaplen,
            options,
            block_len2: 0,
            if_tsresol: tsresol,
            if_tsoffset: tsoffset,
        };
        self.out.write_all(&idb.to_vec().map_err(serialize_error)?)?;
        self.resolutions.push(tsresol);
        Ok(self.resolutions.len() as u32 - 1)
    }

    /// Writes one enhanced packet block, with an optional comment (opt_comment).
    pub fn write_packet(
        &mut self,
        if_id: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
        comment: Option<&str>,
    ) -> io::Result<()> {
        let Some(&tsresol) = self.resolutions.get(if_id as usize) else {
            return Err(io::Error::other(format!("pcapng writer: interface {if_id} was not added")));
        };
        let per_sec = super::units_per_sec(tsresol).unwrap_or(1_000_000_000);
        // A time before 1970 or past what the units hold is written as the
        // nearest they can say.
        let secs = u64::try_from(ts.secs).unwrap_or(0);
        let fraction = u128::from(ts.nanos) * u128::from(per_sec) / 1_000_000_000;
        let units = u128::from(secs) * u128::from(per_sec) + fraction;
        self.write_packet_units(if_id, u64::try_from(units).unwrap_or(u64::MAX), data, orig_len, comment)
    }

    /// Writes one enhanced packet block stamped `units` of its interface's
    /// resolution, with an optional comment (opt_comment).
    pub fn write_packet_units(
        &mut self,
        if_id: u32,
        units: u64,
        data: &[u8],
        orig_len: u32,
        comment: Option<&str>,
    ) -> io::Result<()> {
        if self.resolutions.get(if_id as usize).is_none() {
            return Err(io::Error::other(format!("pcapng writer: interface {if_id} was not added")));
        }
        let options = comment.map(|c| vec![option(OptionCode::Comment, c.as_bytes().to_vec())]).unwrap_or_default();
        let mut epb = EnhancedPacketBlock {
            block_type: 0,
            block_len1: 0,
            if_id,
            ts_high: (units >> 32) as u32,
            ts_low: units as u32,
            caplen: data.len() as u32,
            origlen: orig_len,
            data,
            options,
            block_len2: 0,
        };
        self.out.write_all(&epb.to_vec().map_err(serialize_error)?)
    }

    /// Writes a block of any type with the given body (padded to 32 bits),
    /// e.g. to test that readers skip block types they do not know.
    pub fn write_raw_block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        self.out.write_all(&block_type.to_le_bytes())?;
        self.out.write_all(&total.to_le_bytes())?;
        self.out.write_all(body)?;
        self.out.write_all(&[0u8; 3][..padded - body.len()])?;
        self.out.write_all(&total.to_le_bytes())
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// An output interface: the input interface, its link type (as a number:
/// `Linktype` is not `Hash`), and its timestamps' resolution and offset.
type InterfaceKey = (u32, i32, u8, i64);

/// Writes frames from any source to pcapng, describing each input interface
/// (with its link type and time resolution and offset) as an output
/// interface on first use. A frame from a file is stamped with the units
/// the file gave it, so its time is written back unchanged, even one out
/// of range; a live frame in nanoseconds.
pub struct FrameWriter<W: Write> {
    out: PcapNgWriter<W>,
    interfaces: std::collections::HashMap<InterfaceKey, u32>,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(out: W) -> io::Result<FrameWriter<W>> {
        FrameWriter::with_snaplen(out, SNAPLEN)
    }

    /// As `new`, each interface declaring `snaplen` (`-s`).
    pub fn with_snaplen(out: W, snaplen: u32) -> io::Result<FrameWriter<W>> {
        let mut out = PcapNgWriter::new(out)?;
        out.set_snaplen(snaplen);
        Ok(FrameWriter { out, interfaces: std::collections::HashMap::new() })
    }

    /// Writes one frame, with an optional comment.
    pub fn write(&mut self, frame: &super::Frame<'_>, comment: Option<&str>) -> io::Result<()> {
        let (tsresol, offset) = frame.raw_time.map_or((9, 0), |raw| (raw.tsresol, raw.offset_secs));
        let key = (frame.interface, frame.linktype.0, tsresol, offset);
        let id = match self.interfaces.get(&key) {
            Some(id) => *id,
            None => {
                let name = format!("if{}", frame.interface);
                let id = self.out.add_interface_with_offset(frame.linktype, &name, tsresol, offset)?;
                self.interfaces.insert(key, id);
                id
            }
        };
        match frame.raw_time {
            Some(raw) => self.out.write_packet_units(id, raw.units, frame.data, frame.len, comment),
            None => self.out.write_packet(id, frame.ts, frame.data, frame.len, comment),
        }
    }

    pub fn get_ref(&self) -> &W {
        self.out.get_ref()
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner()
    }
}
