//! Live capture with real traffic: two network namespaces joined by a veth
//! pair, a sender in one, `ldm-sniff -i` in the other. Needs root (CI runs as
//! root); elsewhere the tests say they skipped. Addresses are 10.79.x.x, only
//! inside the namespaces; every wait is bounded; namespaces are removed when
//! a test ends, also when it fails.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{can_run, ip, settle, wait, Pair, BIN};
use ldm_sniff::capture::CaptureReader;
use ldm_sniff::wire::ldm::{MsgType, Repr};

fn frames_in(path: &Path) -> usize {
    let bytes = std::fs::read(path).expect("capture written");
    let mut reader = CaptureReader::from_reader("written", Cursor::new(bytes)).expect("readable");
    let mut n = 0;
    while reader.next_frame().expect("complete").is_some() {
        n += 1;
    }
    n
}

#[test]
fn every_frame_sent_is_captured_decoded_and_written() {
    if !can_run("every_frame_sent_is_captured_decoded_and_written") {
        return;
    }
    let pair = Pair::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("live.pcapng");
    let child = pair.capture(&["-c", "10", "-T", "jsonl", "-w", out.to_str().unwrap()]);
    settle();
    pair.send(2, 64535);
    let output = wait(child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let records: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(records.len(), 10, "{stdout}");
    let types: Vec<&str> = records.iter().map(|r| r["ldm"]["msg_type_name"].as_str().unwrap_or("?")).collect();
    assert_eq!(&types[..5], ["LDMD_DISC_SEND", "LDMD_DISC_RESP", "SEND_MSG", "RESPONSE_MSG", "SEND_MSG"]);
    assert!(records.iter().all(|r| r["ip"]["src"] == pair.addr_a.as_str()));
    assert!(stderr.contains("10 packets passed the filter, 0 dropped"), "{stderr}");
    assert_eq!(frames_in(&out), 10);
    // Read back, the written frames decode to the same records (the live
    // path takes checksum verdicts from the kernel, the file path sums),
    // except that a file's request lists its responses: live output does
    // not hold requests back to wait for them.
    let reread = Command::new(BIN).args(["-r", out.to_str().unwrap(), "-T", "jsonl"]).output().expect("ldm-sniff runs");
    let mut reread: Vec<serde_json::Value> =
        String::from_utf8_lossy(&reread.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    for record in &mut reread {
        if let Some(ldm) = record["ldm"].as_object_mut() {
            ldm.remove("response_in");
        }
    }
    assert_eq!(reread, records);
    assert!(records.iter().all(|r| r["udp"]["checksum_status"] == "partial"), "{stdout}");
}

#[test]
fn ctrl_c_stops_cleanly_and_loses_nothing() {
    if !can_run("ctrl_c_stops_cleanly_and_loses_nothing") {
        return;
    }
    let pair = Pair::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("live.pcapng");
    let child = pair.capture(&["-w", out.to_str().unwrap()]);
    settle();
    pair.send(3, 64535);
    std::thread::sleep(Duration::from_millis(300));
    // `ip netns exec` runs ldm-sniff in the same process (exec), so its pid is ours to signal.
    common::interrupt(&child);
    let output = wait(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("15 frames read, 15 ldm"), "{stderr}");
    assert!(stderr.contains("kernel: 15 packets passed the filter, 0 dropped"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 15);
    assert_eq!(frames_in(&out), 15);
}

#[test]
fn the_kernel_filter_drops_other_traffic_and_duration_stops() {
    if !can_run("the_kernel_filter_drops_other_traffic_and_duration_stops") {
        return;
    }
    let pair = Pair::new();
    let child = pair.capture(&["-a", "duration:2"]);
    settle();
    // Same bytes to another port: not ldm traffic, dropped in the kernel.
    pair.send(2, 5000);
    pair.send(1, 64535);
    let started = Instant::now();
    let output = wait(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(stderr.contains("kernel: 5 packets passed the filter"), "{stderr}");
    assert!(stderr.contains("5 frames read, 5 ldm"), "{stderr}");
}

#[test]
fn any_interface_gives_cooked_frames() {
    if !can_run("any_interface_gives_cooked_frames") {
        return;
    }
    let pair = Pair::new();
    let child = Command::new("ip")
        .args(["netns", "exec", &pair.b, BIN, "-i", "any", "-c", "5", "-T", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    settle();
    pair.send(1, 64535);
    let output = wait(child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let records: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r["frame"]["linktype"] == "LINUX_SLL2" && r["sll"]["pkttype"] == 2), "{stdout}");
}

#[test]
fn without_privileges_the_message_says_what_to_do() {
    if !can_run("without_privileges_the_message_says_what_to_do") {
        return;
    }
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", BIN, "-i", "lo", "-c", "1"])
        .output()
        .expect("setpriv runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CAP_NET_RAW") && stderr.contains("setcap"), "{stderr}");
}

/// The uid a running process has, from /proc.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// `ldm-sniff -i <veth in b> ARGS` inside `b`, as if `sudo ldm-sniff` was
/// run by uid 65534 (who it drops to once the capture is open).
fn capture_as_sudo_user(pair: &Pair, args: &[&str]) -> std::process::Child {
    Command::new("ip")
        .args(["netns", "exec", &pair.b, BIN, "-i", &pair.veth_b])
        .args(args)
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

#[test]
fn privileges_are_dropped_once_the_capture_is_open() {
    if !can_run("privileges_are_dropped_once_the_capture_is_open") {
        return;
    }
    let pair = Pair::new();
    let child = capture_as_sudo_user(&pair, &["-c", "5"]);
    settle();
    let uid = uid_of(child.id());
    pair.send(1, 64535);
    let output = wait(child);
    assert_eq!(uid, Some(65534), "ldm-sniff still runs as root");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 5, "capturing goes on without privileges");
}

#[test]
fn written_live_captures_read_in_tshark() {
    if !can_run("written_live_captures_read_in_tshark") {
        return;
    }
    if Command::new("tshark").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark");
        return;
    }
    let pair = Pair::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("live.pcapng");
    let child = pair.capture(&["-c", "5", "-q", "--annotate", "-w", out.to_str().unwrap()]);
    settle();
    pair.send(1, 64535);
    let output = wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let read = Command::new("tshark")
        .arg("-r")
        .arg(&out)
        .args(["-T", "fields", "-e", "udp.dstport", "-e", "frame.comment"])
        .output();
    let text = String::from_utf8_lossy(&read.expect("tshark runs").stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines.iter().all(|l| l.starts_with("64535")), "{text}");
    assert!(lines[3].contains("ldm.collision"), "the response carries its annotation: {text}");
}

#[test]
fn snaplen_cuts_frames_and_a_ring_rotates_live() {
    if !can_run("snaplen_cuts_frames_and_a_ring_rotates_live") {
        return;
    }
    let pair = Pair::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let prefix = dir.path().join("live.pcapng");
    let child = pair.capture(&["-c", "10", "-q", "-s", "100", "-b", "packets:4", "-w", prefix.to_str().unwrap()]);
    settle();
    pair.send(2, 64535);
    let output = wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let mut files: Vec<_> = std::fs::read_dir(dir.path()).expect("readable").flatten().map(|e| e.path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "10 frames, 4 a file: {files:?}");
    let mut counts = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).expect("written");
        let mut reader = CaptureReader::from_reader("ring", Cursor::new(bytes)).expect("a whole pcapng");
        let mut n = 0;
        while let Some(frame) = reader.next_frame().expect("complete") {
            // 354 bytes on the wire (ldm over UDP over IPv4 over Ethernet), 100 kept.
            assert_eq!((frame.data.len(), frame.len), (100, 354), "{}", file.display());
            n += 1;
        }
        counts.push(n);
    }
    assert_eq!(counts, [4, 4, 2]);
    // The files say they were cut: tshark shows the captured length and the interface's snaplen.
    if Command::new("tshark").arg("--version").output().is_ok() {
        let read = Command::new("tshark")
            .arg("-r")
            .arg(&files[0])
            .args(["-T", "fields", "-e", "frame.cap_len", "-e", "frame.len", "-e", "_ws.malformed"])
            .output()
            .expect("tshark runs");
        let text = String::from_utf8_lossy(&read.stdout).to_string();
        assert!(text.lines().all(|l| l.starts_with("100\t354")), "{text}");
        let info = Command::new("capinfos").arg(&files[0]).output();
        if let Ok(info) = info {
            let text = String::from_utf8_lossy(&info.stdout).to_string();
            assert!(text.contains("Capture length = 100"), "{text}");
        }
    }
}

/// `-i` with `--report`: the page is written when the capture ends, with
/// the interface as its source, also after the privileges were dropped (the
/// file is opened as root, in a directory only root may write to).
#[test]
fn a_live_capture_writes_its_report_at_the_end() {
    if !can_run("a_live_capture_writes_its_report_at_the_end") {
        return;
    }
    let pair = Pair::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = dir.path().join("live.html");
    let child = capture_as_sudo_user(&pair, &["-c", "10", "-q", "--report", report.to_str().unwrap()]);
    settle();
    assert_eq!(uid_of(child.id()), Some(65534), "privileges dropped");
    pair.send(2, 64535);
    let output = wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let page = std::fs::read_to_string(&report).expect("the report is written");
    assert!(page.contains(&format!("<code>{}</code>", pair.veth_b)), "the interface is the source");
    assert!(page.contains("10 frames: 10 ldm packets"), "every packet counted");
    assert!(page.contains("<td>ns-a</td>"), "the host inventory");
    assert!(page.contains("All 6 exchange(s) of the capture, 10 packet(s)."), "the flow graph");
}

/// libpcap in immediate mode did not return at its timeout on a quiet link:
/// -a duration (and Ctrl-C) went unheard until a packet came.
#[cfg(feature = "libpcap")]
#[test]
fn libpcap_capture_stops_on_time_on_a_quiet_link() {
    if !can_run("libpcap_capture_stops_on_time_on_a_quiet_link") {
        return;
    }
    let pair = Pair::new();
    let started = Instant::now();
    let output = wait(pair.capture(&["-q", "-f", "udp port 9", "-a", "duration:1"]));
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(started.elapsed() < Duration::from_secs(5), "stopped after {:?}", started.elapsed());
}

#[cfg(feature = "libpcap")]
#[test]
fn libpcap_capture_filter_selects_in_the_kernel() {
    if !can_run("libpcap_capture_filter_selects_in_the_kernel") {
        return;
    }
    let pair = Pair::new();
    // Only the discovery messages: the first two of each round of five.
    // msg_type is the payload's third word: its low byte is 8 + 11 bytes into the UDP header.
    let filter = "udp port 64535 and (udp[19] == 2 or udp[19] == 3)";
    let child = pair.capture(&["-f", filter, "-c", "4", "-T", "jsonl"]);
    settle();
    pair.send(2, 64535);
    let output = wait(child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let types: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("JSON")["ldm"]["msg_type_name"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    assert_eq!(types, ["LDMD_DISC_SEND", "LDMD_DISC_RESP", "LDMD_DISC_SEND", "LDMD_DISC_RESP"]);
}

#[test]
fn libvirt_over_tcp_is_captured_live_and_decoded() {
    if !can_run("libvirt_over_tcp_is_captured_live_and_decoded") {
        return;
    }
    use ldm_sniff::wire::libvirt::{build, MsgType, Status, PROGRAM_REMOTE};
    use std::io::{Read, Write};
    let pair = Pair::new();
    // Two libvirt calls and their replies over a real TCP connection.
    let child = pair.capture(&["-c", "4", "-T", "jsonl", "-a", "duration:15"]);
    settle();
    let server_ip = format!("10.79.{}.2", pair.n);
    let listen = server_ip.clone();
    let server = common::in_namespace(&pair.b, move || -> std::io::Result<()> {
        let libvirt = std::net::TcpListener::bind((listen.as_str(), 16509))?;
        let (mut stream, _) = libvirt.accept()?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        for serial in [1, 2] {
            let mut call = [0u8; 32];
            stream.read_exact(&mut call)?;
            stream.write_all(&build(PROGRAM_REMOTE, 1, MsgType::Reply, serial, Status::Ok, &[]))?;
        }
        Ok(())
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    let target = server_ip.clone();
    let client = common::in_namespace(&pair.a, move || -> std::io::Result<()> {
        let mut stream = std::net::TcpStream::connect((target.as_str(), 16509))?;
        for serial in [1, 2] {
            stream.write_all(&build(PROGRAM_REMOTE, 1, MsgType::Call, serial, Status::Ok, &[0, 0, 0, 0]))?;
            let mut reply = [0u8; 28];
            stream.read_exact(&mut reply)?;
        }
        Ok(())
    });
    client.join().expect("client thread").expect("client talks libvirt");
    server.join().expect("server thread").expect("server answers");
    let output = wait(child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let records: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let seen: Vec<(String, u64)> = records
        .iter()
        .map(|r| {
            (
                r["libvirt"]["type_name"].as_str().unwrap_or("?").to_string(),
                r["libvirt"]["serial"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected = [("CALL", 1), ("REPLY", 1), ("CALL", 2), ("REPLY", 2)].map(|(t, s)| (t.to_string(), s));
    assert_eq!(seen, expected, "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(records.iter().all(|r| r["libvirt"]["proc_name"] == "CONNECT_OPEN"));
    assert!(records.iter().skip(1).step_by(2).all(|r| r["libvirt"]["rtt"].is_f64()), "replies paired: {stdout}");
}

/// Loopback hands a capture each packet twice (going out, coming in):
/// 12 lookups sent to 127.0.0.1 are 12 frames on `lo` and on `any`, as in
/// tcpdump, not 24 (and no lookup storm made of the doubles).
#[test]
fn loopback_frames_are_captured_once() {
    if !can_run("loopback_frames_are_captured_once") {
        return;
    }
    let pair = Pair::new();
    ip(&["-n", &pair.b, "link", "set", "lo", "up"]);
    for iface in ["lo", "any"] {
        let child = Command::new("ip")
            .args(["netns", "exec", &pair.b, BIN, "-i", iface, "-a", "duration:3", "-T", "jsonl", "--fail-on", "never"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        settle();
        let sender = common::in_namespace(&pair.b, || -> std::io::Result<()> {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
            for i in 0..12u8 {
                let lookup = Repr::lookup(MsgType::SendMsg, [0x00, 0x14, 0x4f, 0xf8, 0x01, i], [127, 0, 0, 1].into());
                socket.send_to(&lookup.to_bytes(), "127.0.0.1:64535")?;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        });
        sender.join().expect("sender thread").expect("sent");
        let output = wait(child);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stdout.lines().count(), 12, "-i {iface}: {stdout}{stderr}");
        assert!(!stdout.contains("ldm.lookup_storm"), "-i {iface}: {stdout}");
    }
}

/// The status line `name` of /proc/PID/status (e.g. CapPrm).
fn proc_status(pid: u32, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
}

/// With the file capabilities the README suggests, a user who is not root
/// keeps nothing of them once the capture socket is open, and may not use
/// `conform --raw` (which would send any frame the capture holds); even
/// root's --raw sends only to destinations --target could name
/// (issue 23, item 20).
#[test]
fn file_capabilities_lend_only_what_each_command_needs() {
    if !can_run("file_capabilities_lend_only_what_each_command_needs") {
        return;
    }
    assert!(Path::new("/usr/sbin/setcap").exists() || std::env::var_os("CI").is_none(), "CI must have setcap");
    if !Path::new("/usr/sbin/setcap").exists() {
        eprintln!("skipped: no setcap (libcap2-bin)");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let lent = dir.path().join("ldm-sniff");
    std::fs::copy(BIN, &lent).expect("copied");
    let status = Command::new("setcap").arg("cap_net_raw,cap_net_admin=eip").arg(&lent).status().expect("setcap runs");
    assert!(status.success(), "setcap");
    let pair = Pair::new();
    let as_nobody = |args: &[&str]| {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &pair.b, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
        command.arg(&lent).args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        command
    };
    let out = as_nobody(&["conform", "captures/conformance/discovery.pcapng", "--raw", "-i", &pair.veth_b])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ldm-sniff-inject"), "{stderr}");

    let child = as_nobody(&["-i", &pair.veth_b, "-a", "duration:3", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    settle();
    let held = (proc_status(child.id(), "CapPrm"), proc_status(child.id(), "CapEff"));
    let output = wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let none = Some("0000000000000000".to_string());
    assert_eq!(held, (none.clone(), none), "capabilities kept once capturing");

    // Root's --raw: a recorded request to 8.8.8.8 is not sent without --allow-remote.
    let capture = dir.path().join("far.pcap");
    let far = ldm_sniff::synth::Ipv4Udp {
        dst: [8, 8, 8, 8].into(),
        ..ldm_sniff::synth::Ipv4Udp::ldm([10, 1, 1, 5].into(), 1)
    };
    let frame = ldm_sniff::synth::ipv4_ethernet(
        [2, 0, 0, 0, 0, 1],
        &far,
        &ldm_sniff::wire::ldm::Repr::discovery_request().to_bytes(),
    );
    let packet = ldm_sniff::synth::variants::Packet { ts: ldm_sniff::capture::Timestamp::new(1, 0), data: frame };
    std::fs::write(&capture, ldm_sniff::synth::variants::to_pcap(&[packet])).expect("written");
    let out = Command::new("ip")
        .args(["netns", "exec", &pair.b, BIN, "conform"])
        .arg(&capture)
        .args(["--raw", "-i", &pair.veth_b])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("goes to 8.8.8.8") && stderr.contains("--allow-remote"), "{stderr}");
}
