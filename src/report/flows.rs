//! The report's flow graph: MAC lookups and discovery as arrows between
//! hosts, in time order.
//!
//! A short capture is drawn whole. A long one is drawn as the exchanges that
//! have findings (a request and every packet that answers it), with counts of
//! the rest: a late response or a second owner shows with the request it
//! answers, even though the request itself raised nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;

use crate::expert::{Key, Severity};
use crate::wire::ldm::MsgType;

/// Most arrows drawn when the whole capture is drawn.
pub const MAX_ARROWS: usize = 300;
/// Most exchanges with findings drawn in a long capture.
pub const MAX_FLAGGED: usize = 150;
/// Requests remembered so that a later finding on a response can draw the
/// request with it (a late response comes seconds after its request).
const RECENT_REQUESTS: usize = 8_192;

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
    flagged: BTreeMap<u64, Vec<Arrow>>,
    /// Exchanges with a finding beyond [`MAX_FLAGGED`].
    flagged_not_drawn: u64,
    /// Recent requests and what answered them, by request frame.
    recent: lru::LruCache<u64, Vec<Arrow>>,
    /// Exchanges seen: requests, and packets that answer none.
    exchanges: u64,
}

impl Default for Flows {
    fn default() -> Flows {
        Flows {
            all: Some(Vec::new()),
            flagged: BTreeMap::new(),
            flagged_not_drawn: 0,
            recent: lru::LruCache::new(NonZeroUsize::new(RECENT_REQUESTS).expect("not zero")),
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
        let is_request = matches!(arrow.msg_type, Some(MsgType::SendMsg | MsgType::DiscSend));
        let answered = request_in.and_then(|request| self.recent.peek(&request).map(|list| (request, list)));
        let id = match answered {
            Some((request, list)) => {
                arrow.to = list[0].from;
                arrow.exchange = list[0].exchange;
                request
            }
            None => {
                self.exchanges += 1;
                arrow.exchange = self.exchanges;
                request_in.unwrap_or(arrow.frame)
            }
        };
        self.keep_all(&arrow);
        self.keep_flagged(id, &arrow);
        if is_request {
            self.recent.put(id, vec![arrow]);
        } else if let Some(list) = self.recent.get_mut(&id) {
            list.push(arrow);
        }
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
        if let Some(list) = self.flagged.get_mut(&id) {
            list.push(arrow.clone());
            return;
        }
        if arrow.keys.is_empty() {
            return;
        }
        if self.flagged.len() >= MAX_FLAGGED {
            self.flagged_not_drawn += 1;
            return;
        }
        let mut list = self.recent.peek(&id).cloned().unwrap_or_default();
        list.push(arrow.clone());
        self.flagged.insert(id, list);
    }

    pub fn view(self) -> FlowView {
        let flagged = self.flagged.len() as u64 + self.flagged_not_drawn;
        let (arrows, complete) = match self.all {
            Some(all) => (all, true),
            None => {
                let mut arrows: Vec<Arrow> = self.flagged.into_values().flatten().collect();
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
