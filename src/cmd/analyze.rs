//! Packet analysis, the default command: `-r FILE` here, `-i IFACE` in
//! `live`. Both build the same pipeline configuration from the flags.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use ldm_sniff::analyze;
use ldm_sniff::capture::sink::{FileFormat, FileWriter, Ring, RingLimits, Sink};
use ldm_sniff::capture::{CaptureReader, Source};
use ldm_sniff::cli::{Args, FailOn, StatsRequest};
use ldm_sniff::dissect;
use ldm_sniff::expert::Severity;
use ldm_sniff::filter::Filter;
use ldm_sniff::output::iostat::IoStat;
use ldm_sniff::output::{self, Style};
use ldm_sniff::pipeline::{self, Config, Outcome, RunError, Statistic, WriteTo};
use ldm_sniff::report::{Ending, Recorder};

use super::{error, note, use_color, EXIT_ERROR, EXIT_FINDINGS};

/// `-r FILE`: reads the capture through the pipeline.
pub fn read(args: &Args, path: &str) -> ExitCode {
    let config = match config(args, false) {
        Ok(config) => config,
        Err(message) => return error(&message),
    };
    let report = match ReportFile::open(args) {
        Ok(report) => report,
        Err(message) => return error(&message),
    };
    let reader = match CaptureReader::open(path) {
        Ok(reader) => reader,
        Err(e) => return error(&e.to_string()),
    };
    match finish(reader, config) {
        Ok(outcome) => exit_status(outcome, args, report),
        Err(code) => code,
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

/// `-s`: the snap length frames are cut to (0 and none: the most).
pub fn snaplen(args: &Args) -> u32 {
    match args.snaplen {
        None | Some(0) => ldm_sniff::capture::writer::SNAPLEN,
        Some(n) => n,
    }
}

/// `-w`, `-F` and `-b`: the sink, or an error message.
fn open_write(args: &Args) -> Result<Option<WriteTo>, String> {
    let Some(file) = args.write_file.as_deref() else {
        return Ok(None);
    };
    let format = args.file_format;
    if args.annotate && format == FileFormat::Pcap {
        return Err(
            "--annotate writes pcapng packet comments, which pcap cannot hold: drop -F pcap or --annotate".into()
        );
    }
    let annotate = args.annotate;
    if !args.ring.is_empty() {
        return open_ring(args, file).map(|sink| Some(WriteTo { sink, annotate }));
    }
    let sink: Box<dyn Write> = match file {
        "-" => {
            if !args.stats.is_empty() || args.format != output::Format::Text {
                return Err("-w - puts the capture on standard output; -z and -T json/jsonl/ek would mix into it: write the capture to a file instead".into());
            }
            Box::new(io::stdout())
        }
        _ if args.read_file.as_deref().is_some_and(|input| ldm_sniff::capture::is_same_file(input, file)) => {
            return Err(format!(
                "{file} is the capture being read: writing it would destroy it before it is read; write to another file"
            ));
        }
        _ => match std::fs::File::create(file) {
            Ok(f) => Box::new(f),
            Err(e) => return Err(format!("{file}: cannot create: {e}; check the directory exists and is writable")),
        },
    };
    let sink = FileWriter::new(sink, format, snaplen(args)).map_err(|e| format!("{file}: cannot write: {e}"))?;
    Ok(Some(WriteTo { sink: Sink::File(sink), annotate }))
}

/// `-b`: a ring of files named after `file`.
fn open_ring(args: &Args, file: &str) -> Result<Sink, String> {
    if file == "-" {
        return Err("-b writes a ring of files named after -w FILE: give a file name, not -".into());
    }
    let mut limits = RingLimits::default();
    for option in &args.ring {
        limits.set(option)?;
    }
    if !limits.rotates() {
        return Err("-b needs a size or time at which to start the next file: add -b filesize:KB, duration:SECS, \
                    interval:SECS or packets:N"
            .into());
    }
    Ok(Sink::Ring(Ring::create(file, args.file_format, snaplen(args), limits)?))
}

/// What a capture is run with: the pipeline's configuration, and the file
/// the report goes to.
pub struct RunSetup {
    pub config: Config,
    pub report: Option<ReportFile>,
}

/// `--report FILE`: opened when the run starts, so that a page that cannot
/// be written is said at once (a live capture may run for weeks), and so
/// that it is still writable after a live capture drops its privileges.
pub struct ReportFile {
    path: String,
    file: std::fs::File,
}

impl ReportFile {
    pub fn open(args: &Args) -> Result<Option<ReportFile>, String> {
        let Some(path) = args.report.as_deref() else { return Ok(None) };
        if path == "-" {
            return Err("--report writes the page to a file, not to standard output: give a file name".into());
        }
        if args.read_file.as_deref().is_some_and(|input| ldm_sniff::capture::is_same_file(input, path)) {
            return Err(format!("--report {path} is the capture being read: give the page another name"));
        }
        match std::fs::File::create(path) {
            Ok(file) => Ok(Some(ReportFile { path: path.to_string(), file })),
            Err(e) => Err(format!("--report {path}: cannot write: {e}; check the directory exists and is writable")),
        }
    }

    fn write(mut self, page: &str) -> Result<(), String> {
        self.file
            .write_all(page.as_bytes())
            .map_err(|e| format!("--report {}: cannot write: {e}; check the free space", self.path))
    }
}

/// `-T fields`, `-e` and `-E`: the columns, checked.
fn columns(args: &Args) -> Result<output::columns::Columns, String> {
    let fields_format = args.format == output::Format::Fields;
    if !fields_format {
        if !args.fields.is_empty() || !args.field_options.is_empty() {
            return Err("-e and -E choose the columns of -T fields: add -T fields".into());
        }
        return Ok(output::columns::Columns::default());
    }
    if args.fields.is_empty() {
        return Err("-T fields needs at least one -e FIELD (ldm-sniff -G fields lists them)".into());
    }
    let mut columns = output::columns::Columns::default();
    for option in &args.field_options {
        columns.options.set(option)?;
    }
    for name in &args.fields {
        columns.fields.push((name.clone(), ldm_sniff::filter::field_names(name)?));
    }
    Ok(columns)
}

/// `-z`: the tables, and the io,stat counters with their filters compiled.
fn statistics(args: &Args) -> Result<Vec<Statistic>, String> {
    let mut stats = Vec::new();
    for request in &args.stats {
        stats.push(match request {
            StatsRequest::Table(kind) => Statistic::Table(*kind),
            StatsRequest::IoStat(spec) => Statistic::IoStat(Box::new(IoStat::new(spec.clone(), args.time_format)?)),
        });
    }
    Ok(stats)
}

pub fn config(args: &Args, live: bool) -> Result<Config, String> {
    let filter = match args.display_filter.as_deref().map(Filter::compile).transpose() {
        Ok(filter) => filter,
        Err(e) => return Err(e.render(args.display_filter.as_deref().unwrap_or(""))),
    };
    let write = open_write(args)?;
    let columns = columns(args)?;
    let stats = statistics(args)?;
    let io_stat_filters = stats.iter().any(|s| matches!(s, Statistic::IoStat(stat) if stat.filters()));
    // Holding a request until its window closes lists its responses
    // (`ldm.response_in`), which only -V and JSON show, and a filter may
    // test; a plain line does not, and holding it would cost more than
    // writing it.
    // `-T fields` writes each line as it comes, as a plain line does: its
    // ldm.response_in column stays empty.
    let lines = matches!(args.format, output::Format::Text | output::Format::Fields);
    let hold = !live && (args.verbose || !lines || filter.as_ref().is_some_and(Filter::tests_responses));
    // A capture on standard output leaves no room for packet lines.
    let quiet = args.quiet || args.write_file.as_deref() == Some("-");
    // Live on a terminal: show each packet as it comes.
    let line_buffered = args.line_buffered || (live && io::stdout().is_terminal());
    // Traffic that is neither ldm nor libvirt is skimmed unless it is to be
    // shown (--all) or matched by -Y for -w. Live, the kernel's filter has
    // already kept it out, so skimming would only cost.
    // A -z io,stat column's filter tests every frame as well.
    let skim_other = !(live || args.all || (write.is_some() && filter.is_some()) || io_stat_filters);
    Ok(Config {
        dissect: dissect::Options {
            port: args.port,
            heuristic: args.heuristic,
            checksum_all: args.all,
            libvirt_port: args.libvirt_port,
            libvirt_tls_port: args.libvirt_tls_port,
            skim_other,
            ..dissect::Options::default()
        },
        output: output::Options {
            format: args.format,
            verbose: args.verbose,
            hex: args.hex,
            style: Style { color: use_color(args.color) && args.format == output::Format::Text },
            line_buffered,
            time_format: args.time_format,
        },
        count: args.count,
        all: args.all,
        quiet,
        analysis: analyze::Options {
            window: args.window,
            storm_lookups: args.storm.0,
            storm_secs: args.storm.1,
            startup_max_lookups: args.startup_max,
            max_entries: args.max_entries,
            ..analyze::Options::default()
        },
        stats,
        filter,
        write,
        hold,
        columns,
        metrics: None,
        report: args.report.as_ref().map(|_| Recorder::new(args.window, args.display_filter.clone())),
    })
}

/// Runs the pipeline over `source`; maps the outcome to an exit status.
pub fn finish<S: Source>(source: S, config: Config) -> Result<Outcome, ExitCode> {
    let out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match pipeline::run(source, out, config) {
        Ok(outcome) => Ok(outcome),
        // `ldm-sniff ... | head`: the reader went away; that is not an error.
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Err(ExitCode::SUCCESS),
        Err(e) => Err(error(&e.to_string())),
    }
}

pub fn exit_status(outcome: Outcome, args: &Args, report_file: Option<ReportFile>) -> ExitCode {
    if !args.quiet {
        note(&outcome.summary.to_string());
    }
    let _ = io::stderr().flush();
    let (status, reason) = status(&outcome, args);
    if let (Some(report), Some(file)) = (&outcome.report, report_file) {
        let source = args.read_file.clone().or_else(|| args.interface.clone()).unwrap_or_default();
        let ending =
            Ending { source, from_file: args.read_file.is_some(), exit_status: status, exit_reason: reason.clone() };
        let page = report.render(&ending);
        if let Err(message) = file.write(&page) {
            return error(&message);
        }
    }
    if let Some(e) = outcome.capture_error {
        return error(&e.to_string());
    }
    ExitCode::from(status)
}

/// The exit status of a run and why, in words for the report.
fn status(outcome: &Outcome, args: &Args) -> (u8, String) {
    if let Some(e) = &outcome.capture_error {
        return (EXIT_ERROR, format!("the capture could not be read to its end ({e}); everything before was analysed"));
    }
    match (fail_threshold(args.fail_on), outcome.summary.worst) {
        (None, _) => (0, "--fail-on never: findings do not change the exit status".to_string()),
        (Some(threshold), Some(worst)) if worst >= threshold => {
            (EXIT_FINDINGS, format!("findings at or above --fail-on {threshold} (the worst is {worst})"))
        }
        (Some(threshold), _) => (0, format!("no finding at or above --fail-on {threshold}")),
    }
}
