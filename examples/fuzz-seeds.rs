//! Writes seed corpora for the fuzz targets from the captures in captures/:
//! `cargo run --example fuzz-seeds -- fuzz/corpus` (see fuzz/README.md).

use std::path::Path;

use ldm_sniff::capture::{CaptureReader, Linktype};

/// The fuzz target frame_decoder picks its link type by the first byte.
const LINKTYPES: [Linktype; 6] =
    [Linktype::ETHERNET, Linktype::LINUX_SLL, Linktype::LINUX_SLL2, Linktype::RAW, Linktype::NULL, Linktype::IPV4];

fn write(dir: &Path, target: &str, name: String, bytes: &[u8]) -> std::io::Result<()> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".to_string());
    let out = Path::new(&out);
    let mut files: Vec<_> = Vec::new();
    for dir in ["captures", "captures/recorded", "captures/broken", "captures/conformance", "captures/libvirt"] {
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e != "md" && e != "sh" && e != "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut seeds = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        write(out, "capture_reader", name.clone(), &std::fs::read(path)?)?;
        seeds += 1;
        let Ok(mut reader) = CaptureReader::open(&path.to_string_lossy()) else { continue };
        let mut stream_seed = Vec::new();
        while let Ok(Some(frame)) = reader.next_frame() {
            libvirt_chunks(frame.data, &mut stream_seed);
            let Some(pick) = LINKTYPES.iter().position(|l| *l == frame.linktype) else { continue };
            let mut seed = vec![pick as u8];
            seed.extend_from_slice(frame.data);
            write(out, "frame_decoder", format!("{name}-{}", frame.number), &seed)?;
            // The UDP payload of an Ethernet/IPv4 frame: the last 312 bytes of an ldm one.
            if frame.data.len() >= 312 {
                let payload = &frame.data[frame.data.len() - 312..];
                write(out, "wire_parser", format!("{name}-{}", frame.number), payload)?;
                let mut request = vec![0u8];
                request.extend_from_slice(payload);
                write(out, "emulator_handler", format!("{name}-{}", frame.number), &request)?;
            }
            seeds += 1;
        }
        if !stream_seed.is_empty() {
            write(out, "libvirt_stream", name.clone(), &stream_seed)?;
            seeds += 1;
        }
    }
    let filters = [
        "ldm",
        "ldm.msg_type == SEND_MSG && ip.src == 10.1.1.0/24",
        "ldm.mac == 00:14:4f:f8:00:2a or not udp",
        "ldm.hostname matches \"^ldom-[a-z]+$\"",
        "(ldm.rtt > 0.5) and expert.severity == \"warn\"",
        "ldm.source_ip != ip.src",
        "frame.len >= 354 && !(ldm.version_no == 1)",
    ];
    for (i, filter) in filters.iter().enumerate() {
        write(out, "display_filter", format!("filter-{i}"), filter.as_bytes())?;
    }
    println!("wrote {} seeds under {}", seeds + filters.len(), out.display());
    Ok(())
}

/// The libvirt_stream target's chunks for an Ethernet frame's TCP payload on
/// the libvirt ports: [control, sequence delta 64 (in order), length, bytes].
fn libvirt_chunks(frame: &[u8], seed: &mut Vec<u8>) {
    let Ok(packet) = etherparse::SlicedPacket::from_ethernet(frame) else { return };
    let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else { return };
    let (src, dst) = (tcp.source_port(), tcp.destination_port());
    let tls = src == 16514 || dst == 16514;
    if !(tls || src == 16509 || dst == 16509) {
        return;
    }
    let direction = u8::from(src == 16509 || src == 16514);
    let control = direction | if tls { 16 } else { 0 } | if tcp.syn() { 2 } else { 0 } | if tcp.fin() { 4 } else { 0 };
    let payload = tcp.payload();
    if payload.is_empty() {
        seed.extend_from_slice(&[control, 64, 0]);
        return;
    }
    for piece in payload.chunks(255) {
        seed.extend_from_slice(&[control, 64, piece.len() as u8]);
        seed.extend_from_slice(piece);
    }
}
