//! The binary: parse the flags, keep only the privileges the command needs,
//! and hand over to the command (`cmd/`).

use std::process::ExitCode;

use clap::Parser;

mod cmd;

use cmd::error;
use ldm_sniff::cli::{Args, Command};

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
        return error(&message);
    }
    match &args.command {
        Some(Command::Discover(discover_args)) => cmd::probe::discover(discover_args),
        Some(Command::CheckMac(check_args)) => cmd::probe::check_mac(check_args),
        Some(Command::Emulate(emulate_args)) => cmd::emulate::run(emulate_args),
        Some(Command::Conform(conform_args)) => cmd::conform::run(conform_args),
        Some(Command::Completions(completions_args)) => cmd::docs::completions(completions_args),
        Some(Command::Man(man_args)) => cmd::docs::man(man_args),
        None => analyze(&args),
    }
}

/// The default command: packets from an interface or a file.
fn analyze(args: &Args) -> ExitCode {
    if let Some(report) = args.glossary {
        return glossary(report);
    }
    if let Some(message) = misplaced_filter(args) {
        return error(&message);
    }
    if args.list_interfaces {
        return cmd::live::list_interfaces();
    }
    if let Some(iface) = args.interface.as_deref() {
        return cmd::live::capture_live(args, iface);
    }
    let Some(path) = args.read_file.as_deref() else {
        return error("nothing to read: give a capture file with -r FILE (- for standard input) or an interface with -i IFACE; see --help");
    };
    if args.autostop.is_some() {
        return error("-a duration:SECS stops a live capture (-i); with -r, use -c to stop after a number of packets");
    }
    cmd::analyze::read(args, path)
}

/// Filters given the way tcpdump takes them, or `-f` on a file: said, with
/// what to use instead, rather than ignored.
fn misplaced_filter(args: &Args) -> Option<String> {
    if !args.trailing.is_empty() {
        let words = args.trailing.join(" ");
        return Some(format!(
            "'{words}': ldm-sniff takes no expression after its flags. For a display filter (Wireshark syntax) \
             use -Y, e.g. -Y 'udp.port == 64535'; for a capture filter (tcpdump syntax, live capture) use -f, \
             e.g. -f 'udp port 64535'. Commands are discover, check-mac, emulate and conform"
        ));
    }
    if args.capture_filter.is_some() && args.interface.is_none() {
        return Some(
            "-f is a capture filter, applied by the kernel while capturing live (-i); a file is already captured: \
             filter it with -Y (Wireshark syntax), e.g. -Y 'udp.port == 64535'"
                .into(),
        );
    }
    None
}

/// `-G fields` and `-G protocols`, tab-separated as tshark prints them.
fn glossary(report: ldm_sniff::cli::Glossary) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match report {
        ldm_sniff::cli::Glossary::Fields => ldm_sniff::filter::registry()
            .iter()
            .try_for_each(|f| writeln!(out, "F\t{}\t{}\t{}\t{}", f.about, f.name, f.kind, f.layer)),
        ldm_sniff::cli::Glossary::Protocols => {
            ldm_sniff::filter::PROTOCOLS.iter().try_for_each(|(name, about)| writeln!(out, "{about}\t{name}"))
        }
    };
    match written.and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // `ldm-sniff -G fields | head`: the reader went away.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => error(&format!("cannot write: {e}")),
    }
}
