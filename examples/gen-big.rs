//! Writes a large deterministic capture for throughput measurements:
//! `cargo run --release --example gen-big -- OUT.pcap FRAMES [MIX]`.
//!
//! MIX is one of:
//! - a number, LDM_PERCENT (default 10): about that share of the frames are
//!   ldm of every type, malformed ones included; the rest is TCP and UDP
//!   background of realistic sizes (the plain mix);
//! - `flood`: every frame a lookup of a new MAC from a new host (for the
//!   analysis's memory caps);
//! - an adversarial mix, the plain mix at 10% ldm with 15% of the frames
//!   given to hostile traffic instead of background (bench/README.md):
//!   `junk-libvirt` and `junk-tls` (segments of random bytes at random
//!   sequence numbers to TCP 16509 or 16514, from 20,000 source ports: a
//!   scan, or another service on the port), `syn-flood` (SYNs of 100,000
//!   distinct connections to 16509, three each), `tiny-segments` (one libvirt
//!   connection whose stream arrives one byte per segment), `libvirt-10k`
//!   (the recorded virsh session's first connection, 10,000 copies on
//!   distinct client ports, interleaved so that all are open at once) and
//!   `fragment-flood` (IPv4 fragments of UDP datagrams that never complete,
//!   on distinct IP identifications).
//!
//! A name ending in .pcapng writes pcapng.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

use ldm_sniff::capture::writer::{PcapNgWriter, PcapWriter};
use ldm_sniff::capture::{CaptureReader, Linktype, Timestamp};
use ldm_sniff::synth::{ethernet, ipv4_ethernet, Ipv4Udp};
use ldm_sniff::wire::ldm::{ByteOrder, MsgType, Repr};
use ldm_sniff::wire::libvirt;

/// Small xorshift: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn ldm_frame(rng: &mut Rng, i: u64) -> Vec<u8> {
    let host = Ipv4Addr::new(10, 1, (i % 8) as u8, (i % 200) as u8 + 2);
    let mac = [0x00, 0x14, 0x4f, 0xf8, (i >> 8) as u8, i as u8];
    let mut repr = match rng.next() % 5 {
        0 => Repr::discovery_request(),
        1 => Repr::discovery_response("3.6.1.0.11", "ldom-bench", host),
        2 | 3 => Repr::lookup(MsgType::SendMsg, mac, host),
        _ => Repr::lookup(MsgType::ResponseMsg, mac, host),
    };
    // One in twenty is malformed in some way.
    match rng.next() % 40 {
        0 => repr.byte_order = ByteOrder::Little,
        1 => repr.version_no = 9,
        2 => repr.len = 100,
        _ => {}
    }
    ipv4_ethernet([0x00, 0x10, 0xe0, 0, (i >> 8) as u8, i as u8], &Ipv4Udp::ldm(host, i as u16), &repr.to_bytes())
}

/// A lookup of the i-th distinct MAC from the i-th distinct host.
fn flood_frame(i: u64) -> Vec<u8> {
    let b = i.to_be_bytes();
    let host = Ipv4Addr::new(10, b[5], b[6], b[7]);
    let mac = [0x00, 0x14, 0x4f, 0xf8 | (b[5] & 0x03), b[6], b[7]];
    let repr = Repr::lookup(MsgType::SendMsg, mac, host);
    ipv4_ethernet([0x02, 0, 0, b[5], b[6], b[7]], &Ipv4Udp::ldm(host, i as u16), &repr.to_bytes())
}

const SIZES: [usize; 10] = [40, 40, 52, 120, 300, 576, 1200, 1448, 1448, 1448];

fn background(rng: &mut Rng, i: u64) -> Vec<u8> {
    let payload = vec![(i & 0xff) as u8; SIZES[(rng.next() % SIZES.len() as u64) as usize]];
    let src = [10, 2, (i % 50) as u8, 1];
    let dst = [10, 3, (i % 70) as u8, 1];
    let mut packet = Vec::with_capacity(payload.len() + 40);
    if rng.next() % 4 == 0 {
        let builder = etherparse::PacketBuilder::ipv4(src, dst, 64).udp(40_000 + (i % 1000) as u16, 53);
        builder.write(&mut packet, &payload).expect("writing to a Vec");
    } else {
        let builder = etherparse::PacketBuilder::ipv4(src, dst, 64).tcp(443, 50_000, i as u32, 65_000).ack(1);
        builder.write(&mut packet, &payload).expect("writing to a Vec");
    }
    on_ethernet(&packet)
}

fn on_ethernet(packet: &[u8]) -> Vec<u8> {
    ethernet([0x52, 0x54, 0, 0, 0, 1], [0x52, 0x54, 0, 0, 0, 2], &[], 0x0800, packet)
}

/// A TCP segment from `src` to `dst`; `flags` as in the TCP header's low byte.
fn tcp_segment(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut builder = etherparse::PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 65_000);
    if flags & 0x02 != 0 {
        builder = builder.syn();
    }
    if flags & 0x10 != 0 {
        builder = builder.ack(ack);
    }
    if flags & 0x08 != 0 {
        builder = builder.psh();
    }
    if flags & 0x01 != 0 {
        builder = builder.fin();
    }
    let mut packet = Vec::with_capacity(payload.len() + 40);
    builder.write(&mut packet, payload).expect("writing to a Vec");
    on_ethernet(&packet)
}

/// The hostile traffic of an adversarial mix, one frame per call.
enum Hostile {
    /// Random bytes at random sequence numbers to this port.
    Junk {
        port: u16,
    },
    SynFlood,
    /// One libvirt stream, a byte per segment.
    TinySegments {
        stream: Vec<u8>,
        sent: usize,
    },
    /// Recorded frames (IPv4 packets) replayed as `copies` connections.
    Copies {
        packets: Vec<Vec<u8>>,
        copies: u32,
        at: usize,
    },
    FragmentFlood,
}

const DAEMON: [u8; 4] = [10, 9, 0, 1];

impl Hostile {
    fn new(name: &str) -> Option<Hostile> {
        Some(match name {
            "junk-libvirt" => Hostile::Junk { port: libvirt::PORT },
            "junk-tls" => Hostile::Junk { port: libvirt::TLS_PORT },
            "syn-flood" => Hostile::SynFlood,
            "tiny-segments" => Hostile::TinySegments { stream: libvirt_stream(), sent: 0 },
            "libvirt-10k" => Hostile::Copies { packets: recorded_connection(), copies: 10_000, at: 0 },
            "fragment-flood" => Hostile::FragmentFlood,
            _ => return None,
        })
    }

    /// The n-th hostile frame.
    fn frame(&mut self, rng: &mut Rng, n: u64) -> Vec<u8> {
        match self {
            Hostile::Junk { port } => {
                let client = ([10, 8, (n % 200) as u8, 1], 20_000 + (n % 20_000) as u16);
                let size = SIZES[(rng.next() % SIZES.len() as u64) as usize];
                let payload = rng.bytes(size);
                tcp_segment(client, (DAEMON, *port), rng.next() as u32, rng.next() as u32, 0x18, &payload)
            }
            Hostile::SynFlood => {
                let flow = n % 100_000;
                let client = ([10, 7, (flow >> 8) as u8, flow as u8], 30_000 + (flow % 20_000) as u16);
                tcp_segment(client, (DAEMON, libvirt::PORT), (flow as u32).wrapping_mul(2_654_435_761), 0, 0x02, &[])
            }
            Hostile::TinySegments { stream, sent } => {
                let client = ([10, 6, 0, 1], 40_001);
                let daemon = (DAEMON, libvirt::PORT);
                // The connection's SYN, then its stream a byte at a time.
                if *sent == 0 {
                    *sent = 1;
                    return tcp_segment(client, daemon, 0, 0, 0x02, &[]);
                }
                // Byte n of the stream (the calls, over and over) at sequence number 1 + n.
                let n = *sent - 1;
                *sent += 1;
                let at = n % stream.len();
                tcp_segment(client, daemon, n as u32 + 1, 1, 0x18, &stream[at..at + 1])
            }
            Hostile::Copies { packets, copies, at } => {
                let copy = (*at as u32) % *copies;
                let packet = &packets[(*at / *copies as usize) % packets.len()];
                *at += 1;
                on_ethernet(&as_copy(packet, copy))
            }
            Hostile::FragmentFlood => {
                let id = (n % 65_536) as u16;
                let src = Ipv4Addr::new(10, 5, (n >> 16) as u8, 1);
                let sender = Ipv4Udp { id, ..Ipv4Udp::ldm(src, id) };
                // The first of two fragments only: it never completes.
                let fragments = sender.fragments(&rng.bytes(1200), 1000);
                on_ethernet(&fragments[0])
            }
        }
    }
}

/// Calls of a libvirt session, back to back, as one client's byte stream.
fn libvirt_stream() -> Vec<u8> {
    (0..64u32)
        .flat_map(|serial| {
            libvirt::build(libvirt::PROGRAM_REMOTE, 16, libvirt::MsgType::Call, serial, libvirt::Status::Ok, &[7; 40])
        })
        .collect()
}

/// The IPv4 packets of the first connection of the recorded virsh session.
fn recorded_connection() -> Vec<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/libvirt/virsh-session.pcap");
    let mut reader = CaptureReader::open(path).expect("the recorded virsh session");
    let mut packets = Vec::new();
    let mut client_port = None;
    while let Some(frame) = reader.next_frame().expect("a readable capture") {
        // Loopback Ethernet: 14 bytes, then IPv4 with a 20-byte header and TCP.
        let packet = &frame.data[14..];
        let ports = [u16::from_be_bytes([packet[20], packet[21]]), u16::from_be_bytes([packet[22], packet[23]])];
        let client = if ports[0] == libvirt::PORT { ports[1] } else { ports[0] };
        if *client_port.get_or_insert(client) == client {
            packets.push(packet.to_vec());
        }
    }
    packets
}

/// A recorded packet of copy `copy`: the client at 10.4.x.y, the daemon at
/// `DAEMON`, with both checksums made anew.
fn as_copy(packet: &[u8], copy: u32) -> Vec<u8> {
    let (ip, rest) = etherparse::Ipv4Header::from_slice(packet).expect("recorded IPv4");
    let (tcp, payload) = etherparse::TcpHeader::from_slice(rest).expect("recorded TCP");
    let client = [10, 4, (copy >> 8) as u8, copy as u8];
    let (mut ip, mut tcp) = (ip, tcp);
    if tcp.destination_port == libvirt::PORT {
        (ip.source, ip.destination) = (client, DAEMON);
    } else {
        (ip.source, ip.destination) = (DAEMON, client);
    }
    ip.header_checksum = ip.calc_header_checksum();
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, payload).expect("a TCP segment");
    let mut out = Vec::with_capacity(packet.len());
    ip.write(&mut out).expect("writing to a Vec");
    tcp.write(&mut out).expect("writing to a Vec");
    out.extend_from_slice(payload);
    out
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(frames)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: gen-big OUT.pcap|OUT.pcapng FRAMES [LDM_PERCENT | flood | ADVERSARIAL_MIX]");
        std::process::exit(2);
    };
    let mix = args.get(3).map(String::as_str).unwrap_or("10");
    let flood = mix == "flood";
    let mut hostile = Hostile::new(mix);
    let ldm_percent: u64 = match mix.parse() {
        Ok(percent) => percent,
        Err(_) if flood || hostile.is_some() => 10,
        Err(_) => {
            eprintln!("gen-big: unknown mix '{mix}'");
            std::process::exit(2);
        }
    };
    let out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pcap = None;
    let mut pcapng = None;
    if path.ends_with(".pcapng") {
        let mut w = PcapNgWriter::new(out)?;
        w.add_interface(Linktype::ETHERNET, "eth0", 6)?;
        pcapng = Some(w);
    } else {
        pcap = Some(PcapWriter::new(out, Linktype::ETHERNET, false, false)?);
    }
    let mut hostile_sent = 0;
    for i in 0..frames {
        let draw = rng.next() % 100;
        let frame = if flood {
            flood_frame(i)
        } else if draw < ldm_percent {
            ldm_frame(&mut rng, i)
        } else if let Some(h) = hostile.as_mut().filter(|_| draw >= 85) {
            hostile_sent += 1;
            h.frame(&mut rng, hostile_sent - 1)
        } else {
            background(&mut rng, i)
        };
        let ts = Timestamp::new(1_793_611_800 + (i / 100_000) as i64, ((i % 100_000) * 10_000) as u32);
        if let Some(w) = pcap.as_mut() {
            w.write_packet(ts, &frame, frame.len() as u32)?;
        }
        if let Some(w) = pcapng.as_mut() {
            w.write_packet(0, ts, &frame, frame.len() as u32, None)?;
        }
    }
    if let Some(w) = pcap {
        w.into_inner().flush()?;
    }
    if let Some(w) = pcapng {
        w.into_inner().flush()?;
    }
    Ok(())
}
