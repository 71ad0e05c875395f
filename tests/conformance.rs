//! Conformance: every capture in captures/conformance/ replayed with
//! `ldm-sniff conform` against `ldm-sniff emulate` in a network namespace,
//! across a veth pair with real multicast; the transcripts are snapshots.
//! Each fault the emulator can inject must make conform fail with a diff
//! that names it. Two emulators make a real collision that is recorded,
//! analysed and replayed. Needs root, as tests/live.rs.
//!
//! LDM_TARGET=ADDR[:PORT] with LDM_INTERFACE=IFACE points the replays at a
//! real ldmd instead (the emulator is not started; fault tests are skipped).

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{can_run, wait, Pair, BIN};

const CONFIG: &str = "captures/conformance/emulator.toml";

/// `ldm-sniff emulate` in a namespace, killed when dropped.
struct Emulator(Option<Child>);

impl Emulator {
    fn start(ns: &str, iface: &str, extra: &[&str]) -> Emulator {
        // --bind listens on one address instead of joining on an interface.
        let on_interface: &[&str] = if extra.contains(&"--bind") { &[] } else { &["-i", iface] };
        let child = Command::new("ip")
            .args(["netns", "exec", ns, BIN, "emulate", "--duration", "20", "-T", "json"])
            .args(on_interface)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("emulator starts");
        // Its socket is joined once it says so on stderr; a fixed pause is
        // simpler and ample on a namespace pair.
        std::thread::sleep(Duration::from_millis(400));
        Emulator(Some(child))
    }

    /// Stops it and returns its log.
    fn stop(mut self) -> Output {
        let child = self.0.take().expect("running");
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        wait(child)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn conform(ns: &str, iface: &str, args: &[&str]) -> Output {
    let child = Command::new("ip")
        .args(["netns", "exec", ns, BIN, "conform", "-i", iface, "--pace", "fast", "--color", "never"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("conform starts");
    wait(child)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn conformance_captures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("captures/conformance")
        .expect("captures/conformance")
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".pcapng") || p.ends_with(".pcap"))
        .collect();
    names.sort();
    names
}

/// A lab's real ldmd, when configured.
fn lab_target() -> Option<(String, String)> {
    Some((std::env::var("LDM_TARGET").ok()?, std::env::var("LDM_INTERFACE").ok()?))
}

#[test]
fn recorded_captures_conform_against_the_target() {
    if let Some((target, iface)) = lab_target() {
        for capture in conformance_captures() {
            let out =
                Command::new(BIN).args(["conform", &capture, "--target", &target, "-i", &iface]).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{capture}: {}{}", text(&out.stdout), text(&out.stderr));
        }
        return;
    }
    if !can_run("recorded_captures_conform_against_the_target") {
        return;
    }
    assert!(conformance_captures().len() >= 2, "captures/conformance holds the reference captures");
    let pair = Pair::new();
    let emulator = Emulator::start(&pair.b, &pair.veth_b, &["--config", CONFIG]);
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::glob!("../captures/conformance", "*.pcap*", |path| {
            let capture = format!("captures/conformance/{}", path.file_name().unwrap().to_string_lossy());
            let out = conform(&pair.a, &pair.veth_a, &[&capture]);
            assert_eq!(out.status.code(), Some(0), "{capture}: {}{}", text(&out.stdout), text(&out.stderr));
            assert!(text(&out.stdout).starts_with("match: "), "{}", text(&out.stdout));
            // The transcript itself, reviewed as a snapshot.
            let snapshot = std::env::temp_dir().join(format!("ldm-conform-{}-{}.txt", std::process::id(), pair.n));
            let snapshot_arg = snapshot.to_string_lossy().into_owned();
            let out = conform(&pair.a, &pair.veth_a, &[&capture, "--snapshot", &snapshot_arg, "--update"]);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            let transcript = std::fs::read_to_string(&snapshot).expect("transcript written");
            let _ = std::fs::remove_file(&snapshot);
            insta::assert_snapshot!("conformance", transcript);
        });
    });
    let log = emulator.stop();
    assert!(text(&log.stdout).contains("\"action\":\"replied to 239.129.9.27:64535\""), "{}", text(&log.stdout));
}

/// Each fault, and the words its diff must contain.
const FAULTS: [(&str, &str); 8] = [
    ("delay:1500", "LATE"),
    ("drop", "+  no reply"),
    ("duplicate", "+  reply: LDMD_DISC_RESP"),
    ("little-endian", "byte_order=little-endian"),
    ("bad-version", "version_no=2"),
    ("bad-magic", "anomalies=ldm.bad_magic"),
    ("truncate", "len=100"),
    ("wrong-port", "port_no=6483"),
];

#[test]
fn every_injected_fault_fails_with_a_diff_that_names_it() {
    if lab_target().is_some() || !can_run("every_injected_fault_fails_with_a_diff_that_names_it") {
        return;
    }
    let pair = Pair::new();
    for (fault, named) in FAULTS {
        let emulator = Emulator::start(&pair.b, &pair.veth_b, &["--config", CONFIG, "--fault", fault]);
        let out = conform(&pair.a, &pair.veth_a, &["captures/conformance/discovery.pcapng"]);
        drop(emulator);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{fault}: {stdout}{}", text(&out.stderr));
        assert!(stdout.contains(named), "{fault}: the diff should say {named:?}:\n{stdout}");
        assert!(stdout.starts_with("--- recorded captures/conformance/discovery.pcapng"), "{stdout}");
    }
}

#[test]
fn a_wrong_port_is_caught_in_lookups_too_and_junit_names_the_request() {
    if lab_target().is_some() || !can_run("a_wrong_port_is_caught_in_lookups_too_and_junit_names_the_request") {
        return;
    }
    let pair = Pair::new();
    // Lookups carry no port: only the dropped reply shows.
    let emulator = Emulator::start(&pair.b, &pair.veth_b, &["--config", CONFIG, "--fault", "drop"]);
    let junit = std::env::temp_dir().join(format!("ldm-junit-{}-{}.xml", std::process::id(), pair.n));
    let junit_arg = junit.to_string_lossy().into_owned();
    let out = conform(&pair.a, &pair.veth_a, &["captures/conformance/lookups.pcapng", "--junit", &junit_arg]);
    drop(emulator);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    let _ = std::fs::remove_file(&junit);
    assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
    assert!(xml.contains("name=\"request 1 (frame 1): SEND_MSG mac=00:14:4f:f8:00:2a\">"), "{xml}");
}

#[test]
fn two_emulators_make_a_collision_that_is_recorded_analysed_and_replayed() {
    if lab_target().is_some() || !can_run("two_emulators_make_a_collision_that_is_recorded_analysed_and_replayed") {
        return;
    }
    let pair = Pair::new();
    let owner = Emulator::start(&pair.a, &pair.veth_a, &["--hostname", "owner", "--own", "00:14:4f:f8:00:2a"]);
    let file = std::env::temp_dir().join(format!("ldm-collision-{}-{}.pcapng", std::process::id(), pair.n));
    let file_arg = file.to_string_lossy().into_owned();
    let capture = pair.capture(&["-q", "-w", &file_arg]);
    common::settle();
    // Tries the owner's MAC first: answered, so it moves on to the next.
    let started = Instant::now();
    let allocator = Emulator::start(
        &pair.b,
        &pair.veth_b,
        &["--hostname", "allocator", "--allocate", "1", "--candidates", "00:14:4f:f8:00:2a,00:14:4f:f8:00:2b"],
    );
    std::thread::sleep(Duration::from_millis(2600).saturating_sub(started.elapsed()));
    let log = text(&allocator.stop().stdout);
    let _ = Command::new("ip").args(["netns", "exec", &pair.b, "pkill", "-INT", "-f", &file_arg]).status();
    let captured = wait(capture);
    assert!(captured.status.code().is_some(), "{}", text(&captured.stderr));
    assert!(log.contains("\"in_use\":\"00:14:4f:f8:00:2a\""), "{log}");
    assert!(log.contains("\"allocated\":\"00:14:4f:f8:00:2b\""), "{log}");

    // Analysed: the answer to the allocator's lookup is a collision.
    let out = Command::new(BIN).args(["-r", &file_arg, "-Y", "expert == \"ldm.collision\""]).output().unwrap();
    let lines = text(&out.stdout);
    assert!(lines.contains("RESPONSE_MSG mac=00:14:4f:f8:00:2a"), "{lines}{}", text(&out.stderr));

    // Replayed against the owner alone: its reply matches the recording.
    let owner_log = owner.stop();
    assert!(text(&owner_log.stdout).contains("SEND_MSG 00:14:4f:f8:00:2a"), "{}", text(&owner_log.stdout));
    let owner = Emulator::start(&pair.a, &pair.veth_a, &["--hostname", "owner", "--own", "00:14:4f:f8:00:2a"]);
    let out = conform(&pair.b, &pair.veth_b, &[&file_arg]);
    drop(owner);
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn conform_refuses_remote_targets_and_captures_without_requests() {
    if !can_run("conform_refuses_remote_targets_and_captures_without_requests") {
        return;
    }
    // Inside a namespace whose only network is the pair's 10.79.N.0/24, so
    // even a broken check would send nothing beyond it.
    let pair = Pair::new();
    let out = conform(&pair.a, &pair.veth_a, &["captures/conformance/discovery.pcapng", "--target", "10.200.0.1"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).contains("--allow-remote"), "{}", text(&out.stderr));
    // Only the replies of a capture: nothing to replay.
    let replies = std::env::temp_dir().join(format!("ldm-replies-only-{}.pcapng", std::process::id()));
    let replies_arg = replies.to_string_lossy().into_owned();
    let written = Command::new(BIN)
        .args(["-r", "captures/conformance/lookups.pcapng", "-Y", "ldm.msg_type == 1", "-w", &replies_arg, "-q"])
        .args(["--fail-on", "never"])
        .output()
        .unwrap();
    assert_eq!(written.status.code(), Some(0), "{}", text(&written.stderr));
    let out = conform(&pair.a, &pair.veth_a, &[&replies_arg]);
    let _ = std::fs::remove_file(&replies);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no ldm requests"), "{}", text(&out.stderr));
}

#[test]
fn the_emulator_survives_a_flood_of_malformed_datagrams_and_still_answers() {
    if lab_target().is_some() || !can_run("the_emulator_survives_a_flood_of_malformed_datagrams_and_still_answers") {
        return;
    }
    let pair = Pair::new();
    let emulator = Emulator::start(&pair.b, &pair.veth_b, &["--config", CONFIG]);
    let source: std::net::Ipv4Addr = pair.addr_a.parse().unwrap();
    // 100k datagrams of pseudo-random junk (a fixed xorshift, reproducible),
    // some starting like an ldm header so deeper checks run too.
    let sender = common::in_namespace(&pair.a, move || -> std::io::Result<u32> {
        let socket = std::net::UdpSocket::bind((source, 0))?;
        socket.set_multicast_ttl_v4(1)?;
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let header = ldm_sniff::wire::ldm::Repr::discovery_request().to_bytes();
        let mut sent = 0;
        for i in 0..100_000u32 {
            let len = (next() % 400) as usize;
            let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 2 == 0 && len >= 8 {
                junk[..8].copy_from_slice(&header[..8]);
            }
            if socket.send_to(&junk, (ldm_sniff::wire::ldm::GROUP, ldm_sniff::wire::ldm::PORT)).is_ok() {
                sent += 1;
            }
        }
        Ok(sent)
    });
    let sent = sender.join().expect("sender").expect("sending in the namespace");
    assert_eq!(sent, 100_000);
    // Still up, still correct.
    let out = conform(&pair.a, &pair.veth_a, &["captures/conformance/discovery.pcapng"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let log = emulator.stop();
    let summary = text(&log.stderr);
    let malformed: u64 = summary
        .split(" malformed dropped")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // The kernel may drop some of a flood before the emulator reads them.
    assert!(malformed > 10_000, "{summary}");
    assert!(text(&log.stdout).lines().count() < 1_000, "malformed datagrams are logged at a bounded rate");
}

#[test]
fn unicast_replies_conform_too() {
    if lab_target().is_some() || !can_run("unicast_replies_conform_too") {
        return;
    }
    let pair = Pair::new();
    let emulator = Emulator::start(&pair.b, &pair.veth_b, &["--config", CONFIG, "--reply", "unicast"]);
    for capture in ["captures/conformance/discovery.pcapng", "captures/conformance/lookups.pcapng"] {
        let out = conform(&pair.a, &pair.veth_a, &[capture]);
        assert_eq!(out.status.code(), Some(0), "{capture}: {}{}", text(&out.stdout), text(&out.stderr));
    }
    let log = text(&emulator.stop().stdout);
    assert!(log.contains(&format!("replied to {}:64535", pair.addr_a)), "{log}");
}

#[test]
fn raw_replay_reinjects_the_recorded_frames_with_their_source_addresses() {
    if lab_target().is_some() || !can_run("raw_replay_reinjects_the_recorded_frames_with_their_source_addresses") {
        return;
    }
    let pair = Pair::new();
    let emulator = Emulator::start(&pair.b, &pair.veth_b, &["--config", CONFIG]);
    for capture in ["captures/conformance/discovery.pcapng", "captures/conformance/lookups.pcapng"] {
        let out = conform(&pair.a, &pair.veth_a, &[capture, "--raw"]);
        assert_eq!(out.status.code(), Some(0), "{capture}: {}{}", text(&out.stdout), text(&out.stderr));
    }
    // The emulator saw the recording's requester (10.78.0.1), not namespace a.
    let log = text(&emulator.stop().stdout);
    assert!(log.contains("\"from\":\"10.78.0.1:64535\""), "{log}");
    assert!(!log.contains(&format!("\"from\":\"{}:", pair.addr_a)), "{log}");
}

#[test]
fn a_unicast_target_bound_to_one_address_conforms() {
    if lab_target().is_some() || !can_run("a_unicast_target_bound_to_one_address_conforms") {
        return;
    }
    let pair = Pair::new();
    let address = format!("10.79.{}.2", pair.n);
    let emulator = Emulator::start(&pair.b, &pair.veth_b, &["--config", CONFIG, "--bind", &address]);
    let out = conform(&pair.a, &pair.veth_a, &["captures/conformance/lookups.pcapng", "--target", &address]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let log = text(&emulator.stop().stdout);
    assert!(log.contains(&format!("replied to {}:64535", pair.addr_a)), "{log}");
}
