//! `-F pcap|pcapng` and `-b` ring buffers: files read back by tshark (an
//! independent reader) and by our own reader, every frame once and in order,
//! each file complete. tshark is installed in CI; elsewhere its checks say
//! they skipped.

mod common;

use common::have;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use ldm_sniff::capture::{CaptureReader, Linktype, Timestamp};

const BIN: &str = env!("CARGO_BIN_EXE_ldm-sniff");

/// (time, len, link type, bytes) of every frame.
type FrameFacts = (Timestamp, u32, Linktype, Vec<u8>);

fn frames(path: &Path) -> Vec<FrameFacts> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.display().to_string();
    let mut reader = CaptureReader::from_reader(&name, Cursor::new(bytes)).expect("opens");
    let mut out = Vec::new();
    while let Some(f) = reader.next_frame().unwrap_or_else(|e| panic!("{name}: {e}")) {
        out.push((f.ts, f.len, f.linktype, f.data.to_vec()));
    }
    out
}

fn ldm_sniff(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("runs")
}

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures").join(name)
}

/// tshark's time, length and captured length of every frame, one line each.
fn tshark_frames(path: &Path) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark cannot read {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// The ring's files, in ring order (their numbers).
fn ring_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).expect("readable").flatten().map(|e| e.path()).collect();
    files.sort();
    files
}

/// `PREFIX_NNNNN_YYYYMMDDhhmmss.EXT`: the number, and a plausible time.
fn ring_number(path: &Path, prefix: &str, extension: &str) -> u32 {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let rest = name.strip_prefix(&format!("{prefix}_")).unwrap_or_else(|| panic!("{name} starts with {prefix}_"));
    let rest = rest.strip_suffix(extension).unwrap_or_else(|| panic!("{name} ends with {extension}"));
    let (number, started) = rest.split_once('_').unwrap_or_else(|| panic!("{name}: NNNNN_YYYYMMDDhhmmss"));
    assert_eq!(number.len(), 5, "{name}");
    assert_eq!(started.len(), 14, "{name}");
    assert!(started.starts_with("20") && started.bytes().all(|b| b.is_ascii_digit()), "{name}");
    number.parse().unwrap()
}

fn run_ok(args: &[&str]) {
    let run = ldm_sniff(args);
    assert!(run.status.success(), "{args:?}: {}", String::from_utf8_lossy(&run.stderr));
}

/// Writes `source` as a ring named after `name` in `dir`, with `options`
/// (`-b`, `-F`); the ring's files, in ring order.
fn write_ring(dir: &Path, name: &str, source: &Path, options: &[&str]) -> Vec<PathBuf> {
    let prefix = dir.join(name);
    let mut args = vec!["-q", "--fail-on", "never"];
    args.extend(options);
    args.extend(["-w", prefix.to_str().unwrap(), "-r", source.to_str().unwrap()]);
    run_ok(&args);
    ring_files(dir)
}

#[test]
fn pcap_format_keeps_every_frame_and_its_time() {
    let dir = tempfile::tempdir().unwrap();
    // Microsecond pcapng, nanosecond pcap, cooked capture, raw IP.
    for name in ["busy-link.pcapng", "raw-ip-be-ns.pcap", "sll2-any.pcap", "lookup-storm.pcapng"] {
        let source = capture(name);
        let out = dir.path().join(format!("{name}.pcap"));
        run_ok(&[
            "-q",
            "--fail-on",
            "never",
            "-F",
            "pcap",
            "-w",
            out.to_str().unwrap(),
            "-r",
            source.to_str().unwrap(),
        ]);
        let bytes = std::fs::read(&out).unwrap();
        // Classic pcap, little-endian host order; nanosecond magic only for nanosecond sources.
        let magic = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let nanosecond = name.contains("-ns");
        assert_eq!(magic, if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, "{name}");
        assert_eq!(frames(&out), frames(&source), "{name}");
        if have("tshark", "pcap_format_keeps_every_frame_and_its_time") {
            assert_eq!(tshark_frames(&out), tshark_frames(&source), "{name}");
        }
    }
}

#[test]
fn pcap_format_says_what_it_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pcap");
    let out = out.to_str().unwrap();
    let annotate = ldm_sniff(&["-q", "-F", "pcap", "--annotate", "-w", out, "-r", "captures/late-response.pcapng"]);
    assert_eq!(annotate.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&annotate.stderr);
    assert!(stderr.contains("--annotate") && stderr.contains("pcapng"), "{stderr}");

    // Ethernet then Linux cooked v2: the second link type cannot go in a pcap file.
    let mixed =
        ldm_sniff(&["-q", "--fail-on", "never", "-F", "pcap", "-w", out, "-r", "captures/two-interfaces.pcapng"]);
    let stderr = String::from_utf8_lossy(&mixed.stderr);
    assert_ne!(mixed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("frame 2") && stderr.contains("-F pcapng"), "{stderr}");
    // What came before the bad frame is kept, complete.
    assert_eq!(frames(Path::new(out)).len(), 1);

    let unknown = ldm_sniff(&["-F", "snoop", "-w", out, "-r", "captures/discovery.pcapng"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("pcapng"));
}

/// Every frame of `source` once, in order, across the ring's files; each
/// file complete for us and for tshark.
fn assert_ring_holds(source: &Path, files: &[PathBuf]) {
    let mut joined = Vec::new();
    for file in files {
        let these = frames(file);
        assert!(!these.is_empty(), "{} is empty", file.display());
        joined.extend(these);
    }
    assert_eq!(joined, frames(source));
    if have("tshark", "assert_ring_holds") {
        let joined: Vec<String> = files.iter().flat_map(|f| tshark_frames(f)).collect();
        assert_eq!(joined, tshark_frames(source));
    }
}

#[test]
fn ring_by_packets_holds_every_frame_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let source = capture("busy-link.pcapng");
    let files = write_ring(dir.path(), "ring.pcapng", &source, &["-b", "packets:10"]);
    assert_eq!(files.len(), 10, "97 frames, 10 a file: {files:?}");
    let numbers: Vec<u32> = files.iter().map(|f| ring_number(f, "ring", ".pcapng")).collect();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
    let counts: Vec<usize> = files.iter().map(|f| frames(f).len()).collect();
    assert_eq!(counts, [10, 10, 10, 10, 10, 10, 10, 10, 10, 7]);
    // Each file is a whole pcapng: it starts with its own section header.
    for file in &files {
        assert_eq!(&std::fs::read(file).unwrap()[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "{}", file.display());
    }
    assert_ring_holds(&source, &files);
}

#[test]
fn ring_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let source = capture("busy-link.pcapng");
    let files = write_ring(dir.path(), "keep.pcap", &source, &["-F", "pcap", "-b", "packets:10", "-b", "files:3"]);
    let numbers: Vec<u32> = files.iter().map(|f| ring_number(f, "keep", ".pcap")).collect();
    assert_eq!(numbers, [8, 9, 10]);
    let kept: Vec<FrameFacts> = files.iter().flat_map(|f| frames(f)).collect();
    let all = frames(&source);
    assert_eq!(kept, all[70..]);
}

#[test]
fn ring_by_filesize_starts_a_file_once_one_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let source = capture("lookup-storm.pcapng");
    let files = write_ring(dir.path(), "size", &source, &["-b", "filesize:50"]);
    assert!(files.len() > 5, "{files:?}");
    for file in &files {
        ring_number(file, "size", "");
    }
    let (last, full) = files.split_last().unwrap();
    for file in full {
        let size = std::fs::metadata(file).unwrap().len();
        // Full (50 kB, as dumpcap counts: 1,000 bytes), by less than one frame over.
        assert!((50_000..50_000 + 400).contains(&size), "{}: {size} bytes", file.display());
    }
    assert!(std::fs::metadata(last).unwrap().len() <= 50_400);
    assert_ring_holds(&source, &files);
}

#[test]
fn ring_by_duration_follows_capture_time() {
    let dir = tempfile::tempdir().unwrap();
    let source = capture("busy-link.pcapng");
    let files = write_ring(dir.path(), "time.pcapng", &source, &["-b", "duration:0.5"]);
    // 50 frames in the first half second, 46 in the next, then one at
    // 1.5005 s: three files (no empty file for the quiet half second).
    assert_eq!(files.len(), 3, "{files:?}");
    let mut previous_start: Option<Timestamp> = None;
    for file in &files {
        let these = frames(file);
        let (start, end) = (these[0].0, these[these.len() - 1].0);
        assert!(end.seconds_since(start) < 0.5, "{} spans {} s", file.display(), end.seconds_since(start));
        if let Some(previous) = previous_start {
            assert!(start.seconds_since(previous) >= 0.5, "{}", file.display());
        }
        previous_start = Some(start);
    }
    assert_ring_holds(&source, &files);
}

#[test]
fn ring_options_are_usage_errors_when_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pcapng");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-b", "files:3", "-w", out], "filesize"),
        (&["-b", "size:3", "-w", out], "filesize:KB"),
        (&["-b", "packets:0", "-w", out], "from 1"),
        (&["-b", "packets:3", "-b", "packets:4", "-w", out], "twice"),
        (&["-b", "packets:3", "-w", "-"], "not -"),
        (&["-b", "packets:3"], "-w"),
        (&["-F", "pcap"], "-w"),
        (&["-s", "100", "-w", out], "cannot be used with '--read-file"),
    ];
    for (args, expected) in cases {
        let mut all = args.to_vec();
        all.extend(["-r", "captures/discovery.pcapng"]);
        let run = ldm_sniff(&all);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(stderr.contains(expected), "{all:?}: {stderr}");
    }
    assert!(ring_files(dir.path()).is_empty(), "no file is made for a refused run");
}
