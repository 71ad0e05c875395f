//! The closing summary line, drawn from the run's counts.

use std::fmt;

use crate::analyze::Summary;

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
