//! The report page: the data the template (`templates/report.html`) fills in.

use askama::Template;

use super::charts::{self, Drawn};
use super::{Ending, Report, Table};
use crate::dissect::fields::Rfc3339;
use crate::expert::Severity;

/// A chart, or why it could not be drawn.
struct Chart {
    svg: String,
    error: Option<String>,
}

impl From<Drawn> for Chart {
    fn from(drawn: Drawn) -> Chart {
        match drawn {
            Ok(svg) => Chart { svg, error: None },
            Err(e) => Chart { svg: String::new(), error: Some(format!("this chart could not be drawn: {e}")) },
        }
    }
}

/// The findings of one severity.
struct Group {
    name: &'static str,
    findings: Vec<FindingView>,
}

struct FindingView {
    key: &'static str,
    count: u64,
    frames: String,
    meaning: &'static str,
    action: &'static str,
}

struct TableView<'a> {
    id: &'static str,
    title: &'static str,
    /// The command that prints the whole table.
    command: String,
    table: &'a Table,
}

impl TableView<'_> {
    /// A MAC table row whose verdict is DUPLICATE: shown in red.
    fn is_duplicate(&self, row: usize) -> bool {
        self.id == "macs" && self.table.rows.get(row).and_then(|r| r.last()).is_some_and(|v| v == "DUPLICATE")
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    version: &'static str,
    source: &'a str,
    first: String,
    last: String,
    duration: String,
    report: &'a Report,
    ending: &'a Ending,
    window: String,
    groups: Vec<Group>,
    timeline: Chart,
    interval: String,
    flows: Option<Chart>,
    flows_about: String,
    rtt: Option<Chart>,
    tables: Vec<TableView<'a>>,
    latency: Option<Chart>,
    /// Most procedures in the latency chart.
    procedures_charted: usize,
}

pub fn render(report: &Report, ending: &Ending) -> String {
    let start = report.first.map(readable).unwrap_or_else(|| "the first frame".to_string());
    let page = Page {
        version: env!("CARGO_PKG_VERSION"),
        source: &ending.source,
        first: report.first.map(readable).unwrap_or_else(|| "- (no frames)".to_string()),
        last: report.latest.map(readable).unwrap_or_else(|| "-".to_string()),
        duration: format!("{:.6} s", report.span),
        report,
        ending,
        window: format!("{} s", report.window),
        groups: groups(report),
        timeline: charts::timeline(&report.intervals, &start).into(),
        interval: super::timeline::describe(report.intervals.width_secs),
        flows: (!report.flows.arrows.is_empty() || report.flows.exchanges > 0).then(|| {
            let names = |ip: std::net::IpAddr| match report.hostnames.get(&ip) {
                Some(name) if name != "-" => name.clone(),
                _ if ip.is_multicast() => "ldmd group".to_string(),
                _ => String::new(),
            };
            charts::flows(&report.flows, &names).into()
        }),
        flows_about: flows_about(report),
        rtt: (!report.rtt.is_empty()).then(|| charts::rtt(&report.rtt, report.window).into()),
        tables: tables(report, ending),
        latency: (!report.latencies.is_empty()).then(|| charts::latencies(&report.latencies).into()),
        procedures_charted: super::MAX_PROCEDURES_CHARTED,
    };
    page.render().unwrap_or_else(|e| {
        format!("<!DOCTYPE html><title>ldm-sniff report</title><p>The report could not be made: {e}</p>\n")
    })
}

/// `2026-11-02 09:30:00 UTC`, with the fraction only when there is one
/// (to the microsecond, as the packet lines show it).
fn readable(ts: crate::capture::Timestamp) -> String {
    let text = Rfc3339(ts).to_string();
    let Some((date_time, _)) = text.split_once('.') else { return text.replace('T', " ") };
    let date_time = date_time.replace('T', " ");
    match ts.nanos {
        0 => format!("{date_time} UTC"),
        n => format!("{date_time}.{:06} UTC", n / 1000),
    }
}

fn groups(report: &Report) -> Vec<Group> {
    let severities = [(Severity::Error, "errors"), (Severity::Warn, "warnings"), (Severity::Note, "notes")];
    severities
        .into_iter()
        .map(|(severity, name)| Group {
            name,
            findings: report
                .findings
                .iter()
                .filter(|f| f.key.severity() == severity)
                .map(|f| {
                    let info = f.key.info();
                    let mut frames: Vec<String> =
                        f.frames.iter().map(|(frame, at)| format!("{frame} ({at:.3} s)")).collect();
                    let listed = f.frames.len() as u64;
                    if f.count > listed {
                        frames.push(format!("and {} more", f.count - listed));
                    }
                    FindingView {
                        key: info.key,
                        count: f.count,
                        frames: frames.join(", "),
                        meaning: info.meaning,
                        action: info.action,
                    }
                })
                .collect(),
        })
        .filter(|g| !g.findings.is_empty())
        .collect()
}

/// The command that prints a whole `-z` table: of the same file, or, live,
/// the option to capture with.
fn whole_table(ending: &Ending, kind: &str) -> String {
    if !ending.from_file {
        return format!("-z {kind} (with the capture's other options)");
    }
    let source = &ending.source;
    // Quoted for a shell when it is more than plain path characters.
    let plain = source.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@,".contains(c));
    let quoted = if plain { source.clone() } else { format!("'{}'", source.replace('\'', "'\\''")) };
    format!("ldm-sniff -q -r {quoted} -z {kind}")
}

fn flows_about(report: &Report) -> String {
    let v = &report.flows;
    if v.complete {
        return format!("All {} exchange(s) of the capture, {} packet(s).", v.exchanges, v.arrows.len());
    }
    let drawn = v.flagged - v.flagged_not_drawn;
    let mut about = format!(
        "{} exchanges: too many to draw, so only the {drawn} with findings are drawn, each whole; {} without findings are counted where they were left out.",
        v.exchanges,
        v.exchanges.saturating_sub(v.flagged)
    );
    if v.flagged_not_drawn > 0 {
        about.push_str(&format!(
            " About {} more exchange(s) with findings are not drawn: the verdict counts their findings.",
            v.flagged_not_drawn
        ));
    }
    about
}

fn tables<'a>(report: &'a Report, ending: &Ending) -> Vec<TableView<'a>> {
    let candidates = [
        ("hosts", "Hosts (-z ldm,hosts)", "ldm,hosts", &report.hosts),
        ("macs", "MACs looked up (-z ldm,macs)", "ldm,macs", &report.macs),
        ("procs", "libvirt procedures (-z libvirt,procs)", "libvirt,procs", &report.procedures),
    ];
    candidates
        .into_iter()
        .filter(|(_, _, _, table)| !table.rows.is_empty())
        .map(|(id, title, kind, table)| TableView { id, title, command: whole_table(ending, kind), table })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(source: &str, from_file: bool) -> Ending {
        Ending { source: source.to_string(), from_file, exit_status: 0, exit_reason: String::new() }
    }

    #[test]
    fn the_whole_table_is_one_command_away() {
        assert_eq!(
            whole_table(&ending("captures/a.pcapng", true), "ldm,macs"),
            "ldm-sniff -q -r captures/a.pcapng -z ldm,macs"
        );
        assert_eq!(
            whole_table(&ending("it's here.pcap", true), "ldm,hosts"),
            "ldm-sniff -q -r 'it'\\''s here.pcap' -z ldm,hosts"
        );
        assert_eq!(whole_table(&ending("eth0", false), "ldm,macs"), "-z ldm,macs (with the capture's other options)");
    }
}
