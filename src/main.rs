//! The binary: parse flags, build the pipeline, map the result to an exit status.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use ldm_sniff::analyze;
use ldm_sniff::capture::CaptureReader;
use ldm_sniff::cli::{Args, Color, FailOn};
use ldm_sniff::dissect;
use ldm_sniff::expert::Severity;
use ldm_sniff::filter::Filter;
use ldm_sniff::output::{self, Style};
use ldm_sniff::pipeline::{self, Config, RunError};

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

fn usage_error(message: &str) -> ExitCode {
    eprintln!("ldm-sniff: {message}");
    ExitCode::from(EXIT_ERROR)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(iface) = &args.interface {
        return usage_error(&format!(
            "live capture (-i {iface}) is not in this version yet; capture with \
             `tcpdump -i {iface} -w ldm.pcap udp port 64535` and read it with `ldm-sniff -r ldm.pcap`"
        ));
    }
    let Some(path) = args.read_file.as_deref() else {
        return usage_error(
            "nothing to read: give a capture file with -r FILE (or -r - for standard input); see --help",
        );
    };
    let filter = match args.display_filter.as_deref().map(Filter::compile).transpose() {
        Ok(filter) => filter,
        Err(e) => return usage_error(&e.render(args.display_filter.as_deref().unwrap_or(""))),
    };
    let write = match args.write_file.as_deref() {
        None => None,
        Some("-") => Some((Box::new(io::stdout()) as Box<dyn Write>, args.annotate)),
        Some(file) => match std::fs::File::create(file) {
            Ok(f) => Some((Box::new(f) as Box<dyn Write>, args.annotate)),
            Err(e) => {
                return usage_error(&format!("{file}: cannot create: {e}; check the directory exists and is writable"))
            }
        },
    };
    if args.write_file.as_deref() == Some("-") && (!args.stats.is_empty() || args.format != output::Format::Text) {
        return usage_error("-w - puts the capture on standard output; -z and -T json/jsonl/ek would mix into it: write the capture to a file instead");
    }
    // A capture on standard output leaves no room for packet lines.
    let quiet = args.quiet || args.write_file.as_deref() == Some("-");
    let reader = match CaptureReader::open(path) {
        Ok(reader) => reader,
        Err(e) => return usage_error(&e.to_string()),
    };
    let config = Config {
        dissect: dissect::Options { port: args.port, heuristic: args.heuristic },
        output: output::Options {
            format: args.format,
            verbose: args.verbose,
            hex: args.hex,
            style: Style { color: use_color(args.color) && args.format == output::Format::Text },
            line_buffered: args.line_buffered,
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
    };
    let stdout = io::stdout().lock();
    let out = io::BufWriter::with_capacity(1 << 16, stdout);
    let outcome = match pipeline::run(reader, out, config) {
        Ok(outcome) => outcome,
        // `ldm-sniff ... | head`: the reader went away; that is not an error.
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
        Err(e) => return usage_error(&e.to_string()),
    };
    if !args.quiet {
        eprintln!("ldm-sniff: {}", outcome.summary);
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
