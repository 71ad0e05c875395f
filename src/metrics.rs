//! `--metrics ADDR:PORT`: Prometheus metrics of a live capture or of the
//! emulator, served on `/metrics` from a thread of its own, so the capture
//! loop never waits on a scrape. The loop only adds to atomic counters it
//! was handed at start (no label lookup per packet); encoding is
//! prometheus-client's, in the Prometheus text format or OpenMetrics as
//! the scraper asks (its Accept header).
//!
//! No label carries a MAC, an IP address or a hostname: a series per host
//! would grow without bound on a busy segment. Per-host detail is in `-z`
//! and the JSON output.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::analyze::{Annotation, Summary};
use crate::dissect::Dissection;
use crate::expert::{Key, CATALOGUE};
use crate::wire::ldm::MsgType;

/// Every metric's name starts so.
const PREFIX: &str = "ldm_sniff";

/// Response-time buckets of ldm exchanges, in seconds: ldmd waits 1 s.
const LDM_RTT_BUCKETS: [f64; 11] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// libvirt RPC latency buckets, in seconds: 0.25 ms to about 16 s.
fn libvirt_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.00025, 4.0, 9)
}

/// `--metrics`: where to listen. A bare port listens on loopback only.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse().map_err(|_| {
        format!("'{text}' is not ADDR:PORT or PORT (e.g. 127.0.0.1:9464, [::1]:9464, or 9464 for loopback)")
    })
}

/// The msg_type label values, in the order `packets` holds them.
const MSG_TYPES: [&str; 5] = ["SEND_MSG", "RESPONSE_MSG", "LDMD_DISC_SEND", "LDMD_DISC_RESP", "other"];

/// As the closing summary counts it: a bad magic number is "other" whatever its type says.
fn msg_type_index(msg: &crate::wire::ldm::Message<'_>) -> usize {
    match msg.msg_type {
        _ if msg.is_bad_magic() => 4,
        Some(MsgType::SendMsg) => 0,
        Some(MsgType::ResponseMsg) => 1,
        Some(MsgType::DiscSend) => 2,
        Some(MsgType::DiscResp) => 3,
        _ => 4,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MsgTypeLabel {
    msg_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    key: &'static str,
    severity: &'static str,
}

/// libvirt messages: program, type and status are names from libvirt's
/// own tables (an unknown number is "unknown"), so a few dozen series at most.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LibvirtLabels {
    program: &'static str,
    r#type: &'static str,
    status: &'static str,
}

/// What a live capture counts, handed to the capture loop.
#[derive(Clone)]
pub struct CaptureMetrics {
    frames: Counter,
    packets: [Counter; 5],
    /// By `Key as usize`.
    findings: Vec<Counter>,
    lookups: Counter,
    collisions: Counter,
    late_responses: Counter,
    duplicate_owners: Counter,
    allocation_failures: Counter,
    hosts: Gauge,
    macs: Gauge,
    evicted: Counter,
    kernel_received: Counter,
    kernel_dropped: Counter,
    lookup_rtt: Histogram,
    discovery_rtt: Histogram,
    libvirt_messages: Family<LibvirtLabels, Counter>,
    libvirt_rtt: Histogram,
}

impl CaptureMetrics {
    /// Registers every capture metric (each at 0, so a rule sees it before
    /// its first event).
    pub fn register(registry: &mut Registry) -> CaptureMetrics {
        let frames = Counter::default();
        registry.register("frames", "Frames read from the interface", frames.clone());

        let by_type = Family::<MsgTypeLabel, Counter>::default();
        registry.register(
            "packets",
            "ldm packets decoded, by msg_type (other: unknown type or bad magic)",
            by_type.clone(),
        );
        let packets = MSG_TYPES.map(|msg_type| by_type.get_or_create(&MsgTypeLabel { msg_type }).clone());

        let by_key = Family::<FindingLabels, Counter>::default();
        registry.register(
            "findings",
            "Findings, by anomaly key and severity (README, \"Anomaly keys\", says what each means and what to do)",
            by_key.clone(),
        );
        let findings = CATALOGUE
            .iter()
            .map(|info| by_key.get_or_create(&FindingLabels { key: info.key, severity: info.severity.name() }).clone())
            .collect();

        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let lookups = counter(registry, "lookups", "MAC lookups (SEND_MSG) seen");
        let collisions = counter(registry, "collisions", "Lookups answered by a host that has the MAC (ldm.collision)");
        let late_responses = counter(
            registry,
            "late_responses",
            "Answers after the requester's window: the MAC is really used twice (ldm.late_response)",
        );
        let duplicate_owners =
            counter(registry, "duplicate_owners", "MACs answered for by two hosts (ldm.duplicate_owner)");
        let allocation_failures = counter(
            registry,
            "allocation_failures",
            "Automatic MAC allocations that gave up after 30 s (ldm.allocation_failed)",
        );
        let hosts = Gauge::default();
        registry.register("hosts", "ldm hosts the analysis knows now", hosts.clone());
        let macs = Gauge::default();
        registry.register("macs", "MACs the analysis knows now", macs.clone());
        let evicted = counter(
            registry,
            "analysis_evicted",
            "Analysis table entries evicted by --max-entries (raise it if this grows)",
        );
        let kernel_received = counter(registry, "kernel_packets_received", "Packets the kernel's filter passed to us");
        let kernel_dropped = counter(
            registry,
            "kernel_packets_dropped",
            "Packets the kernel dropped because we did not read them in time",
        );
        let lookup_rtt = Histogram::new(LDM_RTT_BUCKETS);
        registry.register_with_unit(
            "lookup_response",
            "Time from a MAC lookup to each answer",
            Unit::Seconds,
            lookup_rtt.clone(),
        );
        let discovery_rtt = Histogram::new(LDM_RTT_BUCKETS);
        registry.register_with_unit(
            "discovery_response",
            "Time from a discovery request to each answer",
            Unit::Seconds,
            discovery_rtt.clone(),
        );
        let libvirt_messages = Family::<LibvirtLabels, Counter>::default();
        registry.register(
            "libvirt_messages",
            "libvirt RPC messages, by program, type and status",
            libvirt_messages.clone(),
        );
        let libvirt_rtt = Histogram::new(libvirt_buckets());
        registry.register_with_unit(
            "libvirt_rpc",
            "Time from a libvirt call to its reply",
            Unit::Seconds,
            libvirt_rtt.clone(),
        );
        CaptureMetrics {
            frames,
            packets,
            findings,
            lookups,
            collisions,
            late_responses,
            duplicate_owners,
            allocation_failures,
            hosts,
            macs,
            evicted,
            kernel_received,
            kernel_dropped,
            lookup_rtt,
            discovery_rtt,
            libvirt_messages,
            libvirt_rtt,
        }
    }

    /// Frames read so far.
    pub fn frames(&self, total: u64) {
        set(&self.frames, total);
    }

    /// After `summary` counted an ldm packet or libvirt message: its type,
    /// its findings (its own and the analysis's) and its response time.
    /// Counts are copied from the summary, not added to: the capture thread
    /// is the only writer, and a plain store costs less than an atomic add
    /// (the difference showed on a blast of a million packets).
    pub fn packet(&self, d: &Dissection<'_>, note: &Annotation, summary: &Summary) {
        if d.is_libvirt() {
            self.libvirt(d, note);
        } else if let Some(ldm) = d.ldm {
            let index = msg_type_index(&ldm);
            let by_type = [summary.send_msg, summary.response_msg, summary.disc_send, summary.disc_resp, summary.other];
            set(&self.packets[index], by_type[index]);
            match (ldm.msg_type.filter(|_| index < 4), note.rtt) {
                (Some(MsgType::SendMsg), _) => set(&self.lookups, summary.send_msg),
                (Some(MsgType::ResponseMsg), Some(rtt)) => self.lookup_rtt.observe(rtt),
                (Some(MsgType::DiscResp), Some(rtt)) => self.discovery_rtt.observe(rtt),
                _ => {}
            }
        } else if !d.is_undecoded_ldm() {
            return;
        }
        for finding in d.findings.iter().chain(&note.findings) {
            self.finding(finding.key, summary.count(finding.key).unwrap_or(0));
        }
    }

    fn libvirt(&self, d: &Dissection<'_>, note: &Annotation) {
        let Some(message) = &d.libvirt else { return };
        let header = &message.header;
        let labels = LibvirtLabels {
            program: header.program_name().unwrap_or("unknown"),
            r#type: header.msg_type.name(),
            status: header.status.name(),
        };
        self.libvirt_messages.get_or_create(&labels).inc();
        if let Some(rtt) = note.rtt {
            self.libvirt_rtt.observe(rtt);
        }
    }

    fn finding(&self, key: Key, total: u64) {
        if let Some(counter) = self.findings.get(key as usize) {
            set(counter, total);
        }
        let named = match key {
            Key::LdmCollision => &self.collisions,
            Key::LdmLateResponse => &self.late_responses,
            Key::LdmDuplicateOwner => &self.duplicate_owners,
            Key::LdmAllocationFailed => &self.allocation_failures,
            _ => return,
        };
        set(named, total);
    }

    /// The analysis's tables now: hosts and MACs known, entries evicted so far.
    pub fn tables(&self, hosts: usize, macs: usize, evicted: u64) {
        self.hosts.inner().store(hosts as i64, Ordering::Relaxed);
        self.macs.inner().store(macs as i64, Ordering::Relaxed);
        set(&self.evicted, evicted);
    }

    /// The kernel's running totals of packets passed and dropped.
    pub fn kernel(&self, received: u64, dropped: u64) {
        set(&self.kernel_received, received);
        set(&self.kernel_dropped, dropped);
    }
}

/// A counter set to a running total kept by its only writer.
fn set(counter: &Counter, total: u64) {
    counter.inner().store(total, Ordering::Relaxed);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    r#type: &'static str,
}

/// What the emulator counts.
#[derive(Clone)]
pub struct EmulatorMetrics {
    /// SEND_MSG, LDMD_DISC_SEND.
    requests: [Counter; 2],
    pub replies_sent: Counter,
    pub replies_rate_limited: Counter,
    pub malformed: Counter,
    pub allocations_started: Counter,
    pub allocations_succeeded: Counter,
    pub allocations_failed: Counter,
}

impl EmulatorMetrics {
    pub fn register(registry: &mut Registry) -> EmulatorMetrics {
        let by_type = Family::<RequestLabel, Counter>::default();
        registry.register(
            "emulator_requests",
            "Lookups and discovery requests the emulator received, by type, answered or not",
            by_type.clone(),
        );
        let requests =
            ["SEND_MSG", "LDMD_DISC_SEND"].map(|t| by_type.get_or_create(&RequestLabel { r#type: t }).clone());
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        EmulatorMetrics {
            requests,
            replies_sent: counter(registry, "emulator_replies_sent", "Replies the emulator sent"),
            replies_rate_limited: counter(
                registry,
                "emulator_replies_rate_limited",
                "Replies not sent: over --rate, or over one source's share",
            ),
            malformed: counter(registry, "emulator_malformed", "Malformed datagrams the emulator dropped"),
            allocations_started: counter(
                registry,
                "emulator_allocations_started",
                "Automatic MAC allocations started (--allocate)",
            ),
            allocations_succeeded: counter(
                registry,
                "emulator_allocations_succeeded",
                "Automatic MAC allocations that found a free MAC",
            ),
            allocations_failed: counter(
                registry,
                "emulator_allocations_failed",
                "Automatic MAC allocations that gave up after 30 s",
            ),
        }
    }

    /// Counts a request (a lookup or a discovery; replies and others are not).
    pub fn request(&self, msg_type: Option<MsgType>) {
        match msg_type {
            Some(MsgType::SendMsg) => {
                self.requests[0].inc();
            }
            Some(MsgType::DiscSend) => {
                self.requests[1].inc();
            }
            _ => {}
        }
    }
}

/// The process's own CPU time, memory and start, read from /proc/self at
/// each scrape (prometheus-client has no process collector).
struct ProcessMetrics {
    cpu_seconds: Counter<f64, AtomicU64>,
    resident_bytes: Gauge,
    start_time: Gauge,
}

impl ProcessMetrics {
    fn register(registry: &mut Registry) -> ProcessMetrics {
        let cpu_seconds = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "process_cpu",
            "User and system CPU time spent",
            Unit::Seconds,
            cpu_seconds.clone(),
        );
        let resident_bytes = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            resident_bytes.clone(),
        );
        let start_time = Gauge::default();
        registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            start_time.clone(),
        );
        ProcessMetrics { cpu_seconds, resident_bytes, start_time }
    }

    fn update(&self) {
        let Some(now) = process::read() else { return };
        let before = self.cpu_seconds.get();
        if now.cpu_seconds > before {
            self.cpu_seconds.inc_by(now.cpu_seconds - before);
        }
        self.resident_bytes.set(now.resident_bytes as i64);
        self.start_time.set(now.start_time as i64);
    }
}

mod process {
    /// What /proc/self says of us.
    pub struct Process {
        pub cpu_seconds: f64,
        pub resident_bytes: u64,
        pub start_time: u64,
    }

    pub fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        // SAFETY: sysconf has no preconditions.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        let (ticks, page) = (u64::try_from(ticks).ok().filter(|&t| t > 0)?, u64::try_from(page).ok()?);
        let cpu_ticks = field(14)? + field(15)?;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<u64>().ok()))?;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(Process {
            cpu_seconds: cpu_ticks as f64 / ticks as f64,
            resident_bytes: resident_pages * page,
            start_time: boot + field(22)? / ticks,
        })
    }
}

/// The registry every metric of a run goes in: `ldm_sniff_` ones, and the
/// process's own under their conventional `process_` names.
pub struct Metrics {
    registry: Registry,
    process: ProcessMetrics,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let process = ProcessMetrics::register(&mut registry);
        Metrics { registry, process }
    }

    /// Where `ldm_sniff_` metrics are registered.
    pub fn registry(&mut self) -> &mut Registry {
        self.registry.sub_registry_with_prefix(PREFIX)
    }

    /// The exposition, as the Accept header asks: OpenMetrics when it
    /// names it, the Prometheus text format otherwise. Returns the body
    /// and its content type.
    pub fn encode(&self, accept: &str) -> (String, &'static str) {
        self.process.update();
        let mut body = String::new();
        if accept.contains("application/openmetrics-text") {
            // Writing to a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut body, &self.registry);
            return (body, "application/openmetrics-text; version=1.0.0; charset=utf-8");
        }
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut body, &self.registry);
        (body, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The HTTP endpoint, serving until dropped.
pub struct Server {
    http: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Server {
    /// Listens on `addr` now (a failure is the caller's error at start) and
    /// serves `/metrics` from a thread of its own.
    pub fn start(addr: SocketAddr, metrics: Metrics) -> Result<Server, String> {
        let http = tiny_http::Server::http(addr)
            .map_err(|e| format!("--metrics: cannot listen on {addr}: {e}; choose another address or port"))?;
        let http = Arc::new(http);
        let addr = http.server_addr().to_ip().unwrap_or(addr);
        let serving = http.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    respond(request, &metrics);
                }
            })
            .map_err(|e| format!("--metrics: cannot start its thread: {e}"))?;
        Ok(Server { http, thread: Some(thread), addr })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn respond(request: tiny_http::Request, metrics: &Metrics) {
    let header = |name: &str, value: &str| {
        tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
    };
    let path = request.url().split('?').next().unwrap_or("");
    let response = match (request.method(), path) {
        (tiny_http::Method::Get, "/metrics") => {
            let accept = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Accept"))
                .map(|h| h.value.as_str().to_string())
                .unwrap_or_default();
            let (body, content_type) = metrics.encode(&accept);
            tiny_http::Response::from_string(body).with_header(header("Content-Type", content_type))
        }
        (tiny_http::Method::Get, "/") => tiny_http::Response::from_string("ldm-sniff: metrics are at /metrics\n")
            .with_header(header("Content-Type", "text/plain; charset=utf-8")),
        _ => tiny_http::Response::from_string("not found: metrics are at /metrics\n").with_status_code(404),
    };
    // A scraper that went away is not our error.
    let _ = request.respond(response);
}
