//! Frame decode, per-packet checks, the analysis and every output format, on
//! any frame bytes under each link type we read. The first byte picks the
//! link type; the rest is the frame. Several frames per input (split on a
//! marker) so reassembly and the analysis see sequences.
#![no_main]

use ldm_sniff::analyze::{self, Analyzer};
use ldm_sniff::capture::{Frame, KernelChecksum, Linktype, Timestamp};
use ldm_sniff::dissect::{self, Dissector};
use ldm_sniff::output::{self, Format, Packet, Printer, Style};
use libfuzzer_sys::fuzz_target;

fn printers() -> Vec<Printer<std::io::Sink>> {
    let options = |format, verbose| output::Options {
        format,
        verbose,
        hex: verbose,
        style: Style { color: verbose },
        line_buffered: false,
    };
    [(Format::Text, false), (Format::Text, true), (Format::Json, false), (Format::Ek, false)]
        .into_iter()
        .map(|(format, verbose)| Printer::new(std::io::sink(), options(format, verbose)))
        .collect()
}

const LINKTYPES: [Linktype; 6] = [
    Linktype::ETHERNET,
    Linktype::LINUX_SLL,
    Linktype::LINUX_SLL2,
    Linktype::RAW,
    Linktype::NULL,
    Linktype::IPV4,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let linktype = LINKTYPES[usize::from(pick) % LINKTYPES.len()];
    let options = dissect::Options { heuristic: pick & 0x80 != 0, checksum_all: pick & 0x40 != 0, ..Default::default() };
    let mut dissector = Dissector::new(options);
    let mut analyzer = Analyzer::new(analyze::Options::default());
    let mut printers = printers();
    for (i, chunk) in rest.split(|&b| b == 0xA5).enumerate().take(64) {
        let frame = Frame {
            number: i as u64 + 1,
            ts: Timestamp::new(i as i64 / 4, (i as u32 % 4) * 250_000_000),
            len: chunk.len() as u32,
            linktype,
            interface: 0,
            file_offset: 0,
            data: chunk,
            kernel_checksum: KernelChecksum::Unknown,
        };
        let d = dissector.dissect(frame);
        let note = analyzer.observe(&d);
        for printer in &mut printers {
            printer.saw_frame(d.frame.ts);
            printer.packet(&Packet { d: &d, note: &note }).expect("a sink accepts everything");
        }
    }
    for printer in &mut printers {
        printer.finish().expect("a sink accepts everything");
    }
});
