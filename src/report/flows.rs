//! The report's flow graph: MAC lookups and discovery as arrows between
//! hosts, in time order.
//!
//! A short capture is drawn whole. A long one is drawn as the exchanges that
//! have findings (a request and every packet that answers it), with counts of
//! the rest: a late response or a second owner shows with the request it
//! answers, even though the request itself raised nothing.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use crate::expert::{Key, Severity};
use crate::wire::ldm::MsgType;

/// Most arrows drawn when the whole capture is drawn.
pub const MAX_ARROWS: usize = 300;
/// Most exchanges with findings drawn in a long capture.
pub const MAX_FLAGGED: usize = 150;
/// Packets remembered so that a later finding on a response can draw the
/// request and earlier responses with it (a late response comes seconds
/// after its request, so on a busy link it may be past them).
const RECENT: usize = 4_096;

/// Exchanges remembered as counted among those not drawn.
const NOT_DRAWN_REMEMBERED: usize = 16;

/// An exchange with findings, to draw.
#[derive(Debug)]
struct Flagged {
    worst: Option<Severity>,
    arrows: Vec<Arrow>,
}

/// One packet, as the flow graph draws it.
#[derive(Debug, Clone)]
pub struct Arrow {
    pub frame: u64,
    /// Seconds since the first frame.
    pub at: f64,
    pub from: IpAddr,
    /// The requester a response answers (on the wire it goes to the group),
    /// or the packet's destination.
    pub to: IpAddr,
    pub kind: &'static str,
    pub msg_type: Option<MsgType>,
    pub mac: Option<[u8; 6]>,
    pub rtt: Option<f64>,
    /// Findings on the packet, its own and over time.
    pub keys: Vec<Key>,
    /// Which exchange of the capture it belongs to (1 is the first).
    pub exchange: u64,
}

impl Arrow {
    pub fn worst(&self) -> Option<Severity> {
        self.keys.iter().map(|k| k.severity()).max()
    }
}

#[derive(Debug)]
pub struct Flows {
    /// Every arrow, while there are few enough to draw them all.
    all: Option<Vec<Arrow>>,
    /// Exchanges with a finding, by the frame that opened them.
    flagged: BTreeMap<u64, Flagged>,
    /// The least severity among them, when known (none: to be found).
    least_drawn: Option<Severity>,
    /// Exchanges with a finding beyond [`MAX_FLAGGED`].
    flagged_not_drawn: u64,
    /// The exchanges last counted in `flagged_not_drawn`, so that one with
    /// findings on several packets is counted once.
    not_drawn_recent: VecDeque<u64>,
    /// The latest exchange counted there.
    not_drawn_highest: u64,
    /// The latest packets, in frame order: a response's request is found
    /// by binary search (a hash map's probes per packet showed in profiles).
    recent: VecDeque<Arrow>,
    /// Exchanges seen: requests, and packets that answer none.
    exchanges: u64,
}

impl Default for Flows {
    fn default() -> Flows {
        Flows {
            all: Some(Vec::new()),
            flagged: BTreeMap::new(),
            least_drawn: None,
            flagged_not_drawn: 0,
            not_drawn_recent: VecDeque::with_capacity(NOT_DRAWN_REMEMBERED),
            not_drawn_highest: 0,
            recent: VecDeque::with_capacity(RECENT),
            exchanges: 0,
        }
    }
}

/// What the page draws.
#[derive(Debug)]
pub struct FlowView {
    pub arrows: Vec<Arrow>,
    /// Every exchange is drawn.
    pub complete: bool,
    pub exchanges: u64,
    /// Exchanges with findings, drawn or not.
    pub flagged: u64,
    pub flagged_not_drawn: u64,
}

impl Flows {
    /// Adds an ldm packet. `request_in` is the request a response answers.
    pub fn packet(&mut self, mut arrow: Arrow, request_in: Option<u64>) {
        let answered = request_in.and_then(|request| self.recent_packet(request));
        let id = match answered {
            Some(request) => {
                arrow.to = request.from;
                arrow.exchange = request.exchange;
                request.frame
            }
            None => {
                self.exchanges += 1;
                arrow.exchange = self.exchanges;
                request_in.unwrap_or(arrow.frame)
            }
        };
        self.keep_all(&arrow);
        self.keep_flagged(id, &arrow);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(arrow);
    }

    /// The packet of frame `frame`, if it is recent.
    fn recent_packet(&self, frame: u64) -> Option<&Arrow> {
        let at = self.recent.partition_point(|a| a.frame < frame);
        self.recent.get(at).filter(|a| a.frame == frame)
    }

    /// The recent packets of the exchange that `request` opened.
    fn recent_exchange(&self, request: u64, exchange: u64) -> Vec<Arrow> {
        let at = self.recent.partition_point(|a| a.frame < request);
        self.recent.range(at..).filter(|a| a.exchange == exchange).cloned().collect()
    }

    fn keep_all(&mut self, arrow: &Arrow) {
        let Some(all) = self.all.as_mut() else { return };
        if all.len() < MAX_ARROWS {
            all.push(arrow.clone());
        } else {
            self.all = None;
        }
    }

    fn keep_flagged(&mut self, id: u64, arrow: &Arrow) {
        if let Some(kept) = self.flagged.get_mut(&id) {
            kept.worst = kept.worst.max(arrow.worst());
            kept.arrows.push(arrow.clone());
            return;
        }
        let Some(worst) = arrow.worst() else { return };
        if self.flagged.len() >= MAX_FLAGGED && !self.make_room(worst) {
            self.not_drawn(arrow.exchange);
            return;
        }
        let mut arrows = self.recent_exchange(id, arrow.exchange);
        arrows.push(arrow.clone());
        self.flagged.insert(id, Flagged { worst: Some(worst), arrows });
    }

    /// When the drawn exchanges are all kept, one with findings less severe
    /// than `worst` (the latest such) gives way: a late response matters more
    /// than the hundredth handled collision.
    fn make_room(&mut self, worst: Severity) -> bool {
        if self.least_drawn.is_some_and(|least| least >= worst) {
            return false;
        }
        let least = self.flagged.values().filter_map(|f| f.worst).min();
        self.least_drawn = least;
        let Some(least) = least.filter(|least| *least < worst) else { return false };
        let Some(id) = self.flagged.iter().rev().find(|(_, f)| f.worst == Some(least)).map(|(id, _)| *id) else {
            return false;
        };
        if let Some(given_way) = self.flagged.remove(&id) {
            self.not_drawn(given_way.arrows[0].exchange);
        }
        self.least_drawn = None;
        true
    }

    /// Counts an exchange with findings that is not drawn, once (as far as
    /// the last few such exchanges tell).
    fn not_drawn(&mut self, exchange: u64) {
        // A later exchange than any counted is new: the common case, with no search.
        let new = exchange > self.not_drawn_highest || !self.not_drawn_recent.contains(&exchange);
        if !new {
            return;
        }
        self.not_drawn_highest = self.not_drawn_highest.max(exchange);
        if self.not_drawn_recent.len() == NOT_DRAWN_REMEMBERED {
            self.not_drawn_recent.pop_front();
        }
        self.not_drawn_recent.push_back(exchange);
        self.flagged_not_drawn += 1;
    }

    pub fn view(self) -> FlowView {
        let flagged = self.flagged.len() as u64 + self.flagged_not_drawn;
        let (arrows, complete) = match self.all {
            Some(all) => (all, true),
            None => {
                let mut arrows: Vec<Arrow> = self.flagged.into_values().flat_map(|f| f.arrows).collect();
                arrows.sort_by_key(|a| a.frame);
                (arrows, false)
            }
        };
        FlowView { arrows, complete, exchanges: self.exchanges, flagged, flagged_not_drawn: self.flagged_not_drawn }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow(frame: u64, from: u8, msg_type: MsgType, keys: &[Key]) -> Arrow {
        Arrow {
            frame,
            at: frame as f64,
            from: IpAddr::from([10, 1, 1, from]),
            to: IpAddr::from([239, 129, 9, 27]),
            kind: msg_type.name(),
            msg_type: Some(msg_type),
            mac: None,
            rtt: None,
            keys: keys.to_vec(),
            exchange: 0,
        }
    }

    #[test]
    fn a_response_is_drawn_to_its_requester() {
        let mut flows = Flows::default();
        flows.packet(arrow(1, 10, MsgType::SendMsg, &[]), None);
        flows.packet(arrow(2, 11, MsgType::ResponseMsg, &[Key::LdmCollision]), Some(1));
        let view = flows.view();
        assert!(view.complete);
        assert_eq!(view.exchanges, 1);
        assert_eq!(view.flagged, 1);
        assert_eq!(view.arrows[1].to, IpAddr::from([10, 1, 1, 10]));
        assert_eq!(view.arrows[1].exchange, 1);
    }

    #[test]
    fn a_long_capture_keeps_the_exchanges_with_findings_whole() {
        let mut flows = Flows::default();
        let mut frame = 0;
        let mut next = || {
            frame += 1;
            frame
        };
        for _ in 0..MAX_ARROWS {
            flows.packet(arrow(next(), 10, MsgType::SendMsg, &[]), None);
        }
        let request = next();
        flows.packet(arrow(request, 10, MsgType::SendMsg, &[]), None);
        flows.packet(arrow(next(), 12, MsgType::ResponseMsg, &[]), Some(request));
        flows.packet(arrow(next(), 11, MsgType::ResponseMsg, &[Key::LdmLateResponse]), Some(request));
        flows.packet(arrow(next(), 13, MsgType::ResponseMsg, &[]), Some(request));
        let view = flows.view();
        assert!(!view.complete);
        assert_eq!(view.exchanges, MAX_ARROWS as u64 + 1);
        assert_eq!(view.flagged, 1);
        let frames: Vec<u64> = view.arrows.iter().map(|a| a.frame).collect();
        assert_eq!(frames, [request, request + 1, request + 2, request + 3]);
    }

    #[test]
    fn an_error_takes_the_place_of_a_note_when_the_graph_is_full() {
        let mut flows = Flows::default();
        for frame in 1..=(MAX_FLAGGED as u64 + MAX_ARROWS as u64) {
            flows.packet(arrow(frame, 10, MsgType::ResponseMsg, &[Key::LdmRequestNotCaptured]), None);
        }
        let late = MAX_FLAGGED as u64 + MAX_ARROWS as u64 + 1;
        flows.packet(arrow(late, 11, MsgType::ResponseMsg, &[Key::LdmLateResponse]), None);
        let view = flows.view();
        assert_eq!(view.arrows.len(), MAX_FLAGGED);
        assert_eq!(view.arrows.last().map(|a| a.frame), Some(late));
        assert_eq!(view.flagged, MAX_FLAGGED as u64 + MAX_ARROWS as u64 + 1);
    }

    #[test]
    fn an_exchange_not_drawn_is_counted_once() {
        let mut flows = Flows::default();
        for frame in 1..=MAX_FLAGGED as u64 {
            flows.packet(arrow(frame, 10, MsgType::ResponseMsg, &[Key::LdmUnsolicitedResponse]), None);
        }
        let request = MAX_FLAGGED as u64 + 1;
        flows.packet(arrow(request, 10, MsgType::SendMsg, &[]), None);
        for frame in request + 1..request + 4 {
            flows.packet(arrow(frame, 11, MsgType::ResponseMsg, &[Key::LdmDuplicateResponse]), Some(request));
        }
        let view = flows.view();
        assert_eq!(view.flagged_not_drawn, 1);
        assert_eq!(view.flagged, MAX_FLAGGED as u64 + 1);
    }

    #[test]
    fn exchanges_with_findings_past_the_cap_are_counted() {
        let mut flows = Flows::default();
        for frame in 1..=(MAX_FLAGGED as u64 + 5) {
            flows.packet(arrow(frame, 10, MsgType::ResponseMsg, &[Key::LdmUnsolicitedResponse]), None);
        }
        let view = flows.view();
        assert_eq!(view.flagged, MAX_FLAGGED as u64 + 5);
        assert_eq!(view.flagged_not_drawn, 5);
    }
}
