//! `-i IFACE` (live capture, through our ring or libpcap with `-f`) and
//! `-D` (the interfaces).

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldm_sniff::capture::live::{self, KernelStats, LiveCapture, LiveOptions};
use ldm_sniff::capture::Source;
use ldm_sniff::cli::Args;
use ldm_sniff::metrics::{CaptureMetrics, Metrics, Server};

use super::analyze::{config, exit_status, finish, ReportFile, RunSetup};
use super::{error, note};

pub fn list_interfaces() -> ExitCode {
    match live::list_interfaces() {
        Ok(interfaces) => {
            for (i, (name, addresses)) in interfaces.iter().enumerate() {
                let shown = if addresses.is_empty() { String::new() } else { format!(" ({})", addresses.join(", ")) };
                println!("{}. {name}{shown}", i + 1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => error(&format!("cannot list interfaces: {e}")),
    }
}

pub fn capture_live(args: &Args, iface: &str) -> ExitCode {
    let mut config = match config(args, true) {
        Ok(config) => config,
        Err(message) => return error(&message),
    };
    // Opened now: written after the privileges are dropped.
    let report = match ReportFile::open(args) {
        Ok(report) => report,
        Err(message) => return error(&message),
    };
    // --metrics listens before the capture starts: a port in use is said now.
    let mut metrics = Metrics::new();
    let counters = CaptureMetrics::register(metrics.registry());
    let _server = match args.metrics.map(|addr| Server::start(addr, metrics)).transpose() {
        Ok(server) => server,
        Err(message) => return error(&message),
    };
    if args.metrics.is_some() {
        config.metrics = Some(counters.clone());
    }
    // Ctrl-C and SIGTERM end the capture cleanly: everything is flushed.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            return error(&format!("cannot handle signals: {e}"));
        }
    }
    let options = LiveOptions {
        interface: iface.to_string(),
        promiscuous: !args.no_promisc,
        join: !args.no_join,
        ports: live::FilterPorts { ldm: args.port, libvirt: args.libvirt_port, libvirt_tls: args.libvirt_tls_port },
        deadline: args.autostop.map(|secs| Instant::now() + Duration::from_secs_f64(secs)),
        snaplen: super::analyze::snaplen(args),
    };
    let drop_to = match live::identity_to_drop_to(args.run_as.as_deref()) {
        Ok(identity) => identity,
        Err(message) => return error(&message),
    };
    if let Some(filter) = args.capture_filter.as_deref() {
        return capture_with_libpcap(args, iface, filter, options, stop, drop_to, RunSetup { config, report });
    }
    let mut capture = match LiveCapture::open(&options, stop) {
        Ok(capture) => capture,
        Err(e) => return error(&e.to_string()),
    };
    if args.metrics.is_some() {
        capture.report_kernel_stats(Box::new(move |stats| counters.kernel(stats.received, stats.dropped)));
    }
    // The socket, ring, filter, membership and -w file are open: nothing
    // from here on needs privileges.
    if let Err(message) = drop_privileges(drop_to) {
        return error(&message);
    }
    if !args.quiet {
        note(&format!(
            "capturing on {iface} (ldm on UDP port {}, libvirt on TCP ports {} and {}); Ctrl-C stops",
            args.port, args.libvirt_port, args.libvirt_tls_port
        ));
    }
    run_live(capture, RunSetup { config, report }, args, LiveCapture::kernel_stats)
}

/// Once the capture is open: every capability dropped, and the identity
/// `-Z` (or sudo) named taken on.
fn drop_privileges(drop_to: Option<live::Identity>) -> Result<(), String> {
    ldm_sniff::privilege::drop_all()?;
    match drop_to {
        Some(identity) => live::drop_privileges(identity),
        None => Ok(()),
    }
}

/// Runs the pipeline over a live source, then reports the kernel's counts:
/// printed even with -q, as tcpdump does, since drops are what a capture's
/// operator must know.
fn run_live<S: Source>(
    mut source: S,
    run: RunSetup,
    args: &Args,
    kernel: impl FnOnce(&mut S) -> KernelStats,
) -> ExitCode {
    let outcome = match finish(&mut source, run.config) {
        Ok(outcome) => outcome,
        Err(code) => return code,
    };
    let stats = kernel(&mut source);
    note(&format!("kernel: {} packets passed the filter, {} dropped", stats.received, stats.dropped));
    exit_status(outcome, args, run.report)
}

/// `-f`: live capture through libpcap with the user's capture filter.
#[cfg(feature = "libpcap")]
fn capture_with_libpcap(
    args: &Args,
    iface: &str,
    filter: &str,
    options: LiveOptions,
    stop: Arc<AtomicBool>,
    drop_to: Option<live::Identity>,
    run: RunSetup,
) -> ExitCode {
    use ldm_sniff::capture::libpcap::PcapCapture;
    let mut capture = match PcapCapture::open(iface, filter, &options, stop) {
        Ok(capture) => capture,
        Err(e) => return error(&e.to_string()),
    };
    if let Some(counters) = run.config.metrics.clone() {
        capture.report_kernel_stats(Box::new(move |stats| counters.kernel(stats.received, stats.dropped)));
    }
    // Joined for the capture's lifetime, as with the default capture.
    let _membership = match live::if_index(iface) {
        Ok(index) if options.join && index != 0 => live::join_group(iface, index).ok(),
        _ => None,
    };
    if let Err(message) = drop_privileges(drop_to) {
        return error(&message);
    }
    if !args.quiet {
        note(&format!("capturing on {iface} with libpcap, filter '{filter}'; Ctrl-C stops"));
    }
    run_live(capture, run, args, PcapCapture::kernel_stats)
}

/// Without the libpcap build, -f says how to get it.
#[cfg(not(feature = "libpcap"))]
fn capture_with_libpcap(
    _: &Args,
    _: &str,
    _: &str,
    _: LiveOptions,
    _: Arc<AtomicBool>,
    _: Option<live::Identity>,
    _: RunSetup,
) -> ExitCode {
    error(
        "-f capture filters need the libpcap build: install libpcap-dev, then `cargo install --path . --features libpcap` \
         (without -f, ldm-sniff already filters ldm traffic in the kernel)",
    )
}
