//! `-z io,stat,INTERVAL[,FILTER...]` against tshark's own: the same table,
//! character for character, on every bundled capture and for several
//! intervals and filter columns; and where ours differs on purpose, that
//! it does. CI installs tshark; elsewhere the comparisons say they skipped.

mod common;

use common::{captures, have};

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ldm-sniff");

fn ours(path: &Path, time_format: &str, specs: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.env("TZ", "Asia/Kolkata").args(["-q", "--fail-on", "never", "-t", time_format, "-r"]).arg(path);
    for spec in specs {
        cmd.args(["-z", &format!("io,stat,{spec}")]);
    }
    let out = cmd.output().expect("ldm-sniff runs");
    assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// tshark's tables for `specs`, in the order given (tshark prints the
/// last -z first).
fn theirs(path: &Path, time_format: &str, specs: &[&str]) -> String {
    let mut cmd = Command::new("tshark");
    cmd.env("TZ", "Asia/Kolkata").args(["-q", "-t", time_format, "-r"]).arg(path);
    for spec in specs.iter().rev() {
        cmd.args(["-z", &format!("io,stat,{spec}")]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(out.status.success(), "tshark on {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The numbers of a table row, after its interval.
fn cells(row: &str) -> Vec<u64> {
    row.split('|').skip(2).filter_map(|cell| cell.trim().parse().ok()).collect()
}

/// Frames in a capture, as tshark counts them.
fn frames_read(path: &Path) -> u64 {
    let out = Command::new("tshark").arg("-r").arg(path).args(["-T", "fields", "-e", "frame.number"]).output();
    String::from_utf8_lossy(&out.expect("tshark runs").stdout).lines().count() as u64
}

/// Ours and tshark's tables agree line for line, except that a table's
/// last row may count more: tshark drops a frame at the very end of a
/// capture whose duration is a whole number of intervals, we count it.
fn assert_same_tables(name: &str, ours: &str, theirs: &str) {
    let (ours, theirs): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    assert_eq!(ours.len(), theirs.len(), "{name}: as many lines as tshark's");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let b = &duration_zero_padded(b);
        let last_row = a.contains(" <> ") && ours.get(i + 1).is_some_and(|next| next.starts_with('='));
        if !last_row {
            assert_eq!(a, b, "{name}, line {}", i + 1);
            continue;
        }
        let (mine, tsharks) = (cells(a), cells(b));
        assert_eq!(a.split('|').nth(1), b.split('|').nth(1), "{name}, line {}", i + 1);
        assert!(mine.iter().zip(&tsharks).all(|(m, t)| m >= t) && mine.len() == tsharks.len(), "{name}: {a} / {b}");
    }
}

/// tshark writes the duration's microseconds with `%6u` (tap-iostat.c), so
/// 55.008100 s comes out as `55.  8100`: read back with the zeros, as ours
/// writes it.
fn duration_zero_padded(line: &str) -> String {
    let Some(rest) = line.strip_prefix("| Duration: ") else { return line.to_string() };
    let Some((whole, fraction)) = rest.split_once('.') else { return line.to_string() };
    let digits = fraction.len() - fraction.trim_start_matches(' ').len();
    format!("| Duration: {whole}.{}{}", "0".repeat(digits), &fraction[digits..])
}

#[test]
fn tables_match_tsharks_on_every_capture() {
    if !have("tshark", "tables_match_tsharks_on_every_capture") {
        return;
    }
    // The whole capture, whole seconds, tenths, milliseconds with a filter,
    // three columns with an empty one, a filter on the frame itself.
    let specs = ["0", "1", "0.1", "0.001,udp", "0.25,udp.port==64535,,tcp.port==16509", "2,frame.len>100,ip"];
    let mut compared = 0;
    for path in captures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // tshark cannot draw this one (it runs out of memory on the year-9999
        // frame); undecoded-link is PPP, which tshark decodes and we do not
        // (its `ip` and `udp` columns differ; the frame counts agree).
        if name == "time-out-of-range.pcapng" {
            continue;
        }
        let specs: &[&str] = if name == "undecoded-link.pcap" { &specs[..3] } else { &specs };
        assert_same_tables(&name, &ours(&path, "r", specs), &theirs(&path, "r", specs));
        let whole = ours(&path, "r", &["0"]);
        let total = cells(whole.lines().find(|l| l.contains(" <> ")).unwrap_or("| 0 <> 0 | 0 | 0 |"))[0];
        assert_eq!(total, frames_read(&path), "{name}: the whole capture's row counts every frame");
        compared += 1;
    }
    assert!(compared > 30, "{compared} captures compared");
}

#[test]
fn time_labels_match_tsharks() {
    if !have("tshark", "time_labels_match_tsharks") {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/busy-link.pcapng");
    // Time of day fills the interval column only for whole seconds (tshark
    // leaves the row short otherwise); a date always does.
    let cases: [(&str, &[&str]); 3] = [
        ("a", &["1", "1,ip.src==10.1.1.11"]),
        ("ad", &["1", "0", "0.5,ip.src==10.1.1.11"]),
        ("ud", &["1", "0", "0.5,ip.src==10.1.1.11"]),
    ];
    for (time_format, specs) in cases {
        assert_eq!(ours(&path, time_format, specs), theirs(&path, time_format, specs), "-t {time_format}");
    }
}

/// Where tshark slips, ours does not: `-t u` keeps its header line, `-t
/// adoy` and `-t a` with decimals fill their column, a frame at the very
/// end of a capture whose duration is a whole number of intervals is
/// counted (tshark drops it), and a duration's fraction keeps its zeros.
#[test]
fn tshark_slips_are_not_copied() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/busy-link.pcapng");
    let utc = ours(&path, "u", &["0.5"]);
    assert!(utc.contains("\n| Time       | Frames | Bytes |\n"), "{utc}");
    assert!(utc.contains("\n| 09:30:00   |     50 | 10635 |\n"), "{utc}");
    let day_of_year = ours(&path, "udoy", &["1"]);
    assert!(day_of_year.contains("\n| 2026/306 09:30:00   |     96 | 19854 |\n"), "{day_of_year}");

    let discovery = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/discovery.pcapng");
    let table = ours(&discovery, "r", &["0.00315"]);
    assert!(table.contains("| 0.00630 <> 0.00945 |      1 |   354 |"), "the fourth frame, at 0.00945 s: {table}");

    // tshark: "| Duration: 55.  8100 secs  |".
    let incident = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/incident.pcapng");
    let table = ours(&incident, "r", &["10"]);
    assert!(table.contains("| Duration: 55.008100 secs  |"), "{table}");
    assert_eq!(duration_zero_padded("| Duration: 55.  8100 secs  |"), "| Duration: 55.008100 secs  |");
}

#[test]
fn json_formats_carry_the_counts() {
    let out = Command::new(BIN)
        .args(["-T", "jsonl", "-q", "-r", "captures/busy-link.pcapng", "-z", "io,stat,0.5,,ip.src==10.1.1.11"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert!(out.status.success());
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON record");
    let stat = &record["stats"]["io,stat"];
    assert_eq!(stat["columns"], serde_json::json!([null, "ip.src==10.1.1.11"]));
    assert_eq!(stat["interval"], 0.5);
    assert_eq!(stat["duration"], 1.5005);
    let intervals = stat["intervals"].as_array().expect("intervals");
    let frames: Vec<serde_json::Value> = intervals.iter().map(|i| i["frames"].clone()).collect();
    assert_eq!(
        frames,
        [serde_json::json!([50, 1]), serde_json::json!([46, 1]), serde_json::json!([0, 0]), serde_json::json!([1, 0])]
    );
    assert_eq!(intervals[3]["start"], 1.5);
    assert_eq!(intervals[3]["end"], 1.5005);
}

#[test]
fn a_year_long_capture_draws_only_intervals_with_frames() {
    let out = Command::new(BIN)
        .args(["-q", "--fail-on", "never", "-r", "captures/time-out-of-range.pcapng", "-z", "io,stat,1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains(" <> ")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(text.contains("intervals without frames are not drawn"), "{text}");
}

#[test]
fn wrong_arguments_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["-z", "io,stat,x"], "is not an interval"),
        (&["-z", "io,stat,1,"], "ends with a comma"),
        (&["-z", "io,stat,0.0000001"], "under a microsecond"),
        (&["-z", "io,stat,1,COUNT(ldm.mac)ldm"], "COUNT()"),
        (&["-z", "io,stat,1,ldm.msg_typ == SEND_MSG"], "ldm.msg_type"),
        (&["-z", "io,stat,1", "-t", "e"], "-t r, a, ad"),
        (&["-z", "io,sta"], "io,stat,INTERVAL"),
    ];
    for (args, expected) in cases {
        let mut all = args.to_vec();
        all.extend(["-r", "captures/discovery.pcapng"]);
        let out = Command::new(BIN).args(&all).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(stderr.contains(expected), "{all:?}: {stderr}");
    }
}
