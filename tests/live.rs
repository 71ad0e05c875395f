//! Live capture with real traffic: two network namespaces joined by a veth
//! pair, a sender in one, `ldm-sniff -i` in the other. Needs root (CI runs as
//! root); elsewhere the tests say they skipped. Addresses are 10.79.x.x, only
//! inside the namespaces; every wait is bounded; namespaces are removed when
//! a test ends, also when it fails.

use std::io::Cursor;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ldm_sniff::capture::CaptureReader;
use ldm_sniff::wire::ldm::{self, MsgType, Repr};

const BIN: &str = env!("CARGO_BIN_EXE_ldm-sniff");
const LIMIT: Duration = Duration::from_secs(20);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether to run; in CI these tests must run.
fn can_run(test: &str) -> bool {
    if is_root() && (Path::new("/usr/sbin/ip").exists() || Path::new("/sbin/ip").exists()) {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI runs as root with iproute2: {test} must run");
    eprintln!("{test}: skipped (needs root and iproute2)");
    false
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip runs");
    assert!(status.success(), "ip {}", args.join(" "));
}

/// Two namespaces, `a` (10.79.N.1) and `b` (10.79.N.2), joined by a veth pair.
struct Pair {
    a: String,
    b: String,
    veth_b: String,
    addr_a: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Pair {
    fn new() -> Pair {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let pair = Pair {
            a: format!("ldmt{tag}a"),
            b: format!("ldmt{tag}b"),
            veth_b: format!("lv{tag}b"),
            addr_a: format!("10.79.{n}.1"),
        };
        let veth_a = format!("lv{tag}a");
        pair.remove();
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&["link", "add", &veth_a, "netns", &pair.a, "type", "veth", "peer", "name", &pair.veth_b, "netns", &pair.b]);
        ip(&["-n", &pair.a, "addr", "add", &format!("{}/24", pair.addr_a), "dev", &veth_a]);
        ip(&["-n", &pair.b, "addr", "add", &format!("10.79.{n}.2/24"), "dev", &pair.veth_b]);
        for (ns, dev) in [(&pair.a, veth_a.as_str()), (&pair.b, pair.veth_b.as_str())] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&["-n", &pair.a, "route", "add", "224.0.0.0/4", "dev", &veth_a]);
        pair
    }

    fn remove(&self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
    }

    /// Starts `ldm-sniff -i <veth in b> ARGS` inside `b`.
    fn capture(&self, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.b, BIN, "-i", &self.veth_b])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldm-sniff starts")
    }

    /// Sends ROUNDS x 5 ldm messages from `a` to the group, on `port`: a
    /// thread enters namespace `a` (setns) and sends from a UDP socket there.
    fn send(&self, rounds: u32, port: u16) {
        let ns = format!("/var/run/netns/{}", self.a);
        let source: Ipv4Addr = self.addr_a.parse().expect("address");
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            let handle = std::fs::File::open(&ns)?;
            // SAFETY: setns on this thread only, with a namespace file we opened.
            if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let socket = UdpSocket::bind(SocketAddrV4::new(source, port))?;
            socket.set_multicast_ttl_v4(1)?;
            let mac = [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x2a];
            let messages = [
                Repr::discovery_request(),
                Repr::discovery_response("3.6.1.0.11", "ns-a", source),
                Repr::lookup(MsgType::SendMsg, mac, source),
                Repr::lookup(MsgType::ResponseMsg, mac, source),
                Repr::lookup(MsgType::SendMsg, [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x2b], source),
            ];
            for _ in 0..rounds {
                for message in &messages {
                    socket.send_to(&message.to_bytes(), SocketAddrV4::new(ldm::GROUP, port))?;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Ok(())
        });
        sender.join().expect("sender thread").expect("sending inside the namespace");
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Waits for `child` at most LIMIT, killing it past that.
fn wait(mut child: Child) -> Output {
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("ldm-sniff did not stop within {LIMIT:?}: {:?}", child.wait_with_output());
}

/// The capture socket is open once ldm-sniff says it is capturing; give it a moment.
fn settle() {
    std::thread::sleep(Duration::from_millis(700));
}

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
    let out = std::env::temp_dir().join(format!("ldm-live-{}.pcapng", pair.a));
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
    let _ = std::fs::remove_file(&out);
}

#[test]
fn ctrl_c_stops_cleanly_and_loses_nothing() {
    if !can_run("ctrl_c_stops_cleanly_and_loses_nothing") {
        return;
    }
    let pair = Pair::new();
    let out = std::env::temp_dir().join(format!("ldm-live-{}.pcapng", pair.a));
    let child = pair.capture(&["-w", out.to_str().unwrap()]);
    settle();
    pair.send(3, 64535);
    std::thread::sleep(Duration::from_millis(300));
    // `ip netns exec` runs ldm-sniff in the same process (exec), so its pid is ours to signal.
    // SAFETY: kill(2) on a child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = wait(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("15 frames read, 15 ldm"), "{stderr}");
    assert!(stderr.contains("kernel: 15 packets passed the filter, 0 dropped"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 15);
    assert_eq!(frames_in(&out), 15);
    let _ = std::fs::remove_file(&out);
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
