//! `discover` and `check-mac` against responders in a network namespace:
//! threads that enter namespace `b` and answer as ldmd would (the emulator
//! will replace them). Needs root, as tests/live.rs.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{can_run, in_namespace, Pair, BIN};
use ldm_sniff::wire::ldm::{self, Message, MsgType, Payload, Repr};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

/// An ldmd stand-in: answers discovery, and lookups of the MACs it owns.
struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(pair: &Pair, address: Ipv4Addr, hostname: &'static str, owns: Vec<[u8; 6]>) -> Responder {
        Responder::start_repeating(pair, address, hostname, owns, 1)
    }

    /// As `start`, sending each reply `repeat` times.
    fn start_repeating(
        pair: &Pair,
        address: Ipv4Addr,
        hostname: &'static str,
        owns: Vec<[u8; 6]>,
        repeat: u32,
    ) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let ready = Arc::new(AtomicBool::new(false));
        let is_ready = ready.clone();
        let thread = in_namespace(&pair.b, move || {
            let listen = udp_socket(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ldm::PORT));
            listen.join_multicast_v4_n(&ldm::GROUP, &InterfaceIndexOrAddress::Address(address)).expect("join");
            let speak = udp_socket(SocketAddrV4::new(address, ldm::PORT));
            speak.set_multicast_if_v4(&address).expect("multicast interface");
            listen.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
            is_ready.store(true, Ordering::SeqCst);
            let group: SocketAddr = SocketAddrV4::new(ldm::GROUP, ldm::PORT).into();
            let started = Instant::now();
            let mut buf = [std::mem::MaybeUninit::new(0u8); 2048];
            // Bounded: a test never needs a responder for more than 10 s.
            while !stopped.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
                let Ok((n, _)) = listen.recv_from(&mut buf) else { continue };
                // SAFETY: recv_from initialised the first n bytes.
                let data: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                let msg = Message::parse(&data);
                let reply = match (msg.msg_type, msg.payload) {
                    (Some(MsgType::DiscSend), _) => Some(Repr::discovery_response("3.6.1.0.11", hostname, address)),
                    (Some(MsgType::SendMsg), Payload::Lookup(_)) => msg
                        .mac()
                        .filter(|mac| owns.contains(mac))
                        .map(|mac| Repr::lookup(MsgType::ResponseMsg, mac, address)),
                    _ => None,
                };
                if let Some(reply) = reply {
                    for _ in 0..repeat {
                        let _ = speak.send_to(&reply.to_bytes(), &group.into());
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ready.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Responder { stop, thread: Some(thread) }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn udp_socket(address: SocketAddrV4) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    socket.set_reuse_address(true).expect("reuse");
    socket.set_reuse_port(true).expect("reuse");
    socket.bind(&SocketAddr::V4(address).into()).expect("bind");
    socket
}

/// Runs `ldm-sniff ARGS` inside namespace `a`.
fn probe(pair: &Pair, args: &[&str]) -> Output {
    Command::new("ip").args(["netns", "exec", &pair.a, BIN]).args(args).output().expect("ldm-sniff runs")
}

fn second_address(pair: &Pair) -> Ipv4Addr {
    let address = format!("10.79.{}.3", pair.n);
    let status =
        Command::new("ip").args(["-n", &pair.b, "addr", "add", &format!("{address}/24"), "dev", &pair.veth_b]).status();
    assert!(status.expect("ip runs").success());
    address.parse().expect("address")
}

#[test]
fn discover_finds_exactly_the_responders_present() {
    if !can_run("discover_finds_exactly_the_responders_present") {
        return;
    }
    let pair = Pair::new();
    let first: Ipv4Addr = format!("10.79.{}.2", pair.n).parse().unwrap();
    let second = second_address(&pair);
    let _one = Responder::start(&pair, first, "resp-1", vec![]);
    let _two = Responder::start(&pair, second, "resp-2", vec![]);
    let out = probe(&pair, &["discover", "-i", &pair.veth_a, "--timeout", "1", "-T", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let responders: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut found: Vec<(String, String, String)> = responders
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["hostname"].as_str().unwrap().to_string(),
                r["from"].as_str().unwrap().to_string(),
                r["ip_address"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("resp-1".into(), first.to_string(), first.to_string()),
            ("resp-2".into(), second.to_string(), second.to_string())
        ]
    );
    assert!(responders.as_array().unwrap().iter().all(|r| r["anomalies"].as_array().unwrap().is_empty()));
}

#[test]
fn discover_with_nobody_answering_exits_1() {
    if !can_run("discover_with_nobody_answering_exits_1") {
        return;
    }
    let pair = Pair::new();
    let out = probe(&pair, &["discover", "-i", &pair.veth_a, "--timeout", "0.5"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 ldmd host(s) answered"));
}

#[test]
fn check_mac_reports_the_owner_or_free() {
    if !can_run("check_mac_reports_the_owner_or_free") {
        return;
    }
    let pair = Pair::new();
    let owner: Ipv4Addr = format!("10.79.{}.2", pair.n).parse().unwrap();
    let owned = [0x00, 0x14, 0x4f, 0xfc, 0x00, 0x01];
    let _responder = Responder::start(&pair, owner, "resp-1", vec![owned]);
    let out = probe(&pair, &["check-mac", "00:14:4f:fc:00:01", "-i", &pair.veth_a, "--retries", "0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("IN USE, answered by") && stdout.contains(&owner.to_string()), "{stdout}");

    let out =
        probe(&pair, &["check-mac", "00:14:4f:f8:00:99", "-i", &pair.veth_a, "--retries", "1", "--window", "0.3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("free (no answer to 2 lookup(s)"), "{stdout}");
    assert!(stderr.contains("automatic range"), "{stderr}");
}

/// A host that answers discovery 2,000 times is listed once, and the
/// repeats are counted (issue 23, item 16: one flooding sender once made
/// 1.2M "hosts").
#[test]
fn discover_lists_each_sender_once_however_often_it_answers() {
    if !can_run("discover_lists_each_sender_once_however_often_it_answers") {
        return;
    }
    let pair = Pair::new();
    let first: Ipv4Addr = format!("10.79.{}.2", pair.n).parse().unwrap();
    let _flood = Responder::start_repeating(&pair, first, "chatty", vec![], 2_000);
    let out = probe(&pair, &["discover", "-i", &pair.veth_a, "--timeout", "1", "-T", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let responders: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(responders.as_array().expect("array").len(), 1, "{responders}");
    assert!(stderr.contains("further response(s) from hosts already listed"), "{stderr}");
}
