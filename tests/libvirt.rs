//! libvirt RPC against a real libvirtd (Debian's libvirt-daemon, test
//! driver): each test starts its own daemon in a network namespace of its own
//! (loopback only), as nobody, from a temporary directory with
//! captures/libvirt/libvirtd.conf; drives it with virsh; captures with
//! tcpdump; and checks our decode against libvirt's own Wireshark plugin
//! (libvirt-wireshark) on the same capture. CI installs the packages; elsewhere
//! the tests say they skipped when something is missing.

mod common;
#[path = "libvirt/model.rs"]
mod model;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{ip, BIN};
use ldm_sniff::synth::variants::{self, Edit};

const URI: &str = "test+tcp://127.0.0.1/default";
const NOBODY: u32 = 65534;

/// tshark with libvirt's dissector plugin (libvirt-wireshark).
fn has_plugin() -> bool {
    Command::new("tshark")
        .args(["-G", "protocols"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.ends_with("\tlibvirt")))
}

/// For the tests that only read captures: the plugin, or a skip (never in CI).
fn plugin_available() -> bool {
    if has_plugin() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must have libvirt-wireshark");
    eprintln!("skipped: tshark with libvirt-wireshark not installed");
    false
}

fn available(test: &str) -> bool {
    let have = |path: &str| Path::new(path).exists();
    let tools = have("/usr/sbin/libvirtd") && have("/usr/bin/virsh") && have("/usr/bin/tcpdump");
    if common::is_root() && tools && has_plugin() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI runs as root with libvirt-daemon, libvirt-clients, libvirt-wireshark, tcpdump and tshark (.ci/run)"
    );
    eprintln!("{test}: skipped (needs root, libvirtd, virsh, tcpdump and tshark with libvirt-wireshark)");
    false
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A libvirtd in its own namespace; stopped and removed when dropped.
struct Daemon {
    ns: String,
    dir: PathBuf,
    child: Child,
}

impl Daemon {
    fn start() -> Daemon {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let ns = format!("ldmlv{}{n}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("ldm-libvirtd-{ns}"));
        let _ = Command::new("ip").args(["netns", "del", &ns]).stderr(Stdio::null()).status();
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["", "home", "run"] {
            std::fs::create_dir_all(dir.join(sub)).expect("temporary directory");
            chown(dir.join(sub), Some(NOBODY), Some(NOBODY)).expect("chown to nobody");
        }
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/libvirt/libvirtd.conf");
        let mut text = std::fs::read_to_string(conf).expect("libvirtd.conf");
        text.push_str(&format!("unix_sock_dir = \"{}\"\n", dir.join("run").display()));
        std::fs::write(dir.join("libvirtd.conf"), text).expect("config written");
        let log = std::fs::File::create(dir.join("daemon.log")).expect("log file");
        let env = |name: &str, sub: &str| format!("{name}={}", dir.join(sub).display());
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i"])
            .arg("PATH=/usr/bin:/usr/sbin")
            .arg(env("HOME", "home"))
            .arg(env("XDG_RUNTIME_DIR", "run"))
            .arg(env("XDG_CONFIG_HOME", "home/.config"))
            .arg(env("XDG_CACHE_HOME", "home/.cache"))
            .args(["/usr/sbin/libvirtd", "--listen", "-f"])
            .arg(dir.join("libvirtd.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("libvirtd starts");
        let daemon = Daemon { ns, dir, child };
        daemon.wait_listening();
        daemon
    }

    fn wait_listening(&self) {
        let start = Instant::now();
        while start.elapsed() < common::LIMIT {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.ns, "ss", "-Hltn", "sport = :16509"])
                .output()
                .expect("ss runs");
            if String::from_utf8_lossy(&out.stdout).contains("LISTEN") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        panic!("libvirtd did not listen within {:?}:\n{log}", common::LIMIT);
    }

    fn virsh(&self, command: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "timeout", "20", "virsh", "-c", URI, command])
            .output()
            .expect("virsh runs")
    }

    /// tcpdump on the namespace's loopback, writing `path`.
    fn tcpdump(&self, path: &Path) -> Child {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w"])
            .arg(path)
            .arg("tcp port 16509")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump starts");
        std::thread::sleep(Duration::from_millis(1000));
        child
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops tcpdump (SIGINT, so it flushes) and waits for it.
fn stop(mut child: Child) {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    while start.elapsed() < common::LIMIT {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("tcpdump did not stop");
}

/// (frame, program, procedure, type, serial, status) of each message.
type Row = model::Row;

fn our_messages(path: &Path) -> (Vec<Row>, Vec<serde_json::Value>) {
    let out = Command::new(BIN).args(["--fail-on", "never", "-T", "jsonl", "-r"]).arg(path).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    let rows = records
        .iter()
        .filter(|r| r["libvirt"].is_object())
        .map(|r| {
            let lv = &r["libvirt"];
            let n = |v: &serde_json::Value| v.as_i64().expect("a number");
            (
                r["frame"]["number"].as_u64().expect("frame"),
                lv["prog"].as_u64().expect("prog"),
                n(&lv["proc"]),
                n(&lv["type"]),
                lv["serial"].as_u64().expect("serial"),
                n(&lv["status"]),
            )
        })
        .collect();
    (rows, records)
}

/// The same rows from tshark with libvirt's plugin (one per message: a frame
/// with several messages lists each field once per message).
fn their_messages(path: &Path) -> Vec<Row> {
    let fields =
        ["frame.number", "libvirt.program", "libvirt.procedure", "libvirt.type", "libvirt.serial", "libvirt.status"];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(path).args(["-Y", "libvirt", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let number = |text: &str| -> i64 {
        match text.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).expect("hex"),
            None => text.parse().expect("number"),
        }
    };
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<Vec<&str>> = line.split('\t').map(|c| c.split(',').collect()).collect();
        let frame: u64 = cols[0][0].parse().expect("frame number");
        for i in 0..cols[1].len() {
            let at = |c: usize| number(cols[c].get(i).copied().unwrap_or("-1"));
            rows.push((frame, at(1) as u64, at(2), at(3), at(4) as u64, at(5)));
        }
    }
    rows
}

fn keys(record: &serde_json::Value) -> Vec<String> {
    record["expert"]
        .as_array()
        .map(|list| list.iter().filter_map(|e| e["key"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// A virsh session against the daemon, captured to `capture`.
fn capture_session(daemon: &Daemon, capture: &Path) {
    let tcpdump = daemon.tcpdump(capture);
    for command in ["list --all", "dominfo test", "version", "destroy test; start test; list"] {
        let out = daemon.virsh(command);
        assert!(out.status.success(), "virsh {command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let missing = daemon.virsh("domstate nosuch");
    assert!(!missing.status.success(), "no domain 'nosuch'");
    std::thread::sleep(Duration::from_millis(300));
    stop(tcpdump);
}

/// Frames after which tshark finds TCP bytes missing from the capture.
fn lost_segments(path: &Path) -> Vec<u64> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-Y", "tcp.analysis.lost_segment", "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.parse().expect("frame number")).collect()
}

#[test]
fn virsh_session_decodes_like_libvirts_own_dissector() {
    if !available("virsh_session_decodes_like_libvirts_own_dissector") {
        return;
    }
    let daemon = Daemon::start();
    let capture = daemon.dir.join("session.pcap");
    capture_session(&daemon, &capture);
    let (ours, records) = our_messages(&capture);
    let mut theirs = their_messages(&capture);
    let mut sorted = ours.clone();
    sorted.sort();
    theirs.sort();
    assert!(ours.len() >= 40, "a virsh session is dozens of messages: {}", ours.len());
    if sorted != theirs {
        // Keep what it takes to tell why (the capture outlives the daemon's
        // temporary directory).
        let kept = std::env::temp_dir().join(format!("ldm-virsh-session-mismatch-{}.pcap", std::process::id()));
        let _ = std::fs::copy(&capture, &kept);
        let only_ours: Vec<&Row> = sorted.iter().filter(|r| !theirs.contains(r)).collect();
        let only_theirs: Vec<&Row> = theirs.iter().filter(|r| !sorted.contains(r)).collect();
        panic!(
            "(frame, prog, proc, type, serial, status) per message differ, ours ({}) vs libvirt-wireshark ({}): \
             only ours {only_ours:?}, only theirs {only_theirs:?}; capture kept in {}",
            sorted.len(),
            theirs.len(),
            kept.display()
        );
    }
    // Under load tcpdump has been seen to miss segments of the session (CI,
    // once in about twenty runs): the messages still agree (each is shown
    // at the frame that carried it, as tshark does), the hole is reported,
    // and no reply is called one without a call. The checks of a whole
    // session below need a whole capture.
    let lost = lost_segments(&capture);
    if !lost.is_empty() {
        assert!(
            records.iter().any(|r| keys(r).iter().any(|k| k == "libvirt.stream_gap")),
            "tshark finds segments missing before frames {lost:?}, and we report no libvirt.stream_gap"
        );
        check_pairing(&records, true, 0, "a live session with lost segments");
        eprintln!("the capture missed segments before frames {lost:?}: the checks of a whole session are skipped");
        return;
    }

    let messages: Vec<&serde_json::Value> = records.iter().filter(|r| r["libvirt"].is_object()).collect();
    for r in &messages {
        let lv = &r["libvirt"];
        assert!(lv["proc_name"].is_string(), "every message is named: {r}");
        let findings = keys(r);
        assert!(
            findings.iter().all(|k| k == "libvirt.error_reply"),
            "a clean session has no other findings: {findings:?} in {r}"
        );
        if lv["type_name"] == "REPLY" {
            assert!(lv["request_in"].is_u64() && lv["rtt"].is_f64(), "every reply is paired with its call: {r}");
        }
    }
    let errors: Vec<&&serde_json::Value> = messages.iter().filter(|r| r["libvirt"]["status_name"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "one error reply, for 'nosuch'");
    let error = &errors[0]["libvirt"];
    assert_eq!(error["proc_name"], "DOMAIN_LOOKUP_BY_NAME");
    assert_eq!(error["error_code"], 42, "VIR_ERR_NO_DOMAIN");
    let text = error["error_message"].as_str().unwrap_or_default().to_lowercase();
    assert!(text.contains("domain not found"), "{text}");
    assert_eq!(keys(errors[0]), ["libvirt.error_reply"]);
}

/// The check that decides whether a live session gets the checks of a
/// whole one: tshark sees the hole in a capture that has one (and not in a
/// whole one), and so do we.
#[test]
fn a_capture_with_a_hole_is_told_from_a_whole_one() {
    if !plugin_available() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    assert!(lost_segments(&root.join("libvirt/virsh-session.pcap")).is_empty());
    let with_hole = root.join("libvirt-anomalies.pcapng");
    assert_eq!(lost_segments(&with_hole), [20]);
    let (_, records) = our_messages(&with_hole);
    let gap_frames: Vec<u64> = records
        .iter()
        .filter(|r| keys(r).iter().any(|k| k == "libvirt.stream_gap"))
        .map(|r| r["frame"]["number"].as_u64().expect("frame"))
        .collect();
    assert!(gap_frames.contains(&20), "{gap_frames:?}");
}

#[test]
fn committed_session_agrees_with_libvirts_own_dissector() {
    // No daemon needed: the recorded session, ours against tshark's plugin.
    if !plugin_available() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    for name in ["libvirt/virsh-session.pcap", "libvirt-anomalies.pcapng"] {
        let path = root.join(name);
        let (mut ours, _) = our_messages(&path);
        let theirs = their_messages(&path);
        assert!(!theirs.is_empty(), "{name}: libvirt-wireshark decodes messages in it");
        ours.sort();
        // tshark stops at garbage and gaps that we resynchronise past: every
        // message it decodes, we decode the same.
        let ours_by_frame: BTreeMap<u64, Vec<&Row>> = ours.iter().fold(BTreeMap::new(), |mut m, r| {
            m.entry(r.0).or_insert_with(Vec::new).push(r);
            m
        });
        for row in &theirs {
            assert!(
                ours_by_frame.get(&row.0).is_some_and(|rows| rows.contains(&row)),
                "{name}: tshark decodes {row:?}, we do not"
            );
        }
        if name.starts_with("libvirt/") {
            assert_eq!(ours.len(), theirs.len(), "{name}: the same messages");
        }
    }
}

fn session_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/libvirt/virsh-session.pcap")
}

/// The session with the daemon's CONNECT_GET_VERSION reply changed in its
/// last payload byte (hv_ver): what a different daemon would answer.
fn patched_session(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(session_capture()).expect("capture");
    // prog REMOTE, vers 1, proc 4 (CONNECT_GET_VERSION), type 1 (REPLY).
    let header = [0x20, 0x00, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1];
    let at = bytes.windows(header.len()).position(|w| w == header).expect("a CONNECT_GET_VERSION reply");
    let len = u32::from_be_bytes(bytes[at - 4..at].try_into().expect("length word")) as usize;
    bytes[at - 4 + len - 1] ^= 0x01;
    let path = dir.join("patched.pcap");
    std::fs::write(&path, bytes).expect("patched capture written");
    path
}

fn conform(daemon: &Daemon, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &daemon.ns, BIN, "conform", "--color", "never"])
        .args(args)
        .output()
        .expect("ldm-sniff conform runs")
}

#[test]
fn conform_replays_the_session_against_a_fresh_libvirtd() {
    if !available("conform_replays_the_session_against_a_fresh_libvirtd") {
        return;
    }
    let daemon = Daemon::start();
    let capture = session_capture();
    let capture = capture.to_str().expect("UTF-8 path");
    let out = conform(&daemon, &[capture]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("match: 53 request(s)"), "{stdout}");

    // The transcript, stored and reviewed.
    let snapshot = daemon.dir.join("transcript.txt");
    let snapshot = snapshot.to_str().expect("UTF-8 path");
    let out = conform(&daemon, &[capture, "--snapshot", snapshot, "--update"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let transcript = std::fs::read_to_string(snapshot).expect("transcript written");
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("libvirt_conform_transcript", transcript);
    });
    let out = conform(&daemon, &[capture, "--snapshot", snapshot]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));

    // A recorded reply that differs: exit 1, the diff names it, JUnit counts it.
    let patched = patched_session(&daemon.dir);
    let junit = daemon.dir.join("junit.xml");
    let out = conform(&daemon, &[patched.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let changed: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with("-  reply:") || l.starts_with("+  reply:")).collect();
    assert_eq!(changed.len(), 2, "one reply differs: {stdout}");
    assert!(changed.iter().all(|l| l.contains("REPLY REMOTE.CONNECT_GET_VERSION")), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("JUnit written");
    assert!(xml.contains("tests=\"53\"") && xml.contains("failures=\"1\""), "{xml}");

    // No daemon: a clear error, exit 2.
    drop(daemon);
    let daemon = Daemon::start();
    let out = conform(&daemon, &[capture, "--target", "127.0.0.1:16599"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot replay to 127.0.0.1:16599") && stderr.contains("listen_tcp"), "{stderr}");
    // Not on a connected network (inside the namespace nothing is): refused before connecting.
    let out = conform(&daemon, &[capture, "--target", "10.200.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}

#[test]
fn tls_records_agree_with_tshark() {
    if Command::new("tshark").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark");
        eprintln!("skipped: tshark not installed");
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/libvirt-tls-sasl.pcapng");
    let (_, records) = our_messages(&path);
    // Per frame: the record lengths in order, and the server name.
    let mut ours: BTreeMap<u64, (Vec<String>, String)> = BTreeMap::new();
    for r in records.iter().filter(|r| r["tls"].is_object()) {
        let entry = ours.entry(r["frame"]["number"].as_u64().expect("frame")).or_default();
        entry.0.push(r["tls"]["length"].to_string());
        if let Some(name) = r["tls"]["server_name"].as_str() {
            entry.1 = name.to_string();
        }
    }
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-d", "tcp.port==16514,tls", "-Y", "tls", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"])
        .args(["-e", "frame.number", "-e", "tls.record.length", "-e", "tls.handshake.extensions_server_name"])
        .output()
        .expect("tshark runs");
    let mut theirs: BTreeMap<u64, (Vec<String>, String)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 || cols[1].is_empty() {
            continue;
        }
        let lengths = cols[1].split(',').map(str::to_string).collect();
        theirs.insert(cols[0].parse().expect("frame"), (lengths, cols[2].to_string()));
    }
    assert!(!theirs.is_empty(), "tshark decodes TLS in the capture");
    assert_eq!(ours, theirs, "TLS records (lengths, server name) per frame, ours vs tshark");
}

/// A virsh client holding a connection to the test driver after running
/// `commands` (the driver forgets its state once no connection is open), so
/// a replay meets a daemon that differs from the recording's. Stopped by
/// PID when dropped.
struct Holder {
    child: Child,
}

impl Daemon {
    fn hold(&self, commands: &str) -> Holder {
        use std::io::Write as _;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "timeout", "60", "virsh", "-q", "-c", URI])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("virsh starts");
        let stdin = child.stdin.as_mut().expect("piped");
        stdin.write_all(format!("{commands}\n").as_bytes()).expect("commands written");
        stdin.flush().expect("flushed");
        // The commands take effect before the replay starts.
        std::thread::sleep(Duration::from_millis(1500));
        Holder { child }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn concurrent_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/libvirt/virsh-concurrent.pcap")
}

/// The capture time from the first libvirt message to the last.
fn session_span(path: &Path) -> f64 {
    let (_, records) = our_messages(path);
    let times: Vec<f64> = records
        .iter()
        .filter(|r| r["libvirt"].is_object())
        .filter_map(|r| r["frame"]["time_relative"].as_f64())
        .collect();
    times.iter().cloned().fold(f64::MIN, f64::max) - times.iter().cloned().fold(f64::MAX, f64::min)
}

/// Several virsh clients at once, two event listeners, a domain defined
/// (its UUID the daemon's), started, suspended, resumed, snapshotted,
/// destroyed and undefined, a network and a storage pool and volume
/// created and removed, an error reply: replayed concurrently in the
/// recorded interleaving against a fresh libvirtd, it matches, at the
/// recorded pace (issue 25).
#[test]
fn a_concurrent_session_with_listeners_replays_and_matches() {
    if !available("a_concurrent_session_with_listeners_replays_and_matches") {
        return;
    }
    let daemon = Daemon::start();
    let capture = concurrent_capture();
    let started = Instant::now();
    let out = conform(&daemon, &[capture.to_str().unwrap(), "--pace", "recorded"]);
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("match: "), "{stdout}");
    // --pace recorded spaces the messages as captured (it was ignored once).
    let span = session_span(&capture);
    assert!(seconds >= span * 0.9, "replayed in {seconds:.2} s, recorded over {span:.2} s");

    let snapshot = daemon.dir.join("concurrent.txt");
    let out = conform(
        &daemon,
        &[capture.to_str().unwrap(), "--pace", "fast", "--snapshot", snapshot.to_str().unwrap(), "--update"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let transcript = std::fs::read_to_string(&snapshot).expect("transcript written");
    // The events the listeners registered for arrived, and the daemon's
    // callback IDs and UUIDs were learned and sent back.
    assert!(transcript.contains("MESSAGE REMOTE.DOMAIN_EVENT_CALLBACK_LIFECYCLE"), "{transcript}");
    assert!(transcript.contains("MESSAGE REMOTE.NETWORK_EVENT_LIFECYCLE"), "{transcript}");
    assert!(!transcript.contains("status=ERROR code=") || transcript.matches("status=ERROR").count() == 1);
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("libvirt_concurrent_transcript", transcript);
    });
}

/// Against a daemon that differs from the recording's, the replay fails
/// with a diff that names the difference (issue 25).
#[test]
fn a_differing_target_fails_with_a_diff_that_names_the_difference() {
    if !available("a_differing_target_fails_with_a_diff_that_names_the_difference") {
        return;
    }
    let capture = concurrent_capture();
    let cases: [(&str, &str, &[&str]); 3] = [
        // dominfo test: the state differs (1 running, 5 shutoff).
        ("destroy test", "a domain destroyed beforehand", &["REPLY REMOTE.DOMAIN_GET_INFO", "state=5"]),
        // dominfo test: the memory differs; only cpuTime varies by run.
        (
            "setmem test 1048576 --live",
            "memory changed with setmem",
            &["REPLY REMOTE.DOMAIN_GET_INFO", "memory=1048576"],
        ),
        // net-info default: not found.
        (
            "net-destroy default; net-undefine default",
            "a network missing",
            &["+  reply: REPLY REMOTE.NETWORK_LOOKUP_BY_NAME", "status=ERROR"],
        ),
    ];
    for (commands, what, wanted) in cases {
        let daemon = Daemon::start();
        let _holder = daemon.hold(commands);
        let out = conform(&daemon, &[capture.to_str().unwrap(), "--pace", "fast"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let changed: Vec<&str> = stdout.lines().filter(|l| l.starts_with('+') || l.starts_with('-')).collect();
        for want in wanted {
            assert!(changed.iter().any(|l| l.contains(want)), "{what}: the diff does not show {want:?}:\n{stdout}");
        }
    }
}

/// A session conform cannot replay whole fails, saying why, with exit 2:
/// never a match made of what was left (issue 25: a skipped connection once
/// still printed "match").
#[test]
fn a_session_that_cannot_be_replayed_whole_is_an_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let session = session_capture();
    let packets = variants::read(session.to_str().unwrap()).expect("the session reads");
    // The first connection's SYN and SYN-ACK lost: joined mid-way.
    let joined = variants::apply(&packets, &[(1, Edit::Drop), (2, Edit::Drop)]).expect("edits apply");
    let joined_path = dir.path().join("joined.pcap");
    std::fs::write(&joined_path, variants::to_pcap(&joined)).expect("written");
    let lossy = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/libvirt/virsh-lossy.pcap");
    for (path, why) in [(joined_path.as_path(), "not captured from its start"), (lossy.as_path(), "lost bytes")] {
        let out = Command::new(BIN)
            .args(["conform", "--protocol", "libvirt", "--target", "127.0.0.1:9"])
            .arg(path)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(stderr.contains(why) && stderr.contains("nothing was replayed"), "{}: {stderr}", path.display());
    }
}

/// Every payload field of every message, ours against libvirt's own
/// Wireshark plugin: (frame, field, value) for each leaf the plugin shows
/// (`-T pdml`), and each we decode from the generated tables.
fn payload_leaves_theirs(path: &Path) -> BTreeMap<u64, Vec<(String, String)>> {
    let out = Command::new("tshark").arg("-r").arg(path).args(["-Y", "libvirt", "-T", "pdml"]).output();
    let pdml = String::from_utf8_lossy(&out.expect("tshark runs").stdout).to_string();
    // A string's `show` may span lines: match over the whole document.
    let field = regex::Regex::new(
        r#"<field name="frame.number" [^>]*show="(\d+)"|<field name="libvirt\.([^"]+)" [^>]*show="([^"]*)" value="[^"]*"/>"#,
    )
    .expect("regex");
    let header = ["length", "program", "version", "procedure", "type", "serial", "status"];
    let mut leaves: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
    let mut current = 0;
    for c in field.captures_iter(&pdml) {
        if let Some(frame) = c.get(1) {
            current = frame.as_str().parse().expect("frame number");
            continue;
        }
        let (name, show) = (&c[2], &c[3]);
        if header.contains(&name) {
            continue;
        }
        leaves.entry(current).or_default().push((name.to_string(), normalise(&unescape_xml(show))));
    }
    leaves
}

fn payload_leaves_ours(path: &Path) -> BTreeMap<u64, Vec<(String, String)>> {
    let (_, records) = our_messages(path);
    let mut leaves: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
    for r in &records {
        let frame = r["frame"]["number"].as_u64().expect("frame");
        let Some(layer) = r["libvirt"].as_object() else { continue };
        for (key, value) in layer.iter().filter(|(key, _)| key.contains('.')) {
            let values = match value {
                serde_json::Value::Array(items) => items.clone(),
                one => vec![one.clone()],
            };
            for v in values {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                leaves.entry(frame).or_default().push((key.clone(), normalise(&text)));
            }
        }
    }
    leaves
}

fn unescape_xml(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// What the comparison leaves out. Empty values: the plugin shows an absent
/// optional and an empty list as a field with no value; we leave them out.
/// And the plugin's one known slip: a string field named `type` (in
/// CONNECT_GET_TYPE and DOMAIN_GET_OS_TYPE replies) is shown as the
/// string's length, as if it were the header's `libvirt.type` integer.
fn is_compared(leaf: &(String, String)) -> bool {
    let plugin_slip = ["remote_connect_get_type_ret.type", "remote_domain_get_os_type_ret.type"];
    !leaf.1.is_empty() && !plugin_slip.contains(&leaf.0.as_str())
}

/// One spelling for both: UUIDs and bytes without separators, strings cut
/// at their first line (the plugin shows no more of a multi-line string).
fn normalise(text: &str) -> String {
    let first_line = text.split(['\n', '\\']).next().unwrap_or_default();
    let hexish = first_line.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '-');
    if hexish && (first_line.contains(':') || first_line.matches('-').count() == 4) {
        return first_line.replace([':', '-'], "");
    }
    first_line.to_string()
}

#[test]
fn every_payload_field_agrees_with_libvirts_own_dissector() {
    if !plugin_available() {
        return;
    }
    let mut compared = 0;
    for name in ["virsh-session.pcap", "virsh-lossy.pcap", "virsh-concurrent.pcap"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/libvirt").join(name);
        let theirs = payload_leaves_theirs(&path);
        let ours = payload_leaves_ours(&path);
        for (frame, their_leaves) in &theirs {
            let mut their_leaves: Vec<_> = their_leaves.iter().filter(|l| is_compared(l)).cloned().collect();
            let mut our_leaves: Vec<_> =
                ours.get(frame).into_iter().flatten().filter(|l| is_compared(l)).cloned().collect();
            their_leaves.sort();
            our_leaves.sort();
            assert_eq!(our_leaves, their_leaves, "{name} frame {frame}: payload fields, ours vs libvirt-wireshark");
            compared += their_leaves.len();
        }
    }
    assert!(compared > 1_000, "only {compared} field values compared");
    eprintln!("{compared} payload field values agree with libvirt-wireshark");
}

/// A hostile variant of a recorded session: edits applied in passes (each
/// pass numbers the frames of the capture the pass before made).
struct Variant {
    name: &'static str,
    passes: Vec<Vec<(u64, Edit)>>,
    /// tshark's libvirt dissector shows the same messages. It does not
    /// reorder segments (tcp.reassemble_out_of_order is off by default), and
    /// after a hole inside a message it reads the rest as a new message.
    tshark_agrees: bool,
    /// Every segment keeps its place before the other direction's segments
    /// that acknowledge it, so every reply whose call was captured pairs.
    order_kept: bool,
    /// Replies whose call was captured whole but with another serial (a
    /// corrupted one): rightly replies without a call.
    serials_changed: usize,
}

impl Variant {
    /// The edits, as `examples/tcp-variants.rs` takes them (one run per pass).
    fn edits(&self) -> String {
        let pass = |edits: &Vec<(u64, Edit)>| {
            edits
                .iter()
                .map(|(frame, edit)| {
                    let text = edit.to_string();
                    match text.split_once('@') {
                        Some((kind, arg)) => format!("{kind}:{frame}@{arg}"),
                        None => format!("{text}:{frame}"),
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        self.passes.iter().map(pass).collect::<Vec<_>>().join(" | then | ")
    }
}

/// The variants: each kind of damage alone, chosen by seeded draws from the
/// segments of the session, then all of them at once.
fn variants_of(clean: &[model::Segment], directions: &HashMap<model::Flow, model::Direction>) -> Vec<Variant> {
    let port = ldm_sniff::wire::libvirt::PORT;
    let client_whole = model::whole_message_frames(clean, directions, |flow| flow.3 == port);
    let daemon_whole = model::whole_message_frames(clean, directions, |flow| flow.1 == port);
    let data: Vec<u64> = clean.iter().filter(|s| !s.payload.is_empty()).map(|s| s.frame).collect();
    let payload_of = |frame: u64| clean.iter().find(|s| s.frame == frame).map_or(0, |s| s.payload.len());
    let with = |frames: Vec<u64>, edit: &dyn Fn(u64) -> Edit| frames.into_iter().map(|f| (f, edit(f))).collect();
    let last_frame = clean.iter().map(|s| s.frame).max().unwrap_or(0);
    // Splits inside the header (1-27) and inside the payload.
    let split_at = |frame: u64| Edit::Split(1 + (frame as usize * 7) % (payload_of(frame) - 1).max(1));
    let splits: Vec<(u64, Edit)> =
        with(variants::choose(5, &data, 10).into_iter().filter(|f| payload_of(*f) > 1).collect(), &split_at);
    // Splits, then the first piece of each lost: holes inside messages.
    let cut: Vec<u64> = variants::choose(8, &data, 3).into_iter().filter(|f| payload_of(*f) > 1).collect();
    let cut_first_pieces: Vec<(u64, Edit)> = {
        // After the split pass, frame f's first piece is f plus the pieces added before it.
        cut.iter().enumerate().map(|(i, f)| (f + i as u64, Edit::Drop)).collect()
    };
    let drops_client: Vec<(u64, Edit)> = with(variants::choose(1, &client_whole, 3), &|_| Edit::Drop);
    let drops_daemon: Vec<(u64, Edit)> = with(variants::choose(2, &daemon_whole, 3), &|_| Edit::Drop);
    let dups: Vec<(u64, Edit)> = with(variants::choose(3, &data, 10), &|_| Edit::Duplicate);
    let resends: Vec<(u64, Edit)> = with(variants::choose(4, &data, 20), &|_| Edit::ResendBefore(last_frame + 1));
    let swaps: Vec<(u64, Edit)> =
        with(variants::choose(6, &data, 5).into_iter().filter(|f| *f < last_frame).collect(), &|_| Edit::SwapWithNext);
    // The serial field (bytes 20-23 of a header at the segment's start), and
    // the program field (4-7): the header is then no longer plausible.
    let corrupt: Vec<(u64, Edit)> = variants::choose(7, &client_whole, 4)
        .into_iter()
        .enumerate()
        .map(|(i, f)| (f, Edit::Corrupt(if i % 2 == 0 { 21 } else { 5 })))
        .collect();
    let unreadable: Vec<(u64, Edit)> = corrupt.iter().filter(|(_, e)| *e == Edit::Corrupt(5)).copied().collect();
    // A lost segment is not sent again at the end: the receiver got it long
    // before (the model would wait for it; the stream has moved on).
    let dropped: Vec<u64> = drops_client.iter().chain(&drops_daemon).map(|(f, _)| *f).collect();
    let late: Vec<(u64, Edit)> = resends.iter().filter(|(f, _)| !dropped.contains(f)).copied().collect();
    let everything: Vec<(u64, Edit)> =
        [&drops_client, &drops_daemon, &dups, &late, &unreadable].into_iter().flatten().copied().collect();
    let v = |name, passes, tshark_agrees, order_kept| Variant {
        name,
        passes,
        tshark_agrees,
        order_kept,
        serials_changed: 0,
    };
    vec![
        v("3 client segments lost", vec![drops_client.clone()], true, true),
        v("3 daemon segments lost", vec![drops_daemon], true, true),
        v("10 segments captured twice", vec![dups], true, true),
        v("20 segments sent again after their connection closed", vec![resends], true, true),
        v("10 segments split, some inside the header", vec![splits], true, true),
        v("holes inside messages", vec![with(cut, &split_at), cut_first_pieces], false, true),
        v("5 segments swapped with the next frame", vec![swaps], false, false),
        // Serials changed in frames 20 and 54; 54's connection had an
        // unreadable header before (frame 32), so its reply's call may have
        // been in those bytes: not a reply without a call.
        Variant { serials_changed: 1, ..v("4 headers corrupted (serial, program)", vec![corrupt], false, true) },
        v("all of it at once", vec![everything], false, true),
    ]
}

#[test]
fn hostile_variants_of_a_real_session_show_what_a_model_and_tshark_show() {
    if !plugin_available() {
        return;
    }
    let clean_path = session_capture();
    let clean = model::segments(&clean_path);
    let directions = model::directions(&clean);
    let mut tshark_clean = their_messages(&clean_path);
    tshark_clean.sort_unstable();
    assert_eq!(model::expected(&clean, &directions), tshark_clean, "the model reads the clean session as tshark");
    let dir = tempfile::tempdir().expect("a temporary directory");
    for variant in variants_of(&clean, &directions) {
        let context = format!("variant '{}' (tcp-variants edits: {})", variant.name, variant.edits());
        let mut packets = variants::read(clean_path.to_str().expect("UTF-8 path")).expect("the session reads");
        for pass in &variant.passes {
            packets = variants::apply(&packets, pass).unwrap_or_else(|e| panic!("{context}: {e}"));
        }
        let path = dir.path().join(format!("{}.pcap", variant.name.replace(' ', "-")));
        std::fs::write(&path, variants::to_pcap(&packets)).expect("variant written");
        let want = model::expected(&model::segments(&path), &directions);
        assert!(want.len() >= 60, "{context}: most messages survive ({})", want.len());
        let (mut ours, records) = our_messages(&path);
        ours.sort_unstable();
        assert_eq!(ours, want, "{context}: (frame, prog, proc, type, serial, status), ours against the model");
        if variant.tshark_agrees {
            let mut theirs = their_messages(&path);
            theirs.sort_unstable();
            assert_eq!(theirs, want, "{context}: libvirt-wireshark against the model");
        }
        check_pairing(&records, variant.order_kept, variant.serials_changed, &context);
    }
}

/// No reply is called a reply without a call unless its call's serial was
/// changed: where a capture lost bytes of the client's direction, or they
/// could not be read, the call may be among them. With the order kept,
/// every reply whose call was shown is paired with it.
fn check_pairing(records: &[serde_json::Value], order_kept: bool, serials_changed: usize, context: &str) {
    let messages: Vec<&serde_json::Value> = records.iter().filter(|r| r["libvirt"].is_object()).collect();
    let connection = |r: &serde_json::Value| {
        let end = |ip: &str, port: &str| (r["ip"][ip].to_string(), r["tcp"][port].to_string());
        let (a, b) = (end("src", "srcport"), end("dst", "dstport"));
        if a <= b {
            (a, b)
        } else {
            (b, a)
        }
    };
    let without_call: Vec<&&serde_json::Value> =
        messages.iter().filter(|r| keys(r).iter().any(|k| k == "libvirt.reply_without_call")).collect();
    assert_eq!(without_call.len(), serials_changed, "{context}: replies without a call: {without_call:?}");
    for r in &messages {
        let lv = &r["libvirt"];
        if !order_kept || lv["type_name"] != "REPLY" || lv["prog_name"] == "KEEPALIVE" {
            continue;
        }
        let called = messages.iter().any(|c| {
            c["libvirt"]["type_name"] == "CALL"
                && c["libvirt"]["serial"] == lv["serial"]
                && c["libvirt"]["prog"] == lv["prog"]
                && connection(c) == connection(r)
        });
        if called {
            assert!(lv["request_in"].is_u64(), "{context}: a reply whose call was shown is paired with it: {r}");
        }
    }
}

/// A session recorded with real loss (captures/libvirt/record-lossy.sh: 40
/// virsh clients at once, tcpdump's kernel buffer too small): every message
/// libvirt's plugin decodes, we decode at the same frame and no other, and
/// no reply whose call was captured is called a reply without a call.
#[test]
fn a_real_capture_with_drops_decodes_as_tshark_and_pairs_without_false_warnings() {
    if !plugin_available() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/libvirt/virsh-lossy.pcap");
    assert!(lost_segments(&path).len() >= 5, "the recording lost segments");
    let (mut ours, records) = our_messages(&path);
    let mut theirs = their_messages(&path);
    ours.sort_unstable();
    theirs.sort_unstable();
    assert!(ours.len() > 1_000, "{} messages", ours.len());
    if ours != theirs {
        let only_ours: Vec<&Row> = ours.iter().filter(|r| !theirs.contains(r)).collect();
        let only_theirs: Vec<&Row> = theirs.iter().filter(|r| !ours.contains(r)).collect();
        panic!("messages differ: only ours {only_ours:?}, only libvirt-wireshark's {only_theirs:?}");
    }
    let gaps = records.iter().filter(|r| keys(r).iter().any(|k| k == "libvirt.stream_gap")).count();
    assert!(gaps >= 5, "the holes are reported: {gaps}");
    check_pairing(&records, true, 0, "virsh-lossy.pcap");
}
