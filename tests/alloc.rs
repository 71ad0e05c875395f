//! No heap allocation per frame on the hot path for traffic that is not
//! ldm, nor per libvirt segment in steady state: a counting global
//! allocator, and the whole pipeline (reader, dissection, analysis, output)
//! run over a small and a ten times larger capture. Allocations must not
//! grow with the number of frames.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ldm_sniff::capture::writer::PcapWriter;
use ldm_sniff::capture::{CaptureReader, Linktype, Timestamp};
use ldm_sniff::output::{self, Format, Style};
use ldm_sniff::pipeline::{self, Config};
use ldm_sniff::{analyze, dissect, synth};

struct Counting;

thread_local! {
    // Per thread: the tests run at once, each counting its own.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A pcap of `frames` background frames: TCP and UDP (DNS) of several sizes,
/// and an ARP frame, none of them ldm.
fn background_capture(frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = PcapWriter::new(&mut out, Linktype::ETHERNET, false, false).expect("writing to a Vec");
    write_background(&mut writer, frames);
    out
}

fn write_background(writer: &mut PcapWriter<&mut Vec<u8>>, frames: u32) {
    for i in 0..frames {
        let payload = vec![i as u8; [40usize, 300, 1448][i as usize % 3]];
        let mut packet = Vec::new();
        let (src, dst) = ([10, 2, (i % 50) as u8, 1], [10, 3, (i % 70) as u8, 1]);
        let ethertype = match i % 4 {
            0 => {
                etherparse::PacketBuilder::ipv4(src, dst, 64).udp(40_000, 53).write(&mut packet, &payload).unwrap();
                0x0800
            }
            1 => {
                packet.extend_from_slice(&[0u8; 28]);
                0x0806
            }
            _ => {
                let tcp = etherparse::PacketBuilder::ipv4(src, dst, 64).tcp(443, 50_000, i, 65_000).ack(1);
                tcp.write(&mut packet, &payload).unwrap();
                0x0800
            }
        };
        let frame = synth::ethernet([0x52, 0x54, 0, 0, 0, 1], [0x52, 0x54, 0, 0, 0, 2], &[], ethertype, &packet);
        let ts = Timestamp::new(1_700_000_000 + i64::from(i / 1000), (i % 1000) * 1_000_000);
        writer.write_packet(ts, &frame, frame.len() as u32).expect("writing to a Vec");
    }
}

/// Allocations made while the pipeline processes `capture` (with packet
/// output to nowhere, or none with `quiet`).
fn allocations_for(capture: Vec<u8>, quiet: bool) -> u64 {
    let config = Config {
        dissect: dissect::Options::default(),
        output: output::Options {
            format: Format::Text,
            verbose: false,
            hex: false,
            style: Style { color: false },
            line_buffered: false,
            time_format: Default::default(),
        },
        count: None,
        all: false,
        quiet,
        analysis: analyze::Options::default(),
        stats: Vec::new(),
        filter: None,
        write: None,
        hold: true,
        columns: Default::default(),
        metrics: None,
        report: None,
    };
    let before = allocations();
    let reader = CaptureReader::from_reader("background", std::io::Cursor::new(capture)).expect("a valid capture");
    let outcome = pipeline::run(reader, std::io::sink(), config).expect("runs");
    assert!(outcome.capture_error.is_none());
    allocations() - before
}

#[test]
fn background_frames_cost_no_allocation_each() {
    let (small, large) = (background_capture(2_000), background_capture(20_000));
    // Once before measuring: some allocations happen once per process.
    allocations_for(small.clone(), false);
    let few = allocations_for(small, false);
    let many = allocations_for(large, false);
    // Set-up allocates (buffers, tables); 18,000 more frames must add nothing.
    assert_eq!(many, few, "{few} allocations for 2,000 background frames, {many} for 20,000");
}

/// A libvirt connection from its SYN, then `calls` calls and replies, each
/// in a segment of its own and in order; then as many segments of junk on
/// the port from connections joined mid-way (not followed).
fn libvirt_capture(calls: u32) -> Vec<u8> {
    use ldm_sniff::wire::libvirt::{build, MsgType, Status, PORT, PROGRAM_REMOTE};
    let mut out = Vec::new();
    let mut writer = PcapWriter::new(&mut out, Linktype::ETHERNET, false, false).expect("writing to a Vec");
    let (client, daemon) = ([10, 1, 0, 1], [10, 1, 0, 2]);
    let (mut client_seq, mut daemon_seq) = (1_000u32, 9_000u32);
    let mut frame_number = 0u32;
    let mut write = |packet: Vec<u8>| {
        let frame = synth::ethernet([0x52, 0x54, 0, 0, 0, 1], [0x52, 0x54, 0, 0, 0, 2], &[], 0x0800, &packet);
        let ts = Timestamp::new(1_700_000_000 + i64::from(frame_number / 1000), (frame_number % 1000) * 1_000_000);
        writer.write_packet(ts, &frame, frame.len() as u32).expect("writing to a Vec");
        frame_number += 1;
    };
    let segment = |from: [u8; 4], to: [u8; 4], ports: (u16, u16), seq: u32, ack: u32, payload: &[u8]| {
        let mut packet = Vec::new();
        let builder = etherparse::PacketBuilder::ipv4(from, to, 64).tcp(ports.0, ports.1, seq, 65_000).ack(ack);
        builder.write(&mut packet, payload).unwrap();
        packet
    };
    let mut syn = Vec::new();
    etherparse::PacketBuilder::ipv4(client, daemon, 64)
        .tcp(40_000, PORT, client_seq - 1, 65_000)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    write(syn);
    let mut syn_ack = Vec::new();
    let builder = etherparse::PacketBuilder::ipv4(daemon, client, 64).tcp(PORT, 40_000, daemon_seq - 1, 65_000);
    builder.syn().ack(client_seq).write(&mut syn_ack, &[]).unwrap();
    write(syn_ack);
    for serial in 0..calls {
        let call = build(PROGRAM_REMOTE, 16, MsgType::Call, serial, Status::Ok, &[7; 40]);
        write(segment(client, daemon, (40_000, PORT), client_seq, daemon_seq, &call));
        client_seq += call.len() as u32;
        let reply = build(PROGRAM_REMOTE, 16, MsgType::Reply, serial, Status::Ok, &[9; 60]);
        write(segment(daemon, client, (PORT, 40_000), daemon_seq, client_seq, &reply));
        daemon_seq += reply.len() as u32;
    }
    for i in 0..calls {
        let junk = vec![(i % 251) as u8; 300];
        write(segment(
            [10, 8, 0, 1],
            daemon,
            (20_000 + (i % 100) as u16, PORT),
            i.wrapping_mul(2_654_435_761),
            1,
            &junk,
        ));
    }
    out
}

/// The stream layer and the analysis, without the output: a libvirt line
/// decodes the message's arguments into owned values to print them.
#[test]
fn libvirt_segments_in_order_and_junk_on_the_port_cost_no_allocation_each() {
    let (small, large) = (libvirt_capture(1_000), libvirt_capture(10_000));
    allocations_for(small.clone(), true);
    let few = allocations_for(small, true);
    let many = allocations_for(large, true);
    assert_eq!(many, few, "{few} allocations for 1,000 round trips, {many} for 10,000");
}
