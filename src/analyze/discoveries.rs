//! The discovery requests a response may still answer: the latest 64, none
//! older than the late horizon.

use std::collections::VecDeque;

use super::{secs, Responder, LATE_HORIZON};
use crate::capture::Timestamp;

/// Requests kept at most: ldmd discovers rarely, so 64 cover any real burst.
const KEPT: usize = 64;

#[derive(Debug, Clone)]
pub struct DiscRequest {
    pub frame: u64,
    pub ts: Timestamp,
    pub responders: Vec<Responder>,
}

#[derive(Debug)]
pub struct Discoveries {
    /// Oldest first, in the order the requests were seen.
    requests: VecDeque<DiscRequest>,
    /// Whether `requests` is also in time order, as in any capture that
    /// does not go back in time. Then the expired requests are a prefix.
    in_time_order: bool,
}

impl Default for Discoveries {
    fn default() -> Discoveries {
        Discoveries { requests: VecDeque::new(), in_time_order: true }
    }
}

impl Discoveries {
    /// Records a request at `ts`, first forgetting those it makes too old.
    pub fn push(&mut self, frame: u64, ts: Timestamp) {
        self.forget_expired(ts);
        if self.requests.len() >= KEPT {
            self.requests.pop_front();
        }
        if self.requests.back().is_some_and(|last| last.ts > ts) {
            self.in_time_order = false;
        }
        self.requests.push_back(DiscRequest { frame, ts, responders: Vec::new() });
    }

    /// The latest request (in capture order) sent at or before `ts`.
    pub fn latest_at_or_before(&mut self, ts: Timestamp) -> Option<&mut DiscRequest> {
        self.requests.iter_mut().rev().find(|r| r.ts <= ts)
    }

    /// Drops the requests more than the late horizon before `ts`. In time
    /// order they are at the front, so a busy discoverer costs a compare
    /// per request, not a scan of all 64; out of order needs the scan.
    fn forget_expired(&mut self, ts: Timestamp) {
        let expired = |r: &DiscRequest| secs(ts, r.ts) > LATE_HORIZON;
        if self.in_time_order {
            while self.requests.front().is_some_and(expired) {
                self.requests.pop_front();
            }
            return;
        }
        self.requests.retain(|r| !expired(r));
        let later = self.requests.iter().skip(1);
        self.in_time_order = self.requests.iter().zip(later).all(|(earlier, next)| earlier.ts <= next.ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    fn frames(d: &Discoveries) -> Vec<u64> {
        d.requests.iter().map(|r| r.frame).collect()
    }

    #[test]
    fn requests_past_the_horizon_are_forgotten_in_time_order() {
        let mut d = Discoveries::default();
        d.push(1, at(0));
        d.push(2, at(30));
        d.push(3, at(61));
        assert_eq!(frames(&d), [2, 3]);
        assert!(d.in_time_order);
    }

    #[test]
    fn an_out_of_order_capture_forgets_expired_requests_wherever_they_are() {
        let mut d = Discoveries::default();
        d.push(1, at(100));
        d.push(2, at(50)); // the capture went back in time
        d.push(3, at(100));
        assert!(!d.in_time_order);
        assert_eq!(frames(&d), [1, 2, 3]);
        d.push(4, at(111)); // frame 2 (at 50) has expired, frame 1 (at 100) has not
        assert_eq!(frames(&d), [1, 3, 4]);
        assert!(d.in_time_order, "ordered again once the early request is gone");
        assert_eq!(d.latest_at_or_before(at(105)).map(|r| r.frame), Some(3));
        assert_eq!(d.latest_at_or_before(at(99)).map(|r| r.frame), None);
    }

    #[test]
    fn at_most_64_are_kept() {
        let mut d = Discoveries::default();
        for frame in 0..100 {
            d.push(frame, at(0));
        }
        assert_eq!(frames(&d), (36..100).collect::<Vec<_>>());
    }
}
