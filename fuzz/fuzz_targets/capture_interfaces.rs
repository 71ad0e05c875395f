//! pcapng files with many interface blocks (issue 23): the input gives the
//! number of interfaces (up to 70,000, past the 65,536 the reader allows),
//! their names' length, time resolution and offset, and the interfaces the
//! packets name. Reading must neither panic nor hold names in memory, and
//! must refuse a section with too many interfaces as corrupt.
#![no_main]

use std::io::Cursor;

use ldm_sniff::capture::writer::PcapNgWriter;
use ldm_sniff::capture::{CaptureReader, Linktype};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let interfaces = usize::from(u16::from_le_bytes([data[0], data[1]])) + usize::from(data[2] & 1) * 4_465;
    let name = "n".repeat(usize::from(data[3]) * 16);
    let mut w = PcapNgWriter::new(Vec::new()).expect("writing to a Vec");
    for i in 0..interfaces {
        let tsresol = data[4 + i % (data.len() - 4)];
        let offset = i64::from(data[5]) << (i % 63);
        if w.add_interface_with_offset(Linktype::ETHERNET, &name, tsresol, offset).is_err() {
            return;
        }
    }
    let frame = ldm_sniff::synth::hostile::discovery_frame();
    for (i, pick) in data.iter().enumerate().skip(6).take(64) {
        let iface = u32::from(*pick) * 257 % (interfaces.max(1) as u32);
        let units = u64::from_le_bytes([*pick, 0, 0, 0, 0, 0, 0, i as u8]);
        let _ = w.write_packet_units(iface, units, &frame, frame.len() as u32, None);
    }
    let Ok(mut reader) = CaptureReader::from_reader("fuzz", Cursor::new(w.into_inner())) else { return };
    while let Ok(Some(frame)) = reader.next_frame() {
        let _ = frame.ts;
    }
});
