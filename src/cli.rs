//! Command-line flags (clap). Names follow tshark and tcpdump where they exist.

use clap::{Parser, ValueEnum};

use crate::analyze::StatsKind;
use crate::output::Format;

fn parse_autostop(text: &str) -> Result<f64, String> {
    match text.strip_prefix("duration:") {
        Some(secs) => parse_window(secs),
        None => Err(format!("'{text}' is not duration:SECS (for a number of packets use -c)")),
    }
}

/// `-c`: a positive count (tshark and tcpdump refuse 0 too).
fn parse_count(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{text}' is not a packet count: give 1 or more")),
    }
}

/// A UDP or TCP port: 1-65535 (0 is no port on the wire).
fn port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("'{text}' is not a port: give 1-65535")),
        Ok(port) => Ok(port),
    }
}

/// `--max-entries`: at least 16 (one burst's worth), at most 16M.
fn parse_max_entries(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (16..=1 << 24).contains(&n) => Ok(n),
        _ => Err(format!("'{text}' is not an entry count: give 16-16777216")),
    }
}

/// One `-z`: a table of the analysis, or frames and bytes per interval.
#[derive(Debug, Clone, PartialEq)]
pub enum StatsRequest {
    Table(StatsKind),
    IoStat(crate::output::iostat::IoStatSpec),
}

fn parse_stats(text: &str) -> Result<StatsRequest, String> {
    if text.starts_with("io,stat") {
        return crate::output::iostat::IoStatSpec::parse(text).map(StatsRequest::IoStat);
    }
    StatsKind::parse(text).map(StatsRequest::Table).map_err(|e| format!("{e}, or io,stat,INTERVAL[,FILTER...]"))
}

/// The longest time any flag takes: a year. Past it, a deadline overflows
/// the clock (1e30 seconds panicked).
pub const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;

fn parse_window(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= MAX_SECS => Ok(secs),
        Ok(secs) if secs > MAX_SECS => Err(format!("'{text}' seconds is more than a year ({MAX_SECS} s): give less")),
        _ => Err(format!("'{text}' is not a positive number of seconds")),
    }
}

/// `N/SECS`, e.g. `20/1`: N lookups within SECS seconds.
fn parse_storm(text: &str) -> Result<(u32, f64), String> {
    let usage = || format!("'{text}' is not N/SECS (for example 20/1: 20 lookups within 1 s)");
    let (n, secs) = text.split_once('/').ok_or_else(usage)?;
    let n: u32 = n.parse().map_err(|_| usage())?;
    let secs = parse_window(secs).map_err(|_| usage())?;
    if n < 2 {
        return Err(usage());
    }
    Ok((n, secs))
}

/// `-G`: what to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Glossary {
    /// Every field: F, description, name, type, layer (tab-separated).
    Fields,
    /// Every layer: description, name (tab-separated).
    Protocols,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warn,
    Note,
    /// Never exit 1 for findings.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Parser)]
#[command(
    name = "ldm-sniff",
    version,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    about = "Decode and validate Oracle VM Server for SPARC (ldmd) discovery and MAC-lookup traffic, and libvirt RPC",
    long_about = "Decode and validate Oracle VM Server for SPARC (Logical Domains Manager, ldmd) \
multicast traffic: discovery and MAC collision lookups on UDP 239.129.9.27:64535; and libvirt \
RPC (libvirtd, TCP 16509; TLS records on 16514).\n\n\
Reads pcap, pcapng and snoop captures written by tcpdump, Wireshark, dumpcap or Solaris snoop, \
or captures live (-i). Every packet is decoded and checked; deviations are reported as anomaly \
keys such as ldm.bad_magic.\n\n\
Exit status: 0 clean, 1 a finding at or above --fail-on, 2 usage or I/O error.",
    after_help = "Examples:\n  ldm-sniff -r capture.pcapng\n  ldm-sniff -r capture.pcap -V\n  \
tcpdump -i any -w - udp port 64535 | ldm-sniff -r -\n  ldm-sniff -r capture.pcapng -T jsonl > packets.jsonl"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Print the version (tshark's -v; -V is the packet tree).
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,

    /// Read packets from a pcap or pcapng file ("-" for standard input).
    #[arg(short = 'r', long = "read-file", value_name = "FILE")]
    pub read_file: Option<String>,

    /// Capture live from an interface ("any" for all); needs CAP_NET_RAW (root).
    #[arg(short = 'i', long = "interface", value_name = "IFACE", conflicts_with = "read_file")]
    pub interface: Option<String>,

    /// List the interfaces live capture can use, with their IPv4 addresses.
    #[arg(short = 'D', long = "list-interfaces")]
    pub list_interfaces: bool,

    /// Stop live capture after SECS seconds: duration:SECS (as tshark's -a).
    #[arg(short = 'a', value_name = "duration:SECS", value_parser = parse_autostop)]
    pub autostop: Option<f64>,

    /// After opening the capture, run as USER (as tcpdump -Z). Default: the user who ran sudo, if
    /// sudo started us; "root" keeps root.
    #[arg(short = 'Z', value_name = "USER")]
    pub run_as: Option<String>,

    /// Live capture: serve Prometheus metrics on http://ADDR:PORT/metrics (a bare PORT listens on
    /// loopback only), e.g. --metrics 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR:PORT", requires = "interface", conflicts_with = "read_file",
          value_parser = crate::metrics::parse_listen)]
    pub metrics: Option<std::net::SocketAddr>,

    /// Capture filter in tcpdump's syntax, compiled into the kernel by libpcap, in place of the
    /// default ldm filter (needs the build with --features libpcap).
    #[arg(short = 'f', value_name = "CAPTURE_FILTER", requires = "interface")]
    pub capture_filter: Option<String>,

    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,

    /// Do not join 239.129.9.27 on the interface (by default a named interface
    /// joins, so switches with IGMP snooping forward the group to us).
    #[arg(long)]
    pub no_join: bool,

    /// Stop after COUNT ldm (and libvirt) packets.
    #[arg(short = 'c', value_name = "COUNT", value_parser = parse_count)]
    pub count: Option<u64>,

    /// Print a tree of every layer and field per packet.
    #[arg(short = 'V')]
    pub verbose: bool,

    /// Print a hex and ASCII dump of each frame.
    #[arg(short = 'x')]
    pub hex: bool,

    /// Output format.
    #[arg(short = 'T', value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,

    /// With -T fields: a field to write (repeatable), as tshark's -e.
    #[arg(short = 'e', value_name = "FIELD")]
    pub fields: Vec<String>,

    /// With -T fields: header=y|n, separator=/t|/s|C, quote=d|s|n, occurrence=f|l|a, aggregator=/t|/s|C (repeatable),
    /// as tshark's -E.
    #[arg(short = 'E', value_name = "OPTION")]
    pub field_options: Vec<String>,

    /// Print the field registry (fields) or the layers (protocols), as tshark -G, and exit.
    #[arg(short = 'G', value_enum, value_name = "REPORT")]
    pub glossary: Option<Glossary>,

    /// The time column of packet lines, as tshark's -t: r relative (default), a/ad/adoy local time
    /// (of day, with date, with day of year), u/ud/udoy the same in UTC, e epoch, d since the
    /// previous frame, dd since the previous packet shown.
    #[arg(short = 't', value_enum, default_value_t = crate::output::time::TimeFormat::Relative, value_name = "FORMAT", hide_possible_values = true)]
    pub time_format: crate::output::time::TimeFormat,

    /// Quiet: no packet output and no closing summary (the exit status still counts findings;
    /// live capture still reports the kernel's received/dropped counts).
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Disable name resolution (accepted for tshark habits: ldm-sniff never resolves names).
    #[arg(short = 'n')]
    pub numeric: bool,

    /// Flush output after every packet.
    #[arg(short = 'l')]
    pub line_buffered: bool,

    /// Also show frames that are not ldm, one brief line each.
    #[arg(long)]
    pub all: bool,

    /// UDP port that carries ldm traffic.
    #[arg(long, default_value_t = crate::wire::ldm::PORT, value_name = "PORT", value_parser = port)]
    pub port: u16,

    /// Also recognise ldm messages by their magic number on any UDP port.
    #[arg(long)]
    pub heuristic: bool,

    /// TCP port that carries libvirt RPC (libvirtd's plain listener).
    #[arg(long, default_value_t = crate::wire::libvirt::PORT, value_name = "PORT", value_parser = port)]
    pub libvirt_port: u16,

    /// TCP port that carries libvirt RPC over TLS (shown as TLS records).
    #[arg(long, default_value_t = crate::wire::libvirt::TLS_PORT, value_name = "PORT", value_parser = port)]
    pub libvirt_tls_port: u16,

    /// Exit 1 when a finding of this severity or worse was seen.
    #[arg(long, value_enum, default_value_t = FailOn::Error, value_name = "SEVERITY")]
    pub fail_on: FailOn,

    /// Write the frames read (with -Y, those that match) to a pcapng file ("-" for standard output).
    #[arg(short = 'w', value_name = "FILE")]
    pub write_file: Option<String>,

    /// With -w: the file format, pcapng (default) or pcap (one link type, no comments), as tshark's -F.
    #[arg(short = 'F', value_enum, default_value_t = crate::capture::sink::FileFormat::Pcapng, value_name = "FORMAT",
          requires = "write_file")]
    pub file_format: crate::capture::sink::FileFormat,

    /// With -w FILE: a ring of files, as dumpcap's -b: filesize:KB, duration:SECS, interval:SECS,
    /// packets:N start the next file; files:N keeps the newest N (repeatable). Files are named
    /// FILE's stem, _NNNNN_YYYYMMDDhhmmss, FILE's extension.
    #[arg(short = 'b', value_name = "KEY:VALUE", requires = "write_file")]
    pub ring: Vec<String>,

    /// Live capture: keep at most SNAPLEN bytes of each frame (0: 262144, the most), as tshark's -s.
    // conflicts_with as well: clap lets a `requires` go unmet when the required
    // argument conflicts with one given (-i with -r).
    #[arg(short = 's', value_name = "SNAPLEN", requires = "interface", conflicts_with = "read_file",
          value_parser = clap::value_parser!(u32).range(0..=262_144))]
    pub snaplen: Option<u32>,

    /// With -w: add each packet's findings and request/response links as pcapng packet comments
    /// (Wireshark shows them as frame.comment).
    #[arg(long, requires = "write_file")]
    pub annotate: bool,

    /// Write an HTML report of the run to FILE when it ends: the verdict, a timeline, the flow graph,
    /// response times and the inventory; one self-contained page that needs no network to open.
    #[arg(long, value_name = "FILE")]
    pub report: Option<String>,

    /// Display filter: show only packets matching it, e.g. 'ldm.msg_type == SEND_MSG and ip.src == 10.1.0.0/16'
    /// or 'expert == "ldm.late_response"' (Wireshark syntax; fields in the README).
    #[arg(short = 'Y', value_name = "FILTER")]
    pub display_filter: Option<String>,

    /// Statistics after the packets: ldm,summary | ldm,hosts | ldm,macs | ldm,rtt | libvirt,procs |
    /// libvirt,conversations | io,stat,INTERVAL[,FILTER...] (frames and bytes per interval, a column per
    /// display filter, as tshark's) (repeatable; with -q, only them).
    #[arg(short = 'z', value_name = "STATS", value_parser = parse_stats)]
    pub stats: Vec<StatsRequest>,

    /// Response window in seconds: how long a requester waits (ldmd waits 1 s).
    #[arg(long, default_value_t = 1.0, value_name = "SECS", value_parser = parse_window)]
    pub window: f64,

    /// Lookups from one host within SECS that make a burst (start-up check or storm).
    #[arg(long, default_value = "20/1", value_name = "N/SECS", value_parser = parse_storm)]
    pub storm: (u32, f64),

    /// The most MACs one host's start-up check looks up: a burst of more is a storm. Oracle allows
    /// up to 256 domains per system; 1,024 is four MACs each.
    #[arg(long, default_value_t = crate::analyze::STARTUP_MAX_LOOKUPS, value_name = "MACS",
          value_parser = clap::value_parser!(u32).range(1..=262_144))]
    pub startup_max: u32,

    /// Cap of the analysis's MAC tables (host tables get a quarter); past it the oldest entries are evicted and counted.
    #[arg(long, default_value_t = 8_192, value_name = "N", value_parser = parse_max_entries)]
    pub max_entries: usize,

    /// Colour the output.
    #[arg(long, value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    pub color: Color,

    /// Words after the flags, as tcpdump takes its filter: refused with a
    /// hint (-Y or -f), never silently ignored.
    #[arg(hide = true, value_name = "EXPRESSION")]
    pub trailing: Vec<String>,
}

/// Active probes: they send on the segment, as ldmd does.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Which ldmd hosts answer on this segment? Sends LDMD_DISC_SEND and lists the responders.
    /// Exit 0 when some answered, 1 when none did, 2 on errors.
    Discover(DiscoverArgs),
    /// Is this MAC in use? Looks it up as ldmd does (SEND_MSG, wait for RESPONSE_MSG).
    /// Exit 0 free, 1 in use, 2 on errors.
    CheckMac(CheckMacArgs),
    /// A reference ldmd: answers discovery, and lookups of the MACs it owns; logs each exchange.
    /// Can inject faults, and run ldmd's automatic MAC allocation (--allocate).
    Emulate(EmulateArgs),
    /// Replay a capture's requests against a target ldmd and diff its replies with the recorded ones.
    /// Exit 0 on a match, 1 on any difference, 2 on errors.
    Conform(ConformArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell), from these same flags.
    /// Install: ldm-sniff completions bash > /etc/bash_completion.d/ldm-sniff
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    /// Read: ldm-sniff man | man -l -
    Man(ManArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The page to print: a command (discover, check-mac, emulate, conform, ...); default ldm-sniff's own.
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub page: Option<String>,

    /// Write every page into DIR instead (ldm-sniff.1, ldm-sniff-emulate.1, ...), e.g.
    /// /usr/local/share/man/man1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Interface to send and listen on (default: the interface of the default route).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Multicast TTL (ldmd's default is 1: this subnet only).
    #[arg(long, default_value_t = 1, value_name = "HOPS", value_parser = clap::value_parser!(u32).range(1..=255))]
    pub ttl: u32,

    /// Output: a table, or JSON.
    #[arg(short = 'T', value_enum, default_value_t = ProbeFormat::Text, value_name = "FORMAT")]
    pub format: ProbeFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,

    /// Seconds to listen for responses.
    #[arg(long, default_value_t = 2.0, value_name = "SECS", value_parser = parse_window)]
    pub timeout: f64,
}

#[derive(Debug, clap::Args)]
pub struct CheckMacArgs {
    /// The MAC to look up, e.g. 00:14:4f:fc:00:01.
    #[arg(value_parser = parse_mac_arg)]
    pub mac: [u8; 6],

    #[command(flatten)]
    pub probe: ProbeArgs,

    /// Seconds to wait for an answer to each lookup (ldmd waits 1).
    #[arg(long, default_value_t = 1.0, value_name = "SECS", value_parser = parse_window)]
    pub window: f64,

    /// Lookups to repeat when nobody answered (a lost datagram is not a free MAC).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,
}

#[derive(Debug, clap::Args)]
pub struct EmulateArgs {
    /// Interface to join 239.129.9.27 on (default: the interface of the default route).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Bind this local address only and do not join the group (unicast and loopback tests).
    #[arg(long, value_name = "ADDR", conflicts_with = "interface")]
    pub bind: Option<std::net::Ipv4Addr>,

    /// Hostname to advertise [default: this host's name, or the config file's].
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// IP address to advertise [default: the interface's, or --bind, or the config file's].
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<std::net::Ipv4Addr>,

    /// ldmd version string to advertise [default: 3.6.1.0.11, or the config file's].
    #[arg(long = "ldmd-version", value_name = "TEXT")]
    pub ldmd_version: Option<String>,

    /// XMPP port to advertise [default: 6482, or the config file's].
    #[arg(long = "port-no", value_name = "PORT")]
    pub port_no: Option<i32>,

    /// MACs this ldmd has assigned (answered in lookups); repeatable or comma-separated.
    #[arg(long, value_name = "MAC[,MAC...]")]
    pub own: Vec<String>,

    /// TOML file with hostname, ip, ldmd_version, port_no, own, faults, reply; flags win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,

    /// Fault to inject, repeatable: delay:MS, drop, duplicate, little-endian, bad-version,
    /// bad-magic, truncate, wrong-port.
    #[arg(long = "fault", value_name = "KIND", value_parser = parse_fault)]
    pub faults: Vec<crate::emulate::Fault>,

    /// Where replies go.
    #[arg(long, value_enum, value_name = "HOW")]
    pub reply: Option<crate::emulate::ReplyTo>,

    /// Replies per second at most.
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,

    /// Stop after SECS seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS", value_parser = parse_window)]
    pub duration: Option<f64>,

    /// Act as a requester too: run ldmd's automatic MAC allocation N times.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub allocate: u32,

    /// MACs for --allocate to try first, in order, before random ones.
    #[arg(long, value_name = "MAC[,MAC...]")]
    pub candidates: Vec<String>,

    /// Serve Prometheus metrics on http://ADDR:PORT/metrics (a bare PORT listens on loopback only).
    #[arg(long, value_name = "ADDR:PORT", value_parser = crate::metrics::parse_listen)]
    pub metrics: Option<std::net::SocketAddr>,

    /// Log format.
    #[arg(short = 'T', value_enum, default_value_t = ProbeFormat::Text, value_name = "FORMAT")]
    pub format: ProbeFormat,

    /// UDP port (ldmd's is 64535).
    #[arg(long, default_value_t = crate::wire::ldm::PORT, value_name = "PORT", value_parser = port)]
    pub port: u16,
}

fn parse_fault(text: &str) -> Result<crate::emulate::Fault, String> {
    text.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pace {
    /// The recorded gaps between requests.
    Recorded,
    /// Each request once the previous one has its recorded replies or its window closed.
    Fast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConformFormat {
    /// The transcript diff (or "match").
    Text,
    /// The transcripts and the verdict as JSON.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ConformArgs {
    /// The recorded capture (pcap or pcapng) whose requests are replayed.
    #[arg(value_name = "CAPTURE")]
    pub capture: String,

    /// Where to send: the group (239.129.9.27, the default) or a unicast IP, with :PORT optionally.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub target: Option<String>,

    /// Interface to send from and listen on (default: the interface of the default route).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Multicast TTL.
    #[arg(long, default_value_t = 1, value_name = "HOPS", value_parser = clap::value_parser!(u32).range(1..=255))]
    pub ttl: u32,

    /// Request spacing.
    #[arg(long, value_enum, default_value_t = Pace::Recorded)]
    pub pace: Pace,

    /// Seconds a reply may take; later ones count as late.
    #[arg(long, default_value_t = 1.0, value_name = "SECS", value_parser = parse_window)]
    pub window: f64,

    /// Also blank these reply fields before comparing (repeatable): source_ip, ip_address,
    /// hostname, ldmd_version, port_no.
    #[arg(long, value_name = "FIELD")]
    pub redact: Vec<String>,

    /// Compare these fields although they are redacted by default (source_ip, ip_address, hostname).
    #[arg(long, value_name = "FIELD")]
    pub keep: Vec<String>,

    /// Compare with this stored transcript instead of the capture's recorded replies.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<String>,

    /// Write the transcript to --snapshot instead of comparing.
    #[arg(long, requires = "snapshot")]
    pub update: bool,

    /// Write a JUnit XML report, one test case per request.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<String>,

    /// Output format.
    #[arg(short = 'T', value_enum, default_value_t = ConformFormat::Text, value_name = "FORMAT")]
    pub format: ConformFormat,

    /// Allow a unicast target that is not on a directly connected network.
    #[arg(long)]
    pub allow_remote: bool,

    /// Re-inject the recorded Ethernet frames on -i as they are (original source
    /// addresses), instead of sending the requests as UDP from this host.
    #[arg(long, conflicts_with = "target")]
    pub raw: bool,

    /// Colour the diff: auto (on a terminal), always, never.
    #[arg(long, value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    pub color: Color,

    /// What to replay: ldm requests, libvirt connections, or auto (ldm if the
    /// capture has ldm requests, else libvirt).
    #[arg(long, value_enum, default_value_t = ConformProtocol::Auto)]
    pub protocol: ConformProtocol,

    /// libvirt: TCP port of libvirtd in the capture.
    #[arg(long, default_value_t = crate::wire::libvirt::PORT, value_name = "PORT", value_parser = port)]
    pub libvirt_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConformProtocol {
    Auto,
    Ldm,
    Libvirt,
}

fn parse_mac_arg(text: &str) -> Result<[u8; 6], String> {
    crate::expert::parse_mac(text).ok_or_else(|| format!("'{text}' is not a MAC address like 00:14:4f:fc:00:01"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        super::Args::command().debug_assert();
    }
}
