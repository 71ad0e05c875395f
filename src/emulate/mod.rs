//! `ldm-sniff emulate`: a reference ldmd on the wire. It answers discovery and
//! lookups of the MACs it owns (see `responder`), logs every exchange, and can
//! run ldmd's automatic MAC allocation as a requester, so two emulators make
//! real collision traffic.

pub mod responder;

use std::collections::{HashSet, VecDeque};
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket};

use crate::expert::{parse_mac, MacAddr};
use crate::wire::ldm::{self, Message, MsgType, Repr};
pub use responder::{Action, Fault, Identity, Responder};

/// Where replies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyTo {
    /// To the group, as the lookup protocol describes.
    Multicast,
    /// Back to the requester's address and port.
    Unicast,
}

/// The `--config` file (TOML); flags given on the command line win.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub hostname: Option<String>,
    pub ip: Option<Ipv4Addr>,
    pub ldmd_version: Option<String>,
    pub port_no: Option<i32>,
    #[serde(default)]
    pub own: Vec<String>,
    #[serde(default)]
    pub faults: Vec<String>,
    pub reply: Option<ReplyTo>,
}

impl ConfigFile {
    pub fn load(path: &str) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: cannot read: {e}"))?;
        toml::from_str(&text).map_err(|e| format!("{path}: {e}"))
    }
}

/// MACs from `--own` or the config file.
pub fn parse_macs<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Vec<[u8; 6]>, String> {
    texts
        .into_iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.trim().is_empty())
        .map(|t| parse_mac(t.trim()).ok_or_else(|| format!("'{t}' is not a MAC address (like 00:14:4f:fc:00:01)")))
        .collect()
}

/// How the emulator runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Join the group on this interface; None: `bind` only (unicast tests).
    pub iface: Option<String>,
    /// The local address to bind; default 0.0.0.0 with an interface.
    pub bind: Ipv4Addr,
    pub port: u16,
    pub reply_to: ReplyTo,
    /// Replies per second at most (a flood of requests cannot make us one).
    pub rate: u32,
    pub duration: Option<Duration>,
    pub json: bool,
    /// Automatic MAC allocations to run as a requester.
    pub allocate: u32,
    /// Candidate MACs to try in order before random ones (reproducible tests).
    pub candidates: Vec<[u8; 6]>,
}

/// ldmd's allocation timing, from the Oracle guide.
const LOOKUP_WAIT: Duration = Duration::from_secs(1);
const ALLOCATION_LIMIT: Duration = Duration::from_secs(30);

/// What a run did, for the exit status.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: u64,
    pub replies: u64,
    pub malformed: u64,
    /// Replies not sent: over `--rate`, or over one source's share.
    pub rate_limited: u64,
    /// Unicast replies not sent to a source off every connected network
    /// (a spoofed source would make us reflect traffic at it).
    pub off_link: u64,
    pub send_errors: u64,
    /// Log lines left out by the per-kind limit.
    pub log_suppressed: u64,
    pub allocated: Vec<[u8; 6]>,
    pub allocations_failed: u32,
}

/// Listens on `options.bind`, joined to the group on `identity_ip`'s
/// interface unless bound to one address only.
pub fn open_socket(options: &Options, identity_ip: Ipv4Addr) -> io::Result<Socket> {
    let join_on = options.iface.is_some().then_some(identity_ip);
    crate::probe::group_socket(options.bind, options.port, join_on, 1)
}

/// A reply waiting for its delay.
struct Pending {
    due: Instant,
    bytes: Vec<u8>,
    to: SocketAddrV4,
}

/// One automatic allocation in progress.
struct Allocation {
    started: Instant,
    candidate: [u8; 6],
    asked: Instant,
    tries: u32,
}

pub struct Emulator<'a> {
    pub responder: Responder,
    options: Options,
    socket: Socket,
    log: &'a mut dyn Write,
    pending: VecDeque<Pending>,
    /// The `--rate` replies a second, for all sources together.
    replies: Bucket,
    candidates: VecDeque<[u8; 6]>,
    tried: HashSet<[u8; 6]>,
    /// One log limit per kind of event.
    logs: [LogLimit; LogKind::COUNT],
    /// The networks this host is connected to: unicast replies go there only.
    connected: Vec<(u32, u32)>,
    /// Unicast replies per source, a bucket each (the most recent sources).
    per_source: lru::LruCache<Ipv4Addr, Bucket>,
    pub report: Report,
    /// `--metrics`: the same counts as `report`, for a scraper.
    pub metrics: Option<crate::metrics::EmulatorMetrics>,
}

/// Kinds of log line, each limited on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogKind {
    Malformed,
    Ignored,
    Replied,
    NotReplied,
    SendFailed,
}

impl LogKind {
    const COUNT: usize = 5;

    fn name(self) -> &'static str {
        match self {
            LogKind::Malformed => "malformed datagram",
            LogKind::Ignored => "ignored request",
            LogKind::Replied => "reply",
            LogKind::NotReplied => "request not answered",
            LogKind::SendFailed => "send failure",
        }
    }
}

/// A token bucket: `rate` a second, as many at most.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(rate: f64) -> Bucket {
        Bucket { tokens: rate, refilled: Instant::now() }
    }

    /// Takes up to `want` tokens; returns how many it got.
    fn take(&mut self, want: usize, rate: f64) -> usize {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(rate);
        self.refilled = now;
        let got = (self.tokens.floor() as usize).min(want);
        self.tokens -= got as f64;
        got
    }
}

/// Unicast replies one source may get a second: a requester asks for one
/// MAC at a time, a second apart.
const PER_SOURCE_RATE: f64 = 10.0;
/// Sources whose share is tracked.
const SOURCES_TRACKED: usize = 4096;

/// The IPv4 networks of this host's interfaces, as (address, mask).
fn connected_networks() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: a node of the list getifaddrs made.
        let ifa = unsafe { &*entry };
        let v4 = |sa: *mut libc::sockaddr| -> Option<u32> {
            // SAFETY: checked not null and AF_INET before reading as sockaddr_in.
            unsafe {
                (!sa.is_null() && i32::from((*sa).sa_family) == libc::AF_INET)
                    .then(|| u32::from_be((*sa.cast::<libc::sockaddr_in>()).sin_addr.s_addr))
            }
        };
        if let (Some(addr), Some(mask)) = (v4(ifa.ifa_addr), v4(ifa.ifa_netmask)) {
            out.push((addr, mask));
        }
        entry = ifa.ifa_next;
    }
    // SAFETY: the list getifaddrs returned, freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// At most `MAX_PER_SECOND` log lines a second for one kind of event, so a
/// flood (of junk, or of valid requests) cannot turn into a flood of output;
/// what was left out is counted in the next line of its kind that is
/// written, and in the closing summary.
struct LogLimit {
    second: Option<Instant>,
    written: u32,
    suppressed: u64,
}

impl LogLimit {
    const MAX_PER_SECOND: u32 = 20;

    fn new() -> LogLimit {
        LogLimit { second: None, written: 0, suppressed: 0 }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        if self.second.is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1)) {
            self.second = Some(now);
            self.written = 0;
        }
        if self.written >= Self::MAX_PER_SECOND {
            self.suppressed += 1;
            return false;
        }
        self.written += 1;
        true
    }

    /// Lines left out since the last call.
    fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

impl<'a> Emulator<'a> {
    pub fn new(responder: Responder, options: Options, socket: Socket, log: &'a mut dyn Write) -> Emulator<'a> {
        let candidates = options.candidates.iter().copied().collect();
        Emulator {
            responder,
            replies: Bucket::full(f64::from(options.rate)),
            options,
            socket,
            log,
            pending: VecDeque::new(),
            candidates,
            tried: HashSet::new(),
            logs: std::array::from_fn(|_| LogLimit::new()),
            connected: connected_networks(),
            per_source: lru::LruCache::new(std::num::NonZeroUsize::new(SOURCES_TRACKED).expect("not zero")),
            report: Report::default(),
            metrics: None,
        }
    }

    /// Serves until `stop` is set or the duration passes; runs the requested
    /// allocations meanwhile.
    pub fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let started = Instant::now();
        let mut buf = vec![MaybeUninit::new(0u8); 65536];
        let mut allocation: Option<Allocation> = None;
        let mut allocations_left = self.options.allocate;
        loop {
            if stop.load(Ordering::Relaxed) || self.options.duration.is_some_and(|d| started.elapsed() >= d) {
                break;
            }
            if allocation.is_none() && allocations_left > 0 {
                allocations_left -= 1;
                allocation = Some(self.start_allocation()?);
            }
            if let Some(current) = &allocation {
                if self.allocation_settled(current)? {
                    allocation = None;
                    continue;
                }
            }
            self.send_due()?;
            let _ = self.socket.set_read_timeout(Some(Duration::from_millis(20)));
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let data = crate::probe::received(&buf, n);
                    let Some(SocketAddr::V4(from)) = from.as_socket() else { continue };
                    if let Some(current) = &mut allocation {
                        self.note_collision(current, &data, *from.ip())?;
                    }
                    self.serve(&data, from)?;
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Replies already decided on still go out.
        while let Some(p) = self.pending.pop_front() {
            self.send_to(&p.bytes, p.to)?;
        }
        for kind in [LogKind::Malformed, LogKind::Ignored, LogKind::Replied, LogKind::NotReplied, LogKind::SendFailed] {
            let left_out = self.logs[kind as usize].take_suppressed();
            if left_out > 0 {
                self.log_line(&format!("{left_out} more {} log lines not written (rate limit)", kind.name()), &[])?;
            }
        }
        self.log.flush()
    }

    fn serve(&mut self, data: &[u8], from: SocketAddrV4) -> io::Result<()> {
        // Our own multicast comes back to us (replies, allocation lookups).
        if *from.ip() == self.responder.identity.ip && self.is_own(data) {
            return Ok(());
        }
        let action = self.responder.handle(data);
        match action {
            Action::Malformed { reason } => {
                self.report.malformed += 1;
                if let Some(m) = &self.metrics {
                    m.malformed.inc();
                }
                self.log_event(LogKind::Malformed, from, "malformed", &reason, 0)
            }
            Action::Ignore { request, reason } => {
                // A lookup of a MAC not ours is a request all the same (not answered, as ldmd does).
                if let Some(m) = &self.metrics {
                    m.request(Message::parse(data).msg_type);
                }
                self.log_event(LogKind::Ignored, from, &request, reason, 0)
            }
            Action::Reply { request, replies, delay } => {
                self.report.requests += 1;
                if let Some(m) = &self.metrics {
                    m.request(Message::parse(data).msg_type);
                }
                if replies.is_empty() {
                    return self.log_event(LogKind::NotReplied, from, &request, "reply dropped (fault)", 0);
                }
                let to = match self.options.reply_to {
                    ReplyTo::Multicast => SocketAddrV4::new(ldm::GROUP, self.options.port),
                    ReplyTo::Unicast => from,
                };
                let unicast = self.options.reply_to == ReplyTo::Unicast;
                if unicast && !self.is_connected(*from.ip()) {
                    self.report.off_link += replies.len() as u64;
                    let why = "source on no connected network: no unicast reply (it could be spoofed)";
                    return self.log_event(LogKind::NotReplied, from, &request, why, 0);
                }
                // Every reply takes a token (a duplicating fault makes two).
                let mut allowed = self.take_tokens(replies.len());
                if unicast {
                    let share = self.per_source.get_or_insert_mut(*from.ip(), || Bucket::full(PER_SOURCE_RATE));
                    allowed = share.take(allowed, PER_SOURCE_RATE);
                }
                self.report.rate_limited += (replies.len() - allowed) as u64;
                if let Some(m) = &self.metrics {
                    m.replies_rate_limited.inc_by((replies.len() - allowed) as u64);
                    m.replies_sent.inc_by(allowed as u64);
                }
                if allowed == 0 {
                    return self.log_event(LogKind::NotReplied, from, &request, "rate limit reached: no reply", 0);
                }
                for bytes in replies.into_iter().take(allowed) {
                    self.pending.push_back(Pending { due: Instant::now() + delay, bytes, to });
                }
                self.report.replies += allowed as u64;
                let what = if delay.is_zero() {
                    format!("replied to {to}")
                } else {
                    format!("replying to {to} after {} ms", delay.as_millis())
                };
                self.send_due()?;
                self.log_event(LogKind::Replied, from, &request, &what, allowed)
            }
        }
    }

    /// Whether `ip` lies on one of this host's networks (loopback included).
    fn is_connected(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.connected.iter().any(|(addr, mask)| ip & mask == addr & mask)
    }

    /// Takes up to `want` tokens of the `rate` replies a second; returns
    /// how many it got.
    fn take_tokens(&mut self, want: usize) -> usize {
        self.replies.take(want, f64::from(self.options.rate))
    }

    fn send_due(&mut self) -> io::Result<()> {
        let now = Instant::now();
        // Delays are equal for every reply, so the queue is in due order.
        while self.pending.front().is_some_and(|p| p.due <= now) {
            let p = self.pending.pop_front().expect("front exists");
            self.send_to(&p.bytes, p.to)?;
        }
        Ok(())
    }

    /// Sends, logging a failure rather than stopping: one unreachable
    /// requester must not take the responder down for everyone else.
    fn send_to(&mut self, bytes: &[u8], to: SocketAddrV4) -> io::Result<()> {
        match self.socket.send_to(bytes, &SockAddr::from(SocketAddr::V4(to))) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.report.send_errors += 1;
                let text = format!("cannot send to {to}: {e}");
                if self.allow_log(LogKind::SendFailed).is_some() {
                    self.log_line(&text, &[])?;
                }
                Ok(())
            }
        }
    }

    fn is_own(&self, data: &[u8]) -> bool {
        let msg = Message::parse(data);
        match msg.msg_type {
            Some(MsgType::ResponseMsg | MsgType::DiscResp) => true,
            Some(MsgType::SendMsg) => msg.mac().is_some_and(|mac| self.tried.contains(&mac)),
            _ => false,
        }
    }

    fn next_candidate(&mut self) -> [u8; 6] {
        while let Some(mac) = self.candidates.pop_front() {
            if self.tried.insert(mac) {
                return mac;
            }
        }
        // A random MAC of the automatic range, 00:14:4f:f8:00:00-00:14:4f:fb:ff:ff.
        loop {
            let low = fastrand::u32(..0x4_0000);
            let mac = [0x00, 0x14, 0x4f, 0xf8 | (low >> 16) as u8, (low >> 8) as u8, low as u8];
            if self.tried.insert(mac) && !self.responder.owns.contains(&mac) {
                return mac;
            }
        }
    }

    fn ask(&mut self, mac: [u8; 6]) -> io::Result<()> {
        let lookup = Repr::lookup(MsgType::SendMsg, mac, self.responder.identity.ip).to_bytes();
        self.send_to(&lookup, SocketAddrV4::new(ldm::GROUP, self.options.port))
    }

    fn start_allocation(&mut self) -> io::Result<Allocation> {
        if let Some(m) = &self.metrics {
            m.allocations_started.inc();
        }
        let candidate = self.next_candidate();
        self.ask(candidate)?;
        let now = Instant::now();
        self.log_line(&format!("allocate: asking for {}", MacAddr(candidate)), &[("candidate", MacAddr(candidate))])?;
        Ok(Allocation { started: now, candidate, asked: now, tries: 1 })
    }

    /// A RESPONSE_MSG for our candidate: someone has it; try another.
    fn note_collision(&mut self, current: &mut Allocation, data: &[u8], from: Ipv4Addr) -> io::Result<()> {
        let msg = Message::parse(data);
        if msg.msg_type != Some(MsgType::ResponseMsg) || msg.mac() != Some(current.candidate) || !msg.magic_ok() {
            return Ok(());
        }
        let taken = current.candidate;
        self.log_line(
            &format!("allocate: {} is in use ({from} answered); trying another", MacAddr(taken)),
            &[("in_use", MacAddr(taken))],
        )?;
        if current.started.elapsed() >= ALLOCATION_LIMIT {
            return Ok(());
        }
        current.candidate = self.next_candidate();
        current.asked = Instant::now();
        current.tries += 1;
        let next = current.candidate;
        self.ask(next)
    }

    /// True when the allocation succeeded (a quiet second) or failed (30 s).
    fn allocation_settled(&mut self, current: &Allocation) -> io::Result<bool> {
        if current.started.elapsed() >= ALLOCATION_LIMIT {
            self.report.allocations_failed += 1;
            if let Some(m) = &self.metrics {
                m.allocations_failed.inc();
            }
            self.log_line(&format!("allocate: automatic MAC allocation failed after {} lookups", current.tries), &[])?;
            return Ok(true);
        }
        if current.asked.elapsed() < LOOKUP_WAIT {
            return Ok(false);
        }
        let mac = current.candidate;
        self.responder.owns.insert(mac);
        self.report.allocated.push(mac);
        if let Some(m) = &self.metrics {
            m.allocations_succeeded.inc();
        }
        self.log_line(
            &format!("allocate: {} is free after {} lookup(s); now ours", MacAddr(mac), current.tries),
            &[("allocated", MacAddr(mac))],
        )?;
        Ok(true)
    }

    /// Whether a line of `kind` may be written now; `Some` with the number
    /// of that kind's lines left out since the last one written.
    fn allow_log(&mut self, kind: LogKind) -> Option<u64> {
        let limit = &mut self.logs[kind as usize];
        if !limit.allow() {
            self.report.log_suppressed += 1;
            return None;
        }
        Some(limit.take_suppressed())
    }

    fn log_event(
        &mut self,
        kind: LogKind,
        from: SocketAddrV4,
        request: &str,
        action: &str,
        replies: usize,
    ) -> io::Result<()> {
        let Some(left_out) = self.allow_log(kind) else { return Ok(()) };
        let action = match left_out {
            0 => action.to_string(),
            n => format!("{action} ({n} more {} lines not written)", kind.name()),
        };
        if self.options.json {
            let record = serde_json::json!({
                "time": now_text(),
                "from": from.to_string(),
                "request": request,
                "action": action,
                "replies": replies,
            });
            writeln!(self.log, "{record}")?;
        } else {
            writeln!(self.log, "{} {from} {request}: {action}", now_text())?;
        }
        self.log.flush()
    }

    fn log_line(&mut self, text: &str, fields: &[(&str, MacAddr)]) -> io::Result<()> {
        if self.options.json {
            let mut record = serde_json::Map::new();
            record.insert("time".into(), now_text().into());
            record.insert("event".into(), text.into());
            for (name, mac) in fields {
                record.insert((*name).into(), mac.to_string().into());
            }
            writeln!(self.log, "{}", serde_json::Value::Object(record))?;
        } else {
            writeln!(self.log, "{} {text}", now_text())?;
        }
        self.log.flush()
    }
}

/// The wall clock as RFC 3339, for log lines.
fn now_text() -> String {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let ts = crate::capture::Timestamp::new(since_epoch.as_secs() as i64, since_epoch.subsec_nanos());
    crate::dissect::fields::Rfc3339(ts).to_string()
}
