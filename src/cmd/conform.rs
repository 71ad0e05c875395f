//! `ldm-sniff conform`.

use std::process::ExitCode;
use std::time::Instant;

use ldm_sniff::cli::{ConformArgs, ConformFormat, ConformProtocol, Pace};
use ldm_sniff::conform::{self, libvirt, report, transcript, Exchange, Normalise, Target};
use ldm_sniff::dissect;
use ldm_sniff::probe;

use super::EXIT_FINDINGS;
use super::{error, interface, note};

pub fn run(args: &ConformArgs) -> ExitCode {
    let started = Instant::now();
    let ldm = || conform::load(&args.capture, args.window);
    let libvirt = || {
        let options = dissect::Options { libvirt_port: args.libvirt_port, ..dissect::Options::default() };
        libvirt::load(&args.capture, options)
    };
    match args.protocol {
        ConformProtocol::Ldm => match ldm() {
            Ok(requests) => run_ldm(args, &requests, started),
            Err(message) => error(&message),
        },
        ConformProtocol::Libvirt => match libvirt() {
            Ok(session) => run_libvirt(args, &session, started),
            Err(message) => error(&message),
        },
        // ldm if the capture has ldm requests, else libvirt.
        ConformProtocol::Auto => match ldm() {
            Ok(requests) => run_ldm(args, &requests, started),
            Err(ldm_error) => match libvirt() {
                Ok(session) => run_libvirt(args, &session, started),
                // An unreadable file fails both the same way: say it once.
                Err(libvirt_error) if libvirt_error == ldm_error => error(&ldm_error),
                Err(libvirt_error) => error(&format!("{ldm_error}\nldm-sniff: nor libvirt: {libvirt_error}")),
            },
        },
    }
}

/// Replays the client side of each libvirt connection.
fn run_libvirt(args: &ConformArgs, session: &libvirt::Session, started: Instant) -> ExitCode {
    if args.raw {
        return error("--raw re-injects ldm frames; libvirt connections are replayed over TCP: drop --raw");
    }
    let target = match args.target.as_deref().map(libvirt::parse_target).transpose() {
        Ok(target) => target,
        Err(message) => return error(&message),
    };
    let norm = match libvirt::Normalise::new(&args.redact, &args.keep) {
        Ok(norm) => norm,
        Err(message) => return error(&message),
    };
    for server in &session.servers {
        let addr = target.unwrap_or(*server);
        if !conform::is_local_addr(addr.ip()) && !args.allow_remote {
            return error(&format!(
                "libvirtd at {addr} is neither loopback nor on a directly connected network; replaying at a remote host needs --allow-remote"
            ));
        }
    }
    let pace = match args.pace {
        Pace::Recorded => libvirt::Pace::Recorded,
        Pace::Fast => libvirt::Pace::Fast,
    };
    let replies = match libvirt::replay(session, target, args.window, pace) {
        Ok(replies) => replies,
        Err(e) => {
            let addr = target.map_or_else(|| "the recorded libvirtd".to_string(), |t| t.to_string());
            return error(&format!("cannot replay to {addr}: {e}; check that libvirtd listens there (listen_tcp)"));
        }
    };
    let actual = libvirt::transcript(session, &replies, &norm);
    let recorded = libvirt::transcript(session, &libvirt::recorded(session), &norm);
    let target_name = target.map_or_else(|| "the recorded libvirtd".to_string(), |t| t.to_string());
    finish(args, actual, recorded, &target_name, started)
}

/// Whether `--raw` may send these frames: not through capabilities the
/// binary lends a user who is not root (unless an admin allowed it), and
/// only to destinations `--target` could name (the group, loopback, a
/// connected network) unless `--allow-remote`.
fn may_inject(args: &ConformArgs, requests: &[conform::Request]) -> Result<(), String> {
    use ldm_sniff::privilege::{lent_by_the_file, may_inject, INJECT_GROUP};
    if lent_by_the_file() && !may_inject() {
        return Err(format!(
            "--raw sends the capture's frames as they are (any source, any destination); through the capabilities the binary lends a user who is not root, it is refused: run it as root (sudo), or have an admin add you to the group {INJECT_GROUP}"
        ));
    }
    if args.allow_remote {
        return Ok(());
    }
    for request in requests {
        let Some(frame) = &request.ethernet else { continue };
        let Ok(packet) = etherparse::SlicedPacket::from_ethernet(frame) else { continue };
        let Some(etherparse::NetSlice::Ipv4(ip)) = packet.net else { continue };
        let destination = ip.header().destination_addr();
        if !destination.is_multicast() && !conform::is_local_addr(destination.into()) {
            return Err(format!(
                "--raw: frame {} of {} goes to {destination}, neither multicast nor on a directly connected network; sending it needs --allow-remote",
                request.frame, args.capture
            ));
        }
    }
    Ok(())
}

fn run_ldm(args: &ConformArgs, requests: &[conform::Request], started: Instant) -> ExitCode {
    let norm = match Normalise::new(&args.redact, &args.keep) {
        Ok(norm) => norm,
        Err(message) => return error(&message),
    };
    let target = match Target::parse(args.target.as_deref()) {
        Ok(target) => target,
        Err(message) => return error(&message),
    };
    if !target.is_local() && !args.allow_remote {
        return error(&format!(
            "--target {} is neither multicast nor on a directly connected network; replaying at a remote host needs --allow-remote",
            target.addr
        ));
    }
    let iface = match interface(args.interface.as_deref()) {
        Ok(iface) => iface,
        Err(code) => return code,
    };
    let local = match probe::interface_address(&iface) {
        Ok(local) => local,
        Err(e) => return error(&e.to_string()),
    };
    let socket = match conform::open_socket(local, args.ttl) {
        Ok(socket) => socket,
        Err(e) => return error(&format!("cannot open a UDP socket on {iface} ({local}) port 64535: {e}")),
    };
    let pace = match args.pace {
        Pace::Recorded => conform::Pace::Recorded,
        Pace::Fast => conform::Pace::Fast,
    };
    if args.raw {
        if let Err(message) = may_inject(args, requests) {
            return error(&message);
        }
    }
    let injector = match args.raw.then(|| conform::inject::Injector::open(&iface)).transpose() {
        Ok(injector) => injector,
        Err(e) => {
            return error(&format!("--raw: cannot open a packet socket on {iface}: {e} (needs root or CAP_NET_RAW)"))
        }
    };
    // The packet socket is open: nothing from here on needs a capability.
    if let Err(message) = ldm_sniff::privilege::drop_all() {
        return error(&message);
    }
    if args.raw {
        if let Some(request) = requests.iter().find(|r| r.ethernet.is_none()) {
            return error(&format!(
                "--raw re-injects Ethernet frames, and frame {} of {} is not one; replay without --raw",
                request.frame, args.capture
            ));
        }
    }
    let sender = match &injector {
        Some(injector) => conform::Sender::Raw(injector),
        None => conform::Sender::Udp(target),
    };
    let replies = match conform::replay(&socket, &sender, requests, pace, args.window) {
        Ok(replies) => replies,
        Err(e) => {
            return error(&format!("cannot replay to {}: {e}; check the target is reachable from {iface}", target.addr))
        }
    };
    let actual = conform::transcript_of(requests, &replies, args.window, &norm);
    let recorded = conform::transcript(requests, &conform::recorded(requests), args.window, &norm);
    finish(args, actual, recorded, &target.addr.to_string(), started)
}

/// Writes or compares the transcript, and reports: the same for ldm and libvirt.
fn finish(
    args: &ConformArgs,
    actual: Vec<Exchange>,
    recorded: Vec<Exchange>,
    target: &str,
    started: Instant,
) -> ExitCode {
    let actual_text = transcript::render(&actual);
    if args.update {
        let path = args.snapshot.as_deref().unwrap_or_default();
        if let Err(e) = std::fs::write(path, &actual_text) {
            return error(&format!("{path}: cannot write the snapshot: {e}"));
        }
        note(&format!("wrote {} request(s) to {path}", actual.len()));
        return ExitCode::SUCCESS;
    }
    let (expected, expected_text, expected_name) = match expected(args, recorded) {
        Ok(found) => found,
        Err(message) => return error(&message),
    };
    if let Some(path) = &args.junit {
        let run = report::Run {
            suite: &args.capture,
            started: std::time::SystemTime::now() - started.elapsed(),
            seconds: started.elapsed().as_secs_f64(),
            properties: vec![
                ("target", target.to_string()),
                ("window_secs", args.window.to_string()),
                ("pace", format!("{:?}", args.pace).to_lowercase()),
                ("compared_with", expected_name.clone()),
                ("ldm_sniff_version", env!("CARGO_PKG_VERSION").to_string()),
            ],
        };
        let written = report::junit(&run, &expected, &actual)
            .and_then(|xml| std::fs::write(path, xml).map_err(|e| format!("cannot write the JUnit report: {e}")));
        if let Err(message) = written {
            return error(&format!("{path}: {message}"));
        }
    }
    let color = super::use_color(args.color);
    let shown = report::diff(&expected_text, &actual_text, &expected_name, &format!("target {target}"), color);
    match args.format {
        ConformFormat::Json => {
            let record = serde_json::json!({
                "capture": args.capture,
                "target": target,
                "match": shown.is_none(),
                "expected": expected,
                "actual": actual,
            });
            println!("{}", serde_json::to_string_pretty(&record).unwrap_or_default());
        }
        ConformFormat::Text => match &shown {
            None => println!("match: {} request(s), every reply as in {expected_name}", actual.len()),
            Some(diff) => print!("{diff}"),
        },
    }
    if shown.is_some() {
        note(&format!("the target's replies differ from {expected_name} (- expected, + target)"));
        return ExitCode::from(EXIT_FINDINGS);
    }
    ExitCode::SUCCESS
}

/// The reference: the stored snapshot, or the capture's recorded replies.
fn expected(args: &ConformArgs, recorded: Vec<Exchange>) -> Result<(Vec<Exchange>, String, String), String> {
    if let Some(path) = &args.snapshot {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: cannot read the snapshot: {e}; write it with --update"))?;
        return Ok((transcript::parse(&text), text, format!("snapshot {path}")));
    }
    let text = transcript::render(&recorded);
    Ok((recorded, text, format!("recorded {}", args.capture)))
}
