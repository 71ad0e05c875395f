//! Counts for the closing summary line and the exit status (the line itself
//! is drawn by `output::summary`).

use crate::dissect::Dissection;
use crate::expert::{Finding, Key, Severity};
use crate::wire::ldm::MsgType;

#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub frames: u64,
    pub ldm: u64,
    pub send_msg: u64,
    pub response_msg: u64,
    pub disc_send: u64,
    pub disc_resp: u64,
    /// Unknown type, bad magic, or too short for a type.
    pub other: u64,
    /// libvirt messages (and libvirt segments with stream findings).
    pub libvirt: u64,
    pub errors: u64,
    pub warnings: u64,
    pub notes: u64,
    /// Findings per key, indexed by `Key as usize` (a map's search per
    /// finding showed in profiles); empty until the first finding.
    by_key: Vec<u64>,
    pub worst: Option<Severity>,
    /// Analysis table entries evicted by the caps.
    pub evicted: u64,
    /// Segments on the libvirt ports of connections not followed (joined
    /// mid-way, and none of their segments started a message yet).
    pub libvirt_not_followed: u64,
    /// Frames skipped for their link type, per link type (few kinds).
    pub undecoded_linktypes: Vec<(i32, u64)>,
    /// Packets the capturing tool says it dropped (snoop's count), if it says.
    pub capture_dropped: Option<u64>,
}

impl Summary {
    /// Counts an ldm packet or libvirt message and its findings (per packet
    /// and over time).
    pub fn packet(&mut self, d: &Dissection<'_>, over_time: &[Finding]) {
        if d.is_libvirt() {
            self.libvirt += 1;
        } else if let Some(msg) = &d.ldm {
            self.ldm_type(msg);
        } else if !d.is_undecoded_ldm() {
            return;
        }
        for finding in d.findings.iter().chain(over_time) {
            let severity = finding.severity();
            match severity {
                Severity::Error => self.errors += 1,
                Severity::Warn => self.warnings += 1,
                Severity::Note => self.notes += 1,
            }
            if self.by_key.is_empty() {
                self.by_key = vec![0; Key::ALL.len()];
            }
            self.by_key[finding.key as usize] += 1;
            self.worst = self.worst.max(Some(severity));
        }
    }

    /// Counts a frame skipped for its link type.
    pub fn undecoded_link(&mut self, linktype: i32) {
        match self.undecoded_linktypes.iter_mut().find(|(t, _)| *t == linktype) {
            Some((_, count)) => *count += 1,
            None => self.undecoded_linktypes.push((linktype, 1)),
        }
    }

    /// How many findings had `key`, if any did.
    pub fn count(&self, key: Key) -> Option<u64> {
        self.by_key.get(key as usize).copied().filter(|&n| n > 0)
    }

    /// Packets shown: ldm, and libvirt messages.
    pub fn shown(&self) -> u64 {
        self.ldm + self.libvirt
    }

    fn ldm_type(&mut self, msg: &crate::wire::ldm::Message<'_>) {
        self.ldm += 1;
        let counter = match msg.msg_type {
            _ if msg.is_bad_magic() => &mut self.other,
            Some(MsgType::SendMsg) => &mut self.send_msg,
            Some(MsgType::ResponseMsg) => &mut self.response_msg,
            Some(MsgType::DiscSend) => &mut self.disc_send,
            Some(MsgType::DiscResp) => &mut self.disc_resp,
            Some(MsgType::Unknown(_)) | None => &mut self.other,
        };
        *counter += 1;
    }
}
