//! `-z io,stat,INTERVAL[,FILTER...]`: frames and bytes per interval of
//! capture time, one column per display filter, drawn as tshark 4.0 draws
//! it (ui/cli/tap-iostat.c) so that scripts reading tshark's table read
//! ours. Three of tshark's slips are not copied: its `-t u` header loses
//! a line, its `-t adoy` rows are two characters short, and a whole-second
//! interval prints the duration's microseconds padded with spaces.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, Datelike, Local, TimeZone, Timelike, Utc};

use super::time::TimeFormat;
use crate::analyze::Packet;
use crate::capture::Timestamp;
use crate::filter::Filter;

/// The most rows drawn; past it only intervals with frames are drawn (a
/// capture whose clock jumps a year would otherwise draw millions of empty
/// rows, as tshark does).
pub const MAX_ROWS: u64 = 1_000_000;

/// What `-z io,stat,...` asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct IoStatSpec {
    /// Microseconds per interval; `None` for the whole capture (`0`).
    pub interval_us: Option<u64>,
    /// Decimal places of the interval column.
    pub precision: u32,
    /// One column per filter; `None` counts every frame.
    pub columns: Vec<Option<String>>,
}

const USAGE: &str = "-z io,stat,INTERVAL[,FILTER...]: INTERVAL in seconds (at least 0.000001, or 0 for the whole \
capture), then any number of display filters, one column each, e.g. -z io,stat,1,ldm.msg_type==SEND_MSG";

/// tshark's column functions (`COUNT(field)filter`, ...), which ldm-sniff
/// does not have.
const FUNCTIONS: [&str; 10] =
    ["COUNT", "SUM", "MIN", "MAX", "AVG", "LOAD", "FRAMES", "BYTES", "COUNT_FRAMES", "COUNT_FIELDS"];

impl IoStatSpec {
    /// Parses `io,stat,INTERVAL[,FILTER...]`, as tshark: the filters are
    /// split at commas (a set in a filter separates its members by spaces).
    pub fn parse(text: &str) -> Result<IoStatSpec, String> {
        let rest = text.strip_prefix("io,stat,").ok_or_else(|| USAGE.to_string())?;
        if rest.ends_with(',') {
            return Err(format!("'{text}' ends with a comma: {USAGE}"));
        }
        let mut parts = rest.split(',');
        let interval_text = parts.next().unwrap_or_default().trim();
        let seconds: f64 = match interval_text.parse() {
            Ok(s) if (0.0..=crate::cli::MAX_SECS).contains(&s) => s,
            _ => return Err(format!("'{interval_text}' is not an interval: {USAGE}")),
        };
        let (interval_us, precision) = if seconds == 0.0 {
            (None, 0)
        } else {
            let us = (seconds * 1e6 + 0.5) as u64;
            if us < 1 {
                return Err(format!("interval {interval_text} is under a microsecond: {USAGE}"));
            }
            (Some(us), precision(us, interval_text))
        };
        let mut columns = Vec::new();
        for filter in parts.map(str::trim) {
            let function = FUNCTIONS.iter().find(|f| filter.starts_with(&format!("{f}(")));
            if let Some(function) = function {
                return Err(format!(
                    "-z io,stat: {function}() is one of tshark's column functions, which ldm-sniff does not have; \
                     each column counts the frames and bytes its filter matches"
                ));
            }
            columns.push((!filter.is_empty()).then(|| filter.to_string()));
        }
        if columns.is_empty() {
            columns.push(None);
        }
        Ok(IoStatSpec { interval_us, precision, columns })
    }
}

/// Decimal places for an interval, as tshark: as many as the interval
/// needs, or as many zeros as were written after a whole number's point.
fn precision(interval_us: u64, text: &str) -> u32 {
    let mut places = 6;
    let mut unit = 10;
    while unit < 10_000_000 && interval_us % unit == 0 {
        places -= 1;
        unit *= 10;
    }
    if places > 0 {
        return places;
    }
    match text.split_once('.') {
        Some((_, decimals)) if !decimals.is_empty() => decimals.len().min(6) as u32,
        _ => 0,
    }
}

/// One interval's count in one column.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Cell {
    row: u64,
    frames: u64,
    bytes: u64,
}

/// One row of the table: its interval, in microseconds since the first
/// frame, and each column's (frames, bytes).
struct Row {
    start: u64,
    end: u64,
    counts: Vec<(u64, u64)>,
}

/// One column: its filter and its intervals that had frames, in order.
struct Column {
    label: Option<String>,
    filter: Option<Filter>,
    cells: Vec<Cell>,
}

/// The counts of one `-z io,stat`, made as frames come.
pub struct IoStat {
    spec: IoStatSpec,
    time_format: TimeFormat,
    columns: Vec<Column>,
    first: Option<Timestamp>,
    /// Microseconds since the first frame of the last frame counted, for a
    /// frame older than the first (tshark counts it there).
    last_us: u64,
    /// The latest frame's microseconds since the first: the capture's duration.
    duration_us: u64,
}

impl IoStat {
    /// Compiles the filters; an error names the filter and what is wrong.
    pub fn new(spec: IoStatSpec, time_format: TimeFormat) -> Result<IoStat, String> {
        if matches!(time_format, TimeFormat::Delta | TimeFormat::DeltaShown | TimeFormat::Epoch) {
            return Err("-z io,stat labels intervals with -t r, a, ad, adoy, u, ud or udoy (as tshark)".into());
        }
        let mut columns = Vec::new();
        for label in &spec.columns {
            let filter = match label.as_deref().map(Filter::compile).transpose() {
                Ok(filter) => filter,
                Err(e) => return Err(format!("-z io,stat: {}", e.render(label.as_deref().unwrap_or("")))),
            };
            columns.push(Column { label: label.clone(), filter, cells: Vec::new() });
        }
        Ok(IoStat { spec, time_format, columns, first: None, last_us: 0, duration_us: 0 })
    }

    /// Whether a column tests more than the frame itself: then every frame
    /// must be decoded, not only ldm and libvirt.
    pub fn filters(&self) -> bool {
        self.columns.iter().any(|c| c.filter.is_some())
    }

    /// Counts one frame in every column whose filter it matches.
    pub fn frame(&mut self, p: &Packet<'_, '_>, time_relative: f64) {
        let frame = &p.d.frame;
        let first = *self.first.get_or_insert(frame.ts);
        let at_us = match micros_since(frame.ts, first) {
            Some(us) => {
                self.last_us = us;
                self.duration_us = self.duration_us.max(us);
                us
            }
            None => self.last_us,
        };
        let row = self.spec.interval_us.map_or(0, |interval| at_us / interval);
        for column in &mut self.columns {
            if column.filter.as_ref().is_some_and(|f| !f.matches(p, time_relative)) {
                continue;
            }
            match column.cells.last_mut() {
                // A frame older than the column's last interval counts there, as tshark's.
                Some(cell) if cell.row >= row => {
                    cell.frames += 1;
                    cell.bytes += u64::from(frame.len);
                }
                _ => column.cells.push(Cell { row, frames: 1, bytes: u64::from(frame.len) }),
            }
        }
    }

    /// The table's rows: (start, end) in microseconds since the first frame
    /// and each column's (frames, bytes). A frame at the very end of the
    /// capture, when the duration is a whole number of intervals, counts in
    /// the last row, whose label includes its end (tshark leaves it out).
    fn rows(&self, layout: &Layout) -> Vec<Row> {
        if layout.rows == 0 {
            return Vec::new();
        }
        let whole = self.spec.interval_us.is_none_or(|i| i != layout.interval);
        let mut counted: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        for (j, column) in self.columns.iter().enumerate() {
            for cell in &column.cells {
                let row = if whole { 0 } else { cell.row.min(layout.rows - 1) };
                let counts = counted.entry(row).or_insert_with(|| vec![(0, 0); self.columns.len()]);
                counts[j].0 += cell.frames;
                counts[j].1 += cell.bytes;
            }
        }
        let numbers: Vec<u64> =
            if layout.rows <= MAX_ROWS { (0..layout.rows).collect() } else { counted.keys().copied().collect() };
        numbers
            .into_iter()
            .map(|row| {
                let start = row * layout.interval;
                let end = if row + 1 == layout.rows { layout.duration } else { start + layout.interval };
                let counts = counted.get(&row).cloned().unwrap_or_else(|| vec![(0, 0); self.columns.len()]);
                Row { start, end, counts }
            })
            .collect()
    }

    /// The table, as tshark draws it.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let layout = Layout::new(self);
        let rows = self.rows(&layout);
        let widths: Vec<(usize, usize)> = self
            .columns
            .iter()
            .enumerate()
            .map(|(j, _)| {
                let frames = rows.iter().map(|r| r.counts[j].0).max().unwrap_or(0);
                let bytes = rows.iter().map(|r| r.counts[j].1).max().unwrap_or(0);
                (magnitude(frames, 15).max(6), magnitude(bytes, 15).max(5))
            })
            .collect();
        let text = Drawing { stat: self, layout: &layout, widths: &widths }.draw(&rows);
        out.write_all(text.as_bytes())?;
        if layout.rows > MAX_ROWS {
            let left_out = layout.rows - rows.len() as u64;
            writeln!(
                out,
                "({left_out} intervals without frames are not drawn: the capture spans more than {MAX_ROWS} \
                 intervals; give a longer one)"
            )?;
        }
        Ok(())
    }

    /// The JSON record's value: the intervals with their counts.
    pub fn to_json(&self) -> serde_json::Value {
        let layout = Layout::new(self);
        let secs = |us: u64| us as f64 / 1e6;
        let rows: Vec<serde_json::Value> = self
            .rows(&layout)
            .into_iter()
            .map(|row| {
                serde_json::json!({
                    "start": secs(row.start),
                    "end": secs(row.end),
                    "frames": row.counts.iter().map(|c| c.0).collect::<Vec<_>>(),
                    "bytes": row.counts.iter().map(|c| c.1).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "duration": secs(self.duration_us),
            "interval": secs(layout.interval),
            "columns": self.columns.iter().map(|c| c.label.clone()).collect::<Vec<_>>(),
            "intervals": rows,
        })
    }
}

/// Microseconds from `first` to `ts`, rounded as tshark rounds them;
/// `None` when `ts` is earlier.
fn micros_since(ts: Timestamp, first: Timestamp) -> Option<u64> {
    let nanos =
        (i128::from(ts.secs) - i128::from(first.secs)) * 1_000_000_000 + i128::from(ts.nanos) - i128::from(first.nanos);
    if nanos < 0 {
        return None;
    }
    let (secs, nanos) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    u64::try_from(secs * 1_000_000 + (nanos + 500) / 1000).ok()
}

/// Digits of `value`, at most `max` (tshark's magnitude()).
fn magnitude(mut value: u64, max: usize) -> usize {
    let mut digits = 0;
    for _ in 0..max {
        digits += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    digits
}

/// The table's time axis, worked out as tshark's iostat_draw does.
struct Layout {
    /// Microseconds.
    duration: u64,
    duration_unrounded: u64,
    interval: u64,
    precision: u32,
    /// Microseconds per unit of the last decimal place shown.
    unit: u64,
    duration_digits: usize,
    rows: u64,
    /// Width of the interval column, borders included.
    interval_width: usize,
    /// Width the header asks for, before the columns widen it.
    header_width: usize,
}

impl Layout {
    fn new(stat: &IoStat) -> Layout {
        let duration_unrounded = stat.duration_us;
        let whole = stat.spec.interval_us.is_none_or(|i| i > duration_unrounded);
        let mut interval = if whole { duration_unrounded } else { stat.spec.interval_us.unwrap_or(0) };
        let mut duration = duration_unrounded;
        let mut duration_digits = magnitude(duration / 1_000_000, 5);
        let interval_digits = magnitude(interval / 1_000_000, 5);
        let (precision, header_width) = if interval == duration {
            let precision = match duration_digits {
                2.. => 1,
                1 => 3,
                _ => 6,
            };
            (precision, 30 + duration_digits + precision as usize + 1)
        } else {
            let precision = stat.spec.precision;
            let point = if precision == 0 { 0 } else { precision as usize + 1 };
            (precision, 25 + interval_digits.max(duration_digits) + point)
        };
        let unit = 10u64.pow(6 - precision);
        // The duration rounded to the places shown.
        if duration % unit > 5 * (unit / 10) {
            duration = (duration + 5 * (unit / 10)) / unit * unit;
            duration_digits = magnitude(duration / 1_000_000, 5);
        }
        if whole {
            interval = duration;
        }
        let mut interval_width =
            if precision == 0 { 2 * duration_digits + 8 } else { 2 * duration_digits + 2 * precision as usize + 10 };
        let dated = matches!(
            stat.time_format,
            TimeFormat::AbsoluteDate | TimeFormat::AbsoluteDayOfYear | TimeFormat::UtcDate | TimeFormat::UtcDayOfYear
        );
        interval_width = interval_width.max(if dated { 23 } else { 12 });
        let rows = if interval == 0 || duration == 0 { 0 } else { duration.div_ceil(interval) };
        Layout {
            duration,
            duration_unrounded,
            interval,
            precision,
            unit,
            duration_digits,
            rows,
            interval_width,
            header_width: header_width.max(interval_width),
        }
    }

    /// `secs.places` of a time in microseconds, the seconds right-aligned
    /// in the duration's width.
    fn time(&self, us: u64) -> String {
        let digits = self.duration_digits;
        if self.precision == 0 {
            return format!("{:>digits$}", us / 1_000_000);
        }
        let places = self.precision as usize;
        format!("{:>digits$}.{:0places$}", us / 1_000_000, us % 1_000_000 / self.unit)
    }
}

/// Draws the table into a string.
struct Drawing<'a> {
    stat: &'a IoStat,
    layout: &'a Layout,
    /// Each column's (frames, bytes) width.
    widths: &'a [(usize, usize)],
}

fn spaces(n: usize) -> String {
    " ".repeat(n)
}

/// A label centred in a column, as tshark's printcenter().
fn centered(label: &str, width: usize) -> String {
    let pad = width.saturating_sub(label.len());
    let left = pad / 2 + 1 + pad % 2;
    let right = pad / 2 + 1;
    format!("{}{label}{}|", spaces(left), spaces(right))
}

impl Drawing<'_> {
    fn draw(&self, rows: &[Row]) -> String {
        let layout = self.layout;
        let row_width: usize = layout.interval_width + self.widths.iter().map(|(f, b)| f + b + 6).sum::<usize>();
        let mut width = layout.header_width.max(row_width);
        let filter_width =
            self.stat.columns.iter().map(|c| c.label.as_ref().map_or(26, |l| l.len() + 11)).max().unwrap_or(26);
        if filter_width > width && width < 102 {
            width = filter_width.min(102);
        }
        // No double right border.
        if width == row_width + 1 {
            width += 1;
        }
        let filler = (row_width < width).then(|| format!("{}|", spaces(width - row_width - 1)));
        let filler = filler.as_deref().unwrap_or("");
        let mut s = String::new();
        let line = |s: &mut String, text: &str| {
            s.push_str(text);
            s.push_str(&spaces(width.saturating_sub(text.len() + 1)));
            s.push_str("|\n");
        };
        s.push('\n');
        s.push_str(&"=".repeat(width));
        s.push('\n');
        line(&mut s, "| IO Statistics");
        line(&mut s, "|");
        line(&mut s, &format!("| Duration: {} secs", self.duration()));
        line(&mut s, &format!("| Interval: {} secs", self.interval()));
        line(&mut s, "|");
        for (j, column) in self.stat.columns.iter().enumerate() {
            let lead = if j == 0 { format!("| Col{:>2}: ", j + 1) } else { format!("|    {:>2}: ", j + 1) };
            match &column.label {
                None => line(&mut s, &format!("{lead}Frames and bytes")),
                Some(label) => self.filter_lines(&mut s, &lead, label, width),
            }
        }
        s.push_str(&format!("|{}|\n", "-".repeat(width - 2)));
        s.push_str(&format!("|{}|", spaces(layout.interval_width - 2)));
        for (j, (frames, bytes)) in self.widths.iter().enumerate() {
            s.push_str(&format!("{:<2}{}|", j + 1, spaces(frames + bytes + 3)));
        }
        s.push_str(filler);
        let label = match self.stat.time_format {
            TimeFormat::Relative => "| Interval",
            TimeFormat::Absolute | TimeFormat::Utc => "| Time",
            _ => "| Date and time",
        };
        s.push_str(&format!("\n{label}{}|", spaces(layout.interval_width - label.len() - 1)));
        for (frames, bytes) in self.widths {
            s.push_str(&centered("Frames", *frames));
            s.push_str(&centered("Bytes", *bytes));
        }
        s.push_str(filler);
        s.push_str(&format!("\n|{}|{filler}\n", "-".repeat(row_width - 2)));
        for row in rows {
            s.push_str(&self.interval_cell(row.start, row.end));
            for ((frames, bytes), (fw, bw)) in row.counts.iter().zip(self.widths) {
                s.push_str(&format!(" {frames:>fw$} | {bytes:>bw$} |"));
            }
            s.push_str(filler);
            s.push('\n');
        }
        s.push_str(&"=".repeat(width));
        s.push('\n');
        s
    }

    fn duration(&self) -> String {
        let layout = self.layout;
        if layout.precision == 0 {
            let us = layout.duration_unrounded;
            return format!("{:>w$}.{:06}", us / 1_000_000, us % 1_000_000, w = layout.duration_digits);
        }
        layout.time(layout.duration)
    }

    fn interval(&self) -> String {
        self.layout.time(self.layout.interval)
    }

    /// A filter too wide for the table wraps at its last space that fits.
    fn filter_lines(&self, s: &mut String, lead: &str, label: &str, width: usize) {
        let mut rest = label;
        let mut lead = lead.to_string();
        let max = width.saturating_sub(11).max(1);
        while rest.len() > max {
            let cut = floor_char_boundary(rest, max);
            let (shown, next) = match rest[..cut].rfind(' ') {
                Some(space) => (&rest[..space], space + 1),
                None => (&rest[..cut], cut),
            };
            s.push_str(&format!("{lead}{shown}{}|\n", spaces(width.saturating_sub(shown.len() + 10))));
            lead = "|        ".to_string();
            rest = &rest[next..];
        }
        s.push_str(&format!("{lead}{rest}{}|\n", spaces(width.saturating_sub(rest.len() + 10))));
    }

    fn interval_cell(&self, start: u64, end: u64) -> String {
        let layout = self.layout;
        let last = end == layout.duration && start + layout.interval >= layout.duration;
        let cell = match self.stat.time_format {
            TimeFormat::Relative if layout.precision == 0 => {
                let narrow = layout.duration_digits == 1;
                let lead = if narrow { "|  " } else { "| " };
                if last {
                    let w = if layout.duration_digits >= 3 { layout.duration_digits + 1 } else { 3 };
                    format!("{lead}{} <> {:<w$}|", layout.time(start), "Dur")
                } else {
                    let tail = if narrow { "  |" } else { " |" };
                    format!("{lead}{} <> {}{tail}", layout.time(start), layout.time(end))
                }
            }
            TimeFormat::Relative => format!("| {} <> {} |", layout.time(start), layout.time(end)),
            format => format!("| {} |", self.clock(format, start)),
        };
        // Absolute labels are narrower than the column when the interval has
        // decimals: pad them (tshark leaves the row short).
        if cell.len() < layout.interval_width {
            let (body, bar) = cell.split_at(cell.len() - 1);
            return format!("{body}{}{bar}", spaces(layout.interval_width - cell.len()));
        }
        cell
    }

    /// The wall-clock second an interval starts at.
    fn clock(&self, format: TimeFormat, start_us: u64) -> String {
        let first = self.stat.first.map_or(0, |t| t.secs);
        let secs = first.saturating_add((start_us / 1_000_000) as i64);
        match format {
            TimeFormat::Absolute | TimeFormat::AbsoluteDate | TimeFormat::AbsoluteDayOfYear => {
                Local.timestamp_opt(secs, 0).single().map_or_else(|| unknown(format), |t| wall(format, &t))
            }
            _ => DateTime::<Utc>::from_timestamp(secs, 0).map_or_else(|| unknown(format), |t| wall(format, &t)),
        }
    }
}

fn wall<Tz: TimeZone>(format: TimeFormat, t: &DateTime<Tz>) -> String {
    let time = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    match format {
        TimeFormat::AbsoluteDate | TimeFormat::UtcDate => {
            format!("{:04}-{:02}-{:02} {time}", t.year(), t.month(), t.day())
        }
        TimeFormat::AbsoluteDayOfYear | TimeFormat::UtcDayOfYear => {
            format!("{:04}/{:03} {time}", t.year(), t.ordinal())
        }
        _ => time,
    }
}

/// tshark's placeholder for a time the calendar cannot show.
fn unknown(format: TimeFormat) -> String {
    match format {
        TimeFormat::AbsoluteDate | TimeFormat::UtcDate => "XXXX-XX-XX XX:XX:XX".into(),
        TimeFormat::AbsoluteDayOfYear | TimeFormat::UtcDayOfYear => "XXXX/XXX XX:XX:XX".into(),
        _ => "XX:XX:XX".into(),
    }
}

/// The largest index at most `at` that starts a character.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_as_tshark_parses_them() {
        let spec = IoStatSpec::parse("io,stat,0.5,udp.port==64535,,ip.src==10.1.1.11").unwrap();
        assert_eq!(spec.interval_us, Some(500_000));
        assert_eq!(spec.precision, 1);
        assert_eq!(spec.columns, [Some("udp.port==64535".into()), None, Some("ip.src==10.1.1.11".into())]);
        assert_eq!(IoStatSpec::parse("io,stat,0").unwrap().interval_us, None);
        assert_eq!(IoStatSpec::parse("io,stat,1").unwrap().precision, 0);
        assert_eq!(IoStatSpec::parse("io,stat,1.00").unwrap().precision, 2);
        assert_eq!(IoStatSpec::parse("io,stat,0.001").unwrap().precision, 3);
        assert!(IoStatSpec::parse("io,stat,1,").is_err());
        assert!(IoStatSpec::parse("io,stat,x").is_err());
        assert!(IoStatSpec::parse("io,stat,-1").is_err());
        assert!(IoStatSpec::parse("io,stat,0.0000001").is_err());
        assert!(IoStatSpec::parse("io,stat,1,COUNT(ldm.mac)ldm").unwrap_err().contains("COUNT()"));
    }

    #[test]
    fn labels_centre_as_tshark_centres_them() {
        assert_eq!(centered("Frames", 6), " Frames |");
        assert_eq!(centered("Bytes", 5), " Bytes |");
        assert_eq!(centered("Bytes", 6), "  Bytes |");
        assert_eq!(centered("Frames", 13), "     Frames    |");
    }
}
