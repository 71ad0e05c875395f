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

use crate::capture::{Frame, KernelChecksum, Linktype};
use crate::expert::{Detail, Finding, Key};
use crate::wire::ldm::{self, Message};
use crate::wire::libvirt;
use crate::wire::tls;

pub use ip::{ChecksumStatus, IpInfo, UdpInfo};
pub use link::{Link, LinkKind, NetProto};
use reassembly::{Fragment, KeptFrame, Reassembler};
use stream::{FlowKey, Framing, Streams};
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
    pub fragments: u16,
    pub first_frame: u64,
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
    pub reassembled: Option<Reassembled>,
    /// Where decoding stopped short of ldm, when it did.
    pub stop: Option<Stop>,
    pub findings: Findings,
    /// Shown again at the end: the first fragment of a datagram given up on,
    /// which was already counted (and written) when it was read.
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

    /// What a default run shows: ldm and libvirt.
    pub fn is_shown(&self) -> bool {
        self.is_ldm() || self.is_libvirt()
    }
}

pub struct Dissector {
    options: Options,
    reassembler: Reassembler,
    /// The reassembled payload of the current frame lives here.
    scratch: Vec<u8>,
    streams: Streams,
    /// The libvirt messages the current frame completed, and where each is.
    libvirt_bytes: Vec<u8>,
    libvirt_messages: Vec<std::ops::Range<usize>>,
    /// How the current frame's stream was framed (libvirt or TLS).
    framing: Framing,
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
            streams: Streams::default(),
            libvirt_bytes: Vec::new(),
            libvirt_messages: Vec::new(),
            framing: Framing::Libvirt,
        }
    }

    /// Decodes one frame.
    pub fn dissect<'a>(&'a mut self, frame: Frame<'a>) -> Dissection<'a> {
        self.dissect_inner(frame, false)
    }

    /// Decodes one frame; `visit` gets it, then once more for each further
    /// libvirt message it completed (marked `continuation`, without the
    /// frame's findings). Stops early when `visit` returns false.
    pub fn dissect_each<E>(
        &mut self,
        frame: Frame<'_>,
        mut visit: impl FnMut(&Dissection<'_>) -> Result<bool, E>,
    ) -> Result<bool, E> {
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
        self.decode_layers(&mut d, link, false);
        if !visit(&d)? {
            return Ok(false);
        }
        if d.libvirt.is_none() && d.tls.is_none() {
            return Ok(true);
        }
        // The layers below libvirt are the frame's; they outlive `d`, whose
        // borrow of the dissector must end before the messages are read.
        let (link, ip, tcp, from_start) = (d.link.clone(), d.ip, d.tcp, d.libvirt_from_start);
        for range in self.libvirt_messages.iter().skip(1) {
            let (msg, record) = stream_message(&self.libvirt_bytes[range.clone()], self.framing);
            let mut findings = Findings::new();
            checks::libvirt(msg.as_ref(), &mut findings);
            let more = Dissection {
                frame,
                link: link.clone(),
                ip,
                udp: None,
                ldm: None,
                tcp,
                libvirt: msg,
                tls: record,
                libvirt_from_start: from_start,
                reassembled: None,
                stop: None,
                findings,
                replayed: false,
                continuation: true,
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
    pub fn take_incomplete(&mut self, at_end: bool) -> Vec<(KeptFrame, usize, Option<usize>)> {
        let given_up = if at_end { self.reassembler.finish() } else { self.reassembler.take_given_up() };
        given_up.into_iter().filter_map(|g| g.head.map(|head| (head, g.received, g.total_len))).collect()
    }

    /// Decodes the first fragment of a datagram that never completed.
    pub fn dissect_incomplete<'a>(
        &'a mut self,
        kept: &'a KeptFrame,
        received: usize,
        total: Option<usize>,
    ) -> Dissection<'a> {
        let frame = Frame {
            number: kept.number,
            ts: kept.ts,
            len: kept.len,
            linktype: kept.linktype,
            interface: kept.interface,
            file_offset: kept.file_offset,
            data: &kept.data,
            kernel_checksum: KernelChecksum::Unknown,
        };
        let mut d = self.dissect_inner(frame, true);
        if d.udp.is_some() {
            d.findings
                .push(Finding::new(Key::IpFragmentsMissing, Detail::FragmentsMissing { have: received, of: total }));
        }
        d
    }

    fn dissect_inner<'a>(&'a mut self, frame: Frame<'a>, incomplete: bool) -> Dissection<'a> {
        let mut d = Dissection::undecoded(frame, incomplete);
        self.decode_layers(&mut d, link::decode(frame.linktype, frame.data), incomplete);
        d
    }

    /// Decodes what lies above the link layer, decoded as `link`.
    fn decode_layers<'a>(
        &'a mut self,
        d: &mut Dissection<'a>,
        link: Result<(Link, &'a [u8]), link::LinkError>,
        incomplete: bool,
    ) {
        let frame = d.frame;
        let (link, net) = match link {
            Ok(ok) => ok,
            Err(e) => {
                d.stop = Some(Stop::Link(e));
                return;
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
                return;
            }
        };
        let (mut ip_info, ip_payload) = match decoded {
            Ok(ok) => ok,
            Err(e) => {
                d.stop = Some(Stop::Ip(e));
                return;
            }
        };
        let checksum_all = self.options.checksum_all;
        if checksum_all {
            ip::verify_ipv4_checksum(net, &mut ip_info);
        }
        d.ip = Some(ip_info);
        if ip_info.protocol == IpNumber::TCP.0 && !incomplete {
            self.tcp_layer(d, &ip_info, ip_payload);
            if d.tcp.is_some() && d.stop != Some(Stop::OtherTcp) && !checksum_all {
                // As for ldm: only the traffic we decode has its header summed.
                ip::verify_ipv4_checksum(net, &mut ip_info);
                d.ip = Some(ip_info);
            }
            if let ChecksumStatus::Bad { computed } = ip_info.checksum_status {
                let detail =
                    Detail::Expected { field: "checksum", got: ip_info.checksum.into(), want: computed.into() };
                d.findings.insert(0, Finding::new(Key::IpBadChecksum, detail));
            }
            if let Some(first) = self.libvirt_messages.first() {
                // Borrow the messages' bytes only once the streams are done with them.
                (d.libvirt, d.tls) = stream_message(&self.libvirt_bytes[first.clone()], self.framing);
                checks::libvirt(d.libvirt.as_ref(), &mut d.findings);
            }
            return;
        }
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
        let cut_by_capture = frame.is_truncated() || ip_info.payload_cut || incomplete;
        collect_findings(&mut d.findings, &frame, &udp_ip, &udp_info, &msg, cut_by_capture, d.reassembled);
        d.ldm = Some(msg);
    }

    /// TCP, and for the libvirt port the stream's messages (left in
    /// `libvirt_bytes`; `d.libvirt` is set to a placeholder when there are any).
    fn tcp_layer(&mut self, d: &mut Dissection<'_>, ip: &IpInfo, ip_payload: &[u8]) {
        self.libvirt_bytes.clear();
        self.libvirt_messages.clear();
        if let Some(fragment) = ip.fragment {
            // TCP is not reassembled from IP fragments (senders use path MTU
            // discovery), and a later fragment holds no TCP header.
            d.stop = Some(Stop::Fragment { offset: fragment.offset });
            return;
        }
        // Most TCP on a busy link is not libvirt: the two ports settle it
        // before any header is built, unless `--all` wants every TCP header.
        let framing = self.framing_by_port(ip_payload);
        if framing.is_none() && !self.options.checksum_all {
            d.stop = Some(Stop::OtherTcp);
            return;
        }
        let (tcp_info, payload) = match tcp::tcp(ip_payload) {
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
        self.framing = framing;
        let key = FlowKey { src: ip.src, src_port: tcp_info.src_port, dst: ip.dst, dst_port: tcp_info.dst_port };
        let delivered = self.streams.segment(key, self.framing, &tcp_info, payload, &mut self.libvirt_bytes);
        checks::stream(&delivered, &mut d.findings);
        d.libvirt_from_start = delivered.from_start;
        let encrypted = delivered.encrypted;
        self.libvirt_messages = delivered.messages;
        for range in &self.libvirt_messages {
            let (msg, _) = stream_message(&self.libvirt_bytes[range.clone()], self.framing);
            if msg.is_some_and(|m| libvirt::starts_sasl(&m.header)) {
                self.streams.mark_sasl(key);
            }
        }
        if self.libvirt_messages.is_empty() {
            d.stop = Some(if encrypted { Stop::LibvirtEncrypted } else { Stop::LibvirtSegment });
        }
    }

    /// libvirt or libvirt over TLS, by the TCP ports (either end).
    fn framing_by_port(&self, tcp_bytes: &[u8]) -> Option<Framing> {
        let ports = [be16(tcp_bytes, 0)?, be16(tcp_bytes, 2)?];
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
        let keep = || KeptFrame {
            number: frame.number,
            ts: frame.ts,
            len: frame.len,
            linktype: frame.linktype,
            interface: frame.interface,
            file_offset: frame.file_offset,
            data: frame.data.to_vec(),
        };
        let whole = self.reassembler.add(piece, frame.ts, frame.number, keep)?;
        self.scratch = whole.payload;
        Some(Reassembled { fragments: whole.count, first_frame: whole.first_frame })
    }
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
    if frame.is_truncated() {
        out.push(Finding::new(Key::FrameTruncated, Detail::Cut { caplen: frame.caplen(), len: frame.len }));
    }
    if let Some(origin) = reassembled {
        let detail =
            Detail::Fragments { count: origin.fragments, first_frame: origin.first_frame, last_frame: frame.number };
        out.push(Finding::new(Key::IpFragmented, detail));
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
