//! Writes a large deterministic capture for throughput measurements:
//! `cargo run --release --example gen-big -- OUT.pcap FRAMES [LDM_PERCENT | flood]`.
//! About LDM_PERCENT (default 10) of the frames are ldm of every type,
//! malformed ones included; the rest is TCP and UDP background of realistic
//! sizes. `flood` instead makes every frame a lookup of a new MAC from a new
//! host (for the analysis's memory caps). A name ending in .pcapng writes pcapng.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

use ldm_sniff::capture::writer::{PcapNgWriter, PcapWriter};
use ldm_sniff::capture::{Linktype, Timestamp};
use ldm_sniff::synth::{ethernet, ipv4_ethernet, Ipv4Udp};
use ldm_sniff::wire::ldm::{ByteOrder, MsgType, Repr};

/// Small xorshift: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
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

fn background(rng: &mut Rng, i: u64) -> Vec<u8> {
    let sizes = [40usize, 40, 52, 120, 300, 576, 1200, 1448, 1448, 1448];
    let payload = vec![(i & 0xff) as u8; sizes[(rng.next() % sizes.len() as u64) as usize]];
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
    ethernet([0x52, 0x54, 0, 0, 0, 1], [0x52, 0x54, 0, 0, 0, 2], &[], 0x0800, &packet)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(frames)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: gen-big OUT.pcap|OUT.pcapng FRAMES [LDM_PERCENT]");
        std::process::exit(2);
    };
    let flood = args.get(3).is_some_and(|a| a == "flood");
    let ldm_percent: u64 = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(10);
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
    for i in 0..frames {
        let frame = if flood {
            flood_frame(i)
        } else if rng.next() % 100 < ldm_percent {
            ldm_frame(&mut rng, i)
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
