//! -w writes pcapng that reads back frame for frame; -Y selects what is
//! written; --annotate puts findings in packet comments (checked with
//! tshark in tests/tshark.rs).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use ldm_sniff::capture::{CaptureReader, Linktype, Timestamp};

const BIN: &str = env!("CARGO_BIN_EXE_ldm-sniff");

/// (number, time, len, link type, bytes) of every frame.
type FrameFacts = (u64, Timestamp, u32, Linktype, Vec<u8>);

fn frames(name: &str, bytes: Vec<u8>) -> Vec<FrameFacts> {
    let mut reader = CaptureReader::from_reader(name, Cursor::new(bytes)).expect("opens");
    let mut out = Vec::new();
    while let Some(f) = reader.next_frame().expect("reads to the end") {
        out.push((f.number, f.ts, f.len, f.linktype, f.data.to_vec()));
    }
    out
}

fn ldm_sniff(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("runs")
}

/// A temporary directory for a test's files, removed when the test ends
/// (also when it fails).
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[test]
fn every_capture_round_trips_frame_for_frame() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut names: Vec<PathBuf> = ["", "recorded", "solaris"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(root.join(sub)).expect("captures/ readable").flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng" || e == "snoop"))
        .collect();
    names.sort();
    assert!(names.len() > 20);
    let dir = scratch();
    for path in names {
        let out = dir.path().join(format!("{}.pcapng", path.file_name().unwrap().to_string_lossy()));
        let status =
            ldm_sniff(&["-q", "--fail-on", "never", "-w", out.to_str().unwrap(), "-r", path.to_str().unwrap()]);
        assert!(status.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&status.stderr));
        let original = frames("original", std::fs::read(&path).unwrap());
        let written = frames("written", std::fs::read(&out).unwrap());
        let _ = std::fs::remove_file(&out);
        assert_eq!(original, written, "{}", path.display());
    }
}

#[test]
fn display_filter_selects_what_is_written() {
    let dir = scratch();
    let out = dir.path().join("filtered.pcapng");
    let run = ldm_sniff(&[
        "-q",
        "--fail-on",
        "never",
        "-Y",
        "ldm.msg_type == RESPONSE_MSG",
        "-w",
        out.to_str().unwrap(),
        "-r",
        "captures/allocation-failure.pcapng",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let written = frames("written", std::fs::read(&out).unwrap());
    let _ = std::fs::remove_file(&out);
    // Every second frame is a response: 40 of them.
    assert_eq!(written.len(), 40);
    let original = frames("original", std::fs::read("captures/allocation-failure.pcapng").unwrap());
    for (i, frame) in written.iter().enumerate() {
        assert_eq!(frame.4, original[2 * i + 1].4, "written frame {} is original frame {}", i + 1, 2 * i + 2);
    }
}

#[test]
fn writes_to_standard_output() {
    let run = ldm_sniff(&["-w", "-", "-r", "captures/two-interfaces.pcapng"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let written = frames("stdout", run.stdout);
    let original = frames("original", std::fs::read("captures/two-interfaces.pcapng").unwrap());
    assert_eq!(written, original);
    let refused = ldm_sniff(&["-w", "-", "-z", "ldm,summary", "-r", "captures/discovery.pcapng"]);
    assert_eq!(refused.status.code(), Some(2));
}
