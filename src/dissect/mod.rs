//! A frame to its layers (link, IP, UDP) and to the ldm message, with the
//! per-packet findings. Stateless except for IPv4 reassembly.

pub mod checks;
pub mod fields;
pub mod ip;
pub mod link;
pub mod reassembly;
mod skim;
pub mod stream;
pub mod tcp;

use etherparse::IpNumber;

use crate::capture::{Frame, KeptFrame, KernelChecksum, Linktype};
use crate::expert::{Detail, Finding, Key};
use crate::wire::ldm::{self, Message};
use crate::wire::libvirt;
use crate::wire::tls;

pub use ip::{ChecksumStatus, IpInfo, UdpInfo};
pub use link::{Link, LinkKind, NetProto};
use reassembly::{Fragment, Reassembler};
use stream::{Deliveries, FlowKey, Framing, Origin, Report, Streams};
pub use tcp::TcpInfo;

/// A packet's findings. A clean packet has none, and an empty Vec allocates
/// nothing; an inline array of room for every key made each dissection 2 KiB
/// to move (and a SmallVec of one or two cost clean packets more than it
/// saved the others).
pub type Findings = Vec<Finding>;

/// How ldm traffic is recognised.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// UDP port carrying ldm (either end).
    pub port: u16,
    /// Also recognise ldm by its magic on any UDP port.
    pub heuristic: bool,
    /// Verify the IPv4 and UDP checksums of every frame, not only of ldm
    /// ones, and decode every TCP header, not only libvirt's (`--all` shows
    /// the others; otherwise nobody sees them).
    pub checksum_all: bool,
    /// TCP port carrying libvirt RPC (either end).
    pub libvirt_port: u16,
    /// TCP port carrying libvirt RPC over TLS (either end).
    pub libvirt_tls_port: u16,
    /// Frames that are certainly neither ldm nor libvirt are not decoded
    /// (their `stop` is `Stop::NotDecoded`): for runs where nothing looks
    /// at them (no `--all`, no `-Y` choosing what `-w` writes).
    pub skim_other: bool,
    /// What libvirt streams may hold (`conform` keeps whole messages).
    pub libvirt_limits: stream::Limits,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            port: ldm::PORT,
            heuristic: false,
            checksum_all: false,
            libvirt_port: libvirt::PORT,
            libvirt_tls_port: libvirt::TLS_PORT,
            skim_other: false,
            libvirt_limits: stream::Limits::ANALYSIS,
        }
    }
}

/// Why a frame was not decoded down to UDP (for `--all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Link(link::LinkError),
    NotIp(u16),
    Ip(ip::IpError),
    NotUdp(u8),
    /// An IP fragment (IPv4: held for reassembly; IPv6: not reassembled).
    Fragment {
        offset: usize,
    },
    /// UDP, but not ldm.
    OtherUdp,
    /// TCP, but not libvirt.
    OtherTcp,
    /// A libvirt TCP segment that completed no message.
    LibvirtSegment,
    /// libvirt data under a SASL security layer: encrypted, not decoded.
    LibvirtEncrypted,
    /// A segment on a libvirt port of a connection joined mid-way, before
    /// any of its segments started with a message header: not decoded.
    LibvirtNotFollowed,
    /// Neither ldm nor libvirt, and not decoded (`Options::skim_other`).
    NotDecoded,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Link(e) => write!(f, "{e}"),
            Stop::NotIp(0) => write!(f, "not IP"),
            Stop::NotIp(0x0806) => write!(f, "ARP"),
            Stop::NotIp(0x88cc) => write!(f, "LLDP"),
            Stop::NotIp(ethertype) => write!(f, "ethertype {ethertype:#06x}"),
            Stop::Ip(e) => write!(f, "{e}"),
            Stop::NotUdp(proto) => write!(f, "{}", protocol_name(*proto)),
            Stop::Fragment { offset } => write!(f, "IP fragment at offset {offset}"),
            Stop::OtherUdp => write!(f, "UDP"),
            Stop::OtherTcp => write!(f, "TCP"),
            Stop::LibvirtSegment => write!(f, "libvirt TCP segment"),
            Stop::LibvirtEncrypted => write!(f, "libvirt SASL-encrypted data"),
            Stop::LibvirtNotFollowed => write!(f, "libvirt TCP segment, stream not followed yet (joined mid-way)"),
            Stop::NotDecoded => write!(f, "not decoded"),
        }
    }
}

fn protocol_name(proto: u8) -> String {
    match proto {
        1 => "ICMP".to_string(),
        2 => "IGMP".to_string(),
        6 => "TCP".to_string(),
        58 => "ICMPv6".to_string(),
        other => format!("IP protocol {other}"),
    }
}

/// A reassembled IPv4 datagram's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reassembled {
    pub fragments: u32,
    pub first_frame: u64,
    /// Fragments that carried the same bytes (the first copy is kept).
    pub overlap: Option<reassembly::Overlap>,
}

/// One frame, decoded as far as it goes.
#[derive(Debug)]
pub struct Dissection<'a> {
    pub frame: Frame<'a>,
    pub link: Option<Link>,
    pub ip: Option<IpInfo>,
    pub udp: Option<UdpInfo>,
    pub ldm: Option<Message<'a>>,
    pub tcp: Option<TcpInfo>,
    /// A libvirt message completed by this frame (a frame that completes
    /// several is visited once per message; see `more_libvirt`).
    pub libvirt: Option<libvirt::Message<'a>>,
    /// A TLS record of libvirt over TLS, completed by this frame (several are
    /// visited like several libvirt messages).
    pub tls: Option<tls::Record<'a>>,
    /// The libvirt connection direction was seen from its SYN.
    pub libvirt_from_start: bool,
    /// The other direction of the libvirt connection lost bytes to the
    /// capture (a reply's call may be among them).
    pub libvirt_peer_lost: bool,
    pub reassembled: Option<Reassembled>,
    /// Where decoding stopped short of ldm, when it did.
    pub stop: Option<Stop>,
    pub findings: Findings,
    /// Shown again later: the first fragment of a datagram given up on, or a
    /// TCP segment that waited behind a hole in its stream, which were
    /// already counted (and written) when they were read.
    pub replayed: bool,
    /// A second or later libvirt message of a frame already visited: not
    /// counted or written again.
    pub continuation: bool,
}

impl<'a> Dissection<'a> {
    /// A frame before any layer is decoded.
    fn undecoded(frame: Frame<'a>, replayed: bool) -> Dissection<'a> {
        Dissection {
            frame,
            link: None,
            ip: None,
            udp: None,
            ldm: None,
            tcp: None,
            libvirt: None,
            tls: None,
            libvirt_from_start: false,
            libvirt_peer_lost: false,
            reassembled: None,
            stop: None,
            findings: Findings::new(),
            replayed,
            continuation: false,
        }
    }

    pub fn is_ldm(&self) -> bool {
        self.ldm.is_some()
    }

    /// A libvirt message, or a libvirt segment with stream findings (a gap).
    pub fn is_libvirt(&self) -> bool {
        // All of these ride on TCP: one test settles every other frame.
        if self.tcp.is_none() {
            return false;
        }
        self.libvirt.is_some()
            || self.tls.is_some()
            || self.stop == Some(Stop::LibvirtEncrypted)
            || (self.stop == Some(Stop::LibvirtSegment) && !self.findings.is_empty())
    }

    /// What a default run shows: ldm and libvirt, and a frame of a link
    /// type we do not decode that seems to carry ldm.
    pub fn is_shown(&self) -> bool {
        self.is_ldm() || self.is_libvirt() || self.is_undecoded_ldm()
    }

    /// A frame of an undecoded link type whose bytes look like ldm.
    pub fn is_undecoded_ldm(&self) -> bool {
        matches!(self.stop, Some(Stop::Link(link::LinkError::UnsupportedLinktype(_))))
            && self.findings.iter().any(|f| f.key == Key::FrameLinktypeUndecoded)
    }

    /// The link type of a frame we could not decode for its link type.
    pub fn undecoded_linktype(&self) -> Option<i32> {
        match self.stop {
            Some(Stop::Link(link::LinkError::UnsupportedLinktype(linktype))) => Some(linktype),
            _ => None,
        }
    }
}

pub struct Dissector {
    options: Options,
    reassembler: Reassembler,
    /// The reassembled payload of the current frame lives here.
    scratch: Vec<u8>,
    streams: Streams,
    /// What the streams delivered while the current frame was read.
    deliveries: Deliveries,
}

/// A frame's network layer, decoded.
struct Network<'a> {
    ip: IpInfo,
    /// The IP header and what follows.
    net: &'a [u8],
    /// What follows the IP header.
    payload: &'a [u8],
    outgoing: bool,
}

/// Where the UDP payload of a frame comes from.
enum Carrier<'a> {
    Frame(&'a [u8]),
    Reassembled(Reassembled),
}

impl Dissector {
    pub fn new(options: Options) -> Dissector {
        Dissector {
            options,
            reassembler: Reassembler::default(),
            scratch: Vec::new(),
            streams: Streams::new(options.libvirt_limits),
            deliveries: Deliveries::default(),
        }
    }

    /// Decodes one frame.
    pub fn dissect<'a>(&'a mut self, frame: Frame<'a>) -> Dissection<'a> {
        self.dissect_inner(frame, false)
    }

    /// Decodes one frame; `visit` gets it, then once more for each further
    /// libvirt message it completed (marked `continuation`, without the
    /// frame's findings). Earlier frames whose TCP segments waited behind a
    /// hole that this frame settles are visited first, as themselves
    /// (marked `replayed`). Stops early when `visit` returns false.
    pub fn dissect_each<E>(
        &mut self,
        frame: Frame<'_>,
        mut visit: impl FnMut(&Dissection<'_>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        if self.streams.has_due(frame.ts) {
            // Segments that waited long enough: their frames came before this one.
            self.deliveries.clear();
            self.streams.expire(&frame, &mut self.deliveries);
            if !self.visit_deliveries(None, &mut visit)? {
                return Ok(false);
            }
        }
        // Built here and filled in place: a dissection is about 500 bytes,
        // and returning one by value copied it once per frame.
        let mut d = Dissection::undecoded(frame, false);
        let skim = self.options.skim_other;
        // Plain Ethernet is judged from its bytes, the rest once its link is decoded.
        let raw_verdict = match frame.linktype {
            Linktype::ETHERNET if skim => skim::ethernet_is_other(frame.data, &self.options),
            _ => None,
        };
        if raw_verdict == Some(true) {
            d.stop = Some(Stop::NotDecoded);
            return visit(&d);
        }
        let link = link::decode(frame.linktype, frame.data);
        if skim && raw_verdict.is_none() && skim::is_other_traffic(&link, &self.options) {
            d.stop = Some(Stop::NotDecoded);
            return visit(&d);
        }
        let Some(network) = self.network_layers(&mut d, link) else { return visit(&d) };
        if network.ip.protocol == IpNumber::TCP.0 {
            self.deliveries.clear();
            self.tcp_layer(&mut d, &network);
            flag_bad_ip_checksum(&mut d);
            return self.visit_deliveries(Some(&mut d), &mut visit);
        }
        self.udp_layers(&mut d, network, false);
        visit(&d)
    }

    /// Every TCP segment still waiting behind a hole, at the end of the
    /// capture: decoded as its frame, after the gap.
    pub fn finish_streams<E>(&mut self, mut visit: impl FnMut(&Dissection<'_>) -> Result<bool, E>) -> Result<bool, E> {
        self.deliveries.clear();
        self.streams.finish(&mut self.deliveries);
        self.visit_deliveries(None, &mut visit)
    }

    /// Visits what the streams delivered: each frame it concerns, in the
    /// order reached, with its messages (`current` is the frame being
    /// read, if any). A frame that is not a libvirt segment has no report
    /// and is visited as it is.
    fn visit_deliveries<'s, E>(
        &'s self,
        mut current: Option<&mut Dissection<'s>>,
        visit: &mut impl FnMut(&Dissection<'_>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        for (index, report) in self.deliveries.reports.iter().enumerate() {
            let going_on = match report.origin {
                Origin::Current => match current.take() {
                    Some(d) => self.visit_messages(d, index, report, visit)?,
                    None => true,
                },
                Origin::Kept(kept) => match self.deliveries.kept.get(kept).and_then(held_segment) {
                    Some(mut d) => self.visit_messages(&mut d, index, report, visit)?,
                    None => true,
                },
            };
            if !going_on {
                return Ok(false);
            }
        }
        match current {
            Some(d) => visit(d),
            None => Ok(true),
        }
    }

    /// One frame of a stream with its report: the frame with its first
    /// message (and the stream's findings), then one continuation per
    /// further message.
    fn visit_messages<'s, E>(
        &'s self,
        d: &mut Dissection<'s>,
        index: usize,
        report: &Report,
        visit: &mut impl FnMut(&Dissection<'_>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        if report.unfollowed {
            d.stop = Some(Stop::LibvirtNotFollowed);
            return visit(d);
        }
        frame_findings(&d.frame, &mut d.findings);
        checks::stream(report, &mut d.findings);
        d.libvirt_from_start = report.from_start;
        d.libvirt_peer_lost = report.peer_lost;
        let framing = self.framing_by_ports(report.flow.src_port, report.flow.dst_port).unwrap_or(Framing::Libvirt);
        let mut messages = self.deliveries.messages_of(index);
        match messages.next() {
            Some(first) => {
                (d.libvirt, d.tls) = stream_message(first, framing);
                checks::libvirt(d.libvirt.as_ref(), &mut d.findings);
            }
            None if report.encrypted => d.stop = Some(Stop::LibvirtEncrypted),
            None => d.stop = Some(Stop::LibvirtSegment),
        }
        if !visit(d)? {
            return Ok(false);
        }
        for bytes in messages {
            let (msg, record) = stream_message(bytes, framing);
            let mut findings = Findings::new();
            checks::libvirt(msg.as_ref(), &mut findings);
            let more = Dissection {
                link: d.link.clone(),
                ip: d.ip,
                tcp: d.tcp,
                libvirt: msg,
                tls: record,
                libvirt_from_start: d.libvirt_from_start,
                libvirt_peer_lost: d.libvirt_peer_lost,
                findings,
                continuation: true,
                ..Dissection::undecoded(d.frame, d.replayed)
            };
            if !visit(&more)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Fragmented datagrams given up since the last call (timed out or
    /// evicted), or all open ones when `at_end`: their first fragments, to be
    /// shown with `ip.fragments_missing`.
    pub fn take_incomplete(&mut self, at_end: bool) -> Vec<reassembly::Incomplete> {
        if !at_end && !self.reassembler.has_given_up() {
            return Vec::new();
        }
        let given_up = if at_end { self.reassembler.finish() } else { self.reassembler.take_given_up() };
        given_up.into_iter().filter(|g| g.head.is_some()).collect()
    }

    /// Decodes the first fragment of a datagram that never completed.
    pub fn dissect_incomplete<'a>(&'a mut self, incomplete: &'a reassembly::Incomplete) -> Option<Dissection<'a>> {
        let head = incomplete.head.as_ref()?;
        let mut d = self.dissect_inner(head.frame(), true);
        if d.udp.is_some() {
            let detail = Detail::FragmentsMissing { have: incomplete.received, of: incomplete.total_len };
            d.findings.push(Finding::new(Key::IpFragmentsMissing, detail));
            if let Some(overlap) = incomplete.overlap {
                d.findings.push(overlap_finding(overlap));
            }
        }
        Some(d)
    }

    fn dissect_inner<'a>(&'a mut self, frame: Frame<'a>, incomplete: bool) -> Dissection<'a> {
        let mut d = Dissection::undecoded(frame, incomplete);
        if let Some(network) = self.network_layers(&mut d, link::decode(frame.linktype, frame.data)) {
            // A given-up fragment is shown as UDP; TCP is never reassembled.
            if network.ip.protocol == IpNumber::TCP.0 {
                d.stop = Some(Stop::NotUdp(network.ip.protocol));
            } else {
                self.udp_layers(&mut d, network, incomplete);
            }
        }
        d
    }

    /// The link and IP layers; `None` (with `d.stop` set) when decoding
    /// stops short of a transport.
    fn network_layers<'a>(
        &self,
        d: &mut Dissection<'a>,
        link: Result<(Link, &'a [u8]), link::LinkError>,
    ) -> Option<Network<'a>> {
        let (link, net) = match link {
            Ok(ok) => ok,
            Err(e) => {
                if let link::LinkError::UnsupportedLinktype(linktype) = e {
                    if carries_ldm(d.frame.data, self.options.port) {
                        let detail = Detail::Value { field: "linktype", got: linktype as u64 };
                        d.findings.push(Finding::new(Key::FrameLinktypeUndecoded, detail));
                    }
                }
                d.stop = Some(Stop::Link(e));
                return None;
            }
        };
        let outgoing = link.is_outgoing();
        let proto = link.proto;
        d.link = Some(link);
        let decoded = match proto {
            NetProto::Ipv4 => ip::ipv4(net),
            NetProto::Ipv6 => ip::ipv6(net),
            NetProto::Other(ethertype) => {
                d.stop = Some(Stop::NotIp(ethertype));
                return None;
            }
        };
        let (mut ip_info, payload) = match decoded {
            Ok(ok) => ok,
            Err(e) => {
                d.stop = Some(Stop::Ip(e));
                return None;
            }
        };
        if self.options.checksum_all {
            ip::verify_ipv4_checksum(net, &mut ip_info);
        }
        d.ip = Some(ip_info);
        Some(Network { ip: ip_info, net, payload, outgoing })
    }

    /// UDP and ldm, above a decoded network layer.
    fn udp_layers<'a>(&'a mut self, d: &mut Dissection<'a>, network: Network<'a>, incomplete: bool) {
        let frame = d.frame;
        let Network { ip: mut ip_info, net, payload: ip_payload, outgoing } = network;
        let checksum_all = self.options.checksum_all;
        if !ip::is_udp(&ip_info) {
            d.stop = Some(Stop::NotUdp(ip_info.protocol));
            return;
        }
        let carrier = match ip_info.fragment {
            Some(fragment) if ip_info.version == 4 && !incomplete => {
                match self.reassemble(&frame, &ip_info, fragment, ip_payload) {
                    Some(whole) => Carrier::Reassembled(whole),
                    None => {
                        d.stop = Some(Stop::Fragment { offset: fragment.offset });
                        return;
                    }
                }
            }
            // IPv6 fragments are not reassembled (ldmd never uses IPv6):
            // their data is not a UDP header, so decoding stops here.
            Some(fragment) if ip_info.version == 6 => {
                d.stop = Some(Stop::Fragment { offset: fragment.offset });
                return;
            }
            _ => Carrier::Frame(ip_payload),
        };
        // The kernel's checksum status is of the frame's own datagram.
        let (udp_bytes, kernel_checksum): (&'a [u8], _) = match carrier {
            Carrier::Frame(bytes) if !incomplete => (bytes, frame.kernel_checksum),
            Carrier::Frame(bytes) => (bytes, KernelChecksum::Unknown),
            Carrier::Reassembled(origin) => {
                d.reassembled = Some(origin);
                (&self.scratch, KernelChecksum::Unknown)
            }
        };
        // A fragment or reassembled datagram: the IP header's lengths describe
        // one piece, so UDP length checks use the reassembled bytes instead.
        let mut udp_ip = ip_info;
        if d.reassembled.is_some() || incomplete {
            udp_ip.payload_cut = incomplete;
            udp_ip.total_len = udp_ip.header_len + udp_bytes.len();
        }
        let (mut udp_info, payload) = match ip::udp_unverified(&udp_ip, udp_bytes) {
            Ok(ok) => ok,
            Err(e) => {
                d.stop = Some(Stop::Ip(e));
                return;
            }
        };
        // Only ldm datagrams are summed: other traffic is most of a busy
        // capture, and its checksums say nothing about ldm.
        let is_ldm = self.is_ldm(&udp_info, payload);
        if is_ldm || checksum_all {
            ip::verify_udp_checksum(&udp_ip, udp_bytes, outgoing, kernel_checksum, &mut udp_info);
        }
        d.udp = Some(udp_info);
        if !is_ldm {
            d.stop = Some(Stop::OtherUdp);
            return;
        }
        if !checksum_all {
            ip::verify_ipv4_checksum(net, &mut ip_info);
            udp_ip.checksum_status = ip_info.checksum_status;
            d.ip = Some(ip_info);
        }
        let msg = Message::parse(payload);
        // Cut by the capture (the snap length, a lost fragment), not by the
        // sender or the path: a datagram shorter than its header claims in a
        // whole frame is the sender's, and flagged.
        let cut_by_capture = frame.is_truncated() || incomplete;
        collect_findings(&mut d.findings, &frame, &udp_ip, &udp_info, &msg, cut_by_capture, d.reassembled);
        d.ldm = Some(msg);
    }

    /// TCP, and for the libvirt ports the stream: what it delivers is left
    /// in `deliveries`, for `visit_deliveries`.
    fn tcp_layer(&mut self, d: &mut Dissection<'_>, network: &Network<'_>) {
        let ip = &network.ip;
        if let Some(fragment) = ip.fragment {
            // TCP is not reassembled from IP fragments (senders use path MTU
            // discovery), and a later fragment holds no TCP header.
            d.stop = Some(Stop::Fragment { offset: fragment.offset });
            return;
        }
        // Most TCP on a busy link is not libvirt: the two ports settle it
        // before any header is built, unless `--all` wants every TCP header.
        let ports = be16(network.payload, 0).zip(be16(network.payload, 2));
        let framing = ports.and_then(|(src, dst)| self.framing_by_ports(src, dst));
        if framing.is_none() && !self.options.checksum_all {
            d.stop = Some(Stop::OtherTcp);
            return;
        }
        let (tcp_info, payload) = match tcp::tcp(network.payload) {
            Ok(ok) => ok,
            Err(e) => {
                d.stop = Some(Stop::Ip(e));
                return;
            }
        };
        d.tcp = Some(tcp_info);
        let Some(framing) = framing else {
            d.stop = Some(Stop::OtherTcp);
            return;
        };
        let key = FlowKey { src: ip.src, src_port: tcp_info.src_port, dst: ip.dst, dst_port: tcp_info.dst_port };
        self.streams.segment(key, framing, &tcp_info, payload, &d.frame, &mut self.deliveries);
        let followed = self.deliveries.reports.iter().any(|r| r.origin == Origin::Current && !r.unfollowed);
        if followed && !self.options.checksum_all {
            // As for ldm: only the traffic we decode has its header summed.
            let mut ip_info = *ip;
            ip::verify_ipv4_checksum(network.net, &mut ip_info);
            d.ip = Some(ip_info);
        }
        for (range, report) in &self.deliveries.messages {
            let (msg, _) = stream_message(&self.deliveries.bytes[range.clone()], framing);
            if msg.is_some_and(|m| libvirt::starts_sasl(&m.header)) {
                self.streams.mark_sasl(self.deliveries.reports[*report].flow);
            }
        }
    }

    /// libvirt or libvirt over TLS, by the TCP ports (either end).
    fn framing_by_ports(&self, src: u16, dst: u16) -> Option<Framing> {
        let ports = [src, dst];
        if ports.contains(&self.options.libvirt_port) {
            Some(Framing::Libvirt)
        } else if ports.contains(&self.options.libvirt_tls_port) {
            Some(Framing::Tls)
        } else {
            None
        }
    }

    fn is_ldm(&self, udp: &UdpInfo, payload: &[u8]) -> bool {
        let port = self.options.port;
        udp.dst_port == port || udp.src_port == port || (self.options.heuristic && ldm::looks_like_ldm(payload))
    }

    /// Feeds a fragment to the reassembler; on completion the datagram is in
    /// `self.scratch`.
    fn reassemble(
        &mut self,
        frame: &Frame<'_>,
        ip: &IpInfo,
        fragment: ip::Ipv4Fragment,
        payload: &[u8],
    ) -> Option<Reassembled> {
        let piece = Fragment {
            src: ip.src,
            dst: ip.dst,
            id: fragment.id,
            protocol: ip.protocol,
            offset: fragment.offset,
            more_fragments: fragment.more_fragments,
            payload,
        };
        let keep = || KeptFrame::keep(frame);
        let whole = self.reassembler.add(piece, frame.ts, frame.number, keep)?;
        self.scratch = whole.payload;
        Some(Reassembled { fragments: whole.count, first_frame: whole.first_frame, overlap: whole.overlap })
    }
}

/// Whether undecoded bytes look like ldm: the ldm port as both UDP ports,
/// or the magic number in either byte order.
fn carries_ldm(data: &[u8], port: u16) -> bool {
    let [hi, lo] = port.to_be_bytes();
    let magic = ldm::MAGIC.to_be_bytes();
    let swapped = ldm::MAGIC.to_le_bytes();
    [&[hi, lo, hi, lo][..], &magic[..], &swapped[..]].iter().any(|needle| memchr::memmem::find(data, needle).is_some())
}

/// Findings about the frame itself: cut by the snap length, or a time out
/// of range.
fn frame_findings(frame: &Frame<'_>, out: &mut Findings) {
    if frame.is_truncated() {
        out.push(Finding::new(Key::FrameTruncated, Detail::Cut { caplen: frame.caplen(), len: frame.len }));
    }
    if let Some(raw) = frame.raw_time.filter(|raw| raw.out_of_range) {
        let detail = Detail::RawTime { units: raw.units, tsresol: raw.tsresol, offset_secs: raw.offset_secs };
        out.push(Finding::new(Key::FrameTimeOutOfRange, detail));
    }
}

/// Overlapping fragments: a note when they agree, an error when they differ.
fn overlap_finding(o: reassembly::Overlap) -> Finding {
    let key = if o.conflict { Key::IpFragmentOverlapConflict } else { Key::IpFragmentOverlap };
    let detail = Detail::FragmentOverlap {
        first_frame: o.first_frame,
        frame: o.frame,
        from: o.from as u32,
        to: o.to as u32,
        linux_discards: o.linux_discards,
    };
    Finding::new(key, detail)
}

/// `ip.bad_checksum` for a frame whose IPv4 header sum was checked and is wrong.
fn flag_bad_ip_checksum(d: &mut Dissection<'_>) {
    let Some(ip) = d.ip else { return };
    if let ChecksumStatus::Bad { computed } = ip.checksum_status {
        let detail = Detail::Checksum { got: ip.checksum, want: computed };
        d.findings.push(Finding::new(Key::IpBadChecksum, detail));
    }
}

/// A TCP segment that waited behind a hole, decoded again from its kept
/// frame (its layers below TCP were decoded when it was read).
fn held_segment(kept: &KeptFrame) -> Option<Dissection<'_>> {
    let frame = kept.frame();
    let (link, net) = link::decode(frame.linktype, frame.data).ok()?;
    let (mut ip, ip_payload) = match link.proto {
        NetProto::Ipv4 => ip::ipv4(net).ok()?,
        NetProto::Ipv6 => ip::ipv6(net).ok()?,
        NetProto::Other(_) => return None,
    };
    ip::verify_ipv4_checksum(net, &mut ip);
    let (tcp, _) = tcp::tcp(ip_payload).ok()?;
    let mut d = Dissection::undecoded(frame, true);
    (d.link, d.ip, d.tcp) = (Some(link), Some(ip), Some(tcp));
    flag_bad_ip_checksum(&mut d);
    Some(d)
}

/// The big-endian 16-bit word at `at`.
fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// One message of a reassembled stream: a libvirt message, or a TLS record.
fn stream_message(bytes: &[u8], framing: Framing) -> (Option<libvirt::Message<'_>>, Option<tls::Record<'_>>) {
    match framing {
        Framing::Libvirt => (libvirt::Message::parse(bytes), None),
        Framing::Tls => (None, tls::Record::parse(bytes)),
    }
}

fn collect_findings(
    out: &mut Findings,
    frame: &Frame<'_>,
    ip_info: &IpInfo,
    udp_info: &UdpInfo,
    msg: &Message<'_>,
    cut_by_capture: bool,
    reassembled: Option<Reassembled>,
) {
    frame_findings(frame, out);
    if ip_info.payload_cut && !cut_by_capture {
        let detail = Detail::Length { got: ip_info.available, want: ip_info.total_len };
        out.push(Finding::new(Key::IpTruncated, detail));
    }
    if let Some(origin) = reassembled {
        let detail =
            Detail::Fragments { count: origin.fragments, first_frame: origin.first_frame, last_frame: frame.number };
        out.push(Finding::new(Key::IpFragmented, detail));
        if let Some(overlap) = origin.overlap {
            out.push(overlap_finding(overlap));
        }
    }
    checks::transport(ip_info, udp_info, out);
    checks::message(msg, ip::ipv4_source(ip_info), cut_by_capture, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Linktype, Timestamp};
    use crate::wire::ldm::Repr;

    fn frame(data: &[u8]) -> Frame<'_> {
        Frame {
            number: 1,
            ts: Timestamp::default(),
            len: data.len() as u32,
            linktype: Linktype::RAW,
            interface: 0,
            file_offset: 0,
            data,
            kernel_checksum: KernelChecksum::Unknown,
            raw_time: None,
        }
    }

    #[test]
    fn ipv6_fragments_are_not_decoded_as_udp() {
        let udp = crate::synth::ipv6_udp(
            "fe80::1".parse().unwrap(),
            "ff02::1".parse().unwrap(),
            1,
            (ldm::PORT, ldm::PORT),
            &Repr::discovery_request().to_bytes(),
        );
        // Insert a fragment header (next header 44) between IPv6 and UDP.
        let mut packet = udp[..40].to_vec();
        packet[6] = 44;
        let payload_len = u16::from_be_bytes([packet[4], packet[5]]) + 8;
        packet[4..6].copy_from_slice(&payload_len.to_be_bytes());
        packet.extend_from_slice(&[17, 0, 0x00, 0x01, 0, 0, 0, 7]); // offset 0, more fragments
        packet.extend_from_slice(&udp[40..]);
        let mut dissector = Dissector::new(Options::default());
        let d = dissector.dissect(frame(&packet));
        assert!(d.ldm.is_none());
        assert!(matches!(d.stop, Some(Stop::Fragment { .. })), "{:?}", d.stop);
    }
}
