//! No heap allocation per frame on the hot path for traffic that is not
//! ldm: a counting global allocator, and the whole pipeline (reader,
//! dissection, analysis, output) run over 2,000 and over 20,000 background
//! frames. Allocations must not grow with the number of frames.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use ldm_sniff::capture::writer::PcapWriter;
use ldm_sniff::capture::{CaptureReader, Linktype, Timestamp};
use ldm_sniff::output::{self, Format, Style};
use ldm_sniff::pipeline::{self, Config};
use ldm_sniff::{analyze, dissect, synth};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

/// Allocations made while the pipeline processes `capture`.
fn allocations_for(capture: Vec<u8>) -> u64 {
    let config = Config {
        dissect: dissect::Options::default(),
        output: output::Options {
            format: Format::Text,
            verbose: false,
            hex: false,
            style: Style { color: false },
            line_buffered: false,
        },
        count: None,
        all: false,
        quiet: false,
        analysis: analyze::Options::default(),
        stats: Vec::new(),
        filter: None,
        write: None,
        hold: true,
    };
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let reader = CaptureReader::from_reader("background", std::io::Cursor::new(capture)).expect("a valid capture");
    let outcome = pipeline::run(reader, std::io::sink(), config).expect("runs");
    assert!(outcome.capture_error.is_none());
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn background_frames_cost_no_allocation_each() {
    let (small, large) = (background_capture(2_000), background_capture(20_000));
    // Once before measuring: some allocations happen once per process.
    allocations_for(small.clone());
    let few = allocations_for(small);
    let many = allocations_for(large);
    // Set-up allocates (buffers, tables); 18,000 more frames must add nothing.
    assert_eq!(many, few, "{few} allocations for 2,000 background frames, {many} for 20,000");
}
