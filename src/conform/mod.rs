//! `ldm-sniff conform`: replay a capture's requests against a target ldmd,
//! collect its replies, and compare the normalised transcript with the
//! replies the capture recorded (or a stored snapshot).
//!
//! Data flows one way: capture -> script (requests with recorded replies) ->
//! replay (live replies) -> transcripts -> diff and reports.

pub mod inject;
pub mod libvirt;
pub mod report;
pub mod transcript;

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket};

use crate::capture::{CaptureReader, Linktype, Timestamp};
use crate::dissect::{self, ChecksumStatus};
use crate::pipeline;
use crate::wire::ldm::{self, Message, MsgType};
pub use transcript::{Exchange, Normalise};

/// A request from the capture, with the replies recorded after it.
#[derive(Debug, Clone)]
pub struct Request {
    pub frame: u64,
    pub ts: Timestamp,
    /// The UDP payload exactly as captured: what is replayed.
    pub bytes: Vec<u8>,
    /// The whole Ethernet frame, when it is one (for `--raw`).
    pub ethernet: Option<Vec<u8>>,
    pub recorded: Vec<Reply>,
}

/// A reply as received (or recorded), before normalisation.
#[derive(Debug, Clone)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub from: Ipv4Addr,
    /// Seconds after its request.
    pub after: f64,
}

/// What a reply answers: lookups by MAC, discovery by being a discovery reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    Lookup([u8; 6]),
    Discovery,
}

fn subject(msg: &Message<'_>) -> Option<Subject> {
    match msg.msg_type? {
        MsgType::SendMsg | MsgType::ResponseMsg => msg.mac().map(Subject::Lookup),
        MsgType::DiscSend | MsgType::DiscResp => Some(Subject::Discovery),
        MsgType::Unknown(_) => None,
    }
}

fn is_request(msg: &Message<'_>) -> bool {
    matches!(msg.msg_type, Some(MsgType::SendMsg | MsgType::DiscSend))
}

/// Reads the requests and their recorded replies. A reply belongs to the
/// latest earlier request on the same subject, within twice the window (the
/// replay listens that long). One datagram captured twice (`-i any`) counts once.
pub fn load(path: &str, window: f64) -> Result<Vec<Request>, String> {
    let reader = CaptureReader::open(path).map_err(|e| e.to_string())?;
    let mut requests: Vec<Request> = Vec::new();
    let mut subjects: Vec<Subject> = Vec::new();
    let mut recent = RecentDatagrams::default();
    let options = dissect::Options::default();
    let damage = pipeline::walk(reader, options, |d| {
        let (Some(msg), Some(ip)) = (&d.ldm, d.ip) else { return Ok(true) };
        if !msg.magic_ok() || recent.repeats(d.frame.ts, ip.src, ip.id, msg.bytes) {
            return Ok(true);
        }
        let Some(subject) = subject(msg) else { return Ok(true) };
        if is_request(msg) {
            // A reassembled datagram spans several frames: no single one to re-inject.
            let whole_ethernet = d.frame.linktype == Linktype::ETHERNET && d.reassembled.is_none();
            requests.push(Request {
                frame: d.frame.number,
                ts: d.frame.ts,
                bytes: msg.bytes.to_vec(),
                ethernet: whole_ethernet.then(|| {
                    let mut frame = d.frame.data.to_vec();
                    if d.udp.is_some_and(|u| u.checksum_status == ChecksumStatus::Partial) {
                        inject::complete_udp_checksum(&mut frame);
                    }
                    frame
                }),
                recorded: vec![],
            });
            subjects.push(subject);
            return Ok(true);
        }
        let IpAddr::V4(from) = ip.src else { return Ok(true) };
        let Some(i) = subjects.iter().rposition(|s| *s == subject) else { return Ok(true) };
        let after = d.frame.ts.seconds_since(requests[i].ts);
        if after <= 2.0 * window {
            requests[i].recorded.push(Reply { bytes: msg.bytes.to_vec(), from, after });
        }
        Ok(true)
    })
    .map_err(|e| format!("{path}: {e}"))?;
    if let Some(e) = damage {
        return Err(format!("{e} (conform needs the whole capture)"));
    }
    if requests.is_empty() {
        return Err(format!(
            "{path}: no ldm requests (SEND_MSG or LDMD_DISC_SEND) to replay; record one while a host asks, e.g. `ldm-sniff -i IFACE -w ref.pcapng` during `ldm-sniff discover`"
        ));
    }
    Ok(requests)
}

/// The transcript of `requests` with the given replies per request.
/// How long after a datagram the same one (same source, IP identification
/// and bytes) is taken for a copy of it: a capture on several interfaces
/// (`-i any`) records one datagram twice within microseconds. Later, the
/// same bytes are a new request (ldmd sends discovery with IP id 0, and
/// IP ids wrap).
const DUPLICATE_SECS: f64 = 0.010;

/// The datagrams of the last `DUPLICATE_SECS` of capture time, in capture
/// order (to expire them) and counted by content (to look them up in O(1):
/// a hostile capture may hold millions within one timestamp).
#[derive(Default)]
struct RecentDatagrams {
    order: std::collections::VecDeque<(Timestamp, DatagramKey)>,
    present: std::collections::HashSet<DatagramKey>,
}

type DatagramKey = (IpAddr, u16, Vec<u8>);

impl RecentDatagrams {
    /// Whether this datagram repeats one captured just before; remembers it.
    fn repeats(&mut self, ts: Timestamp, src: IpAddr, id: u16, bytes: &[u8]) -> bool {
        while let Some((at, _)) = self.order.front() {
            if ts.seconds_since(*at) <= DUPLICATE_SECS {
                break;
            }
            let Some((_, key)) = self.order.pop_front() else { break };
            self.present.remove(&key);
        }
        let key = (src, id, bytes.to_vec());
        if self.present.contains(&key) {
            return true;
        }
        self.present.insert(key.clone());
        self.order.push_back((ts, key));
        false
    }
}

/// Replies kept per request, at most: a target (or anyone on the segment)
/// that floods is shown as what it sent first, and how many more.
pub const MAX_REPLIES_KEPT: usize = 256;

/// What a replay heard: the replies to each request, and how many more
/// arrived past `MAX_REPLIES_KEPT`.
#[derive(Debug, Default)]
pub struct Replayed {
    pub replies: Vec<Vec<Reply>>,
    pub not_kept: Vec<u64>,
}

pub fn transcript(requests: &[Request], replies: &[Vec<Reply>], window: f64, norm: &Normalise) -> Vec<Exchange> {
    transcript_with(requests, replies, &[], window, norm)
}

/// The transcript of a replay, with a line for replies not kept.
pub fn transcript_of(requests: &[Request], replayed: &Replayed, window: f64, norm: &Normalise) -> Vec<Exchange> {
    transcript_with(requests, &replayed.replies, &replayed.not_kept, window, norm)
}

fn transcript_with(
    requests: &[Request],
    replies: &[Vec<Reply>],
    not_kept: &[u64],
    window: f64,
    norm: &Normalise,
) -> Vec<Exchange> {
    requests
        .iter()
        .zip(replies)
        .enumerate()
        .map(|(i, (request, replies))| {
            let mut lines: Vec<String> = replies
                .iter()
                .map(|r| {
                    let msg = Message::parse(&r.bytes);
                    transcript::describe_reply(&msg, Some(r.from), r.after > window, norm)
                })
                .collect();
            lines.sort();
            if let Some(more) = not_kept.get(i).filter(|&&n| n > 0) {
                lines.push(format!(
                    "... {more} more replies, not kept (a flood: at most {MAX_REPLIES_KEPT} per request)"
                ));
            }
            Exchange {
                index: i + 1,
                frame: request.frame,
                request: transcript::describe_request(&Message::parse(&request.bytes)),
                replies: lines,
            }
        })
        .collect()
}

/// Where replayed requests go.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub addr: SocketAddrV4,
}

impl Target {
    /// `ADDR[:PORT]`, default the group and ldm's port.
    pub fn parse(text: Option<&str>) -> Result<Target, String> {
        let Some(text) = text else {
            return Ok(Target { addr: SocketAddrV4::new(ldm::GROUP, ldm::PORT) });
        };
        if let Ok(addr) = text.parse::<SocketAddrV4>() {
            return Ok(Target { addr });
        }
        match text.parse::<Ipv4Addr>() {
            Ok(ip) => Ok(Target { addr: SocketAddrV4::new(ip, ldm::PORT) }),
            Err(_) => Err(format!("--target '{text}' is not an IPv4 address with an optional :PORT")),
        }
    }

    /// Multicast, loopback, or on a directly connected network (a route
    /// without a gateway): the places a replay may go without --allow-remote.
    pub fn is_local(&self) -> bool {
        let ip = *self.addr.ip();
        ip.is_multicast() || ip.is_loopback() || on_link(ip)
    }
}

/// Loopback or on a directly connected network: where a libvirt replay may
/// connect without --allow-remote.
pub fn is_local_addr(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || on_link(v4),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

fn on_link(ip: Ipv4Addr) -> bool {
    let Ok(routes) = std::fs::read_to_string("/proc/net/route") else { return false };
    routes.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let hex = |i: usize| cols.get(i).and_then(|c| u32::from_str_radix(c, 16).ok());
        // /proc/net/route prints addresses as host-order hex of network-order values.
        let (Some(dest), Some(gateway), Some(mask)) = (hex(1), hex(2), hex(7)) else { return false };
        let ip = u32::from_ne_bytes(ip.octets());
        gateway == 0 && mask != 0 && ip & mask == dest & mask
    })
}

/// How requests are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    Recorded,
    Fast,
}

/// A socket on ldm's port, joined to the group on `local`'s interface, so
/// it hears replies sent to the group and to us.
pub fn open_socket(local: Ipv4Addr, ttl: u32) -> io::Result<Socket> {
    crate::probe::group_socket(Ipv4Addr::UNSPECIFIED, ldm::PORT, Some(local), ttl)
}

/// How requests leave: as UDP from our socket, or as the recorded frames.
pub enum Sender<'a> {
    Udp(Target),
    Raw(&'a inject::Injector),
}

impl Sender<'_> {
    fn send(&self, socket: &Socket, request: &Request) -> io::Result<()> {
        match self {
            Sender::Udp(target) => {
                socket.send_to(&request.bytes, &SockAddr::from(SocketAddr::V4(target.addr))).map(|_| ())
            }
            Sender::Raw(injector) => match &request.ethernet {
                Some(frame) => injector.send(frame),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("--raw: frame {} is not a whole Ethernet frame", request.frame),
                )),
            },
        }
    }
}

/// Sends each request and collects the target's replies. Replies are matched
/// to the latest request on the same subject; after the last request it
/// listens twice the window, so a late reply is seen and marked.
pub fn replay(
    socket: &Socket,
    sender: &Sender<'_>,
    requests: &[Request],
    pace: Pace,
    window: f64,
) -> io::Result<Replayed> {
    let window_d = Duration::from_secs_f64(window);
    let mut got = Replayed { replies: vec![Vec::new(); requests.len()], not_kept: vec![0; requests.len()] };
    let mut sent_at: Vec<Instant> = Vec::with_capacity(requests.len());
    let subjects: Vec<Option<Subject>> = requests.iter().map(|r| subject(&Message::parse(&r.bytes))).collect();
    let mut buf = vec![MaybeUninit::new(0u8); 65536];
    let start = Instant::now();
    for (i, request) in requests.iter().enumerate() {
        let due = match (pace, i) {
            (_, 0) => start,
            (Pace::Recorded, _) => {
                let gap = request.ts.seconds_since(requests[0].ts).max(0.0);
                start + Duration::from_secs_f64(gap)
            }
            (Pace::Fast, _) => Instant::now(),
        };
        // Fast: wait until the previous request has as many replies as were
        // recorded, or its window closed; then go on at once.
        let previous_done = |got: &Replayed| {
            i == 0 || pace == Pace::Recorded || got.replies[i - 1].len() >= requests[i - 1].recorded.len()
        };
        let fast_deadline = sent_at.last().map(|t| *t + window_d);
        loop {
            let now = Instant::now();
            let waiting_fast = pace == Pace::Fast && !previous_done(&got) && fast_deadline.is_some_and(|d| now < d);
            if now >= due && !waiting_fast {
                break;
            }
            let until = if waiting_fast { fast_deadline.unwrap_or(now) } else { due };
            let heard = Heard { subjects: &subjects[..i], sent_at: &sent_at };
            receive_until(socket, until, &heard, &mut got, &mut buf, &|got| waiting_fast && previous_done(got))?;
        }
        sender.send(socket, request)?;
        sent_at.push(Instant::now());
    }
    let end = Instant::now() + 2 * window_d;
    let heard = Heard { subjects: &subjects, sent_at: &sent_at };
    receive_until(socket, end, &heard, &mut got, &mut buf, &|_| false)?;
    Ok(got)
}

/// The requests sent so far, for filing replies.
struct Heard<'a> {
    subjects: &'a [Option<Subject>],
    sent_at: &'a [Instant],
}

/// Files replies under their requests until `until`, or until `done` says
/// what was awaited has arrived.
fn receive_until(
    socket: &Socket,
    until: Instant,
    heard: &Heard<'_>,
    got: &mut Replayed,
    buf: &mut [MaybeUninit<u8>],
    done: &dyn Fn(&Replayed) -> bool,
) -> io::Result<()> {
    loop {
        let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
            return Ok(());
        };
        socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let (n, from) = match socket.recv_from(buf) {
            Ok(received) => received,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let arrived = Instant::now();
        let bytes = crate::probe::received(buf, n);
        let Some(SocketAddr::V4(from)) = from.as_socket() else { continue };
        let msg = Message::parse(&bytes);
        // Our own requests come back to us; other hosts' requests are not replies.
        if is_request(&msg) {
            continue;
        }
        // A reply with a broken header still answers something: file it
        // under the latest request, so the diff shows it.
        let subject = subject(&msg);
        let index = match subject {
            Some(s) if msg.magic_ok() => heard.subjects[..heard.sent_at.len()].iter().rposition(|r| *r == Some(s)),
            _ => heard.sent_at.len().checked_sub(1),
        };
        let Some(i) = index else { continue };
        if got.replies[i].len() >= MAX_REPLIES_KEPT {
            got.not_kept[i] += 1;
            continue;
        }
        let after = arrived.duration_since(heard.sent_at[i]).as_secs_f64();
        got.replies[i].push(Reply { bytes, from: *from.ip(), after });
        if done(got) {
            return Ok(());
        }
    }
}

pub fn recorded(requests: &[Request]) -> Vec<Vec<Reply>> {
    requests.iter().map(|r| r.recorded.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_copy_within_milliseconds_repeats() {
        let mut recent = RecentDatagrams::default();
        let from: IpAddr = "10.1.1.5".parse().unwrap();
        let at = |nanos: u32| Timestamp::new(100, nanos);
        assert!(!recent.repeats(at(0), from, 0, b"request"));
        assert!(recent.repeats(at(1_000), from, 0, b"request"), "a copy a microsecond later");
        assert!(!recent.repeats(at(2_000), from, 1, b"request"), "another IP id is another datagram");
        assert!(!recent.repeats(at(3_000), from, 0, b"other"), "other bytes");
        assert!(!recent.repeats(at(20_000_000), from, 0, b"request"), "20 ms later: sent again");
        assert_eq!(recent.present.len(), 1, "the older ones expired");
    }

    #[test]
    fn many_datagrams_at_one_instant_are_each_remembered_once() {
        let mut recent = RecentDatagrams::default();
        let from: IpAddr = "10.1.1.5".parse().unwrap();
        for i in 0..50_000u32 {
            assert!(!recent.repeats(Timestamp::new(100, 0), from, 0, &i.to_be_bytes()));
        }
        assert!(recent.repeats(Timestamp::new(100, 0), from, 0, &7u32.to_be_bytes()));
        assert_eq!(recent.order.len(), 50_000);
    }
}
