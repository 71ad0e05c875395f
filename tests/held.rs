//! Output held for requests' responses: written in one pass over the
//! capture, it must read exactly as a two-pass output would, where every
//! request is written knowing all its responses (Wireshark's `-2`).

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use ldm_sniff::analyze;
use ldm_sniff::capture::CaptureReader;
use ldm_sniff::dissect::{self, Dissection};
use ldm_sniff::filter::Filter;
use ldm_sniff::output::{self, Format, Packet, Printer, Style};
use ldm_sniff::pipeline::{self, Config};
use ldm_sniff::wire::ldm::MsgType;

/// Long enough that no window closes within a committed capture: the
/// one-pass output then holds every request to the end, and must list
/// every response, as the two-pass one does.
const WINDOW: f64 = 100_000.0;

fn captures() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("captures/ readable") {
            let path: PathBuf = entry.expect("directory entry").path();
            let name = path.to_string_lossy().into_owned();
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                files.push((name, std::fs::read(&path).expect("capture readable")));
            }
        }
    }
    files.sort();
    files
}

fn reader(name: &str, bytes: &[u8]) -> Option<CaptureReader> {
    CaptureReader::from_reader(name, Cursor::new(bytes.to_vec())).ok()
}

fn analysis() -> analyze::Options {
    analyze::Options { window: WINDOW, ..analyze::Options::default() }
}

fn is_request(d: &Dissection<'_>) -> bool {
    matches!(d.ldm.and_then(|m| m.msg_type), Some(MsgType::SendMsg | MsgType::DiscSend))
}

/// One way to show a capture.
#[derive(Clone, Copy, Debug)]
struct Shown {
    format: Format,
    verbose: bool,
    hex: bool,
    all: bool,
    filter: Option<&'static str>,
}

fn output_options(shown: Shown) -> output::Options {
    output::Options {
        format: shown.format,
        verbose: shown.verbose,
        hex: shown.hex,
        style: Style { color: false },
        line_buffered: false,
        time_format: Default::default(),
    }
}

fn filter(shown: Shown) -> Option<Filter> {
    shown.filter.map(|f| Filter::compile(f).expect("the test's filters compile"))
}

/// The binary's way: one pass, requests held until the end.
fn one_pass(name: &str, bytes: &[u8], shown: Shown) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(reader) = reader(name, bytes) else { return out };
    let config = Config {
        dissect: dissect::Options::default(),
        output: output_options(shown),
        count: None,
        all: shown.all,
        quiet: false,
        analysis: analysis(),
        stats: Vec::new(),
        filter: filter(shown),
        write: None,
        hold: true,
        columns: Default::default(),
        metrics: None,
        report: None,
    };
    pipeline::run(reader, &mut out, config).expect("writing into memory cannot fail");
    out
}

/// The oracle: a first pass finds every request's responses, a second
/// writes each packet knowing them. Returns the output and how many
/// responses it lists.
fn two_pass(name: &str, bytes: &[u8], shown: Shown) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut responses: HashMap<u64, Vec<u64>> = HashMap::new();
    let Some(first) = reader(name, bytes) else { return (out, 0) };
    pipeline::walk_analyzed(first, dissect::Options::default(), analysis(), |d, note| {
        if let Some(request) = note.request_in.filter(|_| d.is_ldm()) {
            responses.entry(request).or_default().push(d.frame.number);
        }
        Ok(true)
    })
    .expect("no output error");

    let filter = filter(shown);
    let mut printer = Printer::new(&mut out, output_options(shown));
    let mut listed = 0;
    let second = reader(name, bytes).expect("opened before");
    pipeline::walk_analyzed(second, dissect::Options::default(), analysis(), |d, note| {
        printer.saw_frame(d.frame.number, d.frame.ts);
        if !d.is_shown() && !shown.all {
            return Ok(true);
        }
        let mut note = note.clone();
        if is_request(d) {
            note.response_in = responses.get(&d.frame.number).cloned().unwrap_or_default();
        }
        let packet = Packet { d, note: &note };
        if filter.as_ref().is_some_and(|f| !f.matches(&packet, printer.relative_time(d.frame.ts))) {
            return Ok(true);
        }
        listed += note.response_in.len();
        printer.packet(&packet)?;
        Ok(true)
    })
    .expect("writing into memory cannot fail");
    printer.finish().expect("writing into memory cannot fail");
    (out, listed)
}

#[test]
fn held_output_reads_as_a_two_pass_output() {
    let plain = Shown { format: Format::Text, verbose: false, hex: false, all: false, filter: None };
    let ways = [
        Shown { format: Format::Jsonl, ..plain },
        Shown { format: Format::Json, ..plain },
        Shown { format: Format::Ek, ..plain },
        Shown { verbose: true, ..plain },
        Shown { verbose: true, hex: true, all: true, ..plain },
        Shown { format: Format::Jsonl, all: true, ..plain },
        Shown { filter: Some("ldm.response_in"), ..plain },
        Shown { format: Format::Jsonl, filter: Some("ldm.response_in >= 3 or frame.number > 4"), ..plain },
        Shown { verbose: true, filter: Some("not ldm.response_in"), ..plain },
        Shown { format: Format::Ek, filter: Some("ldm.msg_type == SEND_MSG"), ..plain },
    ];
    let mut listed = 0;
    let mut compared = 0;
    for (name, bytes) in captures() {
        for shown in ways {
            let (want, responses) = two_pass(&name, &bytes, shown);
            let got = one_pass(&name, &bytes, shown);
            assert!(
                got == want,
                "{name} {shown:?}: one pass and two passes differ\n--- one pass:\n{}\n--- two passes:\n{}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
            listed += responses;
            compared += 1;
        }
    }
    // The comparison means something only if responses were listed.
    assert!(compared > 200, "only {compared} outputs compared");
    assert!(listed > 100, "only {listed} responses listed");
}
