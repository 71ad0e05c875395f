//! Counts for the closing summary line and the exit status.

use std::fmt;

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

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} frame{} read, {} ldm (SEND_MSG {}, RESPONSE_MSG {}, LDMD_DISC_SEND {}, LDMD_DISC_RESP {}, other {})",
            self.frames,
            if self.frames == 1 { "" } else { "s" },
            self.ldm,
            self.send_msg,
            self.response_msg,
            self.disc_send,
            self.disc_resp,
            self.other,
        )?;
        if self.libvirt > 0 {
            write!(f, ", {} libvirt", self.libvirt)?;
        }
        write!(f, "; findings: {} error, {} warn, {} note", self.errors, self.warnings, self.notes)?;
        if self.evicted > 0 {
            write!(f, "; {} analysis entries evicted by the table caps", self.evicted)?;
        }
        if self.libvirt_not_followed > 0 {
            let n = self.libvirt_not_followed;
            let segments = if n == 1 { "segment" } else { "segments" };
            write!(f, "; {n} {segments} on the libvirt ports not decoded (joined mid-way, no message start seen yet)")?;
        }
        for (linktype, n) in &self.undecoded_linktypes {
            let name = crate::capture::linktype_name(crate::capture::Linktype(*linktype));
            let frames = if *n == 1 { "frame" } else { "frames" };
            write!(f, "; {n} {frames} of link type {linktype} ({name}) not decoded")?;
        }
        if let Some(n) = self.capture_dropped.filter(|&n| n > 0) {
            write!(f, "; the capturing tool dropped {n} packets (the capture file's count)")?;
        }
        Ok(())
    }
}
