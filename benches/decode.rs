//! Micro-benchmarks of the two hot stages: the ldm wire parser and the frame
//! decoder (link, IP, UDP, ldm, checks). `cargo bench`; figures in bench/README.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::net::Ipv4Addr;

use ldm_sniff::capture::{Frame, KernelChecksum, Linktype, Timestamp};
use ldm_sniff::dissect::{self, Dissector};
use ldm_sniff::synth::{ipv4_ethernet, Ipv4Udp};
use ldm_sniff::wire::ldm::{Message, MsgType, Repr};

fn lookup() -> Vec<u8> {
    Repr::lookup(MsgType::SendMsg, [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x2a], Ipv4Addr::new(10, 1, 1, 5)).to_bytes()
}

fn frame_of(payload: &[u8], port: u16) -> Vec<u8> {
    let udp = Ipv4Udp { src_port: port, dst_port: port, ..Ipv4Udp::ldm(Ipv4Addr::new(10, 1, 1, 5), 7) };
    ipv4_ethernet([0x52, 0x54, 0, 0, 0, 1], &udp, payload)
}

fn frame(data: &[u8]) -> Frame<'_> {
    Frame {
        number: 1,
        ts: Timestamp::new(1_700_000_000, 0),
        len: data.len() as u32,
        linktype: Linktype::ETHERNET,
        interface: 0,
        file_offset: 0,
        data,
        kernel_checksum: KernelChecksum::Unknown,
        raw_time: None,
    }
}

fn wire_parser(c: &mut Criterion) {
    let discovery = Repr::discovery_response("3.6.1.0.11", "ldom-a", Ipv4Addr::new(10, 1, 1, 10)).to_bytes();
    let lookup = lookup();
    let mut group = c.benchmark_group("wire_parser");
    group.throughput(Throughput::Elements(1));
    group.bench_function("lookup", |b| b.iter(|| Message::parse(black_box(&lookup))));
    group.bench_function("discovery_response", |b| b.iter(|| Message::parse(black_box(&discovery))));
    group.finish();
}

fn frame_decoder(c: &mut Criterion) {
    let ldm = frame_of(&lookup(), 64535);
    let other = frame_of(&[0u8; 300], 5000);
    let mut dissector = Dissector::new(dissect::Options::default());
    let mut group = c.benchmark_group("frame_decoder");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ldm_lookup_with_checks", |b| b.iter(|| dissector.dissect(frame(black_box(&ldm))).is_ldm()));
    group.bench_function("other_udp", |b| b.iter(|| dissector.dissect(frame(black_box(&other))).is_ldm()));
    group.finish();
}

criterion_group!(benches, wire_parser, frame_decoder);
criterion_main!(benches);
