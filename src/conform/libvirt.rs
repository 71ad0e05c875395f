//! `ldm-sniff conform` for libvirt: replay the client side of each recorded
//! libvirt connection against a target libvirtd, one TCP connection per
//! recorded one, and compare the replies with the recorded ones.
//!
//! Each client CALL is sent as recorded and the replay waits for the reply
//! with its serial; anything else the daemon sends meanwhile (events) is
//! listed under that call. Client keepalive messages are not replayed (the
//! daemon's PONGs depend on timing, not on the calls). A reply's payload is
//! compared by length and hash, except for the procedures in `VOLATILE`,
//! whose answers change from run to run (times, counters, host details).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::capture::CaptureReader;
use crate::dissect::{self, stream::FlowKey};
use crate::pipeline;
use crate::wire::libvirt::{Header, Message, Status, HEADER_LEN, MAX_LEN, PROGRAM_KEEPALIVE, PROGRAM_REMOTE};

use super::transcript::Exchange;

/// REMOTE procedures whose reply payload differs between runs of the same
/// calls: times and CPU counters, host names and host hardware, statistics.
pub const VOLATILE: [&str; 15] = [
    "CONNECT_GET_HOSTNAME",
    "CONNECT_GET_SYSINFO",
    "CONNECT_GET_CAPABILITIES",
    "CONNECT_GET_DOMAIN_CAPABILITIES",
    "CONNECT_GET_ALL_DOMAIN_STATS",
    "NODE_GET_INFO",
    "NODE_GET_CPU_STATS",
    "NODE_GET_MEMORY_STATS",
    "NODE_GET_FREE_MEMORY",
    "NODE_GET_CELLS_FREE_MEMORY",
    "DOMAIN_GET_INFO",
    "DOMAIN_GET_CPU_STATS",
    "DOMAIN_GET_JOB_INFO",
    "DOMAIN_GET_JOB_STATS",
    "DOMAIN_GET_TIME",
];

/// One recorded connection: the client's messages in order, each with the
/// daemon's messages recorded for it (its reply, and what came meanwhile).
#[derive(Debug, Clone)]
pub struct Connection {
    pub server: SocketAddr,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub frame: u64,
    /// The client's message, whole, as sent, and its header.
    pub bytes: Vec<u8>,
    pub header: Header,
    /// The daemon's messages recorded for it, whole.
    pub recorded: Vec<Vec<u8>>,
}

impl Step {
    /// Whether `reply` answers this step's call.
    fn answered_by(&self, reply: &Header) -> bool {
        self.header.msg_type.is_call()
            && reply.msg_type.is_reply()
            && reply.prog == self.header.prog
            && reply.serial == self.header.serial
    }
}

/// A message from the daemon, and whether it came after the window; or,
/// with `not_kept`, how many more came than were kept.
#[derive(Debug, Clone)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub late: bool,
    pub not_kept: u64,
}

/// Per connection, per client message: what the daemon sent back.
pub type Replies = Vec<Vec<Vec<Received>>>;

/// What loading found besides the connections: skipped ones, with why.
#[derive(Debug, Default)]
pub struct Loaded {
    pub connections: Vec<Connection>,
    pub skipped: Vec<String>,
}

/// Reads the libvirt connections of a capture. A connection joined mid-way
/// (no SYN seen) cannot be replayed (its opening calls are missing) and is
/// skipped, as is one with a message cut to bound memory.
pub fn load(path: &str, options: dissect::Options) -> Result<Loaded, String> {
    let reader = CaptureReader::open(path).map_err(|e| e.to_string())?;
    // (connection, what is recorded of it, replayable), in the order first seen.
    let mut found: Vec<(FlowKey, Connection, bool)> = Vec::new();
    let mut skipped = Vec::new();
    let damage = pipeline::walk(reader, options, |d| {
        let (Some(msg), Some(ip), Some(tcp)) = (&d.libvirt, d.ip, d.tcp) else { return Ok(true) };
        if msg.header.prog == PROGRAM_KEEPALIVE {
            return Ok(true);
        }
        let key = FlowKey { src: ip.src, src_port: tcp.src_port, dst: ip.dst, dst_port: tcp.dst_port }.connection();
        let from_client = tcp.dst_port == options.libvirt_port;
        let i = match found.iter().position(|(k, _, _)| *k == key) {
            Some(i) => i,
            None => {
                let server = if from_client { (ip.dst, tcp.dst_port) } else { (ip.src, tcp.src_port) };
                found.push((key, Connection { server: server.into(), steps: Vec::new() }, true));
                found.len() - 1
            }
        };
        let (_, connection, replayable) = &mut found[i];
        *replayable &= d.libvirt_from_start;
        if msg.payload.len() < msg.payload_len() {
            *replayable = false;
            skipped.push(format!("frame {}: a message longer than the kept 256 KiB", d.frame.number));
        }
        let bytes = msg.to_bytes();
        if from_client {
            connection.steps.push(Step { frame: d.frame.number, bytes, header: msg.header, recorded: Vec::new() });
            return Ok(true);
        }
        // A reply goes with its call (calls may be pipelined); anything else
        // with the latest client message.
        let steps = &mut connection.steps;
        let step = steps.iter().rposition(|s| s.answered_by(&msg.header)).or(steps.len().checked_sub(1));
        if let Some(step) = step {
            steps[step].recorded.push(bytes);
        }
        Ok(true)
    })
    .map_err(|e| format!("{path}: {e}"))?;
    if let Some(e) = damage {
        return Err(format!("{e} (conform needs the whole capture)"));
    }
    let mut loaded = Loaded { skipped, ..Loaded::default() };
    for (key, connection, replayable) in found {
        if !replayable {
            loaded.skipped.push(format!(
                "connection {}:{} - {}:{}: not captured from its start (or holds a cut message); not replayed",
                key.src, key.src_port, key.dst, key.dst_port
            ));
            continue;
        }
        if !connection.steps.is_empty() {
            loaded.connections.push(connection);
        }
    }
    if loaded.connections.is_empty() {
        return Err(format!(
            "{path}: no libvirt connection captured from its start to replay; record one with tcpdump -i IFACE -w ref.pcap 'tcp port 16509' before the client connects"
        ));
    }
    Ok(loaded)
}

/// A reply as one canonical line.
pub fn describe(bytes: &[u8], late: bool) -> String {
    let Some(msg) = Message::parse(bytes) else { return "unparsable message".to_string() };
    let h = msg.header;
    let mut line = format!("{} {} serial={} status={}", h.msg_type.name(), procedure(&h), h.serial, h.status.name());
    if let Some(error) = msg.error() {
        let text = error.message.map(crate::dissect::fields::escaped).unwrap_or_default();
        line.push_str(&format!(" code={} domain={} message=\"{text}\"", error.code, error.domain));
    } else if h.prog == PROGRAM_REMOTE && h.procedure_name().is_some_and(|p| VOLATILE.contains(&p)) {
        line.push_str(&format!(" payload=<volatile, {} bytes>", msg.payload_len()));
    } else if msg.payload_len() == 0 {
        line.push_str(" payload=0 bytes");
    } else {
        line.push_str(&format!(" payload={} bytes fnv={:016x}", msg.payload_len(), fnv1a(msg.payload)));
    }
    if late {
        line.push_str(" LATE");
    }
    line
}

fn procedure(h: &Header) -> String {
    match (h.program_name(), h.procedure_name()) {
        (Some(prog), Some(proc_)) => format!("{prog}.{proc_}"),
        (Some(prog), None) => format!("{prog}.{}", h.proc_),
        (None, _) => format!("prog={:#x}.{}", h.prog, h.proc_),
    }
}

/// FNV-1a, 64 bits: a short, stable fingerprint of a payload for the transcript.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The transcript: one exchange per client message, numbered across connections.
pub fn transcript(connections: &[Connection], replies: &Replies) -> Vec<Exchange> {
    let mut out = Vec::new();
    for (c, (connection, replies)) in connections.iter().zip(replies).enumerate() {
        for (step, step_replies) in connection.steps.iter().zip(replies) {
            let h = &step.header;
            let request = format!("connection {} {} {} serial={}", c + 1, h.msg_type.name(), procedure(h), h.serial);
            out.push(Exchange {
                index: out.len() + 1,
                frame: step.frame,
                request,
                // In arrival order: one connection's replies are ordered.
                replies: step_replies
                    .iter()
                    .map(|r| match r.not_kept {
                        0 => describe(&r.bytes, r.late),
                        n => format!("... {n} more messages, not kept (a flood: at most {MAX_KEPT} per call)"),
                    })
                    .collect(),
            });
        }
    }
    out
}

/// The recorded replies, in the shape `replay` returns.
pub fn recorded(connections: &[Connection]) -> Replies {
    let received = |bytes: &Vec<u8>| Received { bytes: bytes.clone(), late: false, not_kept: 0 };
    connections.iter().map(|c| c.steps.iter().map(|s| s.recorded.iter().map(received).collect()).collect()).collect()
}

/// Replays every connection against `target` (or the recorded server when
/// None), in order. A reply later than `window` is marked late; the replay
/// waits twice the window for it.
pub fn replay(connections: &[Connection], target: Option<SocketAddr>, window: f64) -> io::Result<Replies> {
    connections.iter().map(|c| replay_connection(c, target.unwrap_or(c.server), window)).collect()
}

fn replay_connection(connection: &Connection, target: SocketAddr, window: f64) -> io::Result<Vec<Vec<Received>>> {
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
    stream.set_nodelay(true)?;
    let mut reader = MessageReader::default();
    let mut all = Vec::new();
    for step in &connection.steps {
        stream.write_all(&step.bytes)?;
        if !step.header.msg_type.is_call() {
            all.push(Vec::new());
            continue;
        }
        all.push(await_reply(&mut stream, &mut reader, step.header.prog, step.header.serial, window)?);
    }
    Ok(all)
}

/// Reads messages until the reply to (`prog`, `serial`), or twice the window.
fn await_reply(
    stream: &mut TcpStream,
    reader: &mut MessageReader,
    prog: u32,
    serial: u32,
    window: f64,
) -> io::Result<Vec<Received>> {
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(2.0 * window);
    let mut got = Vec::new();
    let mut not_kept = 0;
    while start.elapsed() < deadline {
        let Some(bytes) = reader.next(stream, deadline - start.elapsed())? else { break };
        let late = start.elapsed().as_secs_f64() > window;
        // What is not libvirt stays in the transcript ("unparsable message").
        let header = Message::parse(&bytes).map(|m| m.header);
        if header.is_some_and(|h| h.prog == PROGRAM_KEEPALIVE) {
            continue;
        }
        let answers = header.is_some_and(|h| h.msg_type.is_reply() && h.prog == prog && h.serial == serial);
        let done = answers && header.is_some_and(|h| h.status != Status::Continue);
        // A daemon that floods is shown by what it sent first, and how much
        // more; past twice the cap the call is given up (no reply).
        if got.len() < MAX_KEPT || done {
            got.push(Received { bytes, late, not_kept: 0 });
        } else {
            not_kept += 1;
            if not_kept >= MAX_KEPT as u64 {
                break;
            }
        }
        if done {
            break;
        }
    }
    if not_kept > 0 {
        got.push(Received { bytes: Vec::new(), late: false, not_kept });
    }
    Ok(got)
}

/// Messages kept per call, at most (the awaited reply always is).
pub const MAX_KEPT: usize = 256;

/// Whole messages from a TCP stream. Messages are taken from `start` on;
/// the bytes before it are dropped once they are half the buffer, so a
/// stream of many small messages costs O(n), not a shift per message.
#[derive(Default)]
struct MessageReader {
    buffer: Vec<u8>,
    start: usize,
}

impl MessageReader {
    /// The next message, or None if none arrived in `wait`.
    fn next(&mut self, stream: &mut TcpStream, wait: Duration) -> io::Result<Option<Vec<u8>>> {
        let start = Instant::now();
        loop {
            if let Some(message) = self.take() {
                return Ok(Some(message));
            }
            let left = wait.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let mut chunk = [0u8; 64 * 1024];
            match stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    if self.start > self.buffer.len() / 2 {
                        self.buffer.drain(..self.start);
                        self.start = 0;
                    }
                    self.buffer.extend_from_slice(&chunk[..n]);
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        let unread = &self.buffer[self.start..];
        let len = u32::from_be_bytes(unread.get(..4)?.try_into().ok()?) as usize;
        if !(HEADER_LEN..=MAX_LEN).contains(&len) {
            // Not libvirt framing: hand the rest over as one unparsable message.
            let rest = unread.to_vec();
            self.buffer.clear();
            self.start = 0;
            return Some(rest);
        }
        if unread.len() < len {
            return None;
        }
        let message = unread[..len].to_vec();
        self.start += len;
        Some(message)
    }
}

/// The libvirt port's default target: `ADDR[:PORT]`, port 16509.
pub fn parse_target(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match text.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, crate::wire::libvirt::PORT)),
        Err(_) => Err(format!("--target '{text}' is not an IP address with an optional :PORT")),
    }
}
