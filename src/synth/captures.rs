//! The generated captures in `captures/`: each with what it shows and the
//! exact findings each of its frames must produce. `cargo run --example
//! gen-captures` writes them (and captures/README.md); a test checks that the
//! committed files match and that every frame decodes as promised.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::capture::writer::{PcapNgWriter, PcapWriter};
use crate::capture::{Linktype, Timestamp};
use crate::dissect::link::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, PACKET_OUTGOING};
use crate::expert::Key;
use crate::wire::ldm::{self, ByteOrder, MsgType, Repr, ReprPayload};

use super::{ethernet, ipnet, ipv4_ethernet, ipv6_udp, multicast_mac, null_loopback, sll, sll2, snoop_file, Ipv4Udp};

/// 2026-11-02T09:30:00Z: every capture starts here.
const T0: i64 = 1_793_611_800;

/// One generated file.
pub struct Generated {
    /// Path below captures/.
    pub name: &'static str,
    pub about: &'static str,
    pub bytes: Vec<u8>,
    /// Frames that are ldm packets, with the exact findings each raises
    /// (sorted by key); ldm frames not listed must raise none.
    pub expect: Vec<(u64, Vec<Key>)>,
    /// How many ldm packets a default run shows.
    pub ldm_packets: u64,
}

/// Files that are deliberately broken, for error handling.
pub struct Broken {
    pub name: &'static str,
    pub about: &'static str,
    pub bytes: Vec<u8>,
}

struct Host {
    ip: Ipv4Addr,
    mac: [u8; 6],
    name: &'static str,
}

const CLIENT: Host =
    Host { ip: Ipv4Addr::new(10, 1, 1, 5), mac: [0x00, 0x10, 0xe0, 0x01, 0x01, 0x05], name: "admin-ws" };
const LDOM_A: Host =
    Host { ip: Ipv4Addr::new(10, 1, 1, 10), mac: [0x00, 0x10, 0xe0, 0x01, 0x01, 0x0a], name: "ldom-a" };
const LDOM_B: Host =
    Host { ip: Ipv4Addr::new(10, 1, 1, 11), mac: [0x00, 0x10, 0xe0, 0x01, 0x01, 0x0b], name: "ldom-b" };
const LDOM_C: Host =
    Host { ip: Ipv4Addr::new(10, 1, 1, 12), mac: [0x00, 0x10, 0xe0, 0x01, 0x01, 0x0c], name: "ldom-c" };
const LDMD_VERSION: &str = "3.6.1.0.11";
/// A MAC from the automatic range.
const AUTO_MAC: [u8; 6] = [0x00, 0x14, 0x4f, 0xf8, 0x12, 0x34];
const AUTO_MAC_2: [u8; 6] = [0x00, 0x14, 0x4f, 0xf9, 0xa0, 0x07];

fn disc_resp(host: &Host) -> Repr {
    Repr::discovery_response(LDMD_VERSION, host.name, host.ip)
}

/// A recorded frame before it is written.
struct Record {
    at_us: i64,
    iface: u32,
    data: Vec<u8>,
    orig_len: u32,
    comment: Option<String>,
}

/// Collects frames and expectations in order.
#[derive(Default)]
struct Recorder {
    records: Vec<Record>,
    /// pcapng blocks of other types: (written before record index, type, body).
    blocks: Vec<(usize, u32, Vec<u8>)>,
    expect: Vec<(u64, Vec<Key>)>,
    ldm_packets: u64,
}

impl Recorder {
    /// Adds a frame at `at_us` microseconds after T0; returns its number.
    fn frame(&mut self, at_us: i64, data: Vec<u8>) -> u64 {
        self.frame_on(0, at_us, data)
    }

    fn frame_on(&mut self, iface: u32, at_us: i64, data: Vec<u8>) -> u64 {
        let orig_len = data.len() as u32;
        self.records.push(Record { at_us, iface, data, orig_len, comment: None });
        self.records.len() as u64
    }

    /// An ldm frame and the findings it must raise.
    fn ldm(&mut self, at_us: i64, data: Vec<u8>, keys: &[Key]) -> u64 {
        let number = self.frame(at_us, data);
        self.expect_keys(number, keys);
        number
    }

    /// A libvirt frame: the messages it completes (or 1 for a segment that
    /// completes none but raises stream findings) and all their findings.
    fn libvirt(&mut self, at_us: i64, data: Vec<u8>, records: u64, keys: &[Key]) -> u64 {
        let number = self.frame(at_us, data);
        self.expect_keys(number, keys);
        self.ldm_packets += records - 1;
        number
    }

    fn expect_keys(&mut self, number: u64, keys: &[Key]) {
        self.ldm_packets += 1;
        if !keys.is_empty() {
            let mut keys = keys.to_vec();
            keys.sort();
            let label = keys.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ");
            self.records[number as usize - 1].comment = Some(format!("expected: {label}"));
            self.expect.push((number, keys));
        }
    }

    fn ts(at_us: i64) -> Timestamp {
        Timestamp::new(T0 + at_us.div_euclid(1_000_000), (at_us.rem_euclid(1_000_000) * 1000) as u32)
    }

    fn pcapng(self, name: &'static str, about: &'static str, interfaces: &[(Linktype, &str, u8)]) -> Generated {
        let mut w = PcapNgWriter::new(Vec::new()).expect("writing to a Vec");
        for (linktype, if_name, tsresol) in interfaces {
            w.add_interface(*linktype, if_name, *tsresol).expect("writing to a Vec");
        }
        for (i, r) in self.records.iter().enumerate() {
            for (_, block_type, body) in self.blocks.iter().filter(|(at, _, _)| *at == i) {
                w.write_raw_block(*block_type, body).expect("writing to a Vec");
            }
            w.write_packet(r.iface, Recorder::ts(r.at_us), &r.data, r.orig_len, r.comment.as_deref())
                .expect("writing to a Vec");
        }
        Generated { name, about, bytes: w.into_inner(), expect: self.expect, ldm_packets: self.ldm_packets }
    }

    /// A snoop file; record `i` carries the cumulative drop count `drops(i)`.
    fn snoop(self, name: &'static str, about: &'static str, datalink: u32, drops: impl Fn(usize) -> u32) -> Generated {
        let records: Vec<_> = self
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (Recorder::ts(r.at_us), r.data.as_slice(), drops(i)))
            .collect();
        let bytes = snoop_file(datalink, &records);
        Generated { name, about, bytes, expect: self.expect, ldm_packets: self.ldm_packets }
    }

    fn pcap(
        self,
        name: &'static str,
        about: &'static str,
        linktype: Linktype,
        nanosecond: bool,
        big_endian: bool,
    ) -> Generated {
        let mut w = PcapWriter::new(Vec::new(), linktype, nanosecond, big_endian).expect("writing to a Vec");
        for r in &self.records {
            w.write_packet(Recorder::ts(r.at_us), &r.data, r.orig_len).expect("writing to a Vec");
        }
        Generated { name, about, bytes: w.into_inner(), expect: self.expect, ldm_packets: self.ldm_packets }
    }
}

fn eth_ldm(host: &Host, id: u16, repr: &Repr) -> Vec<u8> {
    ipv4_ethernet(host.mac, &Ipv4Udp::ldm(host.ip, id), &repr.to_bytes())
}

const ETHERNET_US: &[(Linktype, &str, u8)] = &[(Linktype::ETHERNET, "eth0", 6)];

/// Every generated capture, in the order captures/README.md lists them.
pub fn all() -> Vec<Generated> {
    vec![
        discovery(),
        mac_collision(),
        short_lookup(),
        anomalies(),
        vlan(),
        sll2_any(),
        sll_v1(),
        little_endian(),
        two_interfaces(),
        raw_ip_big_endian_ns(),
        loopback_null(),
        mixed_traffic(),
        busy_link(),
        late_response(),
        two_owners(),
        incident(),
        allocation_failure(),
        startup_check(),
        startup_check_too_big(),
        lookup_storm(),
        unsolicited(),
        discovery_inconsistent(),
        time_backwards(),
        time_out_of_range(),
        libvirt_anomalies(),
        libvirt_tls_sasl(),
        libvirt_stream_holes(),
        solaris_snoop(),
        solaris_ipnet_pcap(),
        solaris_ipnet_snoop(),
        undecoded_link(),
    ]
}

/// A discovery and a handled collision, as the frames of one exchange.
fn solaris_exchange(r: &mut Recorder, frame: impl Fn(&Host, u16, &Repr) -> Vec<u8>) {
    r.ldm(0, frame(&CLIENT, 0x1101, &Repr::discovery_request()), &[]);
    r.ldm(2_400, frame(&LDOM_A, 0x2101, &disc_resp(&LDOM_A)), &[]);
    r.ldm(3_900, frame(&LDOM_B, 0x3101, &disc_resp(&LDOM_B)), &[]);
    r.ldm(500_000, frame(&LDOM_A, 0x2102, &Repr::lookup(MsgType::SendMsg, AUTO_MAC, LDOM_A.ip)), &[]);
    r.ldm(
        501_200,
        frame(&LDOM_B, 0x3102, &Repr::lookup(MsgType::ResponseMsg, AUTO_MAC, LDOM_B.ip)),
        &[Key::LdmCollision],
    );
}

/// An ldm datagram as a Solaris ipnet device shows it: hook 0 (inbound).
fn ipnet_ldm(host: &Host, id: u16, repr: &Repr) -> Vec<u8> {
    ipnet(2, 0, 2, &Ipv4Udp::ldm(host.ip, id).packet(&repr.to_bytes()))
}

fn solaris_snoop() -> Generated {
    let mut r = Recorder::default();
    solaris_exchange(&mut r, eth_ldm);
    r.snoop(
        "solaris/discovery.snoop",
        "What `snoop -o FILE` writes on a Solaris control domain (snoop version 2, Ethernet): a discovery and a handled MAC collision. snoop counted 3 packets it dropped before the last record: the summary says so.",
        4,
        |i| if i == 4 { 3 } else { 0 },
    )
}

fn solaris_ipnet_pcap() -> Generated {
    let mut r = Recorder::default();
    solaris_exchange(&mut r, ipnet_ldm);
    r.pcap(
        "solaris/ipnet.pcap",
        "What Solaris 11's tcpdump writes on an ipnet device (`tcpdump -i ipnet/net0`, link type DLT_IPNET 226): the same exchange behind the 24-byte ipnet header.",
        crate::capture::LINKTYPE_IPNET,
        false,
        true,
    )
}

fn solaris_ipnet_snoop() -> Generated {
    let mut r = Recorder::default();
    solaris_exchange(&mut r, ipnet_ldm);
    r.snoop(
        "solaris/ipnet.snoop",
        "`snoop -I net0 -o FILE` on Solaris 11: snoop's private ipnet datalink (0x80000005), the same exchange.",
        0x8000_0005,
        |_| 0,
    )
}

fn undecoded_link() -> Generated {
    let mut r = Recorder::default();
    // PPP in HDLC-like framing: address, control, protocol 0x0021 (IPv4).
    let ppp = |packet: Vec<u8>| [&[0xff, 0x03, 0x00, 0x21][..], &packet].concat();
    let ldm = |host: &Host, id: u16, repr: &Repr| ppp(Ipv4Udp::ldm(host.ip, id).packet(&repr.to_bytes()));
    r.ldm(0, ldm(&CLIENT, 0x1201, &Repr::discovery_request()), &[Key::FrameLinktypeUndecoded]);
    r.ldm(2_000, ldm(&LDOM_A, 0x2201, &disc_resp(&LDOM_A)), &[Key::FrameLinktypeUndecoded]);
    r.frame(5_000, ppp(vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 1, 1, 5, 10, 1, 1, 10]));
    r.pcap(
        "undecoded-link.pcap",
        "Three frames of link type PPP (9), which ldm-sniff does not decode: two carry ldm (frame.linktype_undecoded, so the traffic is not silently missed), one does not; the summary counts all three as not decoded.",
        Linktype(9),
        false,
        false,
    )
}

fn discovery() -> Generated {
    let mut r = Recorder::default();
    r.ldm(0, eth_ldm(&CLIENT, 0x1001, &Repr::discovery_request()), &[]);
    r.ldm(3_120, eth_ldm(&LDOM_A, 0x2001, &disc_resp(&LDOM_A)), &[]);
    r.ldm(4_870, eth_ldm(&LDOM_B, 0x3001, &disc_resp(&LDOM_B)), &[]);
    r.ldm(9_450, eth_ldm(&LDOM_C, 0x4001, &disc_resp(&LDOM_C)), &[]);
    r.pcapng(
        "discovery.pcapng",
        "A clean discovery: admin-ws sends LDMD_DISC_SEND, three ldmd hosts (ldom-a, -b, -c) answer LDMD_DISC_RESP within 10 ms. No findings.",
        ETHERNET_US,
    )
}

fn mac_collision() -> Generated {
    let mut r = Recorder::default();
    r.ldm(0, eth_ldm(&LDOM_A, 0x2101, &Repr::lookup(MsgType::SendMsg, AUTO_MAC, LDOM_A.ip)), &[]);
    r.ldm(
        300_000,
        eth_ldm(&LDOM_B, 0x3101, &Repr::lookup(MsgType::ResponseMsg, AUTO_MAC, LDOM_B.ip)),
        &[Key::LdmCollision],
    );
    r.ldm(1_310_000, eth_ldm(&LDOM_A, 0x2102, &Repr::lookup(MsgType::SendMsg, AUTO_MAC_2, LDOM_A.ip)), &[]);
    r.pcapng(
        "mac-collision.pcapng",
        "ldom-a looks up 00:14:4f:f8:12:34; ldom-b owns it and answers after 300 ms (a handled collision: a note); ldom-a picks 00:14:4f:f9:a0:07, which nobody answers.",
        ETHERNET_US,
    )
}

fn short_lookup() -> Generated {
    let mut r = Recorder::default();
    let mut send = Repr::lookup(MsgType::SendMsg, AUTO_MAC, LDOM_A.ip);
    send.len = ldm::SHORT_LOOKUP_LEN;
    let mut resp = Repr::lookup(MsgType::ResponseMsg, AUTO_MAC, LDOM_C.ip);
    resp.len = ldm::SHORT_LOOKUP_LEN;
    r.ldm(0, eth_ldm(&LDOM_A, 0x2201, &send), &[]);
    r.ldm(120_000, eth_ldm(&LDOM_C, 0x4201, &resp), &[Key::LdmCollision]);
    r.pcap(
        "short-lookup.pcap",
        "The 40-byte short form of SEND_MSG and RESPONSE_MSG (header + mac_lookup_t), classic pcap. Decodes with no per-packet findings; the answer is a handled collision.",
        Linktype::ETHERNET,
        false,
        false,
    )
}

/// A zoo host: each zoo frame comes from its own host, so that the analysis
/// over time sees a clean discovery (one response per host) and adds nothing.
struct ZooHost {
    ip: Ipv4Addr,
    mac: [u8; 6],
    name: String,
}

impl ZooHost {
    fn new(i: u8) -> ZooHost {
        ZooHost {
            ip: Ipv4Addr::new(10, 1, 2, 10 + i),
            mac: [0x00, 0x10, 0xe0, 0x02, 0x02, 10 + i],
            name: format!("zoo-{i:02}"),
        }
    }

    fn disc_resp(&self) -> Repr {
        Repr::discovery_response(LDMD_VERSION, &self.name, self.ip)
    }

    fn lookup(&self, mac: [u8; 6]) -> Repr {
        Repr::lookup(MsgType::SendMsg, mac, self.ip)
    }

    fn udp(&self) -> Ipv4Udp {
        Ipv4Udp::ldm(self.ip, 0x5000)
    }

    /// The message in an Ethernet frame from this host.
    fn frame(&self, repr: &Repr) -> Vec<u8> {
        self.frame_via(&self.udp(), repr)
    }

    fn frame_via(&self, ip: &Ipv4Udp, repr: &Repr) -> Vec<u8> {
        ipv4_ethernet(self.mac, ip, &repr.to_bytes())
    }
}

fn edited(mut repr: Repr, edit: impl FnOnce(&mut Repr)) -> Repr {
    edit(&mut repr);
    repr
}

fn with_hostname(repr: Repr, name: &[u8]) -> Repr {
    edited(repr, |m| {
        if let ReprPayload::Discovery { hostname, .. } = &mut m.payload {
            *hostname = name.to_vec();
        }
    })
}

fn with_source_ip(repr: Repr, text: &[u8]) -> Repr {
    edited(repr, |m| {
        if let ReprPayload::Lookup { source_ip, .. } = &mut m.payload {
            *source_ip = text.to_vec();
        }
    })
}

/// Offset of the IP header in an untagged Ethernet frame.
const IP_AT: usize = 14;
/// Offset of the UDP header after a 20-byte IPv4 header.
const UDP_AT: usize = IP_AT + 20;

type ZooCase = (&'static [Key], Box<dyn Fn(&ZooHost) -> Vec<u8>>);

/// The per-packet zoo: one frame for each finding, each from its own host.
fn zoo_cases() -> Vec<ZooCase> {
    vec![
        (
            &[Key::LdmBadMagic],
            Box::new(|h| {
                let mut bytes = h.disc_resp().to_bytes();
                bytes[4..8].copy_from_slice(b"XXXX");
                ipv4_ethernet(h.mac, &h.udp(), &bytes)
            }),
        ),
        (&[Key::LdmByteSwapped], Box::new(|h| h.frame(&edited(h.disc_resp(), |m| m.byte_order = ByteOrder::Little)))),
        (&[Key::LdmBadVersion], Box::new(|h| h.frame(&edited(h.disc_resp(), |m| m.version_no = 2)))),
        (
            &[Key::LdmUnknownType],
            Box::new(|h| h.frame(&edited(Repr::discovery_request(), |m| m.msg_type = MsgType::Unknown(7)))),
        ),
        (&[Key::LdmResvNonzero], Box::new(|h| h.frame(&edited(h.disc_resp(), |m| m.resv = 0xdead_beef)))),
        (&[Key::LdmTruncated], Box::new(|h| h.frame(&edited(h.disc_resp(), |m| m.len = 200)))),
        (&[Key::LdmUnusualLength], Box::new(|h| h.frame(&edited(h.lookup(AUTO_MAC), |m| m.len = 100)))),
        (&[Key::LdmTrailingBytes], Box::new(|h| h.frame(&edited(h.disc_resp(), |m| m.len = 320)))),
        (&[Key::LdmStringUnterminated], Box::new(|h| h.frame(&with_hostname(h.disc_resp(), &[b'a'; 256])))),
        (&[Key::LdmStringNotText], Box::new(|h| h.frame(&with_hostname(h.disc_resp(), b"zoo\x01\xff")))),
        (&[Key::LdmBadSourceIp], Box::new(|h| h.frame(&with_source_ip(h.lookup(AUTO_MAC), b"not-an-ip")))),
        (&[Key::LdmSourceIpMismatch], Box::new(|h| h.frame(&with_source_ip(h.lookup(AUTO_MAC), b"10.1.1.99")))),
        (
            &[Key::LdmIpAddressMismatch],
            Box::new(|h| {
                h.frame(&edited(h.disc_resp(), |m| {
                    if let ReprPayload::Discovery { ip_address, .. } = &mut m.payload {
                        *ip_address = Ipv4Addr::new(10, 9, 9, 9);
                    }
                }))
            }),
        ),
        (
            &[Key::LdmMacHighBits],
            Box::new(|h| {
                h.frame(&edited(h.lookup(AUTO_MAC), |m| {
                    if let ReprPayload::Lookup { mac_addr, .. } = &mut m.payload {
                        *mac_addr |= 0xffff << 48;
                    }
                }))
            }),
        ),
        (
            &[Key::LdmMacMulticast, Key::LdmMacNotAuto],
            Box::new(|h| h.frame(&h.lookup([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]))),
        ),
        (&[Key::LdmMacZero, Key::LdmMacNotAuto], Box::new(|h| h.frame(&h.lookup([0; 6])))),
        (&[Key::LdmMacNotAuto], Box::new(|h| h.frame(&h.lookup([0x00, 0x14, 0x4f, 0xfc, 0x00, 0x01])))),
        (
            &[Key::LdmBadPort],
            Box::new(|h| {
                h.frame(&edited(h.disc_resp(), |m| {
                    if let ReprPayload::Discovery { port_no, .. } = &mut m.payload {
                        *port_no = 7000;
                    }
                }))
            }),
        ),
        (&[Key::IpTtlAboveOne], Box::new(|h| h.frame_via(&Ipv4Udp { ttl: 4, ..h.udp() }, &h.disc_resp()))),
        (
            &[Key::IpWrongGroup],
            Box::new(|h| h.frame_via(&Ipv4Udp { dst: Ipv4Addr::new(239, 1, 1, 1), ..h.udp() }, &h.disc_resp())),
        ),
        (&[Key::IpNotMulticast], Box::new(|h| h.frame_via(&Ipv4Udp { dst: CLIENT.ip, ..h.udp() }, &h.disc_resp()))),
        (
            &[Key::IpBadChecksum],
            Box::new(|h| {
                let mut frame = h.frame(&h.disc_resp());
                frame[IP_AT + 10] ^= 0x5a;
                frame
            }),
        ),
        (
            &[Key::UdpBadChecksum],
            Box::new(|h| {
                let mut frame = h.frame(&h.disc_resp());
                frame[UDP_AT + 6..UDP_AT + 8].copy_from_slice(&[0x12, 0x34]);
                frame
            }),
        ),
        (
            &[Key::UdpBadLength],
            Box::new(|h| {
                let mut frame = h.frame(&h.disc_resp());
                frame[UDP_AT + 4..UDP_AT + 6].copy_from_slice(&400u16.to_be_bytes());
                frame
            }),
        ),
        (
            &[Key::IpIpv6Transport],
            Box::new(|h| {
                let src: Ipv6Addr = "fe80::210:e0ff:fe02:20a".parse().unwrap_or(Ipv6Addr::LOCALHOST);
                let dst: Ipv6Addr = "ff02::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
                let packet = ipv6_udp(src, dst, 1, (ldm::PORT, ldm::PORT), &Repr::discovery_request().to_bytes());
                ethernet(h.mac, [0x33, 0x33, 0, 0, 0, 1], &[], ETHERTYPE_IPV6, &packet)
            }),
        ),
    ]
}

/// One packet per per-packet finding, each labelled with a pcapng comment.
fn anomalies() -> Generated {
    let mut r = Recorder::default();
    let mut t = 0;
    let mut next = || {
        t += 10_000;
        t
    };
    // A discovery request first: every zoo response answers it in time.
    r.ldm(0, eth_ldm(&CLIENT, 0x1601, &Repr::discovery_request()), &[]);
    for (i, (keys, build)) in zoo_cases().iter().enumerate() {
        let host = ZooHost::new(i as u8);
        r.ldm(next(), build(&host), keys);
    }
    let h = ZooHost::new(40);
    // Cut by a 100-byte snap length: the capture's fault, not the sender's.
    let full = h.frame(&h.disc_resp());
    let cut = r.frame(next(), full[..100].to_vec());
    r.records[cut as usize - 1].orig_len = full.len() as u32;
    r.expect_keys(cut, &[Key::FrameTruncated]);
    // Two fragments of one datagram: reassembled, flagged on the second.
    let h = ZooHost::new(41);
    let pieces = Ipv4Udp { id: 0x5200, ..h.udp() }.fragments(&h.disc_resp().to_bytes(), 200);
    let dst = multicast_mac(ldm::GROUP);
    r.frame(next(), ethernet(h.mac, dst, &[], ETHERTYPE_IPV4, &pieces[0]));
    let second = r.frame(next(), ethernet(h.mac, dst, &[], ETHERTYPE_IPV4, &pieces[1]));
    r.expect_keys(second, &[Key::IpFragmented]);
    // The first fragment of a datagram whose second fragment was lost.
    let h = ZooHost::new(42);
    let lost = Ipv4Udp { id: 0x5300, ..h.udp() }.fragments(&h.disc_resp().to_bytes(), 200);
    let alone = r.frame(next(), ethernet(h.mac, dst, &[], ETHERTYPE_IPV4, &lost[0]));
    r.expect_keys(alone, &[Key::IpFragmentsMissing]);
    // Two fragments that overlap on datagram bytes 80-207: first with the
    // same bytes there, then with other bytes (the first copy is decoded).
    for (i, conflict) in [(43u8, false), (44, true)] {
        let h = ZooHost::new(i);
        let sender = Ipv4Udp { id: 0x5400 + u16::from(i), ..h.udp() };
        let datagram = sender.udp_datagram(&h.disc_resp().to_bytes());
        let mut later = datagram[80..].to_vec();
        if conflict {
            later[..128].iter_mut().for_each(|b| *b ^= 0x20);
        }
        r.frame(next(), ethernet(h.mac, dst, &[], ETHERTYPE_IPV4, &sender.fragment(&datagram[..208], 0, true)));
        let second = r.frame(next(), ethernet(h.mac, dst, &[], ETHERTYPE_IPV4, &sender.fragment(&later, 80, false)));
        let overlap = if conflict { Key::IpFragmentOverlapConflict } else { Key::IpFragmentOverlap };
        r.expect_keys(second, &[Key::IpFragmented, overlap]);
    }
    // A whole 74-byte frame whose IP header claims the full 340-byte lookup:
    // cut on its way, not by the capture; source_ip "10.1.2.55" is cut to
    // "10.1.2.5", which no filter may take for the sender's value.
    let h = ZooHost::new(45);
    let full = h.frame(&Repr::lookup(MsgType::SendMsg, [0x00, 0x14, 0x4f, 0xf8, 0x45, 0x45], h.ip));
    let cut = r.frame(next(), full[..74].to_vec());
    r.expect_keys(cut, &[Key::IpTruncated, Key::LdmTruncated]);

    r.pcapng(
        "anomalies.pcapng",
        "A labelled zoo: a discovery request, then one packet per per-packet finding (every ldm.*, ip.*, udp.* and frame.* key checked in a single packet), each from its own host and carrying a pcapng comment naming the key it must raise.",
        ETHERNET_US,
    )
}

fn vlan() -> Generated {
    let mut r = Recorder::default();
    let dst = multicast_mac(ldm::GROUP);
    let q = |tags: &[(u16, u16)], host: &Host, id: u16, repr: &Repr| {
        ethernet(host.mac, dst, tags, ETHERTYPE_IPV4, &Ipv4Udp::ldm(host.ip, id).packet(&repr.to_bytes()))
    };
    r.ldm(0, q(&[(0x8100, 100)], &CLIENT, 0x1101, &Repr::discovery_request()), &[]);
    r.ldm(2_500, q(&[(0x8100, 100)], &LDOM_A, 0x2301, &disc_resp(&LDOM_A)), &[]);
    let qinq = [(0x88a8, 200), (0x8100, 100)];
    r.ldm(500_000, q(&qinq, &LDOM_B, 0x3301, &Repr::lookup(MsgType::SendMsg, AUTO_MAC_2, LDOM_B.ip)), &[]);
    r.pcapng(
        "vlan.pcapng",
        "Discovery on 802.1Q VLAN 100, then a MAC lookup double-tagged (QinQ: 802.1ad 200 outside, 802.1Q 100 inside). No findings.",
        ETHERNET_US,
    )
}

fn sll2_any() -> Generated {
    let mut r = Recorder::default();
    let send = Ipv4Udp::ldm(LDOM_A.ip, 0x2401).packet(&Repr::lookup(MsgType::SendMsg, AUTO_MAC, LDOM_A.ip).to_bytes());
    let mut offloaded = send.clone();
    // The stack left the pseudo-header sum for the NIC: outgoing, so unverified.
    offloaded[26..28].copy_from_slice(&[0xab, 0xcd]);
    r.ldm(0, sll2(ETHERTYPE_IPV4, 2, PACKET_OUTGOING as u8, LDOM_A.mac, &offloaded), &[]);
    let resp = Ipv4Udp::ldm(LDOM_B.ip, 0x3401);
    let resp_bytes = Repr::lookup(MsgType::ResponseMsg, AUTO_MAC, LDOM_B.ip).to_bytes();
    let mut partial = resp.packet(&resp_bytes);
    // Arrived over a veth pair with CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum.
    let partial_sum = pseudo_partial(&resp, resp_bytes.len() + 8);
    partial[26..28].copy_from_slice(&partial_sum.to_be_bytes());
    r.ldm(250_000, sll2(ETHERTYPE_IPV4, 3, 2, LDOM_B.mac, &partial), &[Key::LdmCollision]);
    r.ldm(260_000, sll2(ETHERTYPE_IPV4, 2, 2, LDOM_B.mac, &resp.packet(&resp_bytes)), &[Key::LdmCollision]);
    r.pcap(
        "sll2-any.pcap",
        "What `tcpdump -i any` writes (Linux cooked v2): an outgoing SEND_MSG whose UDP checksum the NIC would fill in, and a RESPONSE_MSG seen on a veth (partial checksum) and on the uplink. Offload must raise no false udp.bad_checksum, and the one response seen twice is not a duplicate response.",
        Linktype::LINUX_SLL2,
        false,
        false,
    )
}

/// The folded pseudo-header sum a stack leaves for checksum offload.
fn pseudo_partial(ip: &Ipv4Udp, udp_len: usize) -> u16 {
    let mut sum: u32 = 0;
    for pair in ip.src.octets().chunks(2).chain(ip.dst.octets().chunks(2)) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum += 17 + udp_len as u32;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn sll_v1() -> Generated {
    let mut r = Recorder::default();
    let frame = |host: &Host, pkttype: u16, id: u16, repr: &Repr| {
        sll(pkttype, host.mac, ETHERTYPE_IPV4, &Ipv4Udp::ldm(host.ip, id).packet(&repr.to_bytes()))
    };
    r.ldm(0, frame(&CLIENT, PACKET_OUTGOING, 0x1201, &Repr::discovery_request()), &[]);
    r.ldm(4_000, frame(&LDOM_C, 2, 0x4301, &disc_resp(&LDOM_C)), &[]);
    r.pcap(
        "sll-v1.pcap",
        "Linux cooked capture v1 (older `tcpdump -i any`): a discovery request sent by the capturing host and one response. No findings.",
        Linktype::LINUX_SLL,
        false,
        false,
    )
}

fn little_endian() -> Generated {
    let mut r = Recorder::default();
    let le = |mut repr: Repr| {
        repr.byte_order = ByteOrder::Little;
        repr
    };
    let x86 = Host { ip: Ipv4Addr::new(10, 1, 1, 40), mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], name: "x86-ldmd" };
    r.ldm(0, eth_ldm(&CLIENT, 0x1301, &le(Repr::discovery_request())), &[Key::LdmByteSwapped]);
    r.ldm(5_000, eth_ldm(&x86, 0x6001, &le(disc_resp(&x86))), &[Key::LdmByteSwapped]);
    r.ldm(
        900_000,
        eth_ldm(&x86, 0x6002, &le(Repr::lookup(MsgType::SendMsg, AUTO_MAC_2, x86.ip))),
        &[Key::LdmByteSwapped],
    );
    r.pcapng(
        "little-endian.pcapng",
        "An x86 re-implementation writing little-endian integers: discovery request, its response and a MAC lookup, each decoded correctly and flagged ldm.byte_swapped.",
        ETHERNET_US,
    )
}

fn two_interfaces() -> Generated {
    let mut r = Recorder::default();
    r.ldm(0, eth_ldm(&CLIENT, 0x1401, &Repr::discovery_request()), &[]);
    // A block type no reader knows: it must be skipped.
    r.blocks.push((1, 0x0000_7e57, b"unknown block: skip me".to_vec()));
    let resp = Ipv4Udp::ldm(LDOM_A.ip, 0x2501).packet(&disc_resp(&LDOM_A).to_bytes());
    let n = r.frame_on(1, 1_234, sll2(ETHERTYPE_IPV4, 5, 2, LDOM_A.mac, &resp));
    r.expect_keys(n, &[]);
    r.ldm(2_000, eth_ldm(&LDOM_B, 0x3501, &disc_resp(&LDOM_B)), &[]);
    r.pcapng(
        "two-interfaces.pcapng",
        "A pcapng with two interfaces of different link types and timestamp resolutions: eth0 (Ethernet, microseconds) and any (Linux cooked v2, nanoseconds), and a block of an unknown type that must be skipped. No findings.",
        &[(Linktype::ETHERNET, "eth0", 6), (Linktype::LINUX_SLL2, "any", 9)],
    )
}

fn raw_ip_big_endian_ns() -> Generated {
    let mut r = Recorder::default();
    let raw = |host: &Host, id: u16, repr: &Repr| Ipv4Udp::ldm(host.ip, id).packet(&repr.to_bytes());
    r.ldm(0, raw(&LDOM_C, 0x4401, &Repr::lookup(MsgType::SendMsg, AUTO_MAC, LDOM_C.ip)), &[]);
    r.ldm(1_001, raw(&LDOM_A, 0x2601, &Repr::lookup(MsgType::ResponseMsg, AUTO_MAC, LDOM_A.ip)), &[Key::LdmCollision]);
    r.pcap(
        "raw-ip-be-ns.pcap",
        "Classic pcap written big-endian with nanosecond timestamps and raw IPv4 link type (as a SPARC host's own tools may write). A lookup answered after 1.001 ms (a handled collision).",
        Linktype::RAW,
        true,
        true,
    )
}

fn loopback_null() -> Generated {
    let mut r = Recorder::default();
    let lo = |id: u16, repr: &Repr| {
        let ip = Ipv4Udp { dst: Ipv4Addr::LOCALHOST, ..Ipv4Udp::ldm(Ipv4Addr::LOCALHOST, id) };
        null_loopback(2, &ip.packet(&repr.to_bytes()))
    };
    r.ldm(0, lo(1, &Repr::discovery_request()), &[Key::IpNotMulticast]);
    let me = Host { ip: Ipv4Addr::LOCALHOST, mac: [0; 6], name: "localhost" };
    r.ldm(700, lo(2, &disc_resp(&me)), &[Key::IpNotMulticast]);
    r.pcap(
        "loopback-null.pcap",
        "A test harness talking to a responder on 127.0.0.1 (BSD loopback link type): decodes, flagged ip.not_multicast (a note) since it is unicast.",
        Linktype::NULL,
        false,
        false,
    )
}

fn mixed_traffic() -> Generated {
    let mut r = Recorder::default();
    let other = [0x00, 0x10, 0xe0, 0x09, 0x09, 0x09];
    let mut arp = vec![0u8; 28];
    arp[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    r.frame(0, ethernet(other, [0xff; 6], &[], 0x0806, &arp));
    let dns =
        Ipv4Udp { dst: Ipv4Addr::new(10, 1, 1, 53), src_port: 53_001, dst_port: 53, ..Ipv4Udp::ldm(CLIENT.ip, 7) };
    r.frame(
        1_000,
        ethernet(
            CLIENT.mac,
            other,
            &[],
            ETHERTYPE_IPV4,
            &dns.packet(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01"),
        ),
    );
    r.ldm(2_000, eth_ldm(&CLIENT, 0x1501, &Repr::discovery_request()), &[]);
    let mut tcp =
        etherparse::PacketBuilder::ipv4(LDOM_A.ip.octets(), CLIENT.ip.octets(), 64).tcp(6482, 40_000, 1, 64_000);
    tcp = tcp.ack(1);
    let mut tcp_bytes = Vec::new();
    tcp.write(&mut tcp_bytes, b"<iq/>").expect("writing to a Vec");
    r.frame(2_500, ethernet(LDOM_A.mac, CLIENT.mac, &[], ETHERTYPE_IPV4, &tcp_bytes));
    r.ldm(3_000, eth_ldm(&LDOM_A, 0x2701, &disc_resp(&LDOM_A)), &[]);
    // ldm on another port: shown only with --heuristic (or --port 5000).
    let odd_port = Ipv4Udp { src_port: 5000, dst_port: 5000, ..Ipv4Udp::ldm(LDOM_B.ip, 0x3601) };
    r.frame(4_000, ipv4_ethernet(LDOM_B.mac, &odd_port, &disc_resp(&LDOM_B).to_bytes()));
    // IPv4 options (Router Alert) before the UDP header.
    let with_option = Ipv4Udp { options: vec![0x94, 0x04, 0x00, 0x00], ..Ipv4Udp::ldm(LDOM_C.ip, 0x4501) };
    r.ldm(5_000, ipv4_ethernet(LDOM_C.mac, &with_option, &disc_resp(&LDOM_C).to_bytes()), &[]);
    r.pcapng(
        "mixed-traffic.pcapng",
        "ldm among other traffic (ARP, DNS, the XMPP TCP port) and one ldm packet with an IPv4 option (Router Alert): a default run shows the three ldm packets only; --all lists every frame; --heuristic (or --port 5000) also finds a discovery response sent to UDP port 5000.",
        ETHERNET_US,
    )
}

/// One frame of each kind of other traffic that the skim
/// (src/dissect/skim.rs) judges by a different path: settled from the raw
/// bytes (ARP, UDP, TCP, ICMP, IPv4 with an option), left to the full
/// dissection (IPv6, IPv4 fragments), or judged after the link layer is
/// decoded (802.1Q-tagged).
fn background_round(round: u16) -> Vec<Vec<u8>> {
    let router = [0x00, 0x10, 0xe0, 0x09, 0x09, 0x09];
    let server = Ipv4Addr::new(10, 1, 1, 53);
    let udp = |src_port: u16, dst_port: u16| Ipv4Udp {
        dst: server,
        ttl: 64,
        src_port,
        dst_port,
        ..Ipv4Udp::ldm(CLIENT.ip, 0x7000 + round)
    };
    let on_wire = |ip_packet: &[u8]| ethernet(CLIENT.mac, router, &[], ETHERTYPE_IPV4, ip_packet);
    let mut arp = vec![0u8; 28];
    arp[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    let mut https = Vec::new();
    etherparse::PacketBuilder::ipv4(CLIENT.ip.octets(), server.octets(), 64)
        .tcp(50_000 + round, 443, u32::from(round) * 1000, 64_000)
        .ack(1)
        .write(&mut https, &[0x17, 0x03, 0x03, 0x00, 0x20])
        .expect("writing to a Vec");
    let mut ping = Vec::new();
    etherparse::PacketBuilder::ipv4(CLIENT.ip.octets(), server.octets(), 64)
        .icmpv4_echo_request(0x42, round)
        .write(&mut ping, b"ping")
        .expect("writing to a Vec");
    let ntp_with_option = Ipv4Udp { options: vec![0x94, 0x04, 0x00, 0x00], ..udp(40_000 + round, 123) };
    let mdns = ipv6_udp(
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0x210, 0xe0ff, 0xfe01, 0x105),
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb),
        255,
        (5353, 5353),
        b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05_ldom\x04_tcp\x05local\x00\x00\x0c\x00\x01",
    );
    let mut frames = vec![
        ethernet(CLIENT.mac, [0xff; 6], &[], 0x0806, &arp),
        on_wire(
            &udp(53_000 + round, 53)
                .packet(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01"),
        ),
        on_wire(&https),
        on_wire(&ping),
        on_wire(&ntp_with_option.packet(&[0x23; 48])),
        ethernet(CLIENT.mac, [0x33, 0x33, 0, 0, 0, 0xfb], &[], ETHERTYPE_IPV6, &mdns),
        ethernet(CLIENT.mac, router, &[(0x8100, 100)], ETHERTYPE_IPV4, &udp(514, 514).packet(b"<13>ldm-sniff test")),
    ];
    frames.extend(udp(40_100 + round, 2049).fragments(&[0xaa; 1200], 800).iter().map(|f| on_wire(f)));
    frames
}

/// A frame to record at `at_us`: ldm with the findings it must raise, or
/// other traffic (`ldm_keys` None).
struct Timed {
    at_us: i64,
    data: Vec<u8>,
    ldm_keys: Option<&'static [Key]>,
}

fn busy_link() -> Generated {
    let mut frames = Vec::new();
    for round in 0..10u16 {
        let start = i64::from(round) * 100_000;
        for (i, data) in background_round(round).into_iter().enumerate() {
            frames.push(Timed { at_us: start + 1_000 * i as i64, data, ldm_keys: None });
        }
    }
    let mut ldm = |at_us, data, keys| frames.push(Timed { at_us, data, ldm_keys: Some(keys) });
    ldm(5_500, eth_ldm(&CLIENT, 0x1601, &Repr::discovery_request()), &[]);
    ldm(12_300, eth_ldm(&LDOM_A, 0x2801, &disc_resp(&LDOM_A)), &[]);
    ldm(27_700, eth_ldm(&LDOM_B, 0x3801, &disc_resp(&LDOM_B)), &[]);
    ldm(41_100, eth_ldm(&LDOM_C, 0x4801, &disc_resp(&LDOM_C)), &[]);
    let lookup = Repr::lookup(MsgType::SendMsg, AUTO_MAC, LDOM_A.ip);
    ldm(400_500, eth_ldm(&LDOM_A, 0x2802, &lookup), &[]);
    let answer = Repr::lookup(MsgType::ResponseMsg, AUTO_MAC, LDOM_B.ip);
    ldm(650_500, eth_ldm(&LDOM_B, 0x3802, &answer), &[Key::LdmCollision]);
    let unanswered = Repr::lookup(MsgType::SendMsg, AUTO_MAC_2, LDOM_A.ip);
    ldm(1_500_500, eth_ldm(&LDOM_A, 0x2803, &unanswered), &[]);
    frames.sort_by_key(|f| f.at_us);
    let mut r = Recorder::default();
    for Timed { at_us, data, ldm_keys } in frames {
        match ldm_keys {
            Some(keys) => r.ldm(at_us, data, keys),
            None => r.frame(at_us, data),
        };
    }
    r.pcapng(
        "busy-link.pcapng",
        "An ldm discovery and two lookups (one answered by the MAC's owner: a collision) among 90 frames of other traffic: ARP, DNS, HTTPS, ping, NTP with an IPv4 option, IPv6 mDNS, 802.1Q-tagged syslog and fragmented UDP. A default run shows the seven ldm packets only, as it does with the other traffic skipped unread (tests/robustness.rs compares the two).",
        ETHERNET_US,
    )
}

/// A MAC in the automatic range, numbered.
fn auto_mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x00, 0x14, 0x4f, 0xf8 | (b[1] & 0x03), b[2], b[3]]
}

fn lookup_frame(host: &Host, id: u16, msg_type: MsgType, mac: [u8; 6]) -> Vec<u8> {
    eth_ldm(host, id, &Repr::lookup(msg_type, mac, host.ip))
}

fn late_response() -> Generated {
    let mut r = Recorder::default();
    r.ldm(0, lookup_frame(&LDOM_A, 0x2801, MsgType::SendMsg, AUTO_MAC), &[]);
    r.ldm(1_500_000, lookup_frame(&LDOM_B, 0x3801, MsgType::ResponseMsg, AUTO_MAC), &[Key::LdmLateResponse]);
    r.pcapng(
        "late-response.pcapng",
        "ldom-a looks up 00:14:4f:f8:12:34 and hears nothing for 1 s, so it assigns the MAC; ldom-b, which owns it, answers at 1.5 s: a real duplicate.",
        ETHERNET_US,
    )
}

fn two_owners() -> Generated {
    let mut r = Recorder::default();
    r.ldm(0, lookup_frame(&LDOM_A, 0x2901, MsgType::SendMsg, AUTO_MAC), &[]);
    r.ldm(200_000, lookup_frame(&LDOM_B, 0x3901, MsgType::ResponseMsg, AUTO_MAC), &[Key::LdmCollision]);
    r.ldm(
        250_000,
        lookup_frame(&LDOM_C, 0x4901, MsgType::ResponseMsg, AUTO_MAC),
        &[Key::LdmCollision, Key::LdmDuplicateOwner],
    );
    r.pcapng(
        "two-owners.pcapng",
        "One lookup answered in time by two hosts, ldom-b and ldom-c: both have 00:14:4f:f8:12:34 assigned.",
        ETHERNET_US,
    )
}

/// ldom-d: a fourth ldmd host, for the incident's story.
const LDOM_D: Host =
    Host { ip: Ipv4Addr::new(10, 1, 1, 13), mac: [0x00, 0x10, 0xe0, 0x01, 0x01, 0x0d], name: "ldom-d" };

/// The story `--report` is shown on: a minute of an ordinary fleet in which
/// one MAC ends up assigned twice, late, and is then proven to have two owners.
fn incident() -> Generated {
    let mut r = Recorder::default();
    let discovery_round = |r: &mut Recorder, at: i64, id: u16| {
        r.ldm(at, eth_ldm(&CLIENT, id, &Repr::discovery_request()), &[]);
        for (i, host) in [&LDOM_A, &LDOM_B, &LDOM_C, &LDOM_D].into_iter().enumerate() {
            let delay = 2_400 + 1_900 * i as i64;
            r.ldm(at + delay, eth_ldm(host, id + 1 + i as u16, &disc_resp(host)), &[]);
        }
    };
    discovery_round(&mut r, 0, 0x1100);
    // Routine: a free MAC (nobody answers), then a handled collision.
    r.ldm(4_200_000, lookup_frame(&LDOM_D, 0x5101, MsgType::SendMsg, auto_mac(0x2001)), &[]);
    r.ldm(11_000_000, lookup_frame(&LDOM_C, 0x4101, MsgType::SendMsg, auto_mac(0x2002)), &[]);
    r.ldm(11_140_000, lookup_frame(&LDOM_B, 0x3101, MsgType::ResponseMsg, auto_mac(0x2002)), &[Key::LdmCollision]);
    r.ldm(11_900_000, lookup_frame(&LDOM_C, 0x4102, MsgType::SendMsg, auto_mac(0x2003)), &[]);
    // 09:30:20: ldom-a hears nothing for 1 s and assigns 00:14:4f:f8:12:34;
    // ldom-b, which owns it, answers at 1.45 s.
    r.ldm(20_000_000, lookup_frame(&LDOM_A, 0x2101, MsgType::SendMsg, AUTO_MAC), &[]);
    r.ldm(21_450_000, lookup_frame(&LDOM_B, 0x3102, MsgType::ResponseMsg, AUTO_MAC), &[Key::LdmLateResponse]);
    // 09:30:41: ldom-c checks the same MAC; both domains that have it answer.
    r.ldm(41_000_000, lookup_frame(&LDOM_C, 0x4103, MsgType::SendMsg, AUTO_MAC), &[]);
    r.ldm(41_090_000, lookup_frame(&LDOM_B, 0x3103, MsgType::ResponseMsg, AUTO_MAC), &[Key::LdmCollision]);
    r.ldm(
        41_120_000,
        lookup_frame(&LDOM_A, 0x2102, MsgType::ResponseMsg, AUTO_MAC),
        &[Key::LdmCollision, Key::LdmDuplicateOwner],
    );
    r.ldm(41_800_000, lookup_frame(&LDOM_C, 0x4104, MsgType::SendMsg, auto_mac(0x2004)), &[]);
    discovery_round(&mut r, 55_000_000, 0x1200);
    r.pcapng(
        "incident.pcapng",
        "A minute of a four-host fleet from 09:30:00, the story --report is shown on (README): two discovery rounds, a free MAC and a handled collision; then ldom-a hears nothing for 1 s about 00:14:4f:f8:12:34 and assigns it, and ldom-b, its owner, answers at 1.45 s (late); 20 s later ldom-c looks the MAC up and both ldom-b and ldom-a answer: two owners.",
        ETHERNET_US,
    )
}

fn allocation_failure() -> Generated {
    let mut r = Recorder::default();
    // ldom-a's every candidate is taken (ldom-b answers each in 200 ms); it
    // retries every 0.795 s and is still at it 30 s later.
    for i in 0..40u32 {
        let at = i64::from(i) * 795_000;
        let mac = auto_mac(0x100 + i);
        let id = i as u16;
        // Lookup 39 (index 38) is the first 30 s or more after the first.
        let keys: &[Key] = if i == 38 { &[Key::LdmAllocationFailed] } else { &[] };
        r.ldm(at, lookup_frame(&LDOM_A, 0x2a00 + id, MsgType::SendMsg, mac), keys);
        r.ldm(at + 200_000, lookup_frame(&LDOM_B, 0x3a00 + id, MsgType::ResponseMsg, mac), &[Key::LdmCollision]);
    }
    r.pcapng(
        "allocation-failure.pcapng",
        "ldom-a looks up 40 candidate MACs over 31 s, each answered by ldom-b within 200 ms: the 39th lookup, 30.2 s after the first, means ldmd's 30 s allocation has failed.",
        ETHERNET_US,
    )
}

fn startup_check() -> Generated {
    let mut r = Recorder::default();
    // ldmd start-up with ldmd/mac_collision_check: every assigned MAC once, at once.
    for i in 0..1000u32 {
        let keys: &[Key] = if i == 19 { &[Key::LdmStartupCheck] } else { &[] };
        r.ldm(i64::from(i) * 500, lookup_frame(&LDOM_C, i as u16, MsgType::SendMsg, auto_mac(0x1000 + i)), keys);
    }
    r.pcapng(
        "startup-check.pcapng",
        "ldom-c looks up 1000 distinct MACs in half a second (ldmd start-up with ldmd/mac_collision_check): one note when the burst is recognised.",
        ETHERNET_US,
    )
}

fn startup_check_too_big() -> Generated {
    let mut r = Recorder::default();
    // Distinct MACs at 1,667 a second, but more than the 1,024 one host's
    // start-up check looks up.
    for i in 0..1100u32 {
        let keys: &[Key] = match i {
            19 => &[Key::LdmStartupCheck],
            1024 => &[Key::LdmLookupStorm],
            _ => &[],
        };
        r.ldm(i64::from(i) * 600, lookup_frame(&LDOM_C, i as u16, MsgType::SendMsg, auto_mac(0x4000 + i)), keys);
    }
    r.pcapng(
        "startup-check-too-big.pcapng",
        "ldom-c looks up 1,100 distinct MACs in 0.66 s: a start-up check at first, a storm at the 1,025th lookup, past the 1,024 MACs one host's check covers.",
        ETHERNET_US,
    )
}

fn lookup_storm() -> Generated {
    let mut r = Recorder::default();
    // A runaway: the same five MACs over and over.
    for i in 0..2000u32 {
        let keys: &[Key] = if i == 19 { &[Key::LdmLookupStorm] } else { &[] };
        r.ldm(i64::from(i) * 500, lookup_frame(&LDOM_B, i as u16, MsgType::SendMsg, auto_mac(0x2000 + i % 5)), keys);
    }
    r.pcapng(
        "lookup-storm.pcapng",
        "ldom-b looks up the same five MACs 2000 times in one second: a runaway requester, flagged once when the burst is recognised.",
        ETHERNET_US,
    )
}

fn unsolicited() -> Generated {
    let mut r = Recorder::default();
    r.ldm(
        200_000,
        lookup_frame(&LDOM_B, 0x3b01, MsgType::ResponseMsg, auto_mac(0x3001)),
        &[Key::LdmRequestNotCaptured],
    );
    r.ldm(2_000_000, lookup_frame(&LDOM_A, 0x2b01, MsgType::SendMsg, auto_mac(0x3002)), &[]);
    r.ldm(
        5_000_000,
        lookup_frame(&LDOM_C, 0x4b01, MsgType::ResponseMsg, auto_mac(0x3003)),
        &[Key::LdmUnsolicitedResponse],
    );
    r.pcapng(
        "unsolicited.pcapng",
        "A response in the capture's first second (its request was probably sent before capturing began: a note), an unanswered lookup, and a response at 5 s to a lookup nobody sent (a warning).",
        ETHERNET_US,
    )
}

fn discovery_inconsistent() -> Generated {
    let mut r = Recorder::default();
    let host = |ip: [u8; 4], mac: u8, name: &'static str| Host {
        ip: Ipv4Addr::from(ip),
        mac: [0x00, 0x10, 0xe0, 0x03, 0x03, mac],
        name,
    };
    let a = host([10, 1, 1, 10], 0x0a, "ldom-a");
    let b = host([10, 1, 1, 11], 0x0b, "ldom-b");
    let impostor = host([10, 1, 1, 99], 0x63, "ldom-a");
    let c = host([10, 1, 1, 12], 0x0c, "ldom-c");
    let c_elsewhere = host([10, 1, 1, 12], 0xcc, "ldom-c");
    let d = host([10, 1, 1, 13], 0x0d, "ldom-d");
    let old = |h: &Host| Repr::discovery_response("3.5.0.0.4", h.name, h.ip);
    r.ldm(0, eth_ldm(&CLIENT, 0x1701, &Repr::discovery_request()), &[]);
    r.ldm(3_000, eth_ldm(&a, 0x7001, &disc_resp(&a)), &[]);
    r.ldm(5_000, eth_ldm(&b, 0x7101, &disc_resp(&b)), &[]);
    r.ldm(7_000, eth_ldm(&b, 0x7102, &disc_resp(&b)), &[Key::LdmDuplicateResponse]);
    r.ldm(9_000, eth_ldm(&impostor, 0x7201, &disc_resp(&impostor)), &[Key::LdmHostnameSeveralIps]);
    r.ldm(11_000, eth_ldm(&c, 0x7301, &old(&c)), &[Key::LdmVersionMismatch]);
    r.ldm(2_000_000, eth_ldm(&CLIENT, 0x1702, &Repr::discovery_request()), &[]);
    r.ldm(2_003_000, eth_ldm(&c_elsewhere, 0x7302, &old(&c_elsewhere)), &[Key::LdmIpSeveralMacs]);
    r.ldm(3_600_000, eth_ldm(&d, 0x7401, &disc_resp(&d)), &[Key::LdmLateDiscoveryResponse]);
    r.pcapng(
        "discovery-inconsistent.pcapng",
        "Two discovery rounds with every inconsistency once: ldom-b answers twice, a second host claims the name ldom-a, ldom-c runs an older ldmd, 10.1.1.12 answers from another link-layer address, and ldom-d answers 1.6 s late.",
        ETHERNET_US,
    )
}

fn time_out_of_range() -> Generated {
    // Interface 0: seconds; interface 1: microseconds, offset past i64 seconds.
    let mut w = PcapNgWriter::new(Vec::new()).expect("writing to a Vec");
    w.add_interface_with_offset(Linktype::ETHERNET, "eth0", 0, 0).expect("writing to a Vec");
    w.add_interface_with_offset(Linktype::ETHERNET, "eth1", 6, i64::MAX - 10).expect("writing to a Vec");
    let request = eth_ldm(&CLIENT, 0x1901, &Repr::discovery_request());
    for (iface, units) in [(0, T0 as u64), (0, u64::MAX), (1, (T0 as u64 + 5) * 1_000_000)] {
        w.write_packet_units(iface, units, &request, request.len() as u32, None).expect("writing to a Vec");
    }
    Generated {
        name: "time-out-of-range.pcapng",
        about: "Times a file can hold but no capture has: a discovery request, then one stamped u64::MAX seconds (year 584,942,417,355), and one on an interface whose if_tsoffset overflows. Both are flagged and shown at 9999-12-31; -w writes the original units back.",
        bytes: w.into_inner(),
        expect: vec![(2, vec![Key::FrameTimeOutOfRange]), (3, vec![Key::FrameTimeOutOfRange])],
        ldm_packets: 3,
    }
}

fn time_backwards() -> Generated {
    let mut r = Recorder::default();
    r.ldm(1_000_000, eth_ldm(&CLIENT, 0x1801, &Repr::discovery_request()), &[]);
    r.ldm(1_003_000, eth_ldm(&LDOM_A, 0x2c01, &disc_resp(&LDOM_A)), &[]);
    r.ldm(500_000, eth_ldm(&LDOM_B, 0x3c01, &disc_resp(&LDOM_B)), &[Key::FrameTimeBackwards]);
    r.pcapng(
        "time-backwards.pcapng",
        "A merged capture whose third frame is stamped half a second before the second: flagged, and the analysis keeps the latest time seen.",
        ETHERNET_US,
    )
}

/// One side of a TCP connection to libvirtd, for building its segments.
struct TcpSide {
    host: &'static Host,
    port: u16,
    /// The next sequence number this side sends.
    seq: u32,
}

/// A TCP segment from `from` to `to` (acknowledging everything `to` sent).
fn tcp_segment(from: &mut TcpSide, to: &TcpSide, flags: u8, payload: &[u8]) -> Vec<u8> {
    use crate::dissect::tcp::{ACK, FIN, SYN};
    let mut builder = etherparse::PacketBuilder::ethernet2(from.host.mac, to.host.mac)
        .ipv4(from.host.ip.octets(), to.host.ip.octets(), 64)
        .tcp(from.port, to.port, from.seq, 64_240);
    if flags & SYN != 0 {
        builder = builder.syn();
    }
    if flags & FIN != 0 {
        builder = builder.fin();
    }
    if flags & ACK != 0 {
        builder = builder.ack(to.seq);
    }
    let mut out = Vec::new();
    builder.write(&mut out, payload).expect("writing to a Vec");
    let consumed = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
    from.seq = from.seq.wrapping_add(consumed);
    out
}

/// XDR encoders for the payloads the generated libvirt captures carry.
fn xdr_u32(value: u32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

fn xdr_string(text: &str) -> Vec<u8> {
    let mut out = xdr_u32(text.len() as u32);
    out.extend_from_slice(text.as_bytes());
    out.resize(out.len() + (4 - text.len() % 4) % 4, 0);
    out
}

/// `remote_nonnull_domain` of the generated captures' one domain.
fn xdr_domain() -> Vec<u8> {
    [xdr_string("ldom-a"), vec![0x5e; 16], xdr_u32(1)].concat()
}

/// A call's arguments as libvirt encodes them, for the procedures used here.
fn lv_call_args(proc_: i32) -> Vec<u8> {
    match proc_ {
        1 => [xdr_u32(1), xdr_string("qemu:///system"), xdr_u32(0)].concat(),
        16 => xdr_domain(),
        23 => xdr_string("ldom-x"),
        273 => [xdr_u32(1), xdr_u32(0)].concat(),
        _ => Vec::new(),
    }
}

/// A successful reply's return values, for the procedures used here.
fn lv_reply_values(proc_: i32) -> Vec<u8> {
    let u64_be = |v: u64| v.to_be_bytes().to_vec();
    match proc_ {
        16 => [xdr_u32(1), u64_be(4 << 20), u64_be(4 << 20), xdr_u32(2), u64_be(52_000_000_000)].concat(),
        66 => [xdr_u32(1), xdr_u32(0)].concat(),
        273 => [xdr_u32(1), xdr_domain(), xdr_u32(1)].concat(),
        _ => Vec::new(),
    }
}

fn lv_call(proc_: i32, serial: u32) -> Vec<u8> {
    use crate::wire::libvirt::{build, MsgType, Status, PROGRAM_REMOTE};
    build(PROGRAM_REMOTE, proc_, MsgType::Call, serial, Status::Ok, &lv_call_args(proc_))
}

fn lv_reply(proc_: i32, serial: u32) -> Vec<u8> {
    use crate::wire::libvirt::{build, MsgType, Status, PROGRAM_REMOTE};
    build(PROGRAM_REMOTE, proc_, MsgType::Reply, serial, Status::Ok, &lv_reply_values(proc_))
}

fn lv_keepalive(proc_: i32) -> Vec<u8> {
    use crate::wire::libvirt::{build, MsgType, Status, PROGRAM_KEEPALIVE};
    build(PROGRAM_KEEPALIVE, proc_, MsgType::Message, 0, Status::Ok, &[])
}

fn libvirt_anomalies() -> Generated {
    use crate::dissect::tcp::{ACK, FIN, SYN};
    use crate::wire::libvirt::{build, build_error_payload, MsgType, Status, PORT, PROGRAM_REMOTE};
    const AUTH_LIST: i32 = 66;
    const CONNECT_OPEN: i32 = 1;
    const CONNECT_CLOSE: i32 = 2;
    const LOOKUP_BY_NAME: i32 = 23;
    const GET_INFO: i32 = 16;
    const LIST_ALL_DOMAINS: i32 = 273;
    let mut r = Recorder::default();
    let mut client = TcpSide { host: &CLIENT, port: 40_001, seq: 1_000 };
    let mut daemon = TcpSide { host: &LDOM_A, port: PORT, seq: 50_000 };
    let mut t = 0;
    let mut at = || {
        t += 200;
        t
    };
    // Connection 1, captured from its SYN.
    r.frame(at(), tcp_segment(&mut client, &daemon, SYN, &[]));
    r.frame(at(), tcp_segment(&mut daemon, &client, SYN | ACK, &[]));
    r.frame(at(), tcp_segment(&mut client, &daemon, ACK, &[]));
    r.libvirt(at(), tcp_segment(&mut client, &daemon, ACK, &lv_call(AUTH_LIST, 0)), 1, &[]);
    r.libvirt(at(), tcp_segment(&mut daemon, &client, ACK, &lv_reply(AUTH_LIST, 0)), 1, &[]);
    // Two calls in one segment: two records.
    let two = [lv_call(CONNECT_OPEN, 1), lv_call(LOOKUP_BY_NAME, 2)].concat();
    r.libvirt(at(), tcp_segment(&mut client, &daemon, ACK, &two), 2, &[]);
    // One reply across two segments: decoded in the second.
    let open_reply = lv_reply(CONNECT_OPEN, 1);
    r.frame(at(), tcp_segment(&mut daemon, &client, ACK, &open_reply[..10]));
    r.libvirt(at(), tcp_segment(&mut daemon, &client, ACK, &open_reply[10..]), 1, &[]);
    // An error reply, then the same segment again (a retransmission).
    let error = build_error_payload(42, 10, "Domain not found: no domain with matching name 'ldom-x'");
    let error_reply = build(PROGRAM_REMOTE, LOOKUP_BY_NAME, MsgType::Reply, 2, Status::Error, &error);
    let seq_before = daemon.seq;
    r.libvirt(at(), tcp_segment(&mut daemon, &client, ACK, &error_reply), 1, &[Key::LibvirtErrorReply]);
    let mut again = TcpSide { seq: seq_before, ..daemon };
    r.libvirt(at(), tcp_segment(&mut again, &client, ACK, &error_reply), 1, &[Key::LibvirtRetransmission]);
    // A procedure libvirt does not define.
    r.libvirt(at(), tcp_segment(&mut client, &daemon, ACK, &lv_call(9_999, 3)), 1, &[Key::LibvirtUnknownProcedure]);
    // A serial reused while its call is unanswered.
    r.libvirt(at(), tcp_segment(&mut client, &daemon, ACK, &lv_call(GET_INFO, 4)), 1, &[]);
    r.libvirt(at(), tcp_segment(&mut client, &daemon, ACK, &lv_call(GET_INFO, 4)), 1, &[Key::LibvirtDuplicateSerial]);
    r.libvirt(at(), tcp_segment(&mut daemon, &client, ACK, &lv_reply(GET_INFO, 4)), 1, &[]);
    // A reply to a serial never called, on a connection seen from its start.
    r.libvirt(
        at(),
        tcp_segment(&mut daemon, &client, ACK, &lv_reply(GET_INFO, 99)),
        1,
        &[Key::LibvirtReplyWithoutCall],
    );
    // A keepalive PING sent while the previous one is unanswered.
    use crate::wire::libvirt::{KEEPALIVE_PING, KEEPALIVE_PONG};
    r.libvirt(at(), tcp_segment(&mut client, &daemon, ACK, &lv_keepalive(KEEPALIVE_PING)), 1, &[]);
    r.libvirt(
        at(),
        tcp_segment(&mut client, &daemon, ACK, &lv_keepalive(KEEPALIVE_PING)),
        1,
        &[Key::LibvirtKeepaliveUnanswered],
    );
    r.libvirt(at(), tcp_segment(&mut daemon, &client, ACK, &lv_keepalive(KEEPALIVE_PONG)), 1, &[]);
    // Bytes where a header is due: flagged, skipped, and the next call decodes.
    let garbage = [vec![0xff; 40], lv_call(CONNECT_CLOSE, 5)].concat();
    r.libvirt(
        at(),
        tcp_segment(&mut client, &daemon, ACK, &garbage),
        1,
        &[Key::LibvirtBadHeader, Key::LibvirtSkippedBytes],
    );
    // 100 bytes never captured, then a call and the FIN: the gap is given up on.
    client.seq = client.seq.wrapping_add(100);
    r.libvirt(
        at(),
        tcp_segment(&mut client, &daemon, ACK | FIN, &lv_call(CONNECT_CLOSE, 6)),
        1,
        &[Key::LibvirtStreamGap],
    );
    // Connection 2, joined mid-way: a reply to an uncaptured call; the
    // client's first segment holds the tail of a message before the next
    // header, so its direction is followed from its next segment, which
    // starts with one.
    let mut client2 = TcpSide { host: &CLIENT, port: 40_002, seq: 7_000 };
    let mut daemon2 = TcpSide { host: &LDOM_A, port: PORT, seq: 90_000 };
    r.libvirt(
        at(),
        tcp_segment(&mut daemon2, &client2, ACK, &lv_reply(LIST_ALL_DOMAINS, 7)),
        1,
        &[Key::LibvirtCallNotCaptured],
    );
    let tail = [vec![0xee; 20], lv_call(CONNECT_CLOSE, 8)].concat();
    r.frame(at(), tcp_segment(&mut client2, &daemon2, ACK, &tail));
    r.libvirt(at(), tcp_segment(&mut client2, &daemon2, ACK, &lv_call(CONNECT_CLOSE, 9)), 1, &[]);
    r.pcapng(
        "libvirt-anomalies.pcapng",
        "libvirt RPC (TCP 16509): a connection from its SYN with two calls in one segment, a reply split over two, an error reply and its retransmission, an unknown procedure, a reused serial, a reply without a call, an unanswered keepalive, garbage where a header is due and a gap before the FIN; then a connection joined mid-way, whose client direction is followed from its first segment that starts a message.",
        ETHERNET_US,
    )
}

fn libvirt_tls_sasl() -> Generated {
    use crate::dissect::tcp::{ACK, SYN};
    use crate::wire::libvirt::{PORT, TLS_PORT};
    use crate::wire::tls;
    let mut r = Recorder::default();
    let mut t = 0;
    let mut at = || {
        t += 200;
        t
    };
    // libvirt over TLS: hellos with the server name and version, then records.
    let mut client = TcpSide { host: &CLIENT, port: 40_010, seq: 3_000 };
    let mut daemon = TcpSide { host: &LDOM_A, port: TLS_PORT, seq: 70_000 };
    r.frame(at(), tcp_segment(&mut client, &daemon, SYN, &[]));
    r.frame(at(), tcp_segment(&mut daemon, &client, SYN | ACK, &[]));
    r.frame(at(), tcp_segment(&mut client, &daemon, ACK, &[]));
    r.libvirt(at(), tcp_segment(&mut client, &daemon, ACK, &tls::build_client_hello("ldom-a.example.com")), 1, &[]);
    let flight = [
        tls::build_server_hello(),
        tls::build_record(tls::CHANGE_CIPHER_SPEC, &[1]),
        tls::build_record(tls::APPLICATION_DATA, &[0x42; 100]),
    ]
    .concat();
    r.libvirt(at(), tcp_segment(&mut daemon, &client, ACK, &flight), 3, &[]);
    // A record over two segments: shown once, at the second.
    let big = tls::build_record(tls::APPLICATION_DATA, &[0x43; 2000]);
    r.frame(at(), tcp_segment(&mut client, &daemon, ACK, &big[..1400]));
    r.libvirt(at(), tcp_segment(&mut client, &daemon, ACK, &big[1400..]), 1, &[]);
    // SASL authentication, then a security layer: encrypted both ways, not damage.
    let mut client2 = TcpSide { host: &CLIENT, port: 40_011, seq: 8_000 };
    let mut daemon2 = TcpSide { host: &LDOM_A, port: PORT, seq: 80_000 };
    r.frame(at(), tcp_segment(&mut client2, &daemon2, SYN, &[]));
    r.frame(at(), tcp_segment(&mut daemon2, &client2, SYN | ACK, &[]));
    r.frame(at(), tcp_segment(&mut client2, &daemon2, ACK, &[]));
    for (proc_, serial) in [(66, 0), (67, 1), (68, 2)] {
        r.libvirt(at(), tcp_segment(&mut client2, &daemon2, ACK, &lv_call(proc_, serial)), 1, &[]);
        r.libvirt(at(), tcp_segment(&mut daemon2, &client2, ACK, &lv_reply(proc_, serial)), 1, &[]);
    }
    let sealed = |fill: u8| [60u32.to_be_bytes().to_vec(), vec![fill; 60]].concat();
    r.libvirt(at(), tcp_segment(&mut client2, &daemon2, ACK, &sealed(0x5a)), 1, &[]);
    r.libvirt(at(), tcp_segment(&mut daemon2, &client2, ACK, &sealed(0xa5)), 1, &[]);
    r.pcapng(
        "libvirt-tls-sasl.pcapng",
        "libvirt over TLS on 16514 (ClientHello with its server name, ServerHello choosing TLS 1.3, three records in one segment, one record over two), and a 16509 connection that authenticates with SASL and then sends encrypted data both ways: labelled, not flagged.",
        ETHERNET_US,
    )
}

fn libvirt_stream_holes() -> Generated {
    use crate::dissect::tcp::{ACK, FIN, SYN};
    use crate::wire::libvirt::PORT;
    use crate::wire::tls;
    const CONNECT_CLOSE: i32 = 2;
    const GET_INFO: i32 = 16;
    const LOOKUP_BY_NAME: i32 = 23;
    const AUTH_LIST: i32 = 66;
    let mut r = Recorder::default();
    let mut t = 0;
    let mut at = |step: i64| {
        t += step;
        t
    };
    let mut client = TcpSide { host: &CLIENT, port: 40_020, seq: 11_000 };
    let mut daemon = TcpSide { host: &LDOM_A, port: PORT, seq: 60_000 };
    r.frame(at(200), tcp_segment(&mut client, &daemon, SYN, &[]));
    r.frame(at(200), tcp_segment(&mut daemon, &client, SYN | ACK, &[]));
    r.frame(at(200), tcp_segment(&mut client, &daemon, ACK, &[]));
    r.libvirt(at(200), tcp_segment(&mut client, &daemon, ACK, &lv_call(AUTH_LIST, 0)), 1, &[]);
    r.libvirt(at(200), tcp_segment(&mut daemon, &client, ACK, &lv_reply(AUTH_LIST, 0)), 1, &[]);
    // A call the capture lost: the daemon's reply acknowledges it, so the
    // reply's call is known missing, and the client's next call is decoded
    // in its own frame, after the gap.
    client.seq = client.seq.wrapping_add(lv_call(GET_INFO, 1).len() as u32);
    let reply = lv_reply(GET_INFO, 1);
    r.libvirt(at(200), tcp_segment(&mut daemon, &client, ACK, &reply), 1, &[Key::LibvirtCallNotCaptured]);
    r.libvirt(at(200), tcp_segment(&mut client, &daemon, ACK, &lv_call(GET_INFO, 2)), 1, &[Key::LibvirtStreamGap]);
    r.libvirt(at(200), tcp_segment(&mut daemon, &client, ACK, &lv_reply(GET_INFO, 2)), 1, &[]);
    // Two calls whose segments were swapped on the way: the later one waits,
    // and both decode in the frame that fills the hole.
    let (third, fourth) = (lv_call(GET_INFO, 3), lv_call(LOOKUP_BY_NAME, 4));
    let mut first = TcpSide { ..client };
    client.seq = client.seq.wrapping_add(third.len() as u32);
    r.frame(at(200), tcp_segment(&mut client, &daemon, ACK, &fourth));
    r.libvirt(at(200), tcp_segment(&mut first, &daemon, ACK, &third), 2, &[]);
    r.libvirt(at(200), tcp_segment(&mut daemon, &client, ACK, &lv_reply(GET_INFO, 3)), 1, &[]);
    r.libvirt(at(200), tcp_segment(&mut daemon, &client, ACK, &lv_reply(LOOKUP_BY_NAME, 4)), 1, &[]);
    // A call lost, and the next one waiting behind it until the daemon's
    // reply acknowledges both: the waiting call is shown as its own frame,
    // with the gap, before the reply.
    client.seq = client.seq.wrapping_add(lv_call(GET_INFO, 5).len() as u32);
    r.libvirt(at(200), tcp_segment(&mut client, &daemon, ACK, &lv_call(GET_INFO, 6)), 1, &[Key::LibvirtStreamGap]);
    let reply = lv_reply(GET_INFO, 5);
    r.libvirt(at(200), tcp_segment(&mut daemon, &client, ACK, &reply), 1, &[Key::LibvirtCallNotCaptured]);
    r.libvirt(at(200), tcp_segment(&mut daemon, &client, ACK, &lv_reply(GET_INFO, 6)), 1, &[]);
    // A hole nobody acknowledges: the call after it waits one second of
    // capture time, then is shown as its own frame (here when the next
    // connection's SYN is read).
    client.seq = client.seq.wrapping_add(lv_call(GET_INFO, 7).len() as u32);
    r.libvirt(at(200), tcp_segment(&mut client, &daemon, 0, &lv_call(GET_INFO, 8)), 1, &[Key::LibvirtStreamGap]);
    // TLS on the plain port: a connection whose first bytes are a
    // ClientHello. The daemon closes it; the client's direction, which never
    // showed a header, was not libvirt.
    let mut tls_client = TcpSide { host: &CLIENT, port: 40_021, seq: 21_000 };
    let mut daemon2 = TcpSide { host: &LDOM_A, port: PORT, seq: 61_000 };
    r.frame(at(1_500_000), tcp_segment(&mut tls_client, &daemon2, SYN, &[]));
    r.frame(at(200), tcp_segment(&mut daemon2, &tls_client, SYN | ACK, &[]));
    r.frame(at(200), tcp_segment(&mut tls_client, &daemon2, ACK, &[]));
    let hello = tls::build_client_hello("ldom-a.example.com");
    let hello_keys = [Key::LibvirtBadHeader, Key::LibvirtSkippedBytes];
    r.libvirt(at(200), tcp_segment(&mut tls_client, &daemon2, ACK, &hello), 1, &hello_keys);
    r.frame(at(200), tcp_segment(&mut daemon2, &tls_client, ACK | FIN, &[]));
    r.libvirt(at(200), tcp_segment(&mut tls_client, &daemon2, ACK | FIN, &[]), 1, &[Key::LibvirtNotLibvirt]);
    // The first connection closes; its last call, sent again after the
    // FIN (a spurious retransmission), is recognised, not decoded again.
    let last = lv_call(CONNECT_CLOSE, 9);
    let before_last = client.seq;
    r.libvirt(at(200), tcp_segment(&mut client, &daemon, ACK, &last), 1, &[]);
    r.libvirt(at(200), tcp_segment(&mut daemon, &client, ACK, &lv_reply(CONNECT_CLOSE, 9)), 1, &[]);
    r.frame(at(200), tcp_segment(&mut client, &daemon, ACK | FIN, &[]));
    r.frame(at(200), tcp_segment(&mut daemon, &client, ACK | FIN, &[]));
    let mut again = TcpSide { seq: before_last, ..client };
    r.libvirt(at(200), tcp_segment(&mut again, &daemon, ACK, &last), 1, &[Key::LibvirtRetransmission]);
    r.pcapng(
        "libvirt-stream-holes.pcapng",
        "libvirt RPC with holes in the capture: a call lost (its reply acknowledges it, the next call decodes in its own frame), two segments swapped, a call waiting behind a lost one until the reply acknowledges both, a hole nobody acknowledges (the waiting call is shown after 1 s of capture time), TLS on the plain port (its direction closes without a header: not libvirt), and a call retransmitted after the FIN.",
        ETHERNET_US,
    )
}

/// Deliberately broken files: decoding must stop with a clear error.
pub fn broken() -> Vec<Broken> {
    let discovery = discovery_frames().pcap("", "", Linktype::ETHERNET, false, false).bytes;
    let cut = discovery[..24 + 2 * (16 + 354) + 40].to_vec();
    let mut huge = discovery[..24 + 16 + 354].to_vec();
    let mut claim = [0u8; 16];
    claim[8..12].copy_from_slice(&200_000_000u32.to_le_bytes());
    claim[12..16].copy_from_slice(&200_000_000u32.to_le_bytes());
    huge.extend_from_slice(&claim);
    huge.extend_from_slice(&[0u8; 64]);
    let good = discovery_frames().pcapng("", "", ETHERNET_US).bytes;
    let mut corrupt = good.clone();
    // A block whose length (13) is not a multiple of 4 and shorter than a header.
    corrupt.extend_from_slice(&[0x06, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0]);
    corrupt.extend_from_slice(&[0xff; 40]);
    vec![
        Broken { name: "broken/cut-short.pcap", about: "A classic pcap cut in the middle of its third record: two frames decode, then an error names the byte offset.", bytes: cut },
        Broken { name: "broken/huge-record.pcap", about: "A record header claiming 200 MB: one frame decodes, then an error; nothing that large is allocated.", bytes: huge },
        Broken { name: "broken/corrupt-block.pcapng", about: "A pcapng whose fifth block has an impossible length: what precedes decodes, then an error.", bytes: corrupt },
        Broken { name: "broken/not-a-capture.txt", about: "Plain text: a one-line error saying it is not a capture.", bytes: b"this is a text file, not a packet capture\n".to_vec() },
    ]
}

/// The first three frames of the discovery exchange, for the broken variants.
fn discovery_frames() -> Recorder {
    let mut r = Recorder::default();
    r.frame(0, eth_ldm(&CLIENT, 0x1001, &Repr::discovery_request()));
    r.frame(3_120, eth_ldm(&LDOM_A, 0x2001, &disc_resp(&LDOM_A)));
    r.frame(4_870, eth_ldm(&LDOM_B, 0x3001, &disc_resp(&LDOM_B)));
    r
}

/// captures/README.md, generated from the lists above.
pub fn readme(generated: &[Generated], broken: &[Broken]) -> String {
    let mut out = String::from(
        "# Test captures\n\n\
         Generated by `cargo run --example gen-captures` from `src/synth/captures.rs` (with the \
         crate's own `Repr::emit` and pcap/pcapng writers); do not edit by hand. A test checks that \
         these files match the generator and that every frame raises exactly the findings listed.\n\n\
         | file | what it shows | findings (frame: keys) |\n|---|---|---|\n",
    );
    for g in generated {
        let findings = if g.expect.is_empty() {
            "none".to_string()
        } else {
            g.expect
                .iter()
                .map(|(n, keys)| {
                    format!("{n}: {}", keys.iter().map(|k| format!("`{}`", k.name())).collect::<Vec<_>>().join(" "))
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        out.push_str(&format!("| `{}` | {} | {findings} |\n", g.name, g.about));
    }
    out.push_str("\n## Broken files\n\nFor error handling: each must stop with a clear message and exit status 2, after showing what precedes the damage.\n\n| file | what it shows |\n|---|---|\n");
    for b in broken {
        out.push_str(&format!("| `{}` | {} |\n", b.name, b.about));
    }
    out.push_str(
        "\n## Recorded by real tools\n\nCaptures under `recorded/` were written by tcpdump and dumpcap on this project's \
         machines (not generated), so the reader is tested against the real writers; `recorded/README.md` says how.\n",
    );
    out.push_str(
        "\n## Conformance references\n\nCaptures under `conformance/` were recorded from `ldm-sniff emulate` \
         (configured by `conformance/emulator.toml`) answering `discover` and `check-mac` across a veth pair; \
         `conformance/record.sh` re-records them. tests/conformance.rs replays each against a fresh emulator \
         with `ldm-sniff conform` and snapshots the transcript.\n\n\
         | file | requests | recorded replies |\n|---|---|---|\n\
         | `conformance/discovery.pcapng` | one LDMD_DISC_SEND | the emulator's LDMD_DISC_RESP |\n\
         | `conformance/lookups.pcapng` | SEND_MSG of an owned MAC, then twice of a free one | one RESPONSE_MSG (the owned MAC), none for the free one |\n",
    );
    out
}
