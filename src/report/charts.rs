//! The report's charts, drawn as SVG with plotters (no font library: the
//! SVG names a font family and the browser draws the text).

use std::net::IpAddr;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::flows::{Arrow, FlowView};
use super::timeline::{describe, Counts, Intervals};
use super::{ProcLatency, RttHistogram, RTT_BINS};
use crate::expert::Severity;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub type Drawn = Result<String, String>;

// Colour-blind-safe (Paul Tol's bright scheme), and distinct in grey print.
const LOOKUP: RGBColor = RGBColor(0x44, 0x77, 0xaa);
const RESPONSE: RGBColor = RGBColor(0x66, 0xcc, 0xee);
const DISCOVERY: RGBColor = RGBColor(0x22, 0x88, 0x33);
const LIBVIRT: RGBColor = RGBColor(0xcc, 0xbb, 0x44);
const OTHER: RGBColor = RGBColor(0xbb, 0xbb, 0xbb);
const ERROR: RGBColor = RGBColor(0xcc, 0x22, 0x33);
const WARN: RGBColor = RGBColor(0xee, 0x77, 0x33);
const NOTE: RGBColor = RGBColor(0x77, 0x77, 0x77);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const LIFELINE: RGBColor = RGBColor(0xcc, 0xcc, 0xcc);

const FONT: &str = "sans-serif";
const MONO: &str = "monospace";

/// Draws into a fresh SVG of `size`; plotters' errors become text for the page.
fn svg(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Result<(), Box<dyn std::error::Error>>) -> Drawn {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}

fn severity_color(severity: Severity) -> RGBColor {
    match severity {
        Severity::Error => ERROR,
        Severity::Warn => WARN,
        Severity::Note => NOTE,
    }
}

/// One of an interval's counts.
type CountOf = fn(&Counts) -> u64;

/// Packets per interval, stacked by kind, with a marker over each interval
/// that raised findings (one row of markers per severity).
pub fn timeline(intervals: &Intervals, start: &str) -> Drawn {
    let counts = &intervals.counts;
    let width = intervals.width_secs;
    let x_end = counts.len().max(1) as f64 * width;
    let highest = counts.iter().map(|c| c.packets()).max().unwrap_or(0).max(1);
    // Room above the bars for the three rows of markers.
    let y_end = highest + highest.div_ceil(3).max(3);
    svg((960, 320), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_end, 0u64..y_end)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(format!("seconds since {start}"))
            .y_desc(format!("packets per {}", describe(width)))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        let kinds: [(&str, RGBColor, CountOf); 5] = [
            ("MAC lookups", LOOKUP, |c| c.lookups),
            ("lookup responses", RESPONSE, |c| c.responses),
            ("discovery", DISCOVERY, |c| c.discovery),
            ("libvirt messages", LIBVIRT, |c| c.libvirt),
            ("other ldm", OTHER, |c| c.other),
        ];
        let mut base = vec![0u64; counts.len()];
        for (name, color, count) in kinds {
            if counts.iter().all(|c| count(c) == 0) {
                continue;
            }
            let bars: Vec<Rectangle<(f64, u64)>> = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| count(c) > 0)
                .map(|(i, c)| {
                    let x = i as f64 * width;
                    let bottom = base[i];
                    Rectangle::new([(x, bottom), (x + width * 0.85, bottom + count(c))], color.filled())
                })
                .collect();
            for (i, c) in counts.iter().enumerate() {
                base[i] += count(c);
            }
            chart
                .draw_series(bars)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
        // Three rows of markers in the room above the highest bar.
        let row = |n: u64| highest + (y_end - highest) * n / 4;
        let markers: [(&str, RGBColor, u64, CountOf); 3] = [
            ("errors", ERROR, row(3), |c| c.errors),
            ("warnings", WARN, row(2), |c| c.warnings),
            ("notes", NOTE, row(1), |c| c.notes),
        ];
        for (name, color, height, count) in markers {
            if counts.iter().all(|c| count(c) == 0) {
                continue;
            }
            let points = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| count(c) > 0)
                .map(|(i, _)| TriangleMarker::new(((i as f64 + 0.42) * width, height), 6, color.filled()));
            chart
                .draw_series(points)?
                .label(format!("findings: {name}"))
                .legend(move |(x, y)| TriangleMarker::new((x + 5, y), 6, color.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// The key to a chart's series, on a white ground over the bars.
fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), Box<dyn std::error::Error>> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(LIFELINE)
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
}

/// `10 µs`, `1 ms`, `1 s`: a tick on a seconds axis.
fn seconds_label(secs: f64) -> String {
    match secs {
        s if s < 1e-3 => format!("{} µs", (s * 1e6).round()),
        s if s < 1.0 => format!("{} ms", (s * 1e3 * 1000.0).round() / 1000.0),
        s => format!("{} s", (s * 1000.0).round() / 1000.0),
    }
}

/// Response times of lookups and discovery, stacked per bin, on a log
/// scale, with the window marked.
pub fn rtt(histogram: &RttHistogram, window: f64) -> Drawn {
    let (low, _) = RttHistogram::bounds(0);
    let (_, high) = RttHistogram::bounds(RTT_BINS - 1);
    let highest = (0..RTT_BINS).map(|i| histogram.lookup[i] + histogram.discovery[i]).max().unwrap_or(0).max(1);
    let y_end = highest + highest.div_ceil(6).max(1);
    svg((960, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((low..high).log_scale(), 0u64..y_end)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("response time (log scale)")
            .y_desc("responses")
            .x_label_formatter(&|v| seconds_label(*v))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        let series: [(&str, RGBColor, &[u64; RTT_BINS], &[u64; RTT_BINS]); 2] = [
            ("MAC lookup responses", LOOKUP, &histogram.lookup, &[0; RTT_BINS]),
            ("discovery responses", DISCOVERY, &histogram.discovery, &histogram.lookup),
        ];
        for (name, color, counts, below) in series {
            if counts.iter().all(|&n| n == 0) {
                continue;
            }
            let bars = (0..RTT_BINS).filter(|&i| counts[i] > 0).map(|i| {
                let (from, to) = RttHistogram::bounds(i);
                let bottom = below[i];
                Rectangle::new([(from, bottom), (from + (to - from) * 0.9, bottom + counts[i])], color.filled())
            });
            chart
                .draw_series(bars)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
        let line = ERROR.stroke_width(2);
        chart
            .draw_series(LineSeries::new([(window, 0), (window, y_end)], line))?
            .label(format!("window {}", seconds_label(window)))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], line));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Reply times per libvirt procedure: the average as a bar, the slowest as
/// a cross, on a log scale of milliseconds; the busiest procedure on top.
pub fn latencies(procedures: &[ProcLatency]) -> Drawn {
    let n = procedures.len().max(1);
    let ms = |secs: f64| (secs * 1e3).max(1e-3);
    let low = procedures.iter().map(|p| ms(p.avg_secs)).fold(f64::MAX, f64::min).min(1.0) / 2.0;
    let high = procedures.iter().map(|p| ms(p.max_secs)).fold(0.0, f64::max).max(1.0) * 2.0;
    let height = 70 + 22 * n as u32;
    // Row i at height n - 1 - i: the first (busiest) on top.
    let row = |i: usize| (n - 1 - i) as f64;
    svg((960, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(300)
            .build_cartesian_2d((low..high).log_scale(), -0.5..n as f64 - 0.5)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("reply time, ms (log scale): bar the average, cross the slowest")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()?;
        chart.draw_series(
            procedures.iter().enumerate().map(|(i, p)| {
                Rectangle::new([(low, row(i) - 0.36), (ms(p.avg_secs), row(i) + 0.36)], LIBVIRT.filled())
            }),
        )?;
        chart.draw_series(
            procedures.iter().enumerate().map(|(i, p)| Cross::new((ms(p.max_secs), row(i)), 5, INK.stroke_width(2))),
        )?;
        // The names, right-aligned against the axis (plotters' own labels
        // fall between rows for some counts).
        let name_style = (FONT, 12).into_font().color(&INK).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, p) in procedures.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(low, row(i)));
            root.draw(&Text::new(p.name.clone(), (x - 8, y), name_style.clone()))?;
        }
        Ok(())
    })
}

// The flow graph's layout, in pixels.
const FLOW_LEFT: i32 = 96;
const FLOW_COLUMN: i32 = 136;
const FLOW_HEADER: i32 = 64;
const FLOW_ROW: i32 = 34;
const FLOW_NOTES: i32 = 300;

/// One row of the flow graph: an arrow, or a line saying what was left out.
enum FlowRow<'a> {
    Arrow(&'a Arrow),
    Skipped(u64),
}

/// The flow graph: one column per host (and one for the ldmd group), an
/// arrow per packet in time order, labelled above, findings on the right.
pub fn flows(view: &FlowView, names: &dyn Fn(IpAddr) -> String) -> Drawn {
    let columns = Columns::new(&view.arrows);
    let rows = flow_rows(view);
    let width = FLOW_LEFT + FLOW_COLUMN * columns.count() + FLOW_NOTES;
    let height = FLOW_HEADER + FLOW_ROW * rows.len() as i32 + 16;
    svg((width.max(400) as u32, height as u32), |root| {
        let bold = (FONT, 13).into_font().style(FontStyle::Bold).color(&INK);
        let small = (FONT, 11).into_font().color(&INK);
        let mono = (MONO, 12).into_font().color(&INK);
        root.draw(&Text::new("seconds", (8, 12), small.clone()))?;
        root.draw(&Text::new("frame", (8, 28), small.clone()))?;
        let top = Pos::new(HPos::Center, VPos::Top);
        for (x, title, subtitle) in columns.headings(names) {
            root.draw(&Text::new(title, (x, 8), bold.clone().pos(top)))?;
            root.draw(&Text::new(subtitle, (x, 26), small.clone().pos(top)))?;
            root.draw(&PathElement::new([(x, FLOW_HEADER - 16), (x, height - 8)], LIFELINE.stroke_width(2)))?;
        }
        for (i, row) in rows.iter().enumerate() {
            let y = FLOW_HEADER + FLOW_ROW * i as i32 + 20;
            match row {
                FlowRow::Skipped(count) => {
                    let text = format!("… {count} exchange(s) without findings not drawn …");
                    root.draw(&Text::new(text, (FLOW_LEFT, y - 6), small.clone()))?;
                }
                FlowRow::Arrow(a) => draw_arrow(root, a, &columns, y, &mono, &small)?,
            }
        }
        Ok(())
    })
}

/// Most hosts with a column of their own; the others share one.
const MAX_HOST_COLUMNS: usize = 10;

/// The flow graph's columns: the hosts with the most packets (in address
/// order), one for the rest if there are more, then the multicast groups.
struct Columns {
    hosts: Vec<IpAddr>,
    /// Hosts drawn in the shared column.
    others: usize,
    groups: Vec<IpAddr>,
}

impl Columns {
    fn new(arrows: &[Arrow]) -> Columns {
        let mut packets: std::collections::BTreeMap<IpAddr, usize> = std::collections::BTreeMap::new();
        for a in arrows {
            *packets.entry(a.from).or_default() += 1;
            *packets.entry(a.to).or_default() += 1;
        }
        let (groups, mut hosts): (Vec<_>, Vec<_>) = packets.into_iter().partition(|(ip, _)| ip.is_multicast());
        // The busiest first, then by address; keep the busiest, in address order.
        hosts.sort_by(|(a, m), (b, n)| n.cmp(m).then(a.cmp(b)));
        let others = hosts.len().saturating_sub(MAX_HOST_COLUMNS);
        let mut kept: Vec<IpAddr> = hosts.into_iter().take(MAX_HOST_COLUMNS).map(|(ip, _)| ip).collect();
        kept.sort();
        Columns { hosts: kept, others, groups: groups.into_iter().map(|(ip, _)| ip).collect() }
    }

    fn count(&self) -> i32 {
        (self.hosts.len() + usize::from(self.others > 0) + self.groups.len()) as i32
    }

    fn x_of_index(index: usize) -> i32 {
        FLOW_LEFT + FLOW_COLUMN / 2 + FLOW_COLUMN * index as i32
    }

    /// Where `ip`'s lifeline is, and whether it shares the column of the others.
    fn x(&self, ip: IpAddr) -> (i32, bool) {
        if let Some(i) = self.hosts.iter().position(|h| *h == ip) {
            return (Columns::x_of_index(i), false);
        }
        let others = usize::from(self.others > 0);
        match self.groups.iter().position(|g| *g == ip) {
            Some(i) => (Columns::x_of_index(self.hosts.len() + others + i), false),
            None => (Columns::x_of_index(self.hosts.len()), true),
        }
    }

    /// Each column's place, address and name.
    fn headings(&self, names: &dyn Fn(IpAddr) -> String) -> Vec<(i32, String, String)> {
        let mut headings: Vec<(i32, String, String)> =
            self.hosts.iter().map(|&ip| (self.x(ip).0, ip.to_string(), names(ip))).collect();
        if self.others > 0 {
            let x = Columns::x_of_index(self.hosts.len());
            headings.push((x, format!("{} other hosts", self.others), "address on the right".to_string()));
        }
        headings.extend(self.groups.iter().map(|&ip| (self.x(ip).0, ip.to_string(), names(ip))));
        headings
    }
}

/// The rows: every arrow, and where exchanges were left out, how many.
fn flow_rows(view: &FlowView) -> Vec<FlowRow<'_>> {
    let mut rows = Vec::new();
    let mut last_exchange = 0;
    for a in &view.arrows {
        if !view.complete && a.exchange > last_exchange + 1 {
            rows.push(FlowRow::Skipped(a.exchange - last_exchange - 1));
        }
        last_exchange = last_exchange.max(a.exchange);
        rows.push(FlowRow::Arrow(a));
    }
    if !view.complete && view.exchanges > last_exchange {
        rows.push(FlowRow::Skipped(view.exchanges - last_exchange));
    }
    rows
}

fn draw_arrow(
    root: &Area<'_>,
    a: &Arrow,
    columns: &Columns,
    y: i32,
    mono: &TextStyle<'_>,
    small: &TextStyle<'_>,
) -> Result<(), Box<dyn std::error::Error>> {
    let ((from, from_shared), (to, to_shared)) = (columns.x(a.from), columns.x(a.to));
    let color = a.worst().map_or(INK, severity_color);
    let stroke = if a.worst() == Some(Severity::Error) { 3 } else { 1 };
    root.draw(&Text::new(format!("{:.6}", a.at), (8, y - 10), mono.clone()))?;
    root.draw(&Text::new(format!("#{}", a.frame), (8, y + 4), small.clone()))?;
    // A packet to itself (or to a host with no column) gets a short stub.
    let to = if to == from { from + FLOW_COLUMN / 2 } else { to };
    let direction = (to - from).signum();
    root.draw(&PathElement::new([(from, y), (to - direction * 2, y)], color.stroke_width(stroke)))?;
    let head = [(to, y), (to - direction * 10, y - 5), (to - direction * 10, y + 5)];
    root.draw(&Polygon::new(head, color.filled()))?;
    let mut label = a.kind.to_string();
    if let Some(mac) = a.mac {
        label.push(' ');
        label.push_str(&crate::expert::MacAddr(mac).to_string());
    }
    let centre = Pos::new(HPos::Center, VPos::Bottom);
    root.draw(&Text::new(label, ((from + to) / 2, y - 3), mono.clone().color(&color).pos(centre)))?;
    let notes_x = root.dim_in_pixel().0 as i32 - FLOW_NOTES + 8;
    let mut notes = Vec::new();
    // A host in the shared column is named here.
    match (from_shared, to_shared) {
        (true, true) => notes.push(format!("{} → {}", a.from, a.to)),
        (true, false) => notes.push(format!("from {}", a.from)),
        (false, true) => notes.push(format!("to {}", a.to)),
        (false, false) => {}
    }
    if let Some(rtt) = a.rtt {
        notes.push(format!("rtt {rtt:.3} s"));
    }
    notes.extend(a.keys.iter().map(|k| k.name().to_string()));
    if !notes.is_empty() {
        root.draw(&Text::new(notes.join("  "), (notes_x, y - 6), small.clone().color(&color)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_procedure_or_many_make_a_latency_chart() {
        for n in [1, 2, 40] {
            let procedures: Vec<ProcLatency> = (0..n)
                .map(|i| ProcLatency {
                    name: format!("PROC_{i}"),
                    replies: 1,
                    avg_secs: 1e-4 * (i + 1) as f64,
                    max_secs: 1e-3,
                })
                .collect();
            let svg = latencies(&procedures).expect("drawn");
            assert!((0..n).all(|i| svg.contains(&format!("\nPROC_{i}\n"))), "{n} procedures: {svg}");
        }
    }

    #[test]
    fn ticks_read_well() {
        assert_eq!(seconds_label(1e-5), "10 µs");
        assert_eq!(seconds_label(0.0316), "31.6 ms");
        assert_eq!(seconds_label(1.0), "1 s");
    }
}
