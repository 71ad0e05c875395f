//! `ldm-sniff emulate`.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use ldm_sniff::cli::{EmulateArgs, ProbeFormat};
use ldm_sniff::emulate::{self, ConfigFile, Emulator, Fault, Identity, ReplyTo, Responder};
use ldm_sniff::probe;

use super::{error, interface, note};

pub fn run(args: &EmulateArgs) -> ExitCode {
    let file = match args.config.as_deref().map(ConfigFile::load).transpose() {
        Ok(file) => file.unwrap_or_default(),
        Err(message) => return error(&message),
    };
    let iface = match args.bind {
        Some(_) => None,
        None => match interface(args.interface.as_deref()) {
            Ok(iface) => Some(iface),
            Err(code) => return code,
        },
    };
    let local = match (&iface, args.bind) {
        (Some(iface), _) => match probe::interface_address(iface) {
            Ok(addr) => addr,
            Err(e) => return error(&e.to_string()),
        },
        (None, Some(bind)) => bind,
        (None, None) => Ipv4Addr::UNSPECIFIED,
    };
    let responder = match responder(args, &file, local) {
        Ok(responder) => responder,
        Err(message) => return error(&message),
    };
    let candidates = match emulate::parse_macs(args.candidates.iter().map(String::as_str)) {
        Ok(macs) => macs,
        Err(message) => return error(&message),
    };
    let options = emulate::Options {
        iface: iface.clone(),
        bind: args.bind.unwrap_or(Ipv4Addr::UNSPECIFIED),
        port: args.port,
        // Bound to one address, not joined: answer whoever asked.
        reply_to: args.reply.or(file.reply).unwrap_or(if args.bind.is_some() {
            ReplyTo::Unicast
        } else {
            ReplyTo::Multicast
        }),
        rate: args.rate.max(1),
        duration: args.duration.map(Duration::from_secs_f64),
        json: args.format == ProbeFormat::Json,
        allocate: args.allocate,
        candidates,
    };
    let socket = match emulate::open_socket(&options, local) {
        Ok(socket) => socket,
        Err(e) => {
            let place = iface.unwrap_or_else(|| local.to_string());
            return error(&format!(
                "cannot listen on {place} port {}: {e}; check the interface is up with an IPv4 address",
                options.port
            ));
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    let id = &responder.identity;
    note(&format!(
        "emulating ldmd {} as {} ({}), {} MAC(s) owned{}; Ctrl-C stops",
        id.ldmd_version,
        id.hostname,
        id.ip,
        responder.owns.len(),
        if responder.faults.is_empty() { String::new() } else { format!(", faults {:?}", responder.faults) }
    ));
    let mut metrics = ldm_sniff::metrics::Metrics::new();
    let counters = ldm_sniff::metrics::EmulatorMetrics::register(metrics.registry());
    // Listening before the first request, so a scrape never misses one; a
    // bind failure is said at start.
    let _server = match args.metrics.map(|addr| ldm_sniff::metrics::Server::start(addr, metrics)).transpose() {
        Ok(server) => server,
        Err(message) => return error(&message),
    };
    let mut stdout = std::io::stdout();
    let mut emulator = Emulator::new(responder, options, socket, &mut stdout);
    emulator.metrics = args.metrics.map(|_| counters);
    if let Err(e) = emulator.run(&stop) {
        return error(&format!("emulator stopped: {e}"));
    }
    let report = &emulator.report;
    note(&format!(
        "{} request(s) answered with {} reply(ies), {} malformed dropped, {} over the rate limit, {} not sent to sources off every connected network, {} send(s) failed, {} log line(s) left out",
        report.requests,
        report.replies,
        report.malformed,
        report.rate_limited,
        report.off_link,
        report.send_errors,
        report.log_suppressed
    ));
    if report.allocations_failed > 0 {
        return ExitCode::from(super::EXIT_FINDINGS);
    }
    ExitCode::SUCCESS
}

fn responder(args: &EmulateArgs, file: &ConfigFile, local: Ipv4Addr) -> Result<Responder, String> {
    let hostname = args.hostname.clone().or(file.hostname.clone()).unwrap_or_else(this_hostname);
    let identity = Identity {
        hostname,
        ip: args.ip.or(file.ip).unwrap_or(local),
        ldmd_version: args.ldmd_version.clone().or(file.ldmd_version.clone()).unwrap_or_else(|| "3.6.1.0.11".into()),
        port_no: args.port_no.or(file.port_no).unwrap_or(ldm_sniff::wire::ldm::XMPP_PORT),
    };
    let owned = file.own.iter().chain(&args.own).map(String::as_str);
    let owns = emulate::parse_macs(owned)?.into_iter().collect();
    let mut faults: Vec<Fault> = file.faults.iter().map(|f| f.parse()).collect::<Result<_, _>>()?;
    faults.extend(args.faults.iter().copied());
    // Each fault once: a repeated duplicate doubled the replies each time
    // (2^30 of them for 30), a repeated delay added up.
    for (i, fault) in faults.iter().enumerate() {
        if faults[..i].iter().any(|earlier| std::mem::discriminant(earlier) == std::mem::discriminant(fault)) {
            return Err(format!(
                "the fault {fault} is given more than once (--fault and the config file together): give each fault once"
            ));
        }
    }
    Ok(Responder { identity, owns, faults })
}

fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "ldm-emulator".into())
}
