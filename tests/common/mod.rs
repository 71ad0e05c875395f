//! Test network namespaces: two joined by a veth pair, removed when dropped
//! (also when a test fails). Addresses 10.79.N.x, used only inside them.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ldm_sniff::wire::ldm::{self, MsgType, Repr};

pub const BIN: &str = env!("CARGO_BIN_EXE_ldm-sniff");
pub const LIMIT: Duration = Duration::from_secs(20);

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether to run; in CI these tests must run.
pub fn can_run(test: &str) -> bool {
    if is_root() && (Path::new("/usr/sbin/ip").exists() || Path::new("/sbin/ip").exists()) {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI runs as root with iproute2: {test} must run");
    eprintln!("{test}: skipped (needs root and iproute2)");
    false
}

/// Ctrl-C for a process this test started (by its PID, never by name).
pub fn interrupt(child: &Child) {
    // SAFETY: kill(2) with a PID we own and a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

pub fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip runs");
    assert!(status.success(), "ip {}", args.join(" "));
}

/// Two namespaces, `a` (10.79.N.1) and `b` (10.79.N.2), joined by a veth pair.
pub struct Pair {
    pub a: String,
    pub b: String,
    pub veth_a: String,
    pub veth_b: String,
    pub addr_a: String,
    pub n: u32,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Pair {
    pub fn new() -> Pair {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let pair = Pair {
            a: format!("ldmt{tag}a"),
            b: format!("ldmt{tag}b"),
            veth_b: format!("lv{tag}b"),
            veth_a: format!("lv{tag}a"),
            addr_a: format!("10.79.{n}.1"),
            n,
        };
        let veth_a = pair.veth_a.clone();
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

    pub fn remove(&self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
    }

    /// Starts `ldm-sniff -i <veth in b> ARGS` inside `b`.
    pub fn capture(&self, args: &[&str]) -> Child {
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
    pub fn send(&self, rounds: u32, port: u16) {
        let source: Ipv4Addr = self.addr_a.parse().expect("address");
        let sender = in_namespace(&self.a, move || -> std::io::Result<()> {
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
pub fn wait(mut child: Child) -> Output {
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
pub fn settle() {
    std::thread::sleep(Duration::from_millis(700));
}

/// Runs `f` on a thread inside network namespace `ns`.
pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let handle = std::fs::File::open(&path).expect("namespace file");
        // SAFETY: setns on this thread only, with a namespace file we opened.
        assert_eq!(unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns {path}");
        f()
    })
}

/// Whether `program` is installed; CI must have it (a missing one there
/// fails the test rather than skipping it).
pub fn have(program: &str, test: &str) -> bool {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "CI must have {program}");
        eprintln!("{test}: {program} is not installed, skipped");
    }
    found
}

/// Every bundled capture (captures/, recorded/, solaris/), sorted.
pub fn captures() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("recorded"), root.join("solaris")] {
        for entry in std::fs::read_dir(dir).expect("captures/ is readable").flatten() {
            let path = entry.path();
            let name = path.to_string_lossy().to_string();
            if [".pcap", ".pcapng", ".snoop"].iter().any(|ext| name.ends_with(ext)) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
