//! Makes a hostile variant of a recorded Ethernet capture, deterministically:
//! `cargo run --example tcp-variants -- IN OUT.pcap EDIT...`
//!
//! Each EDIT names a frame of IN by its number (from 1): `drop:12`,
//! `dup:12` (captured twice), `resend:12@40` (sent again just before frame
//! 40, or at the end past the last frame), `swap:12` (after frame 13),
//! `split:12@5` (its TCP payload in two segments, the first 5 bytes long),
//! `corrupt:12@9` (payload byte 9 flipped). The tests in tests/libvirt.rs
//! print the edits of any variant they fail on, for this tool.

use ldm_sniff::synth::variants;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, edits @ ..] = args.as_slice() else {
        eprintln!("usage: tcp-variants IN OUT.pcap EDIT... (drop:N dup:N resend:N@M swap:N split:N@AT corrupt:N@AT)");
        std::process::exit(2);
    };
    let result = edits
        .iter()
        .map(|edit| variants::parse_edit(edit))
        .collect::<Result<Vec<_>, String>>()
        .and_then(|edits| Ok((variants::read(input)?, edits)))
        .and_then(|(packets, edits)| variants::apply(&packets, &edits))
        .and_then(|packets| {
            std::fs::write(output, variants::to_pcap(&packets)).map_err(|e| format!("{output}: {e}"))?;
            Ok(packets.len())
        });
    match result {
        Ok(frames) => println!("wrote {output}: {frames} frames"),
        Err(message) => {
            eprintln!("tcp-variants: {message}");
            std::process::exit(2);
        }
    }
}
