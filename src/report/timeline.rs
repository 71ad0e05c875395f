//! The report's timeline: what happened per interval of the capture.
//!
//! Counts are kept in buckets of a fixed width from the first frame; when the
//! capture outgrows [`MAX_BUCKETS`] the width grows tenfold and buckets are
//! merged, so a capture of weeks costs as little memory as one of seconds.
//! The page then merges buckets into the interval the capture's length calls for.

/// What one interval holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub lookups: u64,
    pub responses: u64,
    pub discovery: u64,
    pub libvirt: u64,
    /// ldm packets of no known type (bad magic, unknown or missing type).
    pub other: u64,
    pub errors: u64,
    pub warnings: u64,
    pub notes: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.lookups += other.lookups;
        self.responses += other.responses;
        self.discovery += other.discovery;
        self.libvirt += other.libvirt;
        self.other += other.other;
        self.errors += other.errors;
        self.warnings += other.warnings;
        self.notes += other.notes;
    }

    /// Packets of every kind.
    pub fn packets(&self) -> u64 {
        self.lookups + self.responses + self.discovery + self.libvirt + self.other
    }
}

/// Most buckets kept; past it they are merged tenfold.
const MAX_BUCKETS: u64 = 10_000;
/// The first width: 1 ms.
const FIRST_WIDTH_US: u64 = 1_000;
/// About how many intervals the page draws.
const TARGET_INTERVALS: u64 = 100;

#[derive(Debug)]
pub struct Timeline {
    width_us: u64,
    buckets: Vec<Counts>,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline { width_us: FIRST_WIDTH_US, buckets: Vec::new() }
    }
}

/// The timeline cut into intervals for drawing.
#[derive(Debug)]
pub struct Intervals {
    pub width_secs: f64,
    pub counts: Vec<Counts>,
}

impl Timeline {
    /// The counts of the bucket `offset_us` after the first frame falls in.
    pub fn at(&mut self, offset_us: u64) -> &mut Counts {
        while offset_us / self.width_us >= MAX_BUCKETS {
            self.coarsen();
        }
        let index = (offset_us / self.width_us) as usize;
        if index >= self.buckets.len() {
            self.buckets.resize(index + 1, Counts::default());
        }
        &mut self.buckets[index]
    }

    fn coarsen(&mut self) {
        let merged = self
            .buckets
            .chunks(10)
            .map(|chunk| {
                let mut sum = Counts::default();
                chunk.iter().for_each(|c| sum.add(c));
                sum
            })
            .collect();
        self.buckets = merged;
        self.width_us *= 10;
    }

    /// Intervals of a round width (1, 2 or 5 times a power of ten) giving at
    /// most about [`TARGET_INTERVALS`] over `span_us`.
    pub fn intervals(&self, span_us: u64) -> Intervals {
        let wanted = span_us.div_ceil(TARGET_INTERVALS).max(self.width_us);
        let width_us = round_up(wanted);
        // Both are round and width_us >= self.width_us, a power of ten: it divides.
        let ratio = (width_us / self.width_us).max(1) as usize;
        let counts = self
            .buckets
            .chunks(ratio)
            .map(|chunk| {
                let mut sum = Counts::default();
                chunk.iter().for_each(|c| sum.add(c));
                sum
            })
            .collect();
        Intervals { width_secs: width_us as f64 / 1e6, counts }
    }
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `n`.
fn round_up(n: u64) -> u64 {
    let mut power = 1u64;
    loop {
        for step in [1, 2, 5] {
            let candidate = power.saturating_mul(step);
            if candidate >= n {
                return candidate;
            }
        }
        if power > u64::MAX / 10 {
            return u64::MAX;
        }
        power *= 10;
    }
}

/// `500 ms`, `2 s`, `10 min`: an interval's width for people.
pub fn describe(secs: f64) -> String {
    match secs {
        s if s < 1.0 => format!("{} ms", (s * 1e3).round()),
        s if s < 60.0 || s % 60.0 != 0.0 => format!("{s} s"),
        s if s < 3600.0 || s % 3600.0 != 0.0 => format!("{} min", s / 60.0),
        s if s < 86_400.0 || s % 86_400.0 != 0.0 => format!("{} h", s / 3600.0),
        s => format!("{} d", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_round() {
        assert_eq!(round_up(1), 1);
        assert_eq!(round_up(3), 5);
        assert_eq!(round_up(6), 10);
        assert_eq!(round_up(11_000), 20_000);
        assert_eq!(round_up(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_long_capture_merges_buckets_and_keeps_every_count() {
        let mut t = Timeline::default();
        for second in 0..100_000u64 {
            t.at(second * 1_000_000).lookups += 1;
        }
        assert!(t.buckets.len() as u64 <= MAX_BUCKETS);
        let intervals = t.intervals(99_999 * 1_000_000);
        assert_eq!(intervals.width_secs, 1000.0);
        assert_eq!(intervals.counts.len(), 100);
        assert_eq!(intervals.counts.iter().map(|c| c.lookups).sum::<u64>(), 100_000);
        assert!(intervals.counts.iter().all(|c| c.lookups == 1000));
    }

    #[test]
    fn a_short_capture_gets_millisecond_intervals() {
        let mut t = Timeline::default();
        t.at(0).discovery += 1;
        t.at(9_450).discovery += 1;
        let intervals = t.intervals(9_450);
        assert_eq!(intervals.width_secs, 0.001);
        assert_eq!(intervals.counts.len(), 10);
        assert_eq!(intervals.counts[9].discovery, 1);
    }

    #[test]
    fn widths_read_well() {
        assert_eq!(describe(0.5), "500 ms");
        assert_eq!(describe(2.0), "2 s");
        assert_eq!(describe(600.0), "10 min");
        assert_eq!(describe(7200.0), "2 h");
    }
}
