//! `--report FILE.html`: one page that tells what a capture shows, for
//! people who will not read the packet lines: the verdict first, then a
//! timeline, the flow graph, response times and the inventory.
//!
//! The pipeline hands a [`Recorder`] every frame and packet as it goes (its
//! memory is bounded, however long the run); at the end [`Recorder::finish`]
//! takes the analysis's tables, and [`Report::render`] draws the page from
//! `templates/report.html` with the charts in SVG (`charts`).

mod charts;
pub mod flows;
mod page;
pub mod timeline;

use std::collections::HashSet;
use std::net::IpAddr;

use crate::analyze::{Annotation, Stats, StatsKind, Summary};
use crate::capture::Timestamp;
use crate::dissect::Dissection;
use crate::expert::{Key, MacAddr, Severity};
use crate::wire::ldm::MsgType;

use flows::{Arrow, FlowView, Flows};
use timeline::Timeline;

/// Frames listed per finding key in the verdict.
const FRAMES_LISTED: usize = 12;
/// Most rows of an inventory table on the page (the `-z` table has them all).
const MAX_TABLE_ROWS: usize = 1_000;
/// Most libvirt procedures in the reply-time chart (the busiest).
const MAX_PROCEDURES_CHARTED: usize = 40;
/// Most addresses, MACs or procedures remembered to narrow the tables to
/// what `-Y` matched.
const MAX_SEEN: usize = 1 << 20;

/// Response-time histogram bins: 4 per decade from 10 µs to 100 s.
const RTT_BINS_PER_DECADE: usize = 4;
const RTT_LOWEST_DECADE: i32 = -5;
const RTT_DECADES: usize = 7;
const RTT_BINS: usize = RTT_BINS_PER_DECADE * RTT_DECADES;

/// Response times of lookups and of discovery, binned.
#[derive(Debug, Clone)]
pub struct RttHistogram {
    pub lookup: [u64; RTT_BINS],
    pub discovery: [u64; RTT_BINS],
    /// Responses after the window, of each kind.
    pub late: u64,
}

impl Default for RttHistogram {
    fn default() -> RttHistogram {
        RttHistogram { lookup: [0; RTT_BINS], discovery: [0; RTT_BINS], late: 0 }
    }
}

impl RttHistogram {
    fn add(&mut self, msg_type: Option<MsgType>, secs: f64, window: f64) {
        let bin = rtt_bin(secs);
        match msg_type {
            Some(MsgType::DiscResp) => self.discovery[bin] += 1,
            _ => self.lookup[bin] += 1,
        }
        if secs > window {
            self.late += 1;
        }
    }

    /// The bounds of bin `i`, in seconds.
    pub fn bounds(i: usize) -> (f64, f64) {
        let exponent = |j: usize| RTT_LOWEST_DECADE as f64 + j as f64 / RTT_BINS_PER_DECADE as f64;
        (10f64.powf(exponent(i)), 10f64.powf(exponent(i + 1)))
    }

    pub fn is_empty(&self) -> bool {
        self.lookup.iter().chain(&self.discovery).all(|&n| n == 0)
    }
}

/// The bin of a response time (times outside the range go to the end bins).
fn rtt_bin(secs: f64) -> usize {
    if secs.is_nan() || secs <= 0.0 {
        return 0;
    }
    let position = (secs.log10() - RTT_LOWEST_DECADE as f64) * RTT_BINS_PER_DECADE as f64;
    position.floor().clamp(0.0, (RTT_BINS - 1) as f64) as usize
}

/// Where one finding key was raised.
#[derive(Debug, Default, Clone)]
struct KeyFrames {
    /// The first frames, with seconds since the first frame.
    first: Vec<(u64, f64)>,
}

/// What `-Y` matched, to narrow the inventory to it.
#[derive(Debug, Default)]
struct Seen {
    hosts: HashSet<IpAddr>,
    macs: HashSet<[u8; 6]>,
    procedures: HashSet<(u32, i32)>,
}

impl Seen {
    fn packet(&mut self, d: &Dissection<'_>) {
        if let Some(ip) = &d.ip {
            insert_bounded(&mut self.hosts, ip.src);
            insert_bounded(&mut self.hosts, ip.dst);
        }
        if let Some(mac) = d.ldm.and_then(|m| m.mac()) {
            insert_bounded(&mut self.macs, mac);
        }
        if let Some(m) = &d.libvirt {
            insert_bounded(&mut self.procedures, (m.header.prog, m.header.proc_));
        }
    }
}

fn insert_bounded<T: std::hash::Hash + Eq>(set: &mut HashSet<T>, value: T) {
    if set.len() < MAX_SEEN {
        set.insert(value);
    }
}

/// Collects what the page shows while the pipeline runs.
#[derive(Debug)]
pub struct Recorder {
    window: f64,
    /// `-Y`, as typed: the page narrows to it.
    filter: Option<String>,
    first: Option<Timestamp>,
    latest: Option<Timestamp>,
    /// Seconds from the first frame to the latest.
    span: f64,
    timeline: Timeline,
    flows: Flows,
    rtt: RttHistogram,
    keys: Vec<KeyFrames>,
    seen: Seen,
}

impl Recorder {
    pub fn new(window: f64, filter: Option<String>) -> Recorder {
        Recorder {
            window,
            filter,
            first: None,
            latest: None,
            span: 0.0,
            timeline: Timeline::default(),
            flows: Flows::default(),
            rtt: RttHistogram::default(),
            keys: vec![KeyFrames::default(); Key::ALL.len()],
            seen: Seen::default(),
        }
    }

    /// Seconds from the first frame (never before it: a frame stamped
    /// earlier counts at the start).
    fn offset(&mut self, ts: Timestamp) -> f64 {
        let first = *self.first.get_or_insert(ts);
        self.latest = self.latest.max(Some(ts));
        let offset = ts.seconds_since(first).max(0.0);
        self.span = self.span.max(offset);
        offset
    }

    /// A frame read (each once).
    pub fn frame(&mut self, ts: Timestamp) {
        self.offset(ts);
    }

    /// An ldm packet or libvirt message, with what the analysis says of it.
    /// `shown`: it matches `-Y` (or there is none), so the flow graph,
    /// response times and inventory include it; the verdict and timeline
    /// count every packet.
    pub fn packet(&mut self, d: &Dissection<'_>, note: &Annotation, shown: bool) {
        let at = self.offset(d.frame.ts);
        let counts = self.timeline.at((at * 1e6) as u64);
        match d.ldm.map(|m| (m.is_bad_magic(), m.msg_type)) {
            _ if d.is_libvirt() => counts.libvirt += 1,
            Some((false, Some(MsgType::SendMsg))) => counts.lookups += 1,
            Some((false, Some(MsgType::ResponseMsg))) => counts.responses += 1,
            Some((false, Some(MsgType::DiscSend | MsgType::DiscResp))) => counts.discovery += 1,
            _ => counts.other += 1,
        }
        let findings = d.findings.iter().chain(&note.findings);
        for finding in findings.clone() {
            match finding.severity() {
                Severity::Error => counts.errors += 1,
                Severity::Warn => counts.warnings += 1,
                Severity::Note => counts.notes += 1,
            }
            let frames = &mut self.keys[finding.key as usize].first;
            if frames.len() < FRAMES_LISTED && frames.last().is_none_or(|(n, _)| *n != d.frame.number) {
                frames.push((d.frame.number, at));
            }
        }
        if !shown {
            return;
        }
        if self.filter.is_some() {
            self.seen.packet(d);
        }
        let (Some(msg), Some(ip)) = (d.ldm, &d.ip) else { return };
        if let Some(rtt) = note.rtt {
            self.rtt.add(msg.msg_type, rtt, self.window);
        }
        let mut keys: Vec<Key> = findings.map(|f| f.key).collect();
        keys.sort();
        keys.dedup();
        let arrow = Arrow {
            frame: d.frame.number,
            at,
            from: ip.src,
            to: ip.dst,
            kind: msg.kind_name(),
            msg_type: msg.msg_type.filter(|_| !msg.is_bad_magic()),
            mac: msg.mac(),
            rtt: note.rtt,
            keys,
            exchange: 0,
        };
        self.flows.packet(arrow, note.request_in);
    }

    /// The report's data, with the analysis's tables at the end of the run.
    pub fn finish(self, stats: &Stats, summary: &Summary) -> Report {
        let narrow = self.filter.is_some();
        let seen = &self.seen;
        let hosts = table(stats.rows(StatsKind::Hosts, summary), |row| {
            !narrow || row[0].parse::<IpAddr>().is_ok_and(|ip| seen.hosts.contains(&ip))
        });
        let seen_macs: HashSet<String> = seen.macs.iter().map(|m| MacAddr(*m).to_string()).collect();
        let mut macs = table(stats.rows(StatsKind::Macs, summary), |row| !narrow || seen_macs.contains(&row[0]));
        // The duplicated MACs first: they are what the page is read for.
        macs.rows.sort_by_key(|row| row.last().map(String::as_str) != Some("DUPLICATE"));
        let seen_procedures: HashSet<(String, String)> =
            seen.procedures.iter().map(|&(prog, proc_)| procedure_names(prog, proc_)).collect();
        let procedures = table(stats.rows(StatsKind::LibvirtProcs, summary), |row| {
            !narrow || row[0] == "(TLS)" || seen_procedures.contains(&(row[0].clone(), row[1].clone()))
        });
        let mut latencies: Vec<ProcLatency> = stats
            .libvirt
            .procs
            .iter()
            .filter(|(_, p)| p.replies > 0)
            .filter(|((prog, proc_), _)| !narrow || seen.procedures.contains(&(*prog, *proc_)))
            .map(|(&(prog, proc_), p)| {
                let (program, procedure) = procedure_names(prog, proc_);
                ProcLatency {
                    // Most calls are REMOTE's: their names alone read best.
                    name: if program == "REMOTE" { procedure } else { format!("{program} {procedure}") },
                    replies: p.replies,
                    avg_secs: p.rtt_sum / p.replies as f64,
                    max_secs: p.rtt_max,
                }
            })
            .collect();
        latencies.sort_by(|a, b| b.replies.cmp(&a.replies).then_with(|| a.name.cmp(&b.name)));
        latencies.truncate(MAX_PROCEDURES_CHARTED);
        let findings = self.findings(summary);
        let hostnames = hosts.rows.iter().filter_map(|row| Some((row[0].parse().ok()?, row[1].clone()))).collect();
        Report {
            window: self.window,
            filter: self.filter,
            first: self.first,
            latest: self.latest,
            span: self.span,
            summary: summary.clone(),
            findings,
            intervals: self.timeline.intervals((self.span * 1e6) as u64),
            flows: self.flows.view(),
            hostnames,
            rtt: self.rtt,
            hosts,
            macs: macs.capped(),
            procedures: procedures.capped(),
            latencies,
        }
    }

    /// Every key raised, worst first, then in catalogue order.
    fn findings(&self, summary: &Summary) -> Vec<KeyFindings> {
        let mut found: Vec<KeyFindings> = Key::ALL
            .iter()
            .filter_map(|&key| {
                let count = summary.count(key)?;
                Some(KeyFindings { key, count, frames: self.keys[key as usize].first.clone() })
            })
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.key.severity()));
        found
    }
}

/// A procedure's program and name as the `-z libvirt,procs` table gives them.
fn procedure_names(prog: u32, proc_: i32) -> (String, String) {
    let program = crate::wire::libvirt::program_name(prog).map_or_else(|| format!("{prog:#x}"), str::to_string);
    let procedure = crate::wire::libvirt::procedure_name(prog, proc_).map_or_else(|| proc_.to_string(), str::to_string);
    (program, procedure)
}

fn table(mut rows: Vec<Vec<String>>, keep: impl Fn(&[String]) -> bool) -> Table {
    let header = if rows.is_empty() { Vec::new() } else { rows.remove(0) };
    rows.retain(|row| keep(row));
    Table { header, rows, not_shown: 0 }
}

/// One key's findings.
#[derive(Debug)]
pub struct KeyFindings {
    pub key: Key,
    pub count: u64,
    /// The first frames that raised it, with seconds since the first frame.
    pub frames: Vec<(u64, f64)>,
}

/// One `-z` table: its header and rows.
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Rows left off the page.
    pub not_shown: usize,
}

impl Table {
    fn capped(mut self) -> Table {
        if self.rows.len() > MAX_TABLE_ROWS {
            self.not_shown = self.rows.len() - MAX_TABLE_ROWS;
            self.rows.truncate(MAX_TABLE_ROWS);
        }
        self
    }
}

/// A libvirt procedure's reply times.
#[derive(Debug)]
pub struct ProcLatency {
    pub name: String,
    pub replies: u64,
    pub avg_secs: f64,
    pub max_secs: f64,
}

/// Everything the page shows, once the run is over.
#[derive(Debug)]
pub struct Report {
    window: f64,
    filter: Option<String>,
    first: Option<Timestamp>,
    latest: Option<Timestamp>,
    span: f64,
    summary: Summary,
    findings: Vec<KeyFindings>,
    intervals: timeline::Intervals,
    flows: FlowView,
    hostnames: std::collections::HashMap<IpAddr, String>,
    rtt: RttHistogram,
    hosts: Table,
    macs: Table,
    procedures: Table,
    latencies: Vec<ProcLatency>,
}

/// How the run ended, which only its caller knows.
#[derive(Debug)]
pub struct Ending {
    /// What was read: the file, or the interface.
    pub source: String,
    /// The source is a file (`-r`), which a command can read again.
    pub from_file: bool,
    pub exit_status: u8,
    /// Why it is that status, in a line.
    pub exit_reason: String,
}

impl Report {
    /// The page, as HTML.
    pub fn render(&self, ending: &Ending) -> String {
        page::render(self, ending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_times_fall_in_their_bins() {
        assert_eq!(rtt_bin(0.0), 0);
        assert_eq!(rtt_bin(f64::NAN), 0);
        assert_eq!(rtt_bin(1e-5), 0);
        assert_eq!(rtt_bin(1.0), 20);
        assert_eq!(rtt_bin(1.45), 20);
        assert_eq!(rtt_bin(1e9), RTT_BINS - 1);
        let (low, high) = RttHistogram::bounds(20);
        assert!((low - 1.0).abs() < 1e-9 && (high - 10f64.powf(0.25)).abs() < 1e-9);
    }
}
