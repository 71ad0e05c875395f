//! Runs the real binary over every capture and snapshots what a user sees:
//! stdout, stderr and the exit status. Snapshots live in top-level snapshots/.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ldm-sniff");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs ldm-sniff in the repository root; returns a transcript for snapshots.
fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .env_remove("NO_COLOR")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin is piped").write_all(input).expect("stdin accepts the capture");
    }
    let out = child.wait_with_output().expect("binary finishes");
    format!(
        "$ ldm-sniff {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.iter().map(|a| shell_quoted(a)).collect::<Vec<_>>().join(" "),
        out.status.code().map_or("signal".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An argument as a shell user would type it.
fn shell_quoted(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:,=".contains(c)) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn run(args: &[&str]) -> String {
    run_with_stdin(args, None)
}

/// The capture's path relative to the repository, as a user would type it.
fn relative(path: &Path) -> String {
    path.strip_prefix(repo()).expect("capture below the repository").display().to_string()
}

/// Captures of thousands of packets: snapshotted through their statistics,
/// not packet by packet.
fn is_large(path: &Path) -> bool {
    ["startup-check.pcapng", "startup-check-too-big.pcapng", "lookup-storm.pcapng", "virsh-lossy.pcap"]
        .iter()
        .any(|name| path.ends_with(name))
}

/// The tables a large capture is snapshotted by.
fn stats_of(path: &Path) -> [&'static str; 4] {
    if path.ends_with("virsh-lossy.pcap") {
        ["-z", "ldm,summary", "-z", "libvirt,procs"]
    } else {
        ["-z", "ldm,summary", "-z", "ldm,hosts"]
    }
}

macro_rules! snapshots {
    ($($body:tt)*) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, { $($body)* })
    };
}

#[test]
fn one_line_output_of_every_capture() {
    snapshots! {
        insta::glob!("../captures", "**/*.{pcap,pcapng,snoop}", |path| {
            let transcript = if is_large(path) {
                run(&[&["-q"][..], &stats_of(path), &["-r", &relative(path)]].concat())
            } else {
                run(&["-r", &relative(path)])
            };
            insta::assert_snapshot!("line", transcript);
        });
    }
}

#[test]
fn tree_output_of_every_capture() {
    snapshots! {
        insta::glob!("../captures", "**/*.{pcap,pcapng,snoop}", |path| {
            if !is_large(path) {
                insta::assert_snapshot!("tree", run(&["-V", "-r", &relative(path)]));
            }
        });
    }
}

#[test]
fn json_output_of_every_capture() {
    snapshots! {
        insta::glob!("../captures", "**/*.{pcap,pcapng,snoop}", |path| {
            if !is_large(path) {
                insta::assert_snapshot!("json", run(&["-T", "json", "-r", &relative(path)]));
            }
        });
    }
}

#[test]
fn json_output_is_valid_json_with_stable_fields() {
    for entry in ["captures/anomalies.pcapng", "captures/vlan.pcapng", "captures/sll2-any.pcap"] {
        let out = Command::new(BIN).args(["-T", "json", "-r", entry]).current_dir(repo()).output().expect("runs");
        let records: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
        let records = records.as_array().expect("an array");
        assert!(!records.is_empty(), "{entry}");
        for record in records {
            for key in ["frame", "ldm", "expert"] {
                assert!(record.get(key).is_some(), "{entry}: record without {key}: {record}");
            }
            assert!(record["frame"]["number"].is_u64());
        }
    }
}

#[test]
fn broken_files_stop_with_a_clear_error() {
    snapshots! {
        insta::glob!("../captures", "broken/*", |path| {
            insta::assert_snapshot!("broken", run(&["-r", &relative(path)]));
        });
    }
}

#[test]
fn statistics() {
    let all = ["-z", "ldm,summary", "-z", "ldm,hosts", "-z", "ldm,macs", "-z", "ldm,rtt"];
    snapshots! {
        for capture in ["discovery-inconsistent.pcapng", "two-owners.pcapng", "allocation-failure.pcapng", "late-response.pcapng", "discovery.pcapng"] {
            let path = format!("captures/{capture}");
            let mut args = vec!["-q"];
            args.extend(all);
            args.extend(["-r", &path]);
            insta::assert_snapshot!(format!("stats_{capture}"), run(&args));
        }
        insta::assert_snapshot!("stats_json", run(&["-T", "jsonl", "-z", "ldm,macs", "-z", "ldm,rtt", "-r", "captures/two-owners.pcapng"]));
        insta::assert_snapshot!("stats_unknown", run(&["-z", "ldm,nope", "-r", "captures/discovery.pcapng"]));
        // ldm's own fields as columns, which tshark cannot give.
        insta::assert_snapshot!("stats_io_stat", run(&["-q", "-z", "io,stat,5,ldm.msg_type==SEND_MSG,ldm.msg_type==RESPONSE_MSG,expert.severity==error", "-r", "captures/allocation-failure.pcapng"]));
    }
}

#[test]
fn options() {
    let cases: &[(&str, &[&str])] = &[
        ("all_frames", &["--all", "-r", "captures/mixed-traffic.pcapng"]),
        ("heuristic", &["--heuristic", "-r", "captures/mixed-traffic.pcapng"]),
        ("other_port", &["--port", "5000", "-r", "captures/mixed-traffic.pcapng"]),
        ("hex", &["-x", "-c", "1", "-r", "captures/discovery.pcapng"]),
        ("count", &["-c", "2", "-r", "captures/anomalies.pcapng"]),
        ("jsonl", &["-T", "jsonl", "-r", "captures/discovery.pcapng"]),
        ("ek", &["-T", "ek", "-r", "captures/little-endian.pcapng"]),
        ("quiet_still_fails", &["-q", "-r", "captures/anomalies.pcapng"]),
        ("fail_on_warn", &["--fail-on", "warn", "-r", "captures/little-endian.pcapng"]),
        ("fail_on_never", &["--fail-on", "never", "-q", "-r", "captures/anomalies.pcapng"]),
        ("color_always", &["--color", "always", "-c", "2", "-r", "captures/anomalies.pcapng"]),
        ("no_input", &[]),
        // Live errors that stop before any socket opens (tests never capture on a
        // real interface: live capture is tested in namespaces, tests/live.rs).
        ("live_no_such_interface", &["-i", "nosuch0"]),
        ("live_and_file", &["-i", "nosuch0", "-r", "captures/discovery.pcapng"]),
        ("autostop_needs_live", &["-a", "duration:1", "-r", "captures/discovery.pcapng"]),
        ("autostop_bad", &["-a", "packets:5", "-i", "nosuch0"]),
        ("missing_file", &["-r", "captures/no-such-file.pcap"]),
        ("bad_flag_value", &["-T", "xml", "-r", "captures/discovery.pcapng"]),
        ("filter_request_links", &["-Y", "ldm.response_in == 2", "-r", "captures/mac-collision.pcapng"]),
        ("filter_late", &["-V", "-Y", r#"expert == "ldm.late_response""#, "-r", "captures/late-response.pcapng"]),
        ("filter_storm_flagged", &["-Y", "expert", "-r", "captures/lookup-storm.pcapng"]),
        ("filter_startup_flagged", &["-Y", "expert", "-r", "captures/startup-check.pcapng"]),
        ("filter_startup_too_big_flagged", &["-Y", "expert", "-r", "captures/startup-check-too-big.pcapng"]),
        (
            "filter_json",
            &["-T", "jsonl", "-Y", "ldm.msg_type == DISC_RESP and ldm.rtt > 0.005", "-r", "captures/discovery.pcapng"],
        ),
        ("filter_unknown_field", &["-Y", r#"ldm.hostnme == "ldom-a""#, "-r", "captures/discovery.pcapng"]),
        ("filter_missing_value", &["-Y", "ip.src == ", "-r", "captures/discovery.pcapng"]),
        ("filter_unbalanced", &["-Y", "(ip.src == 10.1.1.10 or ldm", "-r", "captures/discovery.pcapng"]),
        ("filter_bad_address", &["-Y", "ip.src == 10.1.1.300", "-r", "captures/discovery.pcapng"]),
        ("window_longer", &["--window", "2", "-r", "captures/late-response.pcapng"]),
        ("storm_threshold", &["--storm", "2000/1", "-q", "-z", "ldm,summary", "-r", "captures/lookup-storm.pcapng"]),
        ("bad_storm", &["--storm", "fast", "-r", "captures/lookup-storm.pcapng"]),
        (
            "startup_max_raised",
            &["--startup-max", "2000", "-Y", "expert", "-r", "captures/startup-check-too-big.pcapng"],
        ),
        // tshark's and tcpdump's habits, met with a clear refusal (issue 24).
        ("capture_filter_on_a_file", &["-f", "udp port 64535", "-r", "captures/discovery.pcapng"]),
        ("trailing_filter", &["-r", "captures/discovery.pcapng", "udp port 64535"]),
        ("count_zero", &["-c", "0", "-r", "captures/discovery.pcapng"]),
        ("port_zero", &["--port", "0", "-r", "captures/discovery.pcapng"]),
        ("max_entries_zero", &["--max-entries", "0", "-r", "captures/discovery.pcapng"]),
        ("read_directory", &["-r", "captures"]),
        (
            "fields_with_options",
            &[
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "ldm.hostname",
                "-e",
                "ldm.rtt",
                "-e",
                "expert",
                "-E",
                "header=y",
                "-E",
                "separator=/s",
                "-r",
                "captures/two-owners.pcapng",
            ],
        ),
        ("fields_unknown", &["-T", "fields", "-e", "ldm.hostnme", "-r", "captures/discovery.pcapng"]),
        ("fields_without_e", &["-T", "fields", "-r", "captures/discovery.pcapng"]),
        ("e_without_fields", &["-e", "ip.src", "-r", "captures/discovery.pcapng"]),
        ("fields_bad_option", &["-T", "fields", "-e", "ip.src", "-E", "quote=x", "-r", "captures/discovery.pcapng"]),
        (
            "libvirt_tables_with_tls",
            &["-q", "-z", "libvirt,procs", "-z", "libvirt,conversations", "-r", "captures/libvirt-tls-sasl.pcapng"],
        ),
    ];
    snapshots! {
        for (name, args) in cases {
            insta::assert_snapshot!(format!("option_{name}"), run(args));
        }
    }
}

#[test]
fn reads_standard_input() {
    let capture = std::fs::read(repo().join("captures/recorded/dumpcap.pcapng")).expect("capture present");
    let from_stdin = run_with_stdin(&["-r", "-"], Some(&capture));
    let from_file = run(&["-r", "captures/recorded/dumpcap.pcapng"]);
    assert_eq!(from_stdin.split_once("exit").map(|(_, rest)| rest), from_file.split_once("exit").map(|(_, rest)| rest));
    assert!(from_stdin.contains("exit: 0"), "{from_stdin}");
}

/// A snoop file reads from standard input as from the file, and errors on
/// standard input name it so, not "-".
#[test]
fn snoop_reads_from_standard_input_and_stdin_errors_say_so() {
    let capture = std::fs::read(repo().join("captures/solaris/discovery.snoop")).expect("capture present");
    let from_stdin = run_with_stdin(&["-r", "-"], Some(&capture));
    let from_file = run(&["-r", "captures/solaris/discovery.snoop"]);
    assert_eq!(from_stdin.split_once("exit").map(|(_, rest)| rest), from_file.split_once("exit").map(|(_, rest)| rest));
    assert!(from_stdin.contains("dropped 3 packets"), "{from_stdin}");
    let empty = run_with_stdin(&["-r", "-"], Some(b""));
    assert!(empty.contains("ldm-sniff: standard input: the file is empty"), "{empty}");
    let cut = run_with_stdin(&["-r", "-"], Some(&capture[..capture.len() - 10]));
    assert!(cut.contains("standard input: the file ends in the middle of a record at byte offset"), "{cut}");
}

/// Without the libpcap build, -f explains how to get it (before opening anything).
#[cfg(not(feature = "libpcap"))]
#[test]
fn capture_filter_needs_the_libpcap_build() {
    let out = run(&["-i", "lo", "-f", "udp port 64535"]);
    assert!(out.contains("exit: 2") && out.contains("--features libpcap"), "{out}");
}

/// `emulate --help` shows what is advertised when a flag is not given
/// (issue 24), and the main help names libvirt and every -z table.
#[test]
fn help_shows_defaults_and_what_is_decoded() {
    let emulate = run(&["emulate", "--help"]);
    for default in ["[default: 3.6.1.0.11", "[default: 6482", "[default: this host's name"] {
        assert!(emulate.contains(default), "emulate --help lacks {default}: {emulate}");
    }
    let main = run(&["--help"]);
    assert!(main.contains("libvirt RPC") && main.contains("snoop"), "{main}");
    assert!(main.contains("libvirt,conversations"), "{main}");
}

/// `-G fields` prints the one registry: every filter field with what it is,
/// the aliases, and every libvirt payload field; `-G protocols` the layers.
#[test]
fn the_glossary_lists_every_field_the_filter_knows() {
    let out = Command::new(BIN).args(["-G", "fields"]).output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: std::collections::BTreeSet<&str> = text.lines().filter_map(|l| l.split('\t').nth(2)).collect();
    for (name, _, _) in ldm_sniff::filter::FIELDS {
        assert!(names.contains(name), "-G fields lacks {name}");
    }
    for name in [
        "ip.addr",
        "libvirt.domain.name",
        "libvirt.remote_domain_get_info_ret.memory",
        "libvirt.remote_auth_list_ret.types.types",
    ] {
        assert!(names.contains(name), "-G fields lacks {name}");
    }
    assert!(text.lines().all(|l| l.starts_with("F\t") && l.split('\t').count() == 5), "tab-separated F lines");
    let protocols = Command::new(BIN).args(["-G", "protocols"]).output().expect("runs");
    assert!(String::from_utf8_lossy(&protocols.stdout).contains("libvirt RPC\tlibvirt"));
}
