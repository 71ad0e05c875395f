//! The time column of a packet's line, as tshark's `-t` formats it.

use std::collections::VecDeque;

use chrono::{DateTime, Local, TimeZone, Utc};

use crate::capture::Timestamp;

/// `-t`: how the line shows a packet's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TimeFormat {
    /// Seconds since the first frame (the default).
    #[default]
    #[value(name = "r")]
    Relative,
    /// Local time of day.
    #[value(name = "a")]
    Absolute,
    /// Local date and time.
    #[value(name = "ad")]
    AbsoluteDate,
    /// Local year, day of the year and time.
    #[value(name = "adoy")]
    AbsoluteDayOfYear,
    /// Seconds since the previous frame captured.
    #[value(name = "d")]
    Delta,
    /// Seconds since the previous packet shown.
    #[value(name = "dd")]
    DeltaShown,
    /// Seconds since 1970 (the epoch).
    #[value(name = "e")]
    Epoch,
    /// UTC time of day.
    #[value(name = "u")]
    Utc,
    /// UTC date and time.
    #[value(name = "ud")]
    UtcDate,
    /// UTC year, day of the year and time.
    #[value(name = "udoy")]
    UtcDayOfYear,
}

/// Frames remembered for `Delta`: a packet shown late (held for its
/// responses) still finds the frame before it.
const REMEMBERED: usize = 65_536;

/// What the time column needs of the frames seen and shown.
#[derive(Debug, Default)]
pub struct Clock {
    pub format: TimeFormat,
    first: Option<Timestamp>,
    /// (frame number, time of the frame before it), in order.
    previous: VecDeque<(u64, Timestamp)>,
    last_seen: Option<Timestamp>,
    last_shown: Option<Timestamp>,
}

impl Clock {
    pub fn new(format: TimeFormat) -> Clock {
        Clock { format, ..Clock::default() }
    }

    /// Every frame read, in order.
    pub fn saw(&mut self, number: u64, ts: Timestamp) {
        self.first.get_or_insert(ts);
        if self.format == TimeFormat::Delta {
            if self.previous.len() == REMEMBERED {
                self.previous.pop_front();
            }
            self.previous.push_back((number, self.last_seen.unwrap_or(ts)));
        }
        self.last_seen = Some(ts);
    }

    /// Seconds since the first frame.
    pub fn relative(&self, ts: Timestamp) -> f64 {
        self.first.map_or(0.0, |first| ts.seconds_since(first))
    }

    /// The column for a packet shown now; `None` for the default (relative
    /// seconds, which the line writes itself without a string).
    pub fn column(&mut self, number: u64, ts: Timestamp) -> Option<String> {
        let seconds = |s: f64| format!("{s:.6}");
        let text = match self.format {
            TimeFormat::Relative => None,
            TimeFormat::Delta => {
                let at = self.previous.binary_search_by_key(&number, |(n, _)| *n).ok();
                let before = at.map_or(ts, |i| self.previous[i].1);
                Some(seconds(ts.seconds_since(before)))
            }
            TimeFormat::DeltaShown => Some(seconds(self.last_shown.map_or(0.0, |last| ts.seconds_since(last)))),
            TimeFormat::Epoch => Some(format!("{}.{:06}", ts.secs, ts.nanos / 1000)),
            TimeFormat::Absolute => Some(local(ts, "%H:%M:%S")),
            TimeFormat::AbsoluteDate => Some(local(ts, "%Y-%m-%d %H:%M:%S")),
            TimeFormat::AbsoluteDayOfYear => Some(local(ts, "%Y/%j %H:%M:%S")),
            TimeFormat::Utc => Some(utc(ts, "%H:%M:%S")),
            TimeFormat::UtcDate => Some(utc(ts, "%Y-%m-%d %H:%M:%S")),
            TimeFormat::UtcDayOfYear => Some(utc(ts, "%Y/%j %H:%M:%S")),
        };
        self.last_shown = Some(ts);
        text
    }
}

fn utc(ts: Timestamp, pattern: &str) -> String {
    match DateTime::<Utc>::from_timestamp(ts.secs, ts.nanos) {
        Some(time) => format!("{}.{:06}", time.format(pattern), ts.nanos / 1000),
        None => format!("{}.{:06}", ts.secs, ts.nanos / 1000),
    }
}

fn local(ts: Timestamp, pattern: &str) -> String {
    match Local.timestamp_opt(ts.secs, ts.nanos).single() {
        Some(time) => format!("{}.{:06}", time.format(pattern), ts.nanos / 1000),
        None => utc(ts, pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_shows_the_time_as_tshark_does() {
        // 2026-11-02 09:30:00.003120 UTC, day 306 of the year.
        let first = Timestamp::new(1_793_611_800, 0);
        let ts = Timestamp::new(1_793_611_800, 3_120_000);
        let show = |format: TimeFormat| {
            let mut clock = Clock::new(format);
            clock.saw(1, first);
            clock.column(1, first);
            clock.saw(2, ts);
            clock.column(2, ts)
        };
        assert_eq!(show(TimeFormat::Relative), None);
        assert_eq!(show(TimeFormat::Epoch).unwrap(), "1793611800.003120");
        assert_eq!(show(TimeFormat::Utc).unwrap(), "09:30:00.003120");
        assert_eq!(show(TimeFormat::UtcDate).unwrap(), "2026-11-02 09:30:00.003120");
        assert_eq!(show(TimeFormat::UtcDayOfYear).unwrap(), "2026/306 09:30:00.003120");
        assert_eq!(show(TimeFormat::Delta).unwrap(), "0.003120");
        assert_eq!(show(TimeFormat::DeltaShown).unwrap(), "0.003120");
    }

    #[test]
    fn delta_is_to_the_frame_captured_before_even_when_shown_late() {
        let mut clock = Clock::new(TimeFormat::Delta);
        for (n, nanos) in [(1, 0), (2, 1_000_000), (3, 5_000_000)] {
            clock.saw(n, Timestamp::new(100, nanos));
        }
        // Frame 2 shown after frame 3 was read: still 1 ms after frame 1.
        assert_eq!(clock.column(2, Timestamp::new(100, 1_000_000)).unwrap(), "0.001000");
    }
}
