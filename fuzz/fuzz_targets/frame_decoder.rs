//! Frame decode, per-packet checks, the analysis and every output format, on
//! any frame bytes under each link type we read. The first byte picks the
//! link type; the rest is the frame. Several frames per input (split on a
//! marker) so reassembly and the analysis see sequences. The same frames,
//! as a capture, then go through the whole pipeline with the output held
//! for responses: the JSON it writes must parse, and a filter on
//! `ldm.response_in` must keep only records that list responses.
#![no_main]

use ldm_sniff::analyze::{self, Analyzer};
use ldm_sniff::capture::writer::PcapWriter;
use ldm_sniff::capture::{CaptureReader, Frame, KernelChecksum, Linktype, Timestamp};
use ldm_sniff::dissect::{self, Dissector};
use ldm_sniff::filter::Filter;
use ldm_sniff::output::{self, Format, Packet, Printer, Style};
use ldm_sniff::pipeline::{self, Config};
use ldm_sniff::report::{Ending, Recorder};
use libfuzzer_sys::fuzz_target;

fn printers() -> Vec<Printer<std::io::Sink>> {
    let options = |format, verbose| output::Options {
        format,
        verbose,
        hex: verbose,
        style: Style { color: verbose },
        line_buffered: false,
        time_format: Default::default(),
    };
    [(Format::Text, false), (Format::Text, true), (Format::Json, false), (Format::Ek, false)]
        .into_iter()
        .map(|(format, verbose)| Printer::new(std::io::sink(), options(format, verbose)))
        .collect()
}

const LINKTYPES: [Linktype; 6] =
    [Linktype::ETHERNET, Linktype::LINUX_SLL, Linktype::LINUX_SLL2, Linktype::RAW, Linktype::NULL, Linktype::IPV4];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let linktype = LINKTYPES[usize::from(pick) % LINKTYPES.len()];
    let options =
        dissect::Options { heuristic: pick & 0x80 != 0, checksum_all: pick & 0x40 != 0, ..Default::default() };
    let mut dissector = Dissector::new(options);
    let mut analyzer = Analyzer::new(analyze::Options::default());
    let mut printers = printers();
    for (i, chunk) in rest.split(|&b| b == 0xA5).enumerate().take(64) {
        let frame = Frame {
            number: i as u64 + 1,
            ts: frame_ts(i),
            len: chunk.len() as u32,
            linktype,
            interface: 0,
            file_offset: 0,
            data: chunk,
            kernel_checksum: KernelChecksum::Unknown,
            raw_time: None,
        };
        let d = dissector.dissect(frame);
        let note = analyzer.observe(&d);
        for printer in &mut printers {
            printer.saw_frame(d.frame.number, d.frame.ts);
            printer.packet(&Packet { d: &d, note: &note }).expect("a sink accepts everything");
        }
    }
    for printer in &mut printers {
        printer.finish().expect("a sink accepts everything");
    }
    held_output(linktype, options, rest);
});

fn frame_ts(i: usize) -> Timestamp {
    Timestamp::new(i as i64 / 4, (i as u32 % 4) * 250_000_000)
}

/// The frames as a capture, through the pipeline with the output held.
fn held_output(linktype: Linktype, options: dissect::Options, rest: &[u8]) {
    let mut writer = PcapWriter::new(Vec::new(), linktype, true, false).expect("into memory");
    for (i, chunk) in rest.split(|&b| b == 0xA5).enumerate().take(64) {
        writer.write_packet(frame_ts(i), chunk, chunk.len() as u32).expect("into memory");
    }
    let capture = writer.into_inner();
    for filter in [None, Some("ldm.response_in")] {
        let mut out = Vec::new();
        let reader = CaptureReader::from_reader("fuzz", std::io::Cursor::new(capture.clone())).expect("our own pcap");
        let config = Config {
            dissect: options,
            output: output::Options {
                format: Format::Json,
                verbose: false,
                hex: false,
                style: Style { color: false },
                line_buffered: false,
                time_format: Default::default(),
            },
            count: None,
            all: true,
            quiet: false,
            analysis: analyze::Options::default(),
            stats: Vec::new(),
            filter: filter.map(|f| Filter::compile(f).expect("compiles")),
            write: None,
            hold: true,
            columns: Default::default(),
            metrics: None,
            // The report is drawn from whatever the frames held: it must not panic either.
            report: Some(Recorder::new(1.0, filter.map(str::to_string))),
        };
        let outcome = pipeline::run(reader, &mut out, config).expect("writing into memory cannot fail");
        if let Some(report) = outcome.report {
            let ending =
                Ending { source: "fuzz".to_string(), from_file: true, exit_status: 0, exit_reason: String::new() };
            let page = report.render(&ending);
            assert!(page.contains("<section id=\"verdict\">"), "a page without its verdict");
        }
        let records: Vec<serde_json::Value> = serde_json::from_slice(&out).expect("the held output is JSON");
        if filter.is_some() {
            for record in &records {
                let listed = record["ldm"]["response_in"].as_array().is_some_and(|list| !list.is_empty());
                assert!(listed, "a record without responses passed the filter: {record}");
            }
        }
    }
}
