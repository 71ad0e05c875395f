//! `ldm-sniff conform` for libvirt: replay a recorded session (every
//! libvirt connection of the capture, concurrently, in the recorded
//! interleaving) against a target libvirtd, and compare what the daemon
//! sends back with what it sent in the recording.
//!
//! - `load` reads the session: every message of every connection, whole, in
//!   capture order. A connection not captured from its start cannot be
//!   replayed, and the run fails saying so: nothing is skipped silently.
//! - `replay` (replay.rs) sends each client message once the messages
//!   before it in the capture have been sent and the daemon messages
//!   recorded before it have arrived, with values the daemon assigns
//!   (callback IDs, UUIDs, domain IDs) learned from the target's replies and
//!   put into later calls.
//! - `transcript` renders one exchange per client message, every reply and
//!   event field by field (normalise.rs says which fields vary by run).

mod normalise;
mod replay;

use std::net::{IpAddr, SocketAddr};

use crate::capture::{CaptureReader, Timestamp};
use crate::dissect::{self, stream::FlowKey, stream::Limits};
use crate::expert::Key;
use crate::pipeline;
use crate::wire::libvirt::{Header, PROGRAM_KEEPALIVE};

use super::transcript::Exchange;

pub use normalise::{Normalise, REDACTABLE_HINT, VARIES};
pub use replay::{replay, Pace, Received, Replies, MAX_KEPT};

/// One message of the session, whole, as captured.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Index into `Session::servers`.
    pub conn: usize,
    pub frame: u64,
    pub ts: Timestamp,
    pub from_client: bool,
    pub header: Header,
    pub bytes: Vec<u8>,
}

/// A recorded session: each connection's daemon address, and every
/// message of every connection in capture order (keepalives left out: the
/// daemon's depend on timing, not on the calls).
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub servers: Vec<SocketAddr>,
    pub messages: Vec<Recorded>,
}

impl Session {
    /// The client's messages, in order: one transcript exchange each.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &Recorded)> {
        self.messages.iter().enumerate().filter(|(_, m)| m.from_client)
    }
}

/// Reads the session of a capture. Every message is kept whole, up to
/// libvirt's own limit (32 MiB); a connection joined mid-way, or holding a
/// message cut by the capture, makes it an error: replaying the rest would
/// compare something else than what was recorded.
pub fn load(path: &str, options: dissect::Options) -> Result<Session, String> {
    let reader = CaptureReader::open(path).map_err(|e| e.to_string())?;
    let options = dissect::Options { libvirt_limits: Limits::WHOLE_MESSAGES, ..options };
    let mut keys: Vec<FlowKey> = Vec::new();
    let mut session = Session::default();
    let mut problem: Option<String> = None;
    let damage = pipeline::walk(reader, options, |d| {
        // Bytes the capture lost: the session recorded is not all there.
        if problem.is_none() && d.findings.iter().any(|f| f.key == Key::LibvirtStreamGap) {
            problem = Some(format!(
                "the capture lost bytes of a libvirt connection before frame {} (libvirt.stream_gap): a replay would not be the session recorded; record it again with a larger capture buffer (tcpdump -B)",
                d.frame.number
            ));
        }
        let (Some(msg), Some(ip), Some(tcp)) = (&d.libvirt, d.ip, d.tcp) else { return Ok(true) };
        let key = FlowKey { src: ip.src, src_port: tcp.src_port, dst: ip.dst, dst_port: tcp.dst_port }.connection();
        let from_client = tcp.dst_port == options.libvirt_port;
        let conn = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                let server = if from_client { (ip.dst, tcp.dst_port) } else { (ip.src, tcp.src_port) };
                keys.push(key);
                session.servers.push(server.into());
                keys.len() - 1
            }
        };
        if problem.is_none() && !d.libvirt_from_start {
            problem = Some(format!(
                "connection {} ({}:{} - {}:{}) was not captured from its start (frame {}): its opening calls are missing; record with the capture running before the clients connect",
                conn + 1, key.src, key.src_port, key.dst, key.dst_port, d.frame.number
            ));
        }
        if problem.is_none() && msg.payload.len() < msg.payload_len() {
            problem = Some(format!(
                "frame {}: a message of {} bytes is longer than libvirt allows (32 MiB) or was cut by the capture",
                d.frame.number, msg.header.len
            ));
        }
        if msg.header.prog == PROGRAM_KEEPALIVE {
            return Ok(true);
        }
        session.messages.push(Recorded {
            conn,
            frame: d.frame.number,
            ts: d.frame.ts,
            from_client,
            header: msg.header,
            bytes: msg.to_bytes(),
        });
        Ok(true)
    })
    .map_err(|e| format!("{path}: {e}"))?;
    if let Some(e) = damage {
        return Err(format!("{e} (conform needs the whole capture)"));
    }
    if let Some(problem) = problem {
        return Err(format!("{path}: {problem}; nothing was replayed"));
    }
    if session.steps().next().is_none() {
        return Err(format!(
            "{path}: no libvirt connection captured from its start to replay; record one with tcpdump -i IFACE -w ref.pcap 'tcp port 16509' before the client connects"
        ));
    }
    Ok(session)
}

/// The transcript: one exchange per client message, in capture order,
/// numbered across connections; under each, what the daemon sent on that
/// connection in answer (its reply) and meanwhile (events), field by field.
pub fn transcript(session: &Session, replies: &Replies, norm: &Normalise) -> Vec<Exchange> {
    let mut symbols = normalise::Symbols::default();
    let mut out = Vec::new();
    for ((_, step), step_replies) in session.steps().zip(replies) {
        let h = &step.header;
        let request = format!(
            "connection {} {} {} serial={}",
            step.conn + 1,
            h.msg_type.name(),
            normalise::procedure(h),
            h.serial
        );
        let replies = step_replies
            .iter()
            .map(|r| match (r.note, r.not_kept) {
                (Some(note), _) => note.to_string(),
                (None, 0) => norm.describe(&r.bytes, r.late, &mut symbols),
                (None, n) => format!("... {n} more messages, not kept (a flood: at most {MAX_KEPT} per call)"),
            })
            .collect();
        out.push(Exchange { index: out.len() + 1, frame: step.frame, request, replies });
    }
    out
}

/// The recorded daemon messages, in the shape `replay` returns: each under
/// the client message it answers (a reply: its call; anything else: the
/// connection's latest client message).
pub fn recorded(session: &Session) -> Replies {
    let mut replies: Replies = Vec::new();
    // Per connection: its steps so far, (slot in `replies`, header).
    let mut steps: Vec<Vec<(usize, Header)>> = vec![Vec::new(); session.servers.len()];
    for message in &session.messages {
        let conn_steps = &mut steps[message.conn];
        if message.from_client {
            conn_steps.push((replies.len(), message.header));
            replies.push(Vec::new());
            continue;
        }
        let answered = conn_steps.iter().rev().find(|(_, call)| answers(call, &message.header));
        if let Some((slot, _)) = answered.or(conn_steps.last()) {
            replies[*slot].push(Received { bytes: message.bytes.clone(), ..Received::default() });
        }
    }
    replies
}

/// Whether `reply` answers the call `call`.
fn answers(call: &Header, reply: &Header) -> bool {
    call.msg_type.is_call() && reply.msg_type.is_reply() && reply.prog == call.prog && reply.serial == call.serial
}

/// A reply as one canonical line, with the default normalisation.
pub fn describe(bytes: &[u8], late: bool) -> String {
    Normalise::default().describe(bytes, late, &mut normalise::Symbols::default())
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
