//! libvirt over TCP, damaged any way: a sequence of segments in both
//! directions (any sequence numbers, flags, SASL marks, libvirt or TLS
//! framing) through the stream reassembler, and every message it delivers
//! through the libvirt, argument, error and TLS decoders. Nothing may panic,
//! and every delivered range lies in the output.
//!
//! Input: repeated [control, sequence delta, length, bytes...]. Control bit 0
//! picks the direction, 1 SYN, 2 FIN, 3 RST, 4 TLS framing, 5 marks SASL,
//! 6 ACK (of the other direction, near where it is), 7 lets a second of
//! capture time pass (holds end). At the end, every hole is given up.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use ldm_sniff::capture::{Frame, KernelChecksum, Linktype, Timestamp};
use ldm_sniff::dissect::stream::{Deliveries, FlowKey, Framing, Origin, Streams};
use ldm_sniff::dissect::tcp::{TcpInfo, ACK, FIN, RST, SYN};
use ldm_sniff::wire::{libvirt, tls};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let client = FlowKey {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        src_port: 40000,
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        dst_port: libvirt::PORT,
    };
    let server = FlowKey { src: client.dst, src_port: client.dst_port, dst: client.src, dst_port: client.src_port };
    let mut streams = Streams::default();
    let mut next = [1000u32, 5000u32];
    let mut out = Deliveries::default();
    let mut secs = 0i64;
    let mut number = 0u64;
    let mut rest = data;
    while rest.len() >= 3 {
        let (control, delta, len) = (rest[0], rest[1], usize::from(rest[2]));
        let bytes = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[(3 + len).min(rest.len())..];
        let dir = usize::from(control & 1);
        let key = if dir == 0 { client } else { server };
        let seq = next[dir].wrapping_add(u32::from(delta)).wrapping_sub(64);
        next[dir] = seq.wrapping_add(bytes.len() as u32 + u32::from(control & 2 != 0));
        let flags = [(2, SYN), (4, FIN), (8, RST), (64, ACK)]
            .iter()
            .filter(|(bit, _)| control & bit != 0)
            .fold(0, |a, (_, f)| a | f);
        secs += i64::from(control >> 7);
        number += 1;
        let framing = if control & 16 != 0 { Framing::Tls } else { Framing::Libvirt };
        if control & 32 != 0 {
            streams.mark_sasl(key);
        }
        let tcp = TcpInfo {
            src_port: key.src_port,
            dst_port: key.dst_port,
            seq,
            ack: next[1 - dir].wrapping_add(u32::from(delta)).wrapping_sub(128),
            flags,
            window: 0,
            header_len: 20,
            payload_len: bytes.len(),
        };
        let frame = Frame {
            number,
            ts: Timestamp::new(secs, 0),
            len: bytes.len() as u32,
            linktype: Linktype::RAW,
            interface: 0,
            file_offset: 0,
            data: bytes,
            kernel_checksum: KernelChecksum::Unknown,
            raw_time: None,
        };
        out.clear();
        if streams.has_due(frame.ts) {
            streams.expire(&frame, &mut out);
        }
        streams.segment(key, framing, &tcp, bytes, &frame, &mut out);
        check(&out, framing);
    }
    out.clear();
    streams.finish(&mut out);
    check(&out, Framing::Libvirt);
});

/// Every delivered range lies in the output, every report and kept frame
/// exists, and every message decodes without a panic.
fn check(out: &Deliveries, framing: Framing) {
    for report in &out.reports {
        if let Origin::Kept(k) = report.origin {
            assert!(k < out.kept.len());
        }
    }
    for (range, report) in &out.messages {
        assert!(*report < out.reports.len());
        let message = &out.bytes[range.clone()];
        match framing {
            Framing::Libvirt => {
                if let Some(msg) = libvirt::Message::parse(message) {
                    let _ = msg.error();
                    let _ = msg.decode_payload();
                    let _ = msg.to_bytes();
                }
            }
            Framing::Tls => {
                if let Some(record) = tls::Record::parse(message) {
                    let _ = record.hello();
                }
            }
        }
    }
}
