//! Live capture on Linux: an AF_PACKET socket with a TPACKET_V3 memory-mapped
//! ring and a classic BPF program in the kernel, so only ldm traffic (and UDP
//! fragments, which we reassemble) ever reaches us, in blocks, with no system
//! call per frame. This is what tcpdump does; pnet's datalink channel reads
//! one frame per system call and attaches no filter, so it is not used here.
//!
//! A named interface with an Ethernet (or loopback) link is read raw
//! (LINKTYPE_ETHERNET, VLAN tags the kernel stripped put back); `any` and other
//! links are read cooked and given a Linux cooked v2 header, as tcpdump does.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::{Frame, KernelChecksum, Linktype, Timestamp};

/// The ring: 8 blocks of 1 MiB; a block is handed over when full or after
/// `BLOCK_TIMEOUT_MS`, so a quiet link still shows packets promptly.
const BLOCK_SIZE: u32 = 1 << 20;
const BLOCK_COUNT: u32 = 8;
const FRAME_SIZE: u32 = 2048;
const BLOCK_TIMEOUT_MS: u32 = 50;
/// How often a quiet capture checks Ctrl-C and `-a duration`.
const POLL_MS: i32 = 100;
const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;
const SLL2_LEN: usize = 20;

/// `tcpdump -dd -y EN10MB 'udp port 64535 or tcp port 16509 or tcp port 16514
/// or (vlan and (udp port 64535 or tcp port 16509 or tcp port 16514))'`
/// (Debian tcpdump 4.99): ldm, libvirt and libvirt over TLS; IPv4 and IPv6,
/// untagged, 802.1Q, 802.1ad and QinQ. The ports and the fragment jumps are
/// patched in `program`.
const BPF_ETHERNET: &[(u16, u8, u8, u32)] = &[
    (0x28, 0, 0, 0x0000000c),
    (0x15, 0, 12, 0x000086dd),
    (0x30, 0, 0, 0x00000014),
    (0x15, 0, 4, 0x00000011),
    (0x28, 0, 0, 0x00000036),
    (0x15, 64, 0, 0x0000fc17),
    (0x28, 0, 0, 0x00000038),
    (0x15, 62, 63, 0x0000fc17),
    (0x15, 0, 62, 0x00000006),
    (0x28, 0, 0, 0x00000036),
    (0x15, 59, 0, 0x0000407d),
    (0x15, 58, 0, 0x00004082),
    (0x28, 0, 0, 0x00000038),
    (0x15, 56, 55, 0x0000407d),
    (0x15, 0, 18, 0x00000800),
    (0x30, 0, 0, 0x00000017),
    (0x15, 0, 7, 0x00000011),
    (0x28, 0, 0, 0x00000014),
    (0x45, 52, 0, 0x00001fff),
    (0xb1, 0, 0, 0x0000000e),
    (0x48, 0, 0, 0x0000000e),
    (0x15, 48, 0, 0x0000fc17),
    (0x48, 0, 0, 0x00000010),
    (0x15, 46, 47, 0x0000fc17),
    (0x15, 0, 46, 0x00000006),
    (0x28, 0, 0, 0x00000014),
    (0x45, 44, 0, 0x00001fff),
    (0xb1, 0, 0, 0x0000000e),
    (0x48, 0, 0, 0x0000000e),
    (0x15, 40, 0, 0x0000407d),
    (0x15, 39, 0, 0x00004082),
    (0x48, 0, 0, 0x00000010),
    (0x15, 37, 36, 0x0000407d),
    (0x15, 2, 0, 0x00008100),
    (0x15, 1, 0, 0x000088a8),
    (0x15, 0, 35, 0x00009100),
    (0x28, 0, 0, 0x00000010),
    (0x15, 0, 12, 0x000086dd),
    (0x30, 0, 0, 0x00000018),
    (0x15, 0, 4, 0x00000011),
    (0x28, 0, 0, 0x0000003a),
    (0x15, 28, 0, 0x0000fc17),
    (0x28, 0, 0, 0x0000003c),
    (0x15, 26, 27, 0x0000fc17),
    (0x15, 0, 26, 0x00000006),
    (0x28, 0, 0, 0x0000003a),
    (0x15, 23, 0, 0x0000407d),
    (0x15, 22, 0, 0x00004082),
    (0x28, 0, 0, 0x0000003c),
    (0x15, 20, 19, 0x0000407d),
    (0x15, 0, 20, 0x00000800),
    (0x30, 0, 0, 0x0000001b),
    (0x15, 0, 7, 0x00000011),
    (0x28, 0, 0, 0x00000018),
    (0x45, 16, 0, 0x00001fff),
    (0xb1, 0, 0, 0x00000012),
    (0x48, 0, 0, 0x00000012),
    (0x15, 12, 0, 0x0000fc17),
    (0x48, 0, 0, 0x00000014),
    (0x15, 10, 11, 0x0000fc17),
    (0x15, 0, 10, 0x00000006),
    (0x28, 0, 0, 0x00000018),
    (0x45, 8, 0, 0x00001fff),
    (0xb1, 0, 0, 0x00000012),
    (0x48, 0, 0, 0x00000012),
    (0x15, 4, 0, 0x0000407d),
    (0x15, 3, 0, 0x00004082),
    (0x48, 0, 0, 0x00000014),
    (0x15, 1, 0, 0x0000407d),
    (0x15, 0, 1, 0x00004082),
    (0x6, 0, 0, 0x00040000),
    (0x6, 0, 0, 0x00000000),
];

/// `tcpdump -dd -y RAW 'udp port 64535 or tcp port 16509 or tcp port 16514'`:
/// for cooked sockets, whose filter sees the packet from its IP header.
const BPF_RAW_IP: &[(u16, u8, u8, u32)] = &[
    (0x30, 0, 0, 0x00000000),
    (0x54, 0, 0, 0x000000f0),
    (0x15, 0, 12, 0x00000060),
    (0x30, 0, 0, 0x00000006),
    (0x15, 0, 4, 0x00000011),
    (0x28, 0, 0, 0x00000028),
    (0x15, 30, 0, 0x0000fc17),
    (0x28, 0, 0, 0x0000002a),
    (0x15, 28, 29, 0x0000fc17),
    (0x15, 0, 28, 0x00000006),
    (0x28, 0, 0, 0x00000028),
    (0x15, 25, 0, 0x0000407d),
    (0x15, 24, 0, 0x00004082),
    (0x28, 0, 0, 0x0000002a),
    (0x15, 22, 21, 0x0000407d),
    (0x30, 0, 0, 0x00000000),
    (0x54, 0, 0, 0x000000f0),
    (0x15, 0, 20, 0x00000040),
    (0x30, 0, 0, 0x00000009),
    (0x15, 0, 7, 0x00000011),
    (0x28, 0, 0, 0x00000006),
    (0x45, 16, 0, 0x00001fff),
    (0xb1, 0, 0, 0x00000000),
    (0x48, 0, 0, 0x00000000),
    (0x15, 12, 0, 0x0000fc17),
    (0x48, 0, 0, 0x00000002),
    (0x15, 10, 11, 0x0000fc17),
    (0x15, 0, 10, 0x00000006),
    (0x28, 0, 0, 0x00000006),
    (0x45, 8, 0, 0x00001fff),
    (0xb1, 0, 0, 0x00000000),
    (0x48, 0, 0, 0x00000000),
    (0x15, 4, 0, 0x0000407d),
    (0x15, 3, 0, 0x00004082),
    (0x48, 0, 0, 0x00000002),
    (0x15, 1, 0, 0x0000407d),
    (0x15, 0, 1, 0x00004082),
    (0x6, 0, 0, 0x00040000),
    (0x6, 0, 0, 0x00000000),
];

const BPF_JEQ: u16 = 0x15;
const BPF_JSET: u16 = 0x45;
const BPF_RET: u16 = 0x06;

/// The ports the kernel filter passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterPorts {
    /// UDP: ldm.
    pub ldm: u16,
    /// TCP: libvirt, and libvirt over TLS.
    pub libvirt: u16,
    pub libvirt_tls: u16,
}

/// The template's port constants: tcpdump compiled it for these.
const TEMPLATE_LDM: u32 = 64535;
const TEMPLATE_LIBVIRT: u32 = 16509;
const TEMPLATE_LIBVIRT_TLS: u32 = 16514;

/// The filter for `ports`: tcpdump's program with its ports replaced, and
/// non-first IPv4 fragments accepted rather than dropped (they carry no UDP
/// header, and we reassemble them).
pub fn program(template: &[(u16, u8, u8, u32)], ports: FilterPorts) -> Vec<libc::sock_filter> {
    let accept = template.iter().position(|&(code, _, _, k)| code == BPF_RET && k != 0).unwrap_or(0);
    template
        .iter()
        .enumerate()
        .map(|(i, &(code, jt, jf, k))| {
            let (jt, k) = match (code, k) {
                (BPF_JEQ, TEMPLATE_LDM) => (jt, u32::from(ports.ldm)),
                (BPF_JEQ, TEMPLATE_LIBVIRT) => (jt, u32::from(ports.libvirt)),
                (BPF_JEQ, TEMPLATE_LIBVIRT_TLS) => (jt, u32::from(ports.libvirt_tls)),
                (BPF_JSET, 0x1fff) => ((accept - i - 1) as u8, k),
                _ => (jt, k),
            };
            libc::sock_filter { code, jt, jf, k }
        })
        .collect()
}

/// Why live capture could not start, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("capturing on {iface} needs the CAP_NET_RAW capability: run as root (sudo ldm-sniff ...) or grant it once with `sudo setcap cap_net_raw,cap_net_admin=eip {exe}`")]
    Permission { iface: String, exe: String },
    #[error("no interface named {iface}: `ldm-sniff -D` lists them")]
    NoSuchInterface { iface: String },
    #[error("cannot capture on {iface}: {what}: {source}; check that the interface is up (ip link show {iface}) and that the kernel offers AF_PACKET with TPACKET_V3 (Linux 3.2 or later)")]
    Setup { iface: String, what: &'static str, source: io::Error },
}

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub interface: String,
    pub promiscuous: bool,
    /// Join 239.129.9.27 on the interface, so IGMP-snooping switches forward it.
    pub join: bool,
    /// What the kernel filter passes.
    pub ports: FilterPorts,
    /// Stop at this instant (`-a duration:SECS`).
    pub deadline: Option<Instant>,
    /// Keep at most this many bytes of each frame (`-s`).
    pub snaplen: u32,
}

/// Counts the kernel kept for this socket.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelStats {
    /// Packets that passed the filter.
    pub received: u64,
    /// Of those, dropped because the ring was full.
    pub dropped: u64,
}

/// `--metrics`: whom a capture tells the kernel's running totals, if anyone.
#[derive(Default)]
pub struct KernelReport(pub Option<Box<dyn FnMut(KernelStats) + Send>>);

impl KernelReport {
    pub fn is_wanted(&self) -> bool {
        self.0.is_some()
    }

    pub fn tell(&mut self, stats: KernelStats) {
        if let Some(report) = self.0.as_mut() {
            report(stats);
        }
    }
}

pub struct LiveCapture {
    fd: OwnedFd,
    ring: *mut u8,
    ring_len: usize,
    /// Block being read: (index, packets left, offset of the next packet).
    block: Option<(usize, u32, usize)>,
    next_block: usize,
    cooked: bool,
    linktype: Linktype,
    scratch: Vec<u8>,
    frames: u64,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    snaplen: usize,
    stats: KernelStats,
    /// Told the kernel's running totals after each block and when idle.
    kernel_report: KernelReport,
    /// Holds the group membership for the capture's lifetime.
    _membership: Option<OwnedFd>,
}

fn os_error(iface: &str, what: &'static str) -> LiveError {
    LiveError::Setup { iface: iface.to_string(), what, source: io::Error::last_os_error() }
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid T for the duration of the call, and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The interface's ARPHRD type (1 Ethernet, 772 loopback), from sysfs.
fn link_type(iface: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/type")).ok()?.trim().parse().ok()
}

/// The interface's index (0 for `any`).
pub fn if_index(iface: &str) -> Result<i32, LiveError> {
    if iface == "any" {
        return Ok(0);
    }
    let name = CString::new(iface).map_err(|_| LiveError::NoSuchInterface { iface: iface.to_string() })?;
    // SAFETY: `name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(LiveError::NoSuchInterface { iface: iface.to_string() });
    }
    Ok(index as i32)
}

impl LiveCapture {
    /// Opens the capture; `stop` is set by SIGINT/SIGTERM handlers.
    pub fn open(options: &LiveOptions, stop: Arc<AtomicBool>) -> Result<LiveCapture, LiveError> {
        let iface = options.interface.as_str();
        let ifindex = if_index(iface)?;
        let raw = ifindex != 0 && matches!(link_type(iface), Some(1 | 772));
        let kind = if raw { libc::SOCK_RAW } else { libc::SOCK_DGRAM };
        // Protocol 0: no packet arrives before the filter and the ring are set up.
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, kind | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            if matches!(err.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                let exe =
                    std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "ldm-sniff".into());
                return Err(LiveError::Permission { iface: iface.to_string(), exe });
            }
            return Err(LiveError::Setup { iface: iface.to_string(), what: "opening a packet socket", source: err });
        }
        // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let filter = program(if raw { BPF_ETHERNET } else { BPF_RAW_IP }, options.ports);
        let fprog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog).map_err(|source| LiveError::Setup {
            iface: iface.to_string(),
            what: "attaching the BPF filter",
            source,
        })?;
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version).map_err(|source| LiveError::Setup {
            iface: iface.to_string(),
            what: "selecting TPACKET_V3",
            source,
        })?;
        let request = libc::tpacket_req3 {
            tp_block_size: BLOCK_SIZE,
            tp_block_nr: BLOCK_COUNT,
            tp_frame_size: FRAME_SIZE,
            tp_frame_nr: BLOCK_SIZE / FRAME_SIZE * BLOCK_COUNT,
            tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &request).map_err(|source| LiveError::Setup {
            iface: iface.to_string(),
            what: "creating the receive ring",
            source,
        })?;
        let ring_len = (BLOCK_SIZE * BLOCK_COUNT) as usize;
        // SAFETY: maps the ring the kernel just created for this socket; checked below.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(os_error(iface, "mapping the receive ring"));
        }
        let mut capture = LiveCapture {
            fd,
            ring: ring.cast(),
            ring_len,
            block: None,
            next_block: 0,
            cooked: !raw,
            linktype: if raw { Linktype::ETHERNET } else { Linktype::LINUX_SLL2 },
            scratch: Vec::with_capacity(1 << 16),
            frames: 0,
            stop,
            deadline: options.deadline,
            snaplen: options.snaplen as usize,
            stats: KernelStats::default(),
            kernel_report: KernelReport::default(),
            _membership: None,
        };
        capture.bind(iface, ifindex)?;
        if options.promiscuous && ifindex != 0 {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(&capture.fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq).map_err(|source| {
                LiveError::Setup { iface: iface.to_string(), what: "entering promiscuous mode", source }
            })?;
        }
        if options.join && ifindex != 0 {
            capture._membership = Some(join_group(iface, ifindex)?);
        }
        Ok(capture)
    }

    fn bind(&self, iface: &str, ifindex: i32) -> Result<(), LiveError> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = ETH_P_ALL.to_be();
        address.sll_ifindex = ifindex;
        // SAFETY: `address` is a valid sockaddr_ll and its size is passed.
        let rc = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_error(iface, "binding to the interface"));
        }
        Ok(())
    }

    /// Reads and resets the kernel's counters, adding them to the totals.
    pub fn kernel_stats(&mut self) -> KernelStats {
        // SAFETY: tpacket_stats_v3 is plain data; the kernel fills at most `len` bytes.
        let mut stats: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            self.stats.received += u64::from(stats.tp_packets);
            self.stats.dropped += u64::from(stats.tp_drops);
        }
        self.stats
    }

    /// Has `report` told the kernel's running totals as they change: after
    /// each block read, and every poll interval when the link is quiet.
    pub fn report_kernel_stats(&mut self, report: Box<dyn FnMut(KernelStats) + Send>) {
        self.kernel_report = KernelReport(Some(report));
    }

    fn tell_kernel_stats(&mut self) {
        if self.kernel_report.is_wanted() {
            let stats = self.kernel_stats();
            self.kernel_report.tell(stats);
        }
    }

    fn block_base(&self, index: usize) -> *mut u8 {
        // SAFETY: index < BLOCK_COUNT, so the offset stays inside the mapping.
        unsafe { self.ring.add(index * BLOCK_SIZE as usize) }
    }

    fn block_status(&self, index: usize) -> u32 {
        let desc = self.block_base(index).cast::<libc::tpacket_block_desc>();
        // SAFETY: the block descriptor lies at the start of the block; the
        // kernel writes the status concurrently, hence the volatile read and
        // the fence before reading the block's packets.
        let status = unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*desc).hdr.bh1.block_status)) };
        std::sync::atomic::fence(Ordering::Acquire);
        status
    }

    fn release_block(&self, index: usize) {
        let desc = self.block_base(index).cast::<libc::tpacket_block_desc>();
        std::sync::atomic::fence(Ordering::Release);
        // SAFETY: as above; handing the block back is writing TP_STATUS_KERNEL.
        unsafe {
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*desc).hdr.bh1.block_status), libc::TP_STATUS_KERNEL)
        };
    }

    /// The next frame; `None` once Ctrl-C, SIGTERM or the deadline stopped it.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, super::CaptureError> {
        loop {
            if let Some((index, left, offset)) = self.block {
                if left > 0 && self.is_outgoing_loopback(index, offset) {
                    // A loopback device hands each packet to a capture twice,
                    // going out and coming in: keep one, as libpcap does.
                    self.block = Some((index, left - 1, offset + self.next_offset(index, offset)));
                    continue;
                }
                if left > 0 {
                    return Ok(Some(self.frame_at(index, left, offset)));
                }
                self.release_block(index);
                self.block = None;
                self.next_block = (index + 1) % BLOCK_COUNT as usize;
                self.tell_kernel_stats();
            }
            let index = self.next_block;
            if self.block_status(index) & libc::TP_STATUS_USER != 0 {
                let desc = self.block_base(index).cast::<libc::tpacket_block_desc>();
                // SAFETY: the block is ours (TP_STATUS_USER) until released.
                let (count, first) =
                    unsafe { ((*desc).hdr.bh1.num_pkts, (*desc).hdr.bh1.offset_to_first_pkt as usize) };
                self.block = Some((index, count, first));
                continue;
            }
            if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let mut poll = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN | libc::POLLERR, revents: 0 };
            // SAFETY: one valid pollfd. EINTR (a signal) just loops to check `stop`.
            let ready = unsafe { libc::poll(&mut poll, 1, POLL_MS) };
            if ready == 0 {
                self.tell_kernel_stats();
            }
        }
    }

    /// The packet header at `offset` of block `index`.
    fn packet_header(&self, index: usize, offset: usize) -> &libc::tpacket3_hdr {
        // SAFETY: `offset` came from the kernel's block header or a packet's
        // tp_next_offset and points at a tpacket3_hdr inside this block,
        // which stays ours until released.
        unsafe { &*self.block_base(index).add(offset).cast::<libc::tpacket3_hdr>() }
    }

    fn next_offset(&self, index: usize, offset: usize) -> usize {
        self.packet_header(index, offset).tp_next_offset as usize
    }

    /// Whether the packet at `offset` of block `index` is one a loopback
    /// device sent (its copy coming in follows).
    fn is_outgoing_loopback(&self, index: usize, offset: usize) -> bool {
        // sockaddr_ll follows the header, aligned (TPACKET_ALIGN).
        let at = offset + ((std::mem::size_of::<libc::tpacket3_hdr>() + 15) & !15);
        // SAFETY: the kernel writes a sockaddr_ll there for every packet.
        let address = unsafe { &*self.block_base(index).add(at).cast::<libc::sockaddr_ll>() };
        address.sll_pkttype == libc::PACKET_OUTGOING && address.sll_hatype == libc::ARPHRD_LOOPBACK
    }

    /// The packet at `offset` of block `index`; advances past it.
    fn frame_at(&mut self, index: usize, left: u32, offset: usize) -> Frame<'_> {
        let base = self.block_base(index);
        // SAFETY: `offset` came from the kernel's block header or a packet's
        // tp_next_offset and points at a tpacket3_hdr inside this block,
        // which stays ours until released (not before the next call).
        let header = unsafe { &*base.add(offset).cast::<libc::tpacket3_hdr>() };
        let next = header.tp_next_offset as usize;
        self.block = Some((index, left - 1, offset + next));
        self.frames += 1;
        let ts = Timestamp::new(i64::from(header.tp_sec), header.tp_nsec);
        let caplen = header.tp_snaplen as usize;
        // SAFETY: tp_mac and tp_snaplen describe the packet inside the block.
        let packet = unsafe { std::slice::from_raw_parts(base.add(offset + header.tp_mac as usize), caplen) };
        let mut len = header.tp_len;
        let data: &[u8] = if self.cooked {
            // sockaddr_ll follows the header, aligned (TPACKET_ALIGN).
            let at = offset + ((std::mem::size_of::<libc::tpacket3_hdr>() + 15) & !15);
            // SAFETY: the kernel writes a sockaddr_ll there for every packet.
            let address = unsafe { &*base.add(at).cast::<libc::sockaddr_ll>() };
            self.scratch.clear();
            self.scratch.extend_from_slice(&sll2_header(address));
            self.scratch.extend_from_slice(packet);
            len += SLL2_LEN as u32;
            &self.scratch
        } else if header.tp_status & libc::TP_STATUS_VLAN_VALID != 0 && packet.len() >= 12 {
            // The NIC took the tag out; put it back where it was on the wire.
            let tpid =
                if header.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 { header.hv1.tp_vlan_tpid } else { 0x8100 };
            self.scratch.clear();
            self.scratch.extend_from_slice(&packet[..12]);
            self.scratch.extend_from_slice(&tpid.to_be_bytes());
            self.scratch.extend_from_slice(&(header.hv1.tp_vlan_tci as u16).to_be_bytes());
            self.scratch.extend_from_slice(&packet[12..]);
            len += 4;
            &self.scratch
        } else {
            packet
        };
        // -s: the frame as the snap length leaves it, on the wire as long as it was.
        let data = &data[..data.len().min(self.snaplen)];
        let kernel_checksum = kernel_checksum(header.tp_status);
        Frame {
            number: self.frames,
            ts,
            len,
            linktype: self.linktype,
            interface: 0,
            file_offset: 0,
            data,
            kernel_checksum,
            raw_time: None,
        }
    }
}

/// What a packet's ring status says of its transport checksum (packet(7)).
fn kernel_checksum(tp_status: u32) -> KernelChecksum {
    if tp_status & libc::TP_STATUS_CSUMNOTREADY != 0 {
        KernelChecksum::NotReady
    } else if tp_status & libc::TP_STATUS_CSUM_VALID != 0 {
        KernelChecksum::Valid
    } else {
        KernelChecksum::Unknown
    }
}

/// LINKTYPE_LINUX_SLL2 header from the kernel's address of a cooked packet.
fn sll2_header(address: &libc::sockaddr_ll) -> [u8; SLL2_LEN] {
    let mut h = [0u8; SLL2_LEN];
    h[0..2].copy_from_slice(&address.sll_protocol.to_ne_bytes()); // already network order
    h[4..8].copy_from_slice(&(address.sll_ifindex as u32).to_be_bytes());
    h[8..10].copy_from_slice(&address.sll_hatype.to_be_bytes());
    h[10] = address.sll_pkttype;
    h[11] = address.sll_halen;
    h[12..20].copy_from_slice(&address.sll_addr);
    h
}

/// Joins the ldm group on the interface for as long as the socket lives.
pub fn join_group(iface: &str, ifindex: i32) -> Result<OwnedFd, LiveError> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_error(iface, "opening a socket to join the group"));
    }
    // SAFETY: `fd` was just returned by socket(2).
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let group: Ipv4Addr = crate::wire::ldm::GROUP;
    let request = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: u32::from_ne_bytes(group.octets()) },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex,
    };
    setsockopt(&fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &request).map_err(|source| LiveError::Setup {
        iface: iface.to_string(),
        what: "joining 239.129.9.27",
        source,
    })?;
    Ok(fd)
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`.
        unsafe { libc::munmap(self.ring.cast(), self.ring_len) };
    }
}

/// Whom to become once the capture is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

/// The identity `-Z USER` names ("root" or nothing: stay); without `-Z`, the
/// user who ran sudo, when sudo started us.
pub fn identity_to_drop_to(user: Option<&str>) -> Result<Option<Identity>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    match user {
        Some("root") => Ok(None),
        Some(name) => {
            let c_name = CString::new(name).map_err(|_| format!("bad user name '{name}'"))?;
            // SAFETY: getpwnam reads the password database; the result is copied at once.
            let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
            if entry.is_null() {
                return Err(format!("no user named '{name}' (for -Z)"));
            }
            // SAFETY: non-null entries point to a valid passwd record.
            let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
            Ok(Some(Identity { uid, gid }))
        }
        None => {
            let id = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<u32>().ok());
            match (id("SUDO_UID"), id("SUDO_GID")) {
                (Some(uid), Some(gid)) if uid != 0 => Ok(Some(Identity { uid, gid })),
                _ => Ok(None),
            }
        }
    }
}

/// Gives up root for good: supplementary groups, group, then user.
pub fn drop_privileges(to: Identity) -> Result<(), String> {
    // SAFETY: plain system calls; the order (groups, gid, uid) is the one
    // that leaves no way back.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(to.gid) != 0 || libc::setuid(to.uid) != 0 {
            return Err(format!("cannot drop privileges to uid {}: {}", to.uid, io::Error::last_os_error()));
        }
        if libc::setuid(0) == 0 {
            return Err("dropped privileges could be regained; refusing to go on".to_string());
        }
    }
    Ok(())
}

/// `-D`: interfaces with their IPv4 addresses, numbered like tshark's.
pub fn list_interfaces() -> io::Result<Vec<(String, Vec<String>)>> {
    let mut names: Vec<String> =
        std::fs::read_dir("/sys/class/net")?.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    names.sort();
    let mut addresses: Vec<(String, String)> = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } == 0 {
        let mut cursor = list;
        while !cursor.is_null() {
            // SAFETY: `cursor` walks the list getifaddrs returned.
            let entry = unsafe { &*cursor };
            if !entry.ifa_addr.is_null() && i32::from(unsafe { (*entry.ifa_addr).sa_family }) == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in; the name is NUL-terminated.
                let sin = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in>() };
                let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) }.to_string_lossy().to_string();
                addresses.push((name, Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()).to_string()));
            }
            cursor = entry.ifa_next;
        }
        // SAFETY: `list` came from getifaddrs.
        unsafe { libc::freeifaddrs(list) };
    }
    names.push("any".to_string());
    Ok(names
        .into_iter()
        .map(|name| {
            let addrs = addresses.iter().filter(|(n, _)| *n == name).map(|(_, a)| a.clone()).collect();
            (name, addrs)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: FilterPorts = FilterPorts { ldm: 64535, libvirt: 16509, libvirt_tls: 16514 };

    #[test]
    fn program_patches_ports_and_fragment_jumps() {
        let ports = FilterPorts { ldm: 5000, libvirt: 6000, libvirt_tls: 7000 };
        let p = program(BPF_ETHERNET, ports);
        assert_eq!(p.len(), BPF_ETHERNET.len());
        let compared = |k: u32| p.iter().filter(|i| i.code == BPF_JEQ && i.k == k).count();
        assert_eq!(compared(TEMPLATE_LDM) + compared(TEMPLATE_LIBVIRT) + compared(TEMPLATE_LIBVIRT_TLS), 0);
        assert!(compared(5000) > 0 && compared(6000) > 0 && compared(7000) > 0);
        // Every fragment test jumps to the accepting return.
        for (i, insn) in p.iter().enumerate().filter(|(_, i)| i.code == BPF_JSET) {
            let target = i + 1 + insn.jt as usize;
            assert_eq!((p[target].code, p[target].k), (BPF_RET, 0x40000), "jset at {i}");
        }
    }

    /// Runs a classic BPF program (the instructions tcpdump emits here) on a packet.
    fn run(program: &[libc::sock_filter], packet: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let load = |at: usize, size: usize| -> Option<u32> {
            let bytes = packet.get(at..at + size)?;
            Some(bytes.iter().fold(0, |acc, b| acc << 8 | u32::from(*b)))
        };
        loop {
            let i = program[pc];
            let k = i.k as usize;
            pc += 1;
            let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
            match i.code {
                0x20 | 0x28 | 0x30 => {
                    let size = match i.code {
                        0x20 => 4,
                        0x28 => 2,
                        _ => 1,
                    };
                    let Some(v) = load(k, size) else { return 0 };
                    a = v;
                }
                0x48 | 0x50 => {
                    let Some(v) = load(x as usize + k, if i.code == 0x48 { 2 } else { 1 }) else { return 0 };
                    a = v;
                }
                0xb1 => {
                    let Some(v) = load(k, 1) else { return 0 };
                    x = (v & 0xf) * 4;
                }
                0x54 => a &= i.k,
                0x15 => pc += jump(a == i.k),
                0x25 => pc += jump(a > i.k),
                0x45 => pc += jump(a & i.k != 0),
                0x06 => return i.k,
                other => panic!("instruction {other:#x} not interpreted"),
            }
        }
    }

    fn tcp_frame(vlan: bool, src_port: u16, dst_port: u16) -> Vec<u8> {
        let builder = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]);
        let mut out = Vec::new();
        if vlan {
            builder
                .single_vlan(etherparse::VlanId::try_new(7).unwrap())
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(src_port, dst_port, 1, 1000)
                .write(&mut out, b"x")
                .unwrap();
        } else {
            builder
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(src_port, dst_port, 1, 1000)
                .write(&mut out, b"x")
                .unwrap();
        }
        out
    }

    #[test]
    fn the_kernel_filter_passes_ldm_and_libvirt_only() {
        use crate::synth::{ipv4_ethernet, Ipv4Udp};
        let p = program(BPF_ETHERNET, DEFAULT);
        let ldm = ipv4_ethernet([2; 6], &Ipv4Udp::ldm([10, 0, 0, 1].into(), 1), &[0; 312]);
        let dns = ipv4_ethernet(
            [2; 6],
            &Ipv4Udp { dst_port: 53, src_port: 5353, ..Ipv4Udp::ldm([10, 0, 0, 1].into(), 1) },
            &[0; 40],
        );
        assert_eq!(run(&p, &ldm), 0x40000);
        assert_eq!(run(&p, &dns), 0);
        for vlan in [false, true] {
            assert_eq!(run(&p, &tcp_frame(vlan, 40000, 16509)), 0x40000, "libvirt, vlan {vlan}");
            assert_eq!(run(&p, &tcp_frame(vlan, 16509, 40000)), 0x40000, "libvirt reply, vlan {vlan}");
            assert_eq!(run(&p, &tcp_frame(vlan, 40000, 16514)), 0x40000, "libvirt TLS, vlan {vlan}");
            assert_eq!(run(&p, &tcp_frame(vlan, 40000, 22)), 0, "ssh, vlan {vlan}");
        }
        let raw = program(BPF_RAW_IP, DEFAULT);
        assert_eq!(run(&raw, &tcp_frame(false, 40000, 16509)[14..]), 0x40000);
        assert_eq!(run(&raw, &tcp_frame(false, 40000, 80)[14..]), 0);
        assert_eq!(run(&raw, &ldm[14..]), 0x40000);
    }
}
