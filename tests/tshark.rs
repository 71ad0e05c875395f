//! Cross-checks our Ethernet/IP/UDP decoding against tshark, an independent
//! decoder, on every capture. CI installs tshark; elsewhere the test says it
//! skipped when tshark is missing.

mod common;

use common::captures;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ldm-sniff");

/// tshark fields, in this order, and where each is in our JSON.
const FIELDS: &[(&str, &str, &str)] = &[
    ("eth.src", "eth", "src"),
    // tshark names an 802.1ad (QinQ outer) tag ieee8021ad.id and an 802.1Q
    // tag vlan.id: our first tag is the outer one, our last the inner one.
    ("ieee8021ad.id", "eth", "vlan.outer"),
    ("vlan.id", "eth", "vlan.inner"),
    ("ipnet.family", "ipnet", "family"),
    ("ipnet.htype", "ipnet", "htype"),
    ("ipnet.ifindex", "ipnet", "ifindex"),
    ("ip.src", "ip", "src"),
    ("ip.dst", "ip", "dst"),
    ("ip.ttl", "ip", "ttl"),
    ("ip.id", "ip", "id"),
    ("ip.checksum.status", "ip", "checksum_status"),
    ("ipv6.src", "ipv6", "src"),
    ("ipv6.dst", "ipv6", "dst"),
    ("udp.srcport", "udp", "srcport"),
    ("udp.dstport", "udp", "dstport"),
    ("udp.length", "udp", "length"),
    ("udp.checksum.status", "udp", "checksum_status"),
];

fn tshark_available() -> bool {
    Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// tshark's value of each field, per frame.
fn tshark_fields(path: &Path) -> BTreeMap<u64, Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-r"]).arg(path).args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-E",
        "separator=\t",
        "-e",
        "frame.number",
    ]);
    for (field, _, _) in FIELDS {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(out.status.success(), "tshark failed on {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split('\t').map(str::to_string);
            let number = cols.next()?.parse().ok()?;
            Some((number, cols.collect()))
        })
        .collect()
}

/// Our value of each field, per frame (first record of a frame).
fn our_fields(path: &Path) -> BTreeMap<u64, Vec<Option<String>>> {
    let out = Command::new(BIN).args(["--all", "--fail-on", "never", "-T", "jsonl", "-r"]).arg(path).output();
    let out = out.expect("ldm-sniff runs");
    let mut frames = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let number = record["frame"]["number"].as_u64().expect("frame number");
        let values = FIELDS
            .iter()
            .map(|(_, layer, name)| {
                let value = match *name {
                    "vlan.outer" => record[layer]["vlan"].as_array().filter(|v| v.len() > 1).and_then(|v| v.first()),
                    "vlan.inner" => record[layer]["vlan"].as_array().and_then(|v| v.last()),
                    _ => record[layer].get(name),
                };
                match value.unwrap_or(&serde_json::Value::Null) {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                }
            })
            .collect();
        frames.entry(number).or_insert(values);
    }
    frames
}

/// Compares one field; checksum verdicts are mapped to tshark's numbers.
fn agree(field: &str, ours: &str, theirs: &str) -> bool {
    match field {
        "ip.checksum.status" | "udp.checksum.status" => match ours {
            "good" => theirs == "1",
            "bad" => theirs == "0",
            // Offload placeholders look bad to tshark, which knows no better.
            "partial" => theirs == "0",
            // Not checked by us (cut, outgoing, absent): tshark may say anything.
            _ => true,
        },
        "ip.id" => u64::from_str_radix(theirs.trim_start_matches("0x"), 16).is_ok_and(|v| v.to_string() == ours),
        _ => ours == theirs,
    }
}

#[test]
fn layers_agree_with_tshark() {
    if !tshark_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark: .ci/run installs it");
        eprintln!("tshark not installed: cross-check skipped (apt-get install tshark)");
        return;
    }
    let mut compared = 0;
    for path in captures() {
        let theirs = tshark_fields(&path);
        let ours = our_fields(&path);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{}: frame numbers",
            path.display()
        );
        for (number, values) in &ours {
            let tshark_values = &theirs[number];
            for (i, (field, _, _)) in FIELDS.iter().enumerate() {
                let Some(ours) = &values[i] else { continue };
                let theirs = tshark_values.get(i).map(String::as_str).unwrap_or("");
                assert!(
                    agree(field, ours, theirs),
                    "{} frame {number} {field}: ours {ours:?}, tshark {theirs:?}",
                    path.display()
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 500, "only {compared} values compared");
    eprintln!("{compared} field values agree with tshark");
}

#[test]
fn tshark_shows_annotations_as_frame_comments() {
    if !tshark_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark: .ci/run installs it");
        eprintln!("tshark not installed: annotation check skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("annotated.pcapng");
    let run = Command::new(BIN)
        .args(["-q", "--annotate", "-w"])
        .arg(&out)
        .args(["-r", "captures/two-owners.pcapng"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("ldm-sniff runs");
    assert_eq!(run.status.code(), Some(1), "two-owners has an error finding");
    let fields = Command::new("tshark")
        .arg("-r")
        .arg(&out)
        .args(["-T", "fields", "-e", "frame.number", "-e", "frame.comment"])
        .output();
    let text = String::from_utf8_lossy(&fields.expect("tshark runs").stdout).to_string();
    let comments: Vec<&str> = text.lines().collect();
    assert_eq!(comments.len(), 3, "{text}");
    assert_eq!(comments[0].trim(), "1", "the request has no finding: {text}");
    assert!(comments[1].starts_with("2\tldm-sniff: ldm.collision"), "{text}");
    assert!(comments[2].contains("ldm.duplicate_owner") && comments[2].contains("[error]"), "{text}");
    assert!(comments[2].contains("request in frame 1, response time 0.250000 s"), "{text}");
}

/// Overlapping IPv4 fragments: the frames tshark flags with
/// `ip.fragment.overlap` and `ip.fragment.overlap.conflict` are those we
/// flag with `ip.fragment_overlap` and `ip.fragment_overlap_conflict`.
#[test]
fn fragment_overlaps_agree_with_tshark() {
    if !tshark_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark");
        eprintln!("skipped: tshark not installed");
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/anomalies.pcapng");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-Y", "ip.fragment.overlap", "-T", "fields", "-e", "frame.number", "-e", "ip.fragment.overlap.conflict"])
        .output()
        .expect("tshark runs");
    let theirs: Vec<(u64, bool)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let (frame, conflict) = line.split_once('\t').unwrap_or((line, ""));
            (frame.parse().expect("a frame number"), !conflict.is_empty())
        })
        .collect();
    let out = Command::new(BIN).args(["-T", "jsonl", "--fail-on", "never", "-r"]).arg(&path).output().expect("runs");
    let mut ours = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let keys: Vec<&str> =
            record["expert"].as_array().into_iter().flatten().filter_map(|e| e["key"].as_str()).collect();
        let frame = record["frame"]["number"].as_u64().expect("a frame number");
        if keys.contains(&"ip.fragment_overlap_conflict") {
            ours.push((frame, true));
        } else if keys.contains(&"ip.fragment_overlap") {
            ours.push((frame, false));
        }
    }
    assert_eq!(theirs.len(), 2, "tshark sees both overlaps: {theirs:?}");
    assert_eq!(ours, theirs, "(frame, shared bytes differ), ours vs tshark");
}

/// Snoop files made by editcap (Wireshark's own snoop writer) from the
/// bundled Ethernet captures decode exactly as the originals, and their
/// record times and drops survive: the snoop reader against an independent
/// writer (issue 24).
#[test]
fn snoop_files_written_by_editcap_decode_as_their_originals() {
    if Command::new("editcap").arg("-h").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI must have editcap: .ci/run installs wireshark-common");
        eprintln!("editcap not installed: snoop cross-check skipped (apt-get install wireshark-common)");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    for name in ["discovery.pcapng", "mac-collision.pcapng", "anomalies.pcapng", "vlan.pcapng", "late-response.pcapng"]
    {
        let snoop = dir.path().join(name).with_extension("snoop");
        let status = Command::new("editcap").args(["-F", "snoop"]).arg(root.join(name)).arg(&snoop).status();
        assert!(status.expect("editcap runs").success(), "editcap -F snoop {name}");
        let run = |path: &Path| {
            let out = Command::new(BIN).args(["-V", "--fail-on", "never", "-r"]).arg(path).output().expect("runs");
            String::from_utf8_lossy(&out.stdout).replace("linktype: ETHERNET", "")
        };
        let (original, converted) = (run(&root.join(name)), run(&snoop));
        assert!(!converted.is_empty(), "{name}: nothing decoded from the snoop file");
        // Interface names and pcapng comments are not in snoop files; every layer is.
        let layers = |text: &str| -> Vec<String> {
            text.lines().filter(|l| !l.contains("Interface") && !l.contains("Comment")).map(str::to_string).collect()
        };
        assert_eq!(layers(&converted), layers(&original), "{name}: the snoop copy decodes differently");
    }
}

/// With -Y, the file -w writes numbers its frames anew: each comment says
/// whose frame numbers it gives, and where a linked request went in the
/// file, so a Wireshark user is not sent to the wrong frame (issue 24).
#[test]
fn filtered_annotations_name_their_numbering() {
    if !tshark_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark: .ci/run installs it");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let comments = |filter: &str| -> Vec<String> {
        let out = dir.path().join("evidence.pcapng");
        let run = Command::new(BIN)
            .args(["-q", "--fail-on", "never", "--annotate", "-Y", filter, "-w"])
            .arg(&out)
            .args(["-r", "captures/two-owners.pcapng"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("ldm-sniff runs");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let fields = Command::new("tshark").arg("-r").arg(&out).args(["-T", "fields", "-e", "frame.comment"]).output();
        String::from_utf8_lossy(&fields.expect("tshark runs").stdout).lines().map(str::to_string).collect()
    };
    let responses = comments("ldm.msg_type == RESPONSE_MSG");
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert!(responses[0].starts_with("ldm-sniff (frame 2 of the capture read;"), "{responses:?}");
    assert!(responses[0].contains("request in frame 1 (not in this file)"), "{responses:?}");
    let from_ldom_c = comments("ldm.msg_type == SEND_MSG or ip.src == 10.1.1.12");
    assert_eq!(from_ldom_c.len(), 2, "{from_ldom_c:?}");
    assert!(from_ldom_c[1].starts_with("ldm-sniff (frame 3 of the capture read;"), "{from_ldom_c:?}");
    assert!(from_ldom_c[1].contains("request in frame 1 (frame 1 of this file)"), "{from_ldom_c:?}");
}

/// `-t` shows every frame's time as tshark's `-t` does (its `_ws.col.Time`),
/// local formats in a time zone of their own (TZ, a POSIX rule: no tzdata).
#[test]
fn time_formats_agree_with_tshark() {
    if !tshark_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark: .ci/run installs it");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    for name in ["discovery.pcapng", "late-response.pcapng", "raw-ip-be-ns.pcap", "mixed-traffic.pcapng"] {
        for format in ["r", "d", "dd", "e", "u", "ud", "udoy", "a", "ad", "adoy"] {
            let theirs = Command::new("tshark")
                .env("TZ", "IST-5:30")
                .arg("-r")
                .arg(root.join(name))
                .args(["-t", format, "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Time"])
                .output()
                .expect("tshark runs");
            let theirs: BTreeMap<String, String> = String::from_utf8_lossy(&theirs.stdout)
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect();
            let ours = Command::new(BIN)
                .env("TZ", "IST-5:30")
                .args(["--all", "--fail-on", "never", "-t", format, "-r"])
                .arg(root.join(name))
                .output()
                .expect("ldm-sniff runs");
            // Formats with a date have a space in the column.
            let words = if ["ad", "ud", "adoy", "udoy"].contains(&format) { 2 } else { 1 };
            let mut compared = 0;
            for line in String::from_utf8_lossy(&ours.stdout).lines() {
                let tokens: Vec<&str> = line.split_whitespace().collect();
                let (number, time) = (tokens[0], tokens[1..=words].join(" "));
                // tshark shows nanoseconds for a nanosecond file; we show microseconds.
                let theirs_time = theirs.get(number).map(String::as_str).unwrap_or("");
                let theirs_time = match theirs_time.rsplit_once('.') {
                    Some((whole, fraction)) if fraction.len() > 6 => format!("{whole}.{}", &fraction[..6]),
                    _ => theirs_time.to_string(),
                };
                assert_eq!(time, theirs_time, "{name} -t {format} frame {number}");
                compared += 1;
            }
            assert!(compared > 0, "{name} -t {format}: nothing compared");
        }
    }
}

/// `-T fields` writes the lower layers' fields as tshark does, with the same
/// `-E` options, frame for frame.
#[test]
fn field_output_agrees_with_tshark() {
    if !tshark_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark: .ci/run installs it");
        return;
    }
    let fields = [
        "frame.number",
        "frame.len",
        "frame.cap_len",
        "eth.src",
        "eth.dst",
        "ip.src",
        "ip.dst",
        "ip.ttl",
        "ip.addr",
        "udp.srcport",
        "udp.dstport",
        "udp.length",
        "udp.port",
        "tcp.srcport",
        "tcp.dstport",
    ];
    let options = ["-E", "header=y", "-E", "separator=,", "-E", "quote=d", "-E", "occurrence=a", "-E", "aggregator=/s"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut lines = 0;
    for name in
        ["discovery.pcapng", "mixed-traffic.pcapng", "vlan.pcapng", "libvirt-anomalies.pcapng", "two-interfaces.pcapng"]
    {
        let field_args: Vec<&str> = fields.iter().flat_map(|f| ["-e", *f]).collect();
        let theirs = Command::new("tshark")
            .arg("-r")
            .arg(root.join(name))
            .args(["-T", "fields"])
            .args(&field_args)
            .args(options)
            .output()
            .expect("tshark runs");
        let ours = Command::new(BIN)
            .args(["--all", "--fail-on", "never", "-T", "fields"])
            .args(&field_args)
            .args(options)
            .arg("-r")
            .arg(root.join(name))
            .output()
            .expect("ldm-sniff runs");
        let theirs = String::from_utf8_lossy(&theirs.stdout).to_string();
        let ours = String::from_utf8_lossy(&ours.stdout).to_string();
        // A frame completing several libvirt messages is a line per message
        // in ours: compare the distinct lines.
        let mut our_lines: Vec<&str> = ours.lines().collect();
        our_lines.dedup();
        assert_eq!(our_lines, theirs.lines().collect::<Vec<_>>(), "{name}");
        lines += our_lines.len();
    }
    assert!(lines > 40, "only {lines} lines compared");
}
