//! Stateful analysis over time: what the traffic means. Links requests and
//! responses (both ways, with response times), and finds collisions, late
//! responses, duplicate owners, failed allocations, lookup storms and
//! discovery inconsistencies. Every rule is documented in README.md
//! ("Analysis over time"). Time is the capture's time; every table is bounded.

pub mod bounded;
mod discoveries;
pub mod libvirt;
pub mod stats;
pub mod summary;

use std::collections::VecDeque;
use std::net::IpAddr;

use arrayvec::ArrayVec;

use crate::capture::Timestamp;
use crate::dissect::fields::{name, FieldSink, Value};
use crate::dissect::Dissection;
use crate::expert::{Detail, Finding, Key};
use crate::wire::ldm::{Message, MsgType, Payload};

use bounded::BoundedMap;
use discoveries::Discoveries;
pub use stats::{Stats, StatsKind};
pub use summary::Summary;

/// ldmd gives up on a MAC after this long ("30 seconds").
pub const ALLOCATION_TIMEOUT: f64 = 30.0;
/// How long after a request a response is still matched to it (as late)
/// rather than called unsolicited.
pub const LATE_HORIZON: f64 = 60.0;

/// The most lookups one ldmd start-up check makes, by default: one per MAC
/// its host owns. Oracle documents up to 128 domains per system (256 on
/// Fujitsu M10/M12); a domain has its own MAC and, commonly, a few virtual
/// network devices: 256 x 4. (A guest domain may have up to 999 devices, so
/// a host that owns more MACs sets `--startup-max`.)
pub const STARTUP_MAX_LOOKUPS: u32 = 1_024;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Response window in seconds (ldmd waits 1 s).
    pub window: f64,
    /// Lookups from one host within `storm_secs` that make a burst.
    pub storm_lookups: u32,
    pub storm_secs: f64,
    /// A burst lasting longer than this is a runaway, whatever it looks up.
    pub storm_max_secs: f64,
    /// A burst of more lookups than this is a runaway too: a start-up check
    /// looks up each MAC its host owns once (see `STARTUP_MAX_LOOKUPS`).
    pub startup_max_lookups: u32,
    /// Cap of the per-MAC tables; the per-host tables get a quarter of it
    /// (a segment has far fewer ldmd hosts than MACs).
    pub max_entries: usize,
}

impl Options {
    fn max_hosts(&self) -> usize {
        (self.max_entries / 4).max(256)
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            window: 1.0,
            storm_lookups: 20,
            storm_secs: 1.0,
            storm_max_secs: 10.0,
            startup_max_lookups: STARTUP_MAX_LOOKUPS,
            max_entries: 8_192,
        }
    }
}

/// What the analysis says of one ldm packet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotation {
    /// For a response: the request it answers.
    pub request_in: Option<u64>,
    /// For a response: seconds since that request.
    pub rtt: Option<f64>,
    /// For a request: the responses to it (filled in as they arrive).
    pub response_in: Vec<u64>,
    /// Empty for most packets. The walk reuses one annotation, so its
    /// allocation is made once, not per packet with a finding.
    pub findings: Vec<Finding>,
}

impl Annotation {
    /// The analysis's fields of the ldm layer: `ldm.request_in`, `ldm.rtt`,
    /// `ldm.response_in`.
    pub fn fields(&self, sink: &mut dyn FieldSink) {
        if let Some(frame) = self.request_in {
            sink.field(name!("request_in"), Value::U64(frame));
        }
        if let Some(rtt) = self.rtt {
            sink.field(name!("rtt"), Value::F64(rtt));
        }
        sink.responses_here();
        if !self.response_in.is_empty() {
            sink.field(name!("response_in"), Value::U64List(&self.response_in));
        }
    }

    /// Empty again, keeping what it allocated.
    pub fn clear(&mut self) {
        self.request_in = None;
        self.rtt = None;
        self.response_in.clear();
        self.findings.clear();
    }

    fn push(&mut self, key: Key, detail: Detail) {
        self.findings.push(Finding::new(key, detail));
    }
}

/// A responder and the IP id of its datagram: the same datagram captured
/// twice (`tcpdump -i any` sees it on a bridge and on its port) is one
/// response, not a duplicate.
type Responder = (IpAddr, u16);

/// The most recent lookup of one MAC.
#[derive(Debug)]
pub(crate) struct LookupRequest {
    frame: u64,
    ts: Timestamp,
    requester: IpAddr,
    responders: ArrayVec<Responder, 4>,
}

/// What a new response from `who` is to a request answered by `seen`.
enum Repeat {
    New,
    /// The same datagram again (captured on two interfaces).
    SameDatagram,
    /// A second response from the same host.
    Duplicate,
}

fn repeat(seen: &[Responder], who: Responder) -> Repeat {
    if seen.contains(&who) {
        Repeat::SameDatagram
    } else if seen.iter().any(|(host, _)| *host == who.0) {
        Repeat::Duplicate
    } else {
        Repeat::New
    }
}

/// One requester's retry chain and recent lookups.
#[derive(Debug, Default)]
pub(crate) struct RequesterState {
    chain_start: Option<(Timestamp, u64)>,
    chain_lookups: u32,
    last_lookup: Option<(Timestamp, [u8; 6])>,
    last_answered: bool,
    chain_failed: bool,
    /// Recent lookups (time, MAC), for burst detection.
    recent: VecDeque<(Timestamp, [u8; 6])>,
    /// How often each MAC occurs in `recent`: its length is the number of
    /// distinct MACs, kept as lookups come and go rather than recounted.
    recent_macs: std::collections::HashMap<[u8; 6], u32, ahash::RandomState>,
    burst_start: Option<Timestamp>,
    /// Lookups since `burst_start`.
    burst_lookups: u32,
    burst_flagged: Option<Key>,
}

pub struct Analyzer {
    options: Options,
    first_ts: Option<Timestamp>,
    /// The analysis clock: the latest timestamp seen (never goes back).
    now: Option<Timestamp>,
    discoveries: Discoveries,
    /// Addresses advertised for each hostname, with the frame of the first.
    hostnames: BoundedMap<Vec<u8>, (ArrayVec<IpAddr, 4>, u64)>,
    /// The first ldmd version seen, who said it, where.
    fleet_version: Option<(Vec<u8>, IpAddr, u64)>,
    version_flagged: BoundedMap<IpAddr, ()>,
    libvirt: libvirt::Tracker,
    stats: Stats,
}

fn secs(later: Timestamp, earlier: Timestamp) -> f64 {
    later.seconds_since(earlier)
}

impl Analyzer {
    pub fn new(options: Options) -> Analyzer {
        let (macs, hosts) = (options.max_entries, options.max_hosts());
        Analyzer {
            options,
            first_ts: None,
            now: None,
            discoveries: Discoveries::default(),
            hostnames: BoundedMap::new(hosts),
            fleet_version: None,
            version_flagged: BoundedMap::new(hosts),
            libvirt: libvirt::Tracker::new(macs, hosts),
            stats: Stats::new(macs, hosts),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Entries evicted from the bounded tables so far.
    pub fn evicted(&self) -> u64 {
        self.hostnames.evicted + self.version_flagged.evicted + self.libvirt.evicted() + self.stats.evicted()
    }

    /// Every frame passes here first, so the capture's start is known.
    pub fn saw_frame(&mut self, ts: Timestamp) {
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
        }
    }

    /// Analyses one ldm packet.
    pub fn observe(&mut self, d: &Dissection<'_>) -> Annotation {
        let mut note = Annotation::default();
        self.observe_into(d, &mut note);
        note
    }

    /// Analyses one ldm packet into `note`, cleared first: a caller going
    /// frame by frame reuses one annotation instead of making one per frame.
    pub fn observe_into(&mut self, d: &Dissection<'_>, note: &mut Annotation) {
        note.clear();
        let Some(msg) = &d.ldm else { return };
        self.saw_frame(d.frame.ts);
        // A replayed frame (a given-up fragment) is old on purpose, not "backwards in time".
        let ts = self.tick(d.frame.ts, !d.replayed, note);
        // A message that is not ldm, or has no type, says nothing over time.
        if !msg.magic_ok() {
            return;
        }
        let Some(ip) = d.ip else { return };
        let src = ip.src;
        let datagram = (src, ip.id);
        let frame = d.frame.number;
        let options = self.options;
        // The sender's state first, while its one table entry is at hand.
        let host = self.stats.packet(src, d, ts);
        check_link_source(host, d, note);
        match (msg.msg_type, msg.mac()) {
            (Some(MsgType::SendMsg), Some(mac)) => {
                host.lookups_sent += 1;
                retry_chain(&mut host.requests, &options, mac, ts, frame, note);
                lookup_burst(&mut host.requests, &options, mac, ts, note);
                self.lookup_request(mac, src, ts, frame);
            }
            (Some(MsgType::ResponseMsg), Some(mac)) => {
                host.macs_claimed += 1;
                self.lookup_response(mac, datagram, ts, frame, note);
            }
            (Some(MsgType::DiscSend), _) => self.discoveries.push(frame, ts),
            (Some(MsgType::DiscResp), _) => self.discovery_response(msg, datagram, ts, frame, note),
            _ => {}
        }
        if let Some(rtt) = note.rtt {
            self.stats.rtt(msg.msg_type, rtt);
        }
    }

    /// Analyses one libvirt message into `note`, cleared first.
    pub fn observe_libvirt_into(&mut self, d: &Dissection<'_>, note: &mut Annotation) {
        note.clear();
        self.saw_frame(d.frame.ts);
        let ts = self.tick(d.frame.ts, !d.replayed && !d.continuation, note);
        // A segment that waited behind a hole is timed as it was captured.
        let ts = if d.replayed { d.frame.ts } else { ts };
        self.libvirt.observe(d, ts, &mut self.stats.libvirt, note);
    }

    /// Counts one TLS record on the libvirt TLS port (for
    /// `-z libvirt,conversations`); TLS says nothing over time we check.
    pub fn observe_tls(&mut self, d: &Dissection<'_>) {
        let (Some(record), Some(ip), Some(tcp)) = (&d.tls, d.ip, d.tcp) else { return };
        let flow = crate::dissect::stream::FlowKey {
            src: ip.src,
            src_port: tcp.src_port,
            dst: ip.dst,
            dst_port: tcp.dst_port,
        };
        self.stats.libvirt.count_tls(flow, d.frame.ts, record);
    }

    /// The analysis time of a packet: its timestamp, unless that went back.
    fn tick(&mut self, ts: Timestamp, in_order: bool, note: &mut Annotation) -> Timestamp {
        match self.now {
            Some(now) if ts < now => {
                if in_order {
                    note.push(Key::FrameTimeBackwards, Detail::Backwards { secs: secs(now, ts) });
                }
                now
            }
            _ => {
                self.now = Some(ts);
                ts
            }
        }
    }

    /// Was the capture running `window` before `ts`? Then a request for a
    /// timely response would have been captured.
    fn capture_covered(&self, ts: Timestamp) -> bool {
        self.first_ts.is_some_and(|first| secs(ts, first) > self.options.window)
    }

    /// The MAC's side of a lookup (the requester's is in `observe_into`).
    fn lookup_request(&mut self, mac: [u8; 6], requester: IpAddr, ts: Timestamp, frame: u64) {
        // The latest lookup of a MAC is the one responses answer.
        self.stats.lookup(mac, requester).request =
            Some(LookupRequest { frame, ts, requester, responders: ArrayVec::new() });
    }

    fn lookup_response(&mut self, mac: [u8; 6], datagram: Responder, ts: Timestamp, frame: u64, note: &mut Annotation) {
        let window = self.options.window;
        let covered = self.capture_covered(ts);
        let entry = self.stats.answered(mac);
        if let Some((other, other_frame)) = entry.owner(datagram.0, frame) {
            note.push(
                Key::LdmDuplicateOwner,
                Detail::AlsoSeen { what: "owner of this MAC", addr: other, frame: other_frame },
            );
        }
        let Some(request) = entry.request.as_mut().filter(|r| secs(ts, r.ts) <= LATE_HORIZON) else {
            unmatched(covered, note);
            return;
        };
        let rtt = secs(ts, request.ts).max(0.0);
        note.request_in = Some(request.frame);
        note.rtt = Some(rtt);
        match repeat(&request.responders, datagram) {
            Repeat::New => {
                let _ = request.responders.try_push(datagram);
            }
            Repeat::SameDatagram => {}
            Repeat::Duplicate => {
                note.push(Key::LdmDuplicateResponse, Detail::After { what: "lookup", frame: request.frame, secs: rtt })
            }
        }
        let requester = request.requester;
        let request_frame = request.frame;
        if rtt <= window {
            note.push(Key::LdmCollision, Detail::After { what: "lookup", frame: request_frame, secs: rtt });
            entry.collisions += 1;
            // The requester will pick another MAC: its chain goes on.
            if let Some(state) = self.stats.host_mut(&requester).map(|host| &mut host.requests) {
                if state.last_lookup.is_some_and(|(_, last)| last == mac) {
                    state.last_answered = true;
                }
            }
        } else {
            note.push(Key::LdmLateResponse, Detail::After { what: "lookup", frame: request_frame, secs: rtt });
            entry.late += 1;
        }
    }

    fn discovery_response(
        &mut self,
        msg: &Message<'_>,
        datagram: Responder,
        ts: Timestamp,
        frame: u64,
        note: &mut Annotation,
    ) {
        let Payload::Discovery(disc) = msg.payload else { return };
        let responder = datagram.0;
        self.match_discovery(datagram, ts, note);
        // Inventory consistency: the address the host advertises (else its source).
        let advertised = disc.ip_address.map_or(responder, IpAddr::V4);
        if let Some(name) = disc.hostname.map(|h| h.text()).filter(|h| !h.is_empty()) {
            // Allocates the name only for a host not seen before.
            let (addrs, first_frame) = match self.hostnames.get_mut(name) {
                Some(known) => known,
                None => self.hostnames.entry(name.to_vec(), || (ArrayVec::new(), frame)),
            };
            if !addrs.contains(&advertised) {
                if let Some(&first) = addrs.first() {
                    note.push(
                        Key::LdmHostnameSeveralIps,
                        Detail::AlsoSeen { what: "this hostname", addr: first, frame: *first_frame },
                    );
                }
                let _ = addrs.try_push(advertised);
            }
        }
        if let Some(version) = disc.ldmd_version.map(|v| v.text()) {
            match &self.fleet_version {
                None => self.fleet_version = Some((version.to_vec(), responder, frame)),
                Some((first, addr, first_frame)) if first.as_slice() != version => {
                    if self.version_flagged.get(&responder).is_none() {
                        note.push(
                            Key::LdmVersionMismatch,
                            Detail::AlsoSeen { what: "another version", addr: *addr, frame: *first_frame },
                        );
                        self.version_flagged.entry(responder, || ());
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Links a discovery response to the latest request before it.
    fn match_discovery(&mut self, datagram: Responder, ts: Timestamp, note: &mut Annotation) {
        let window = self.options.window;
        let Some(request) = self.discoveries.latest_at_or_before(ts) else {
            unmatched(self.capture_covered(ts), note);
            return;
        };
        let rtt = secs(ts, request.ts);
        if rtt > LATE_HORIZON {
            unmatched(self.capture_covered(ts), note);
            return;
        }
        note.request_in = Some(request.frame);
        note.rtt = Some(rtt);
        if rtt > window {
            note.push(
                Key::LdmLateDiscoveryResponse,
                Detail::After { what: "discovery request", frame: request.frame, secs: rtt },
            );
        }
        match repeat(&request.responders, datagram) {
            Repeat::New if request.responders.len() < 4096 => request.responders.push(datagram),
            Repeat::New | Repeat::SameDatagram => {}
            Repeat::Duplicate => {
                let detail = Detail::After { what: "discovery request", frame: request.frame, secs: rtt };
                note.push(Key::LdmDuplicateResponse, detail);
            }
        }
    }
}

/// A response with no request to answer: unsolicited if the capture was
/// running when the request would have been sent (`covered`).
fn unmatched(covered: bool, note: &mut Annotation) {
    if covered {
        note.push(Key::LdmUnsolicitedResponse, Detail::None);
    } else {
        note.push(Key::LdmRequestNotCaptured, Detail::None);
    }
}

/// Several link-layer sources for one IP: a clash of addresses, or a
/// host that moved.
fn check_link_source(host: &mut stats::Host, d: &Dissection<'_>, note: &mut Annotation) {
    let Some(mac) = d.link.as_ref().and_then(|l| l.src) else { return };
    if host.link_srcs.contains(&mac) {
        return;
    }
    match host.link_srcs.first() {
        Some(&first) => note.push(Key::LdmIpSeveralMacs, Detail::AlsoFrom { mac: first, frame: host.link_src_frame }),
        None => host.link_src_frame = d.frame.number,
    }
    let _ = host.link_srcs.try_push(mac);
}

/// A requester's retry chain: each lookup answered (collision) and followed
/// by another is one more retry; 30 s after the first, ldmd has failed.
fn retry_chain(
    state: &mut RequesterState,
    options: &Options,
    mac: [u8; 6],
    ts: Timestamp,
    frame: u64,
    note: &mut Annotation,
) {
    // A retry follows the answered lookup within the window plus a second of slack.
    let continues = state.last_answered
        && state.last_lookup.is_some_and(|(last, _)| secs(ts, last) <= options.window + 1.0)
        && state.chain_start.is_some();
    if continues {
        state.chain_lookups += 1;
    } else {
        state.chain_start = Some((ts, frame));
        state.chain_lookups = 1;
        state.chain_failed = false;
    }
    state.last_lookup = Some((ts, mac));
    state.last_answered = false;
    let Some((start, first_frame)) = state.chain_start else { return };
    let elapsed = secs(ts, start);
    if elapsed >= ALLOCATION_TIMEOUT && !state.chain_failed {
        state.chain_failed = true;
        note.push(Key::LdmAllocationFailed, Detail::Chain { lookups: state.chain_lookups, secs: elapsed, first_frame });
    }
}

/// Whether `recent_macs` is kept: not while a storm is flagged, when nothing
/// reads it (it is rebuilt when the storm ends); this is the flood case, where
/// the two map updates per lookup cost most.
fn counting_macs(state: &RequesterState) -> bool {
    state.burst_flagged != Some(Key::LdmLookupStorm)
}

fn forget_oldest(state: &mut RequesterState) {
    let Some((_, mac)) = state.recent.pop_front() else { return };
    if !counting_macs(state) {
        return;
    }
    if let Some(count) = state.recent_macs.get_mut(&mac) {
        *count -= 1;
        if *count == 0 {
            state.recent_macs.remove(&mac);
        }
    }
}

/// Counts the MACs of the recent lookups again (after a storm, when the
/// counts were not kept).
fn recount_macs(state: &mut RequesterState) {
    state.recent_macs.clear();
    for (_, mac) in &state.recent {
        *state.recent_macs.entry(*mac).or_default() += 1;
    }
}

/// Bursts of lookups from one host: distinct MACs in a short burst is an
/// ldmd start-up check; repeated MACs, or a burst that goes on, a runaway.
fn lookup_burst(state: &mut RequesterState, options: &Options, mac: [u8; 6], ts: Timestamp, note: &mut Annotation) {
    while state.recent.front().is_some_and(|(t, _)| secs(ts, *t) > options.storm_secs) {
        forget_oldest(state);
    }
    // Bounded: a burst needs only its threshold's worth of entries, times a
    // margin. Every tracked host keeps this many, so it sets the analysis's
    // memory under a flood from many hosts.
    if state.recent.len() >= (options.storm_lookups as usize).saturating_mul(2).max(32) {
        forget_oldest(state);
    }
    state.recent.push_back((ts, mac));
    if counting_macs(state) {
        *state.recent_macs.entry(mac).or_default() += 1;
    }
    let in_burst = state.recent.len() as u32 >= options.storm_lookups;
    if state.burst_start.is_some() {
        state.burst_lookups = state.burst_lookups.saturating_add(1);
    }
    if !in_burst {
        // The rate fell below the threshold: the burst is over.
        if state.recent.len() as u32 <= options.storm_lookups / 2 {
            let was_storm = !counting_macs(state);
            state.burst_start = None;
            state.burst_lookups = 0;
            state.burst_flagged = None;
            if was_storm {
                recount_macs(state);
            }
        }
        return;
    }
    if state.burst_flagged == Some(Key::LdmLookupStorm) {
        return;
    }
    if state.burst_start.is_none() {
        state.burst_start = Some(state.recent.front().map_or(ts, |(t, _)| *t));
        state.burst_lookups = state.recent.len() as u32;
    }
    let lasted = state.burst_start.map_or(0.0, |start| secs(ts, start));
    if state.burst_lookups > options.startup_max_lookups {
        // More MACs than one host's start-up check covers.
        let detail =
            Detail::LongBurst { lookups: state.burst_lookups, secs: lasted, most: options.startup_max_lookups };
        note.push(Key::LdmLookupStorm, detail);
        state.burst_flagged = Some(Key::LdmLookupStorm);
        return;
    }
    let lookups = state.recent.len() as u32;
    let distinct = state.recent_macs.len() as u32;
    let window_secs = state.recent.front().map_or(0.0, |(t, _)| secs(ts, *t));
    let runaway = distinct < lookups || lasted > options.storm_max_secs;
    let detail = Detail::Burst { lookups, distinct, secs: window_secs };
    match state.burst_flagged {
        None if runaway => {
            note.push(Key::LdmLookupStorm, detail);
            state.burst_flagged = Some(Key::LdmLookupStorm);
        }
        None => {
            note.push(Key::LdmStartupCheck, detail);
            state.burst_flagged = Some(Key::LdmStartupCheck);
        }
        Some(Key::LdmStartupCheck) if runaway => {
            note.push(Key::LdmLookupStorm, detail);
            state.burst_flagged = Some(Key::LdmLookupStorm);
        }
        Some(_) => {}
    }
}

/// One frame as the filter and the outputs see it: its dissection and what
/// the analysis says of it.
pub struct Packet<'r, 'a> {
    pub d: &'r Dissection<'a>,
    pub note: &'r Annotation,
}

impl Packet<'_, '_> {
    /// Per-packet findings, then those over time.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.d.findings.iter().chain(self.note.findings.iter())
    }

    pub fn has_findings(&self) -> bool {
        !self.d.findings.is_empty() || !self.note.findings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lookups from one host at random rates over a few MACs, so that bursts
    /// start, turn into storms, end and start again. Whatever the path, a
    /// burst's finding must count exactly the MACs of the window it saw,
    /// and the kept counts, while kept, must be those of the window (they
    /// are not kept during a storm, and counted again when it ends).
    #[test]
    fn burst_findings_count_the_window_whatever_the_path() {
        let options = Options { storm_lookups: 8, storm_secs: 1.0, storm_max_secs: 3.0, ..Options::default() };
        let mut flagged = [0usize; 2];
        for seed in 0..20u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut state = RequesterState::default();
            let mut note = Annotation::default();
            let mut nanos = 0i64;
            for step in 0..5_000 {
                // Mostly fast (bursts), sometimes a pause that ends one.
                nanos += match rng.u8(0..20) {
                    0 => 2_000_000_000,
                    1..=4 => 200_000_000,
                    _ => i64::from(rng.u32(1_000_000..40_000_000)),
                };
                let ts = Timestamp::new(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32);
                // Runs of distinct MACs (start-up checks) and of a few (storms).
                let mac = match (step / 200) % 2 {
                    0 => [0, 0x14, 0x4f, 0, (step >> 8) as u8, step as u8],
                    _ => [0, 0x14, 0x4f, 0, 0, rng.u8(0..3)],
                };
                note.clear();
                lookup_burst(&mut state, &options, mac, ts, &mut note);
                let window: std::collections::HashSet<_> = state.recent.iter().map(|(_, mac)| *mac).collect();
                for finding in &note.findings {
                    let Detail::Burst { lookups, distinct, .. } = finding.detail else { continue };
                    assert_eq!(lookups as usize, state.recent.len(), "seed {seed} step {step}");
                    assert_eq!(distinct as usize, window.len(), "seed {seed} step {step}: {:?}", finding.key);
                    flagged[usize::from(finding.key == Key::LdmLookupStorm)] += 1;
                }
                if counting_macs(&state) {
                    let mut counted = std::collections::HashMap::new();
                    for (_, mac) in &state.recent {
                        *counted.entry(*mac).or_insert(0u32) += 1;
                    }
                    let kept: std::collections::HashMap<_, _> =
                        state.recent_macs.iter().map(|(m, c)| (*m, *c)).collect();
                    assert_eq!(kept, counted, "seed {seed} step {step}");
                }
            }
        }
        // Both kinds of finding were reached, many times over.
        assert!(flagged[0] > 20 && flagged[1] > 20, "start-up checks, storms: {flagged:?}");
    }
}
