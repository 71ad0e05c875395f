//! libvirt over time: calls paired with their replies by serial (with
//! latency), replies without calls, reused serials, error replies, events,
//! stream bytes, and keepalive PINGs left unanswered. Every table is bounded.

use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::dissect::stream::FlowKey;
use crate::dissect::Dissection;
use crate::expert::{Detail, Key};
use crate::wire::libvirt::{self, MsgType, Status, KEEPALIVE_PING, KEEPALIVE_PONG, PROGRAM_KEEPALIVE};

use super::bounded::BoundedMap;
use super::Annotation;

/// A call waiting for its reply.
#[derive(Debug, Clone, Copy)]
struct Call {
    frame: u64,
    ts: Timestamp,
}

/// Per procedure: what `-z libvirt,procs` shows.
#[derive(Debug, Default, Clone)]
pub struct ProcStats {
    pub calls: u64,
    pub replies: u64,
    pub errors: u64,
    pub events: u64,
    pub stream_messages: u64,
    pub stream_bytes: u64,
    pub rtt_sum: f64,
    pub rtt_max: f64,
}

/// Per connection: what `-z libvirt,conversations` shows.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// The side that is not the libvirt port: the client.
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub first: Timestamp,
    pub last: Timestamp,
    pub messages: u64,
    pub calls: u64,
    pub errors: u64,
    pub events: u64,
    pub bytes: u64,
    /// libvirt over TLS: what the records show (nothing is decrypted).
    pub tls: Option<TlsConversation>,
}

/// A connection on the libvirt TLS port: records counted, the hellos read.
#[derive(Debug, Clone, Default)]
pub struct TlsConversation {
    pub records: u64,
    /// The highest version the client offered, and the one the server chose.
    pub offered: Option<u16>,
    pub chosen: Option<u16>,
    /// The client's server name indication.
    pub server_name: Option<String>,
}

/// The `-z libvirt,...` tables.
#[derive(Debug)]
pub struct Tables {
    /// By (program, procedure).
    pub procs: BoundedMap<(u32, i32), ProcStats>,
    /// By connection, in the order first seen.
    pub conversations: BoundedMap<FlowKey, Conversation>,
}

impl Tables {
    pub fn new(max_connections: usize) -> Tables {
        Tables { procs: BoundedMap::new(1024), conversations: BoundedMap::new(max_connections) }
    }

    pub fn evicted(&self) -> u64 {
        self.procs.evicted + self.conversations.evicted
    }

    fn count(&mut self, flow: FlowKey, ts: Timestamp, msg: &libvirt::Message<'_>) {
        let h = msg.header;
        let p = self.procs.entry((h.prog, h.proc_), ProcStats::default);
        match h.msg_type {
            t if t.is_call() => p.calls += 1,
            t if t.is_reply() => p.replies += 1,
            MsgType::Message => p.events += 1,
            MsgType::Stream | MsgType::StreamHole => {
                p.stream_messages += 1;
                p.stream_bytes += msg.payload_len() as u64;
            }
            _ => {}
        }
        self.count_conversation(flow, ts, msg);
    }

    fn count_conversation(&mut self, flow: FlowKey, ts: Timestamp, msg: &libvirt::Message<'_>) {
        // A call names the client.
        let c = self.conversation(flow, ts, msg.header.msg_type.is_call());
        c.messages += 1;
        c.bytes += u64::from(msg.header.len);
        c.calls += u64::from(msg.header.msg_type.is_call());
        c.events += u64::from(msg.header.msg_type == MsgType::Message);
        c.errors += u64::from(msg.header.status == Status::Error && msg.header.msg_type.is_reply());
    }

    /// Counts a TLS record on the libvirt TLS port.
    pub fn count_tls(&mut self, flow: FlowKey, ts: Timestamp, record: &crate::wire::tls::Record<'_>) {
        let hello = record.hello();
        // A ClientHello names the client.
        let from_client = matches!(hello, Some(crate::wire::tls::Hello::Client { .. }));
        let c = self.conversation(flow, ts, from_client);
        c.bytes += u64::from(record.length) + 5;
        let tls = c.tls.get_or_insert_with(TlsConversation::default);
        tls.records += 1;
        match hello {
            Some(crate::wire::tls::Hello::Client { version, server_name }) => {
                tls.offered = Some(version);
                tls.server_name = server_name.map(crate::dissect::fields::escaped);
            }
            Some(crate::wire::tls::Hello::Server { version }) => tls.chosen = Some(version),
            None => {}
        }
    }

    /// The connection's entry, made on first sight. `from_client` says the
    /// sender is the client; otherwise the side on the lower port is taken
    /// for the daemon (16509 and 16514 are below the ephemeral range).
    fn conversation(&mut self, flow: FlowKey, ts: Timestamp, from_client: bool) -> &mut Conversation {
        let from_client = from_client || flow.dst_port < flow.src_port;
        let (client, server) = if from_client {
            ((flow.src, flow.src_port), (flow.dst, flow.dst_port))
        } else {
            ((flow.dst, flow.dst_port), (flow.src, flow.src_port))
        };
        let make = || Conversation {
            client,
            server,
            first: ts,
            last: ts,
            messages: 0,
            calls: 0,
            errors: 0,
            events: 0,
            bytes: 0,
            tls: None,
        };
        let c = self.conversations.entry(flow.connection(), make);
        c.last = ts;
        c
    }
}

/// The libvirt analysis state.
pub struct Tracker {
    /// Calls awaiting replies, by (connection, program, serial).
    calls: BoundedMap<(FlowKey, u32, u32), Call>,
    /// The unanswered PING of each direction, by its frame.
    pings: BoundedMap<FlowKey, u64>,
}

impl Tracker {
    pub fn new(max_entries: usize, max_connections: usize) -> Tracker {
        // At least one waiting call for each connection the stream layer
        // follows: a synchronous client has one call out at a time.
        let calls = max_entries.max(crate::dissect::stream::MAX_FLOWS / 2);
        Tracker { calls: BoundedMap::new(calls), pings: BoundedMap::new(max_connections) }
    }

    pub fn evicted(&self) -> u64 {
        self.calls.evicted + self.pings.evicted
    }

    /// Analyses one libvirt message at analysis time `ts`.
    pub fn observe(&mut self, d: &Dissection<'_>, ts: Timestamp, tables: &mut Tables, note: &mut Annotation) {
        let (Some(msg), Some(ip), Some(tcp)) = (&d.libvirt, d.ip, d.tcp) else { return };
        let flow = FlowKey { src: ip.src, src_port: tcp.src_port, dst: ip.dst, dst_port: tcp.dst_port };
        let h = msg.header;
        tables.count(flow, ts, msg);
        match h.msg_type {
            t if t.is_call() => self.call(flow, h, d.frame.number, ts, note),
            t if t.is_reply() => self.reply(flow, msg, ts, d.libvirt_from_start && !d.libvirt_peer_lost, tables, note),
            MsgType::Message => self.keepalive(flow, h, d.frame.number, note),
            _ => {}
        }
    }

    fn call(&mut self, flow: FlowKey, h: libvirt::Header, frame: u64, ts: Timestamp, note: &mut Annotation) {
        let call = self.calls.entry((flow.connection(), h.prog, h.serial), || Call { frame, ts });
        if call.frame != frame {
            let detail = Detail::Serial { serial: h.serial, frame: call.frame };
            note.push(Key::LibvirtDuplicateSerial, detail);
            *call = Call { frame, ts };
        }
    }

    fn reply(
        &mut self,
        flow: FlowKey,
        msg: &libvirt::Message<'_>,
        ts: Timestamp,
        all_captured: bool,
        tables: &mut Tables,
        note: &mut Annotation,
    ) {
        let h = msg.header;
        if let Some(error) = msg.error() {
            note.push(Key::LibvirtErrorReply, Detail::LibvirtError { code: error.code, domain: error.domain });
            tables.procs.entry((h.prog, h.proc_), ProcStats::default).errors += 1;
        }
        // A stream's replies (status CONTINUE) share the call's serial; the
        // call is answered by the first reply.
        let Some(call) = self.calls.remove(&(flow.connection(), h.prog, h.serial)) else {
            // A call the capture could not have missed, or one it (or the
            // table's cap, once it forgot calls) may have.
            let certain = all_captured && self.calls.evicted == 0;
            let key = if certain { Key::LibvirtReplyWithoutCall } else { Key::LibvirtCallNotCaptured };
            note.push(key, Detail::None);
            return;
        };
        let rtt = ts.seconds_since(call.ts).max(0.0);
        note.request_in = Some(call.frame);
        note.rtt = Some(rtt);
        let stats = tables.procs.entry((h.prog, h.proc_), ProcStats::default);
        stats.rtt_sum += rtt;
        stats.rtt_max = stats.rtt_max.max(rtt);
    }

    fn keepalive(&mut self, flow: FlowKey, h: libvirt::Header, frame: u64, note: &mut Annotation) {
        if h.prog != PROGRAM_KEEPALIVE {
            return;
        }
        match h.proc_ {
            KEEPALIVE_PING => {
                if let Some(previous) = self.pings.get(&flow).copied() {
                    note.push(Key::LibvirtKeepaliveUnanswered, Detail::Serial { serial: h.serial, frame: previous });
                }
                *self.pings.entry(flow, || frame) = frame;
            }
            KEEPALIVE_PONG => {
                let reverse =
                    FlowKey { src: flow.dst, src_port: flow.dst_port, dst: flow.src, dst_port: flow.src_port };
                self.pings.remove(&reverse);
            }
            _ => {}
        }
    }
}
