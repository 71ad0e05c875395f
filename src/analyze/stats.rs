//! `-z` statistics: host inventory, MAC table, response times, libvirt
//! procedures and conversations, as rows of text (`output::table` draws them).

use std::net::IpAddr;

use arrayvec::ArrayVec;

use super::Summary;
use crate::capture::Timestamp;
use crate::dissect::fields::{escaped, Rfc3339};
use crate::dissect::Dissection;
use crate::expert::{MacAddr, CATALOGUE};
use crate::wire::ldm::{MsgType, Payload};

use super::bounded::BoundedMap;

/// Which `-z` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsKind {
    Summary,
    Hosts,
    Macs,
    Rtt,
    LibvirtProcs,
    LibvirtConversations,
}

impl StatsKind {
    /// Every table, in the order the help lists them.
    pub const ALL: [StatsKind; 6] = [
        StatsKind::Summary,
        StatsKind::Hosts,
        StatsKind::Macs,
        StatsKind::Rtt,
        StatsKind::LibvirtProcs,
        StatsKind::LibvirtConversations,
    ];

    /// Parses tshark-style `ldm,summary`.
    pub fn parse(text: &str) -> Result<StatsKind, String> {
        if let Some(kind) = StatsKind::ALL.into_iter().find(|kind| kind.name() == text) {
            return Ok(kind);
        }
        let names: Vec<&str> = StatsKind::ALL.iter().map(|kind| kind.name()).collect();
        Err(format!("unknown statistics '{text}': use one of {}", names.join(", ")))
    }

    pub fn name(self) -> &'static str {
        match self {
            StatsKind::Summary => "ldm,summary",
            StatsKind::Hosts => "ldm,hosts",
            StatsKind::Macs => "ldm,macs",
            StatsKind::Rtt => "ldm,rtt",
            StatsKind::LibvirtProcs => "libvirt,procs",
            StatsKind::LibvirtConversations => "libvirt,conversations",
        }
    }
}

/// All the analysis keeps of one host, in one table so that a packet costs
/// one lookup of its source: its `-z ldm,hosts` row, the link-layer sources
/// of its IP, and the state of its own lookups.
#[derive(Debug, Default)]
pub(super) struct Host {
    hostname: Option<Vec<u8>>,
    version: Option<Vec<u8>>,
    port: Option<i32>,
    first: Timestamp,
    last: Timestamp,
    packets: u64,
    pub(super) lookups_sent: u64,
    /// Lookup responses sent: MACs it claimed.
    pub(super) macs_claimed: u64,
    /// Link-layer sources seen for this IP, in the order seen (the first is
    /// the table's link_src), and the frame of the first.
    pub(super) link_srcs: ArrayVec<[u8; 6], 4>,
    pub(super) link_src_frame: u64,
    /// Its lookups' retry chain and bursts, when it sends lookups.
    pub(super) requests: super::RequesterState,
}

/// All the analysis keeps of one MAC, in one table so that a packet costs
/// one lookup of its MAC: its `-z ldm,macs` row and its latest lookup.
#[derive(Debug, Default)]
pub(super) struct Mac {
    lookups: u64,
    requester: Option<IpAddr>,
    owners: ArrayVec<(IpAddr, u64), 4>,
    pub(super) collisions: u64,
    pub(super) late: u64,
    /// The most recent lookup of it: the one responses answer.
    pub(super) request: Option<super::LookupRequest>,
}

impl Mac {
    /// Makes the entry of an evicted MAC new for another, in place, as
    /// `Mac::default()` would make it. Writing a default value in instead
    /// copied all of it, arrays' unused room included. Every field is
    /// named, so a new one cannot be forgotten here.
    fn reset(&mut self) {
        let Mac { lookups, requester, owners, collisions, late, request } = self;
        *lookups = 0;
        *requester = None;
        owners.clear();
        *collisions = 0;
        *late = 0;
        *request = None;
    }

    /// Records `owner` answering; returns an earlier, different owner.
    pub(super) fn owner(&mut self, owner: IpAddr, frame: u64) -> Option<(IpAddr, u64)> {
        if self.owners.iter().any(|(o, _)| *o == owner) {
            return None;
        }
        let other = self.owners.first().copied();
        let _ = self.owners.try_push((owner, frame));
        other
    }

    fn verdict(&self) -> &'static str {
        if self.owners.len() > 1 || self.late > 0 {
            "DUPLICATE"
        } else if self.owners.is_empty() {
            "free"
        } else {
            "in use"
        }
    }
}

/// Response-time samples, capped (the first `cap` are kept).
#[derive(Debug, Default)]
struct Samples {
    values: Vec<f64>,
    count: u64,
    min: f64,
    max: f64,
}

const MAX_SAMPLES: usize = 100_000;

impl Samples {
    fn add(&mut self, v: f64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        if self.count == 0 || v > self.max {
            self.max = v;
        }
        self.count += 1;
        if self.values.len() < MAX_SAMPLES {
            self.values.push(v);
        }
    }

    /// count, min, median, p95, max (median and p95 over the kept samples).
    fn summary(&self) -> Option<(u64, f64, f64, f64, f64)> {
        if self.count == 0 {
            return None;
        }
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Some((self.count, self.min, at(0.5), at(0.95), self.max))
    }
}

#[derive(Debug)]
pub struct Stats {
    hosts: BoundedMap<IpAddr, Host>,
    macs: BoundedMap<[u8; 6], Mac>,
    rtt_lookup: Samples,
    rtt_discovery: Samples,
    pub libvirt: super::libvirt::Tables,
}

impl Stats {
    pub fn new(max_macs: usize, max_hosts: usize) -> Stats {
        Stats {
            hosts: BoundedMap::new(max_hosts),
            macs: BoundedMap::new(max_macs),
            rtt_lookup: Samples::default(),
            rtt_discovery: Samples::default(),
            libvirt: super::libvirt::Tables::new(max_hosts),
        }
    }

    pub fn evicted(&self) -> u64 {
        self.hosts.evicted + self.macs.evicted + self.libvirt.evicted()
    }

    /// Hosts and MACs the tables hold now.
    pub fn known(&self) -> (usize, usize) {
        (self.hosts.len(), self.macs.len())
    }

    /// Counts a packet from `src`; returns its host for the analysis to go on with.
    pub(super) fn packet(&mut self, src: IpAddr, d: &Dissection<'_>, ts: Timestamp) -> &mut Host {
        let host = self.hosts.entry(src, || Host { first: ts, ..Host::default() });
        host.packets += 1;
        host.last = ts;
        if let Some(Payload::Discovery(disc)) = d.ldm.map(|m| m.payload) {
            if let Some(name) = disc.hostname {
                replace_if_changed(&mut host.hostname, name.text());
            }
            if let Some(version) = disc.ldmd_version {
                replace_if_changed(&mut host.version, version.text());
            }
            host.port = disc.port_no.or(host.port);
        }
        host
    }

    /// The host of `ip`, if it is still in the table.
    pub(super) fn host_mut(&mut self, ip: &IpAddr) -> Option<&mut Host> {
        self.hosts.get_mut(ip)
    }

    /// Counts a lookup of `mac`; returns its entry for the analysis to go on with.
    pub(super) fn lookup(&mut self, mac: [u8; 6], requester: IpAddr) -> &mut Mac {
        let entry = self.macs.entry_reusing(mac, Mac::default, Mac::reset);
        entry.lookups += 1;
        entry.requester.get_or_insert(requester);
        entry
    }

    /// The entry of a MAC someone answered for.
    pub(super) fn answered(&mut self, mac: [u8; 6]) -> &mut Mac {
        self.macs.entry_reusing(mac, Mac::default, Mac::reset)
    }

    pub fn rtt(&mut self, msg_type: Option<MsgType>, secs: f64) {
        match msg_type {
            Some(MsgType::DiscResp) => self.rtt_discovery.add(secs),
            _ => self.rtt_lookup.add(secs),
        }
    }

    /// One `-z` table: a header row, then the data rows (`output` draws it
    /// as aligned text or as JSON records).
    pub fn rows(&self, kind: StatsKind, summary: &Summary) -> Vec<Vec<String>> {
        match kind {
            StatsKind::Summary => self.summary_rows(summary),
            StatsKind::Hosts => self.host_rows(),
            StatsKind::Macs => self.mac_rows(),
            StatsKind::Rtt => self.rtt_rows(),
            StatsKind::LibvirtProcs => self.libvirt_proc_rows(),
            StatsKind::LibvirtConversations => self.libvirt_conversation_rows(),
        }
    }

    fn summary_rows(&self, summary: &Summary) -> Vec<Vec<String>> {
        let mut rows = vec![vec!["item".to_string(), "severity".to_string(), "count".to_string()]];
        let types = [
            ("SEND_MSG", summary.send_msg),
            ("RESPONSE_MSG", summary.response_msg),
            ("LDMD_DISC_SEND", summary.disc_send),
            ("LDMD_DISC_RESP", summary.disc_resp),
            ("other", summary.other),
        ];
        rows.push(vec!["frames read".to_string(), String::new(), summary.frames.to_string()]);
        rows.push(vec!["ldm packets".to_string(), String::new(), summary.ldm.to_string()]);
        for (name, count) in types {
            rows.push(vec![format!("  {name}"), String::new(), count.to_string()]);
        }
        for info in CATALOGUE {
            if let Some(key) = crate::expert::Key::from_name(info.key) {
                if let Some(count) = summary.count(key) {
                    rows.push(vec![info.key.to_string(), info.severity.to_string(), count.to_string()]);
                }
            }
        }
        rows.push(vec!["analysis entries evicted".to_string(), String::new(), summary.evicted.to_string()]);
        rows
    }

    /// Calls, errors and latency per procedure, busiest first.
    fn libvirt_proc_rows(&self) -> Vec<Vec<String>> {
        let header = [
            "program",
            "procedure",
            "calls",
            "replies",
            "errors",
            "events",
            "streams",
            "stream_bytes",
            "rtt_avg_ms",
            "rtt_max_ms",
        ];
        let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
        let mut procs: Vec<_> = self.libvirt.procs.iter().collect();
        procs.sort_by_key(|((prog, proc_), p)| {
            (std::cmp::Reverse(p.calls + p.events + p.stream_messages), *prog, *proc_)
        });
        for ((prog, proc_), p) in procs {
            let program =
                crate::wire::libvirt::program_name(*prog).map_or_else(|| format!("{prog:#x}"), str::to_string);
            let procedure =
                crate::wire::libvirt::procedure_name(*prog, *proc_).map_or_else(|| proc_.to_string(), str::to_string);
            let avg = if p.replies > 0 { format!("{:.3}", p.rtt_sum / p.replies as f64 * 1e3) } else { String::new() };
            let max = if p.replies > 0 { format!("{:.3}", p.rtt_max * 1e3) } else { String::new() };
            rows.push(vec![
                program,
                procedure,
                p.calls.to_string(),
                p.replies.to_string(),
                p.errors.to_string(),
                p.events.to_string(),
                p.stream_messages.to_string(),
                p.stream_bytes.to_string(),
                avg,
                max,
            ]);
        }
        // Connections over TLS carry procedures nobody here can see: say so,
        // rather than leave the table empty on a TLS-only capture.
        let encrypted: Vec<_> = self.libvirt.conversations.iter().filter_map(|(_, c)| c.tls.as_ref()).collect();
        if !encrypted.is_empty() {
            let records: u64 = encrypted.iter().map(|tls| tls.records).sum();
            let procedure =
                format!("(encrypted: {} connection(s), {records} record(s); procedures not visible)", encrypted.len());
            let mut row = vec!["(TLS)".to_string(), procedure];
            row.extend(std::iter::repeat_n("-".to_string(), header.len() - 2));
            rows.push(row);
        }
        rows
    }

    /// One row per connection, in the order first seen.
    fn libvirt_conversation_rows(&self) -> Vec<Vec<String>> {
        let header = [
            "client",
            "server",
            "transport",
            "first",
            "last",
            "messages",
            "calls",
            "errors",
            "events",
            "tls_records",
            "bytes",
            "tls_version",
            "server_name",
        ];
        let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
        for (_, c) in self.libvirt.conversations.iter() {
            let (transport, records, version, server_name) = match &c.tls {
                None => ("libvirt", "-".to_string(), "-".to_string(), "-".to_string()),
                Some(tls) => (
                    "TLS",
                    tls.records.to_string(),
                    tls_versions(tls.offered, tls.chosen),
                    tls.server_name.clone().unwrap_or_else(|| "-".to_string()),
                ),
            };
            rows.push(vec![
                endpoint(c.client),
                endpoint(c.server),
                transport.to_string(),
                Rfc3339(c.first).to_string(),
                Rfc3339(c.last).to_string(),
                c.messages.to_string(),
                c.calls.to_string(),
                c.errors.to_string(),
                c.events.to_string(),
                records,
                c.bytes.to_string(),
                version,
                server_name,
            ]);
        }
        rows
    }

    fn host_rows(&self) -> Vec<Vec<String>> {
        let header = [
            "ip",
            "hostname",
            "link_src",
            "ldmd_version",
            "port",
            "first_seen",
            "last_seen",
            "packets",
            "lookups",
            "macs_claimed",
        ];
        let mut rows = vec![header.iter().map(|h| h.to_string()).collect()];
        let mut hosts: Vec<(&IpAddr, &Host)> = self.hosts.iter().collect();
        hosts.sort_by_key(|(ip, _)| **ip);
        for (ip, h) in hosts {
            rows.push(vec![
                ip.to_string(),
                h.hostname.as_deref().map(escaped).unwrap_or_else(|| "-".into()),
                h.link_srcs.first().map(|m| MacAddr(*m).to_string()).unwrap_or_else(|| "-".into()),
                h.version.as_deref().map(escaped).unwrap_or_else(|| "-".into()),
                h.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                Rfc3339(h.first).to_string(),
                Rfc3339(h.last).to_string(),
                h.packets.to_string(),
                h.lookups_sent.to_string(),
                h.macs_claimed.to_string(),
            ]);
        }
        rows
    }

    fn mac_rows(&self) -> Vec<Vec<String>> {
        let header = ["mac", "lookups", "looked_up_by", "owners", "collisions", "late", "verdict"];
        let mut rows = vec![header.iter().map(|h| h.to_string()).collect()];
        let mut macs: Vec<(&[u8; 6], &Mac)> = self.macs.iter().collect();
        macs.sort_by_key(|(mac, _)| **mac);
        for (mac, m) in macs {
            let owners: Vec<String> = m.owners.iter().map(|(o, _)| o.to_string()).collect();
            rows.push(vec![
                MacAddr(*mac).to_string(),
                m.lookups.to_string(),
                m.requester.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                if owners.is_empty() { "-".into() } else { owners.join(",") },
                m.collisions.to_string(),
                m.late.to_string(),
                m.verdict().to_string(),
            ]);
        }
        rows
    }

    fn rtt_rows(&self) -> Vec<Vec<String>> {
        let header = ["exchange", "count", "min_s", "median_s", "p95_s", "max_s"];
        let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
        for (name, samples) in [("mac lookup", &self.rtt_lookup), ("discovery", &self.rtt_discovery)] {
            let row = match samples.summary() {
                Some((count, min, median, p95, max)) => vec![
                    name.to_string(),
                    count.to_string(),
                    format!("{min:.6}"),
                    format!("{median:.6}"),
                    format!("{p95:.6}"),
                    format!("{max:.6}"),
                ],
                None => vec![name.to_string(), "0".into(), "-".into(), "-".into(), "-".into(), "-".into()],
            };
            rows.push(row);
        }
        rows
    }
}

/// Sets `slot` to `text`, allocating only when it changed (a host repeats
/// its name in every discovery response).
fn replace_if_changed(slot: &mut Option<Vec<u8>>, text: &[u8]) {
    if slot.as_deref() != Some(text) {
        *slot = Some(text.to_vec());
    }
}

/// A table cell as JSON: numbers as numbers, "-" (nothing) as null.
/// The TLS version a connection settled on (`TLS 1.3`), or what the client
/// offered when no ServerHello was captured (`TLS 1.3 offered`).
fn tls_versions(offered: Option<u16>, chosen: Option<u16>) -> String {
    match (offered, chosen) {
        (_, Some(chosen)) => crate::wire::tls::version_name(chosen),
        (Some(offered), None) => format!("{} offered", crate::wire::tls::version_name(offered)),
        (None, None) => "-".to_string(),
    }
}

/// `10.0.0.1:16509`, or `[fe80::1]:16509`.
fn endpoint((ip, port): (IpAddr, u16)) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Mac::reset` must leave what `Mac::default` makes; the analysis
    /// reuses evicted entries with it.
    #[test]
    fn a_reset_mac_is_a_default_one() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut mac = Mac { lookups: 3, requester: Some(ip), collisions: 1, late: 2, ..Mac::default() };
        mac.owner(ip, 7);
        mac.owner("10.0.0.2".parse().unwrap(), 9);
        let mut responders = ArrayVec::new();
        responders.push((ip, 5));
        mac.request =
            Some(super::super::LookupRequest { frame: 4, ts: Timestamp::default(), requester: ip, responders });
        assert_ne!(format!("{mac:?}"), format!("{:?}", Mac::default()));
        mac.reset();
        assert_eq!(format!("{mac:?}"), format!("{:?}", Mac::default()));
    }
}
