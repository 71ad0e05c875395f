//! The binary: parse flags, build the pipeline, map the result to an exit status.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

mod cmd;

use ldm_sniff::analyze;
use ldm_sniff::capture::live::{self, KernelStats, LiveCapture, LiveOptions};
use ldm_sniff::capture::{CaptureReader, Source};
use ldm_sniff::cli::{Args, CheckMacArgs, Color, Command, DiscoverArgs, FailOn, ProbeArgs, ProbeFormat};
use ldm_sniff::dissect;
use ldm_sniff::expert::Severity;
use ldm_sniff::filter::Filter;
use ldm_sniff::output::{self, Style};
use ldm_sniff::pipeline::{self, Config, Outcome, RunError, WriteTo};
use ldm_sniff::probe::{self, Probe};

const EXIT_FINDINGS: u8 = 1;
const EXIT_ERROR: u8 = 2;

fn use_color(choice: Color) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

fn fail_threshold(fail_on: FailOn) -> Option<Severity> {
    match fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warn => Some(Severity::Warn),
        FailOn::Note => Some(Severity::Note),
        FailOn::Never => None,
    }
}

/// An error for the user: what is wrong and what to do, exit 2. Control
/// characters quoted from their input are shown escaped.
fn usage_error(message: &str) -> ExitCode {
    note(message);
    ExitCode::from(EXIT_ERROR)
}

/// A line for the user on stderr. Control characters (from a file name, an
/// interface, a hostname) are shown escaped so they cannot drive the terminal.
fn note(message: &str) {
    eprintln!("ldm-sniff: {}", output::escape_controls(message));
}

/// `-w`: the sink, or an error message.
fn open_write(args: &Args) -> Result<Option<WriteTo>, String> {
    match args.write_file.as_deref() {
        None => Ok(None),
        Some("-") => {
            if !args.stats.is_empty() || args.format != output::Format::Text {
                return Err("-w - puts the capture on standard output; -z and -T json/jsonl/ek would mix into it: write the capture to a file instead".into());
            }
            Ok(Some(WriteTo { sink: Box::new(io::stdout()), annotate: args.annotate }))
        }
        Some(file) if args.read_file.as_deref().is_some_and(|input| ldm_sniff::capture::is_same_file(input, file)) => {
            Err(format!(
            "{file} is the capture being read: writing it would destroy it before it is read; write to another file"
        ))
        }
        Some(file) => match std::fs::File::create(file) {
            Ok(f) => Ok(Some(WriteTo { sink: Box::new(f), annotate: args.annotate })),
            Err(e) => Err(format!("{file}: cannot create: {e}; check the directory exists and is writable")),
        },
    }
}

fn config(args: &Args, live: bool) -> Result<Config, String> {
    let filter = match args.display_filter.as_deref().map(Filter::compile).transpose() {
        Ok(filter) => filter,
        Err(e) => return Err(e.render(args.display_filter.as_deref().unwrap_or(""))),
    };
    let write = open_write(args)?;
    // Holding a request until its window closes lists its responses
    // (`ldm.response_in`), which only -V and JSON show, and a filter may
    // test; a plain line does not, and holding it would cost more than
    // writing it.
    let hold = !live
        && (args.verbose
            || args.format != output::Format::Text
            || filter.as_ref().is_some_and(Filter::tests_responses));
    // A capture on standard output leaves no room for packet lines.
    let quiet = args.quiet || args.write_file.as_deref() == Some("-");
    // Live on a terminal: show each packet as it comes.
    let line_buffered = args.line_buffered || (live && io::stdout().is_terminal());
    // Traffic that is neither ldm nor libvirt is skimmed unless it is to be
    // shown (--all) or matched by -Y for -w. Live, the kernel's filter has
    // already kept it out, so skimming would only cost.
    let skim_other = !(live || args.all || (write.is_some() && filter.is_some()));
    Ok(Config {
        dissect: dissect::Options {
            port: args.port,
            heuristic: args.heuristic,
            checksum_all: args.all,
            libvirt_port: args.libvirt_port,
            libvirt_tls_port: args.libvirt_tls_port,
            skim_other,
        },
        output: output::Options {
            format: args.format,
            verbose: args.verbose,
            hex: args.hex,
            style: Style { color: use_color(args.color) && args.format == output::Format::Text },
            line_buffered,
        },
        count: args.count,
        all: args.all,
        quiet,
        analysis: analyze::Options {
            window: args.window,
            storm_lookups: args.storm.0,
            storm_secs: args.storm.1,
            max_entries: args.max_entries,
            ..analyze::Options::default()
        },
        stats: args.stats.clone(),
        filter,
        write,
        hold,
    })
}

fn list_interfaces() -> ExitCode {
    match live::list_interfaces() {
        Ok(interfaces) => {
            for (i, (name, addresses)) in interfaces.iter().enumerate() {
                let shown = if addresses.is_empty() { String::new() } else { format!(" ({})", addresses.join(", ")) };
                println!("{}. {name}{shown}", i + 1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&format!("cannot list interfaces: {e}")),
    }
}

/// Runs the pipeline over `source`; maps the outcome to an exit status.
fn finish<S: Source>(source: S, config: Config) -> Result<Outcome, ExitCode> {
    let out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match pipeline::run(source, out, config) {
        Ok(outcome) => Ok(outcome),
        // `ldm-sniff ... | head`: the reader went away; that is not an error.
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Err(ExitCode::SUCCESS),
        Err(e) => Err(usage_error(&e.to_string())),
    }
}

fn exit_status(outcome: Outcome, args: &Args) -> ExitCode {
    if !args.quiet {
        note(&outcome.summary.to_string());
    }
    let _ = io::stderr().flush();
    if let Some(e) = outcome.capture_error {
        return usage_error(&e.to_string());
    }
    match (fail_threshold(args.fail_on), outcome.summary.worst) {
        (Some(threshold), Some(worst)) if worst >= threshold => ExitCode::from(EXIT_FINDINGS),
        _ => ExitCode::SUCCESS,
    }
}

fn capture_live(args: &Args, iface: &str) -> ExitCode {
    let config = match config(args, true) {
        Ok(config) => config,
        Err(message) => return usage_error(&message),
    };
    // Ctrl-C and SIGTERM end the capture cleanly: everything is flushed.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            return usage_error(&format!("cannot handle signals: {e}"));
        }
    }
    let options = LiveOptions {
        interface: iface.to_string(),
        promiscuous: !args.no_promisc,
        join: !args.no_join,
        ports: live::FilterPorts { ldm: args.port, libvirt: args.libvirt_port, libvirt_tls: args.libvirt_tls_port },
        deadline: args.autostop.map(|secs| Instant::now() + Duration::from_secs_f64(secs)),
    };
    let drop_to = match live::identity_to_drop_to(args.run_as.as_deref()) {
        Ok(identity) => identity,
        Err(message) => return usage_error(&message),
    };
    if let Some(filter) = args.capture_filter.as_deref() {
        return capture_with_libpcap(args, iface, filter, options, stop, drop_to, config);
    }
    let capture = match LiveCapture::open(&options, stop) {
        Ok(capture) => capture,
        Err(e) => return usage_error(&e.to_string()),
    };
    // The socket, ring, filter, membership and -w file are open: nothing
    // from here on needs privileges.
    if let Err(message) = ldm_sniff::privilege::drop_all() {
        return usage_error(&message);
    }
    if let Some(identity) = drop_to {
        if let Err(message) = live::drop_privileges(identity) {
            return usage_error(&message);
        }
    }
    if !args.quiet {
        note(&format!("capturing on {iface} (UDP port {}); Ctrl-C stops", args.port));
    }
    run_live(capture, config, args, LiveCapture::kernel_stats)
}

/// Runs the pipeline over a live source, then reports the kernel's counts:
/// printed even with -q, as tcpdump does, since drops are what a capture's
/// operator must know.
fn run_live<S: Source>(
    mut source: S,
    config: Config,
    args: &Args,
    kernel: impl FnOnce(&mut S) -> KernelStats,
) -> ExitCode {
    let outcome = match finish(&mut source, config) {
        Ok(outcome) => outcome,
        Err(code) => return code,
    };
    let stats = kernel(&mut source);
    note(&format!("kernel: {} packets passed the filter, {} dropped", stats.received, stats.dropped));
    exit_status(outcome, args)
}

fn open_probe(args: &ProbeArgs) -> Result<Probe, ExitCode> {
    let iface = match args.interface.clone().map_or_else(probe::default_interface, Ok) {
        Ok(iface) => iface,
        Err(e) => return Err(usage_error(&e.to_string())),
    };
    Probe::open(&iface, args.ttl).map_err(|e| usage_error(&e.to_string()))
}

fn discover(args: &DiscoverArgs) -> ExitCode {
    let probe = match open_probe(&args.probe) {
        Ok(probe) => probe,
        Err(code) => return code,
    };
    let found = match probe::discover(&probe, Duration::from_secs_f64(args.timeout)) {
        Ok(found) => found,
        Err(e) => return usage_error(&e.to_string()),
    };
    let responders = &found.responders;
    if args.probe.format == ProbeFormat::Json {
        println!("{}", serde_json::to_string_pretty(&responders).unwrap_or_default());
    } else {
        let mut rows = vec![["hostname", "ip_address", "port", "ldmd_version", "rtt_ms", "from", "anomalies"]
            .map(String::from)
            .to_vec()];
        for r in responders {
            rows.push(vec![
                r.hostname.clone(),
                r.ip_address.map_or("-".into(), |ip| ip.to_string()),
                r.port.map_or("-".into(), |p| p.to_string()),
                r.ldmd_version.clone(),
                format!("{:.1}", r.rtt_ms),
                r.from.to_string(),
                if r.anomalies.is_empty() { "-".into() } else { r.anomalies.join(" ") },
            ]);
        }
        let _ = output::table::write_aligned(&mut io::stdout().lock(), &rows);
    }
    note(&format!("{} ldmd host(s) answered on {} within {} s", responders.len(), probe.iface, args.timeout));
    if found.repeated > 0 {
        note(&format!("{} further response(s) from hosts already listed (each is listed once)", found.repeated));
    }
    if found.not_kept > 0 {
        note(&format!(
            "{} more sender(s) past {} not listed: a flood, probably from spoofed addresses",
            found.not_kept,
            probe::MAX_RESPONDERS
        ));
    }
    if responders.is_empty() {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

fn check_mac(args: &CheckMacArgs) -> ExitCode {
    let probe = match open_probe(&args.probe) {
        Ok(probe) => probe,
        Err(code) => return code,
    };
    let check = match probe::check_mac(&probe, args.mac, Duration::from_secs_f64(args.window), args.retries) {
        Ok(check) => check,
        Err(e) => return usage_error(&e.to_string()),
    };
    if check.automatic_range {
        note(&format!(
            "note: {} is in the automatic range (00:14:4f:f8:00:00-00:14:4f:fb:ff:ff), which ldmd hands out itself; manual MACs belong in 00:14:4f:fc:00:00-00:14:4f:ff:ff:ff",
            check.mac
        ));
    }
    if args.probe.format == ProbeFormat::Json {
        println!("{}", serde_json::to_string_pretty(&check).unwrap_or_default());
    } else if check.in_use {
        let owners: Vec<String> = check.owners.iter().map(|o| format!("{} ({:.1} ms)", o.ip, o.rtt_ms)).collect();
        println!("{}: IN USE, answered by {}", check.mac, owners.join(", "));
    } else {
        println!("{}: free (no answer to {} lookup(s) of {} s each)", check.mac, check.lookups, args.window);
    }
    if check.in_use {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
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
    config: Config,
) -> ExitCode {
    use ldm_sniff::capture::libpcap::PcapCapture;
    let capture = match PcapCapture::open(iface, filter, options.promiscuous, options.deadline, stop) {
        Ok(capture) => capture,
        Err(e) => return usage_error(&e.to_string()),
    };
    // Joined for the capture's lifetime, as with the default capture.
    let _membership = match live::if_index(iface) {
        Ok(index) if options.join && index != 0 => live::join_group(iface, index).ok(),
        _ => None,
    };
    if let Err(message) = ldm_sniff::privilege::drop_all() {
        return usage_error(&message);
    }
    if let Some(identity) = drop_to {
        if let Err(message) = live::drop_privileges(identity) {
            return usage_error(&message);
        }
    }
    if !args.quiet {
        note(&format!("capturing on {iface} with libpcap, filter '{filter}'; Ctrl-C stops"));
    }
    run_live(capture, config, args, PcapCapture::kernel_stats)
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
    _: Config,
) -> ExitCode {
    usage_error(
        "-f capture filters need the libpcap build: install libpcap-dev, then `cargo install --path . --features libpcap` \
         (without -f, ldm-sniff already filters ldm traffic in the kernel)",
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Of any capabilities the binary lends (file capabilities), keep only
    // what this command needs: a packet socket for live capture and for
    // conform --raw, until it is open; nothing for the others.
    let packet_socket = match &args.command {
        None => args.interface.is_some(),
        Some(Command::Conform(conform_args)) => conform_args.raw,
        Some(_) => false,
    };
    let kept = if packet_socket {
        ldm_sniff::privilege::keep_only(&[ldm_sniff::privilege::PACKET_SOCKET])
    } else {
        ldm_sniff::privilege::drop_all()
    };
    if let Err(message) = kept {
        return usage_error(&message);
    }
    match &args.command {
        Some(Command::Discover(discover_args)) => return discover(discover_args),
        Some(Command::CheckMac(check_args)) => return check_mac(check_args),
        Some(Command::Emulate(emulate_args)) => return cmd::emulate::run(emulate_args),
        Some(Command::Conform(conform_args)) => return cmd::conform::run(conform_args),
        None => {}
    }
    if args.list_interfaces {
        return list_interfaces();
    }
    if let Some(iface) = args.interface.as_deref() {
        return capture_live(&args, iface);
    }
    let Some(path) = args.read_file.as_deref() else {
        return usage_error("nothing to read: give a capture file with -r FILE (- for standard input) or an interface with -i IFACE; see --help");
    };
    if args.autostop.is_some() {
        return usage_error(
            "-a duration:SECS stops a live capture (-i); with -r, use -c to stop after a number of packets",
        );
    }
    let config = match config(&args, false) {
        Ok(config) => config,
        Err(message) => return usage_error(&message),
    };
    let reader = match CaptureReader::open(path) {
        Ok(reader) => reader,
        Err(e) => return usage_error(&e.to_string()),
    };
    match finish(reader, config) {
        Ok(outcome) => exit_status(outcome, &args),
        Err(code) => code,
    }
}
