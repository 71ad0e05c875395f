//! Writes the hostile files of `ldm_sniff::synth::hostile`, for measuring
//! what they cost (bench/README.md, "Hostile files"):
//!
//! ```text
//! hostile-files fragments COUNT SIZE OUT    COUNT fragments of SIZE bytes of one
//!                                           datagram that never completes
//! hostile-files hole COUNT 8 OUT           a head, a tail and COUNT 8-byte fragments
//!                                           that never fill the hole between them
//! hostile-files interfaces COUNT NAME OUT   a pcapng with COUNT interfaces whose
//!                                           names are NAME bytes long
//! ```

use ldm_sniff::synth::hostile;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    let bytes = match (args.first().map(String::as_str), number(1), number(2), args.get(3)) {
        (Some("fragments"), Some(count), Some(size), Some(_)) => hostile::pcap_fragments_of_one_datagram(count, size),
        (Some("hole"), Some(count), Some(_), Some(_)) => hostile::pcap_fragments_around_a_hole(count),
        (Some("interfaces"), Some(count), Some(name), Some(_)) => hostile::pcapng_with_interfaces(count, name),
        _ => {
            eprintln!(
                "usage: hostile-files fragments COUNT SIZE OUT | hole COUNT 8 OUT | interfaces COUNT NAME_LEN OUT"
            );
            std::process::exit(2);
        }
    };
    let out = &args[3];
    if let Err(e) = std::fs::write(out, bytes) {
        eprintln!("hostile-files: {out}: {e}");
        std::process::exit(1);
    }
}
