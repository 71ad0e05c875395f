//! Live capture through libpcap (cargo feature `libpcap`), for `-f` capture
//! filters in tcpdump's syntax, compiled by libpcap into the kernel. The
//! default build uses our own ring (capture/live.rs) and needs no library.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pcap::{Active, Capture, Precision};

use super::live::{KernelReport, KernelStats, LiveOptions};
use super::{CaptureError, Frame, KernelChecksum, Linktype, Timestamp};

pub struct PcapCapture {
    capture: Capture<Active>,
    iface: String,
    scratch: Vec<u8>,
    linktype: Linktype,
    frames: u64,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    /// Told libpcap's running totals every few thousand frames and when idle.
    kernel_report: KernelReport,
}

/// Frames between two reports of the kernel's counts while busy.
const REPORT_EVERY: u64 = 4096;

/// Why libpcap could not start the capture, with what to do.
#[derive(Debug, thiserror::Error)]
#[error("libpcap on {iface}: {what}: {message}")]
pub struct PcapError {
    pub iface: String,
    pub what: &'static str,
    pub message: String,
}

impl PcapCapture {
    /// Opens `iface` with `filter` (tcpdump syntax) in place of the default
    /// ldm filter, as `options` say (promiscuous mode, deadline, snap length).
    pub fn open(
        iface: &str,
        filter: &str,
        options: &LiveOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<PcapCapture, PcapError> {
        let fail = |what: &'static str| {
            move |e: pcap::Error| PcapError { iface: iface.to_string(), what, message: e.to_string() }
        };
        let mut capture = Capture::from_device(iface)
            .map_err(fail("no such device"))?
            .promisc(options.promiscuous)
            .snaplen(options.snaplen as i32)
            .timeout(100)
            .immediate_mode(true)
            .precision(Precision::Nano)
            .open()
            .map_err(fail("cannot open (root or CAP_NET_RAW needed)"))?;
        capture.filter(filter, true).map_err(fail("bad capture filter (tcpdump syntax, see pcap-filter(7))"))?;
        // Non-blocking, waited on with our own poll: in immediate mode
        // libpcap's own wait did not return at its timeout on a quiet link,
        // so -a duration and Ctrl-C went unheard until a packet came.
        let capture = capture.setnonblock().map_err(fail("cannot make the capture non-blocking"))?;
        let linktype = Linktype(capture.get_datalink().0);
        Ok(PcapCapture {
            capture,
            iface: iface.to_string(),
            scratch: Vec::with_capacity(1 << 16),
            linktype,
            frames: 0,
            stop,
            deadline: options.deadline,
            kernel_report: KernelReport::default(),
        })
    }

    pub fn kernel_stats(&mut self) -> KernelStats {
        match self.capture.stats() {
            Ok(stat) => KernelStats {
                received: u64::from(stat.received),
                dropped: u64::from(stat.dropped) + u64::from(stat.if_dropped),
            },
            Err(_) => KernelStats::default(),
        }
    }

    /// Waits until a packet may be there, at most 100 ms (then the stop
    /// flag and the deadline are looked at again).
    fn wait_readable(&self) {
        use std::os::fd::AsRawFd;
        let mut poll = libc::pollfd { fd: self.capture.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd. EINTR (a signal) just returns, to check `stop`.
        unsafe { libc::poll(&mut poll, 1, 100) };
    }

    /// Has `report` told the running totals as they change.
    pub fn report_kernel_stats(&mut self, report: Box<dyn FnMut(KernelStats) + Send>) {
        self.kernel_report = KernelReport(Some(report));
    }

    fn tell_kernel_stats(&mut self) {
        if self.kernel_report.is_wanted() {
            let stats = self.kernel_stats();
            self.kernel_report.tell(stats);
        }
    }

    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let header = loop {
            if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            // The packet is copied out: returning libpcap's borrowed buffer from
            // inside this timeout loop is a borrow the compiler cannot yet prove.
            match self.capture.next_packet() {
                Ok(packet) => {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(packet.data);
                    break *packet.header;
                }
                Err(pcap::Error::TimeoutExpired) => {
                    self.tell_kernel_stats();
                    self.wait_readable();
                    continue;
                }
                Err(e) => {
                    let what = e.to_string();
                    return Err(CaptureError::Read { path: self.iface.clone(), offset: 0, frame: self.frames, what });
                }
            }
        };
        self.frames += 1;
        if self.frames % REPORT_EVERY == 0 {
            self.tell_kernel_stats();
        }
        // With Precision::Nano, libpcap puts nanoseconds in tv_usec.
        let ts = Timestamp::new(header.ts.tv_sec, header.ts.tv_usec as u32);
        Ok(Some(Frame {
            number: self.frames,
            ts,
            len: header.len,
            linktype: self.linktype,
            interface: 0,
            file_offset: 0,
            data: &self.scratch,
            kernel_checksum: KernelChecksum::Unknown,
            raw_time: None,
        }))
    }
}
