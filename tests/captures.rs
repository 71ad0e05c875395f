//! The committed captures are what the generator makes, and every frame
//! raises exactly the findings the generator promises for it.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use ldm_sniff::analyze;
use ldm_sniff::capture::CaptureReader;
use ldm_sniff::dissect;
use ldm_sniff::expert::Key;
use ldm_sniff::pipeline;
use ldm_sniff::synth::captures;

fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

/// (frame number, sorted finding keys) of every frame with ldm packets or
/// libvirt messages in a capture, per packet and over time (default analysis
/// options), and how many packets and messages there were.
fn ldm_findings_counted(name: &str, bytes: Vec<u8>) -> (Vec<(u64, Vec<Key>)>, u64) {
    let reader = CaptureReader::from_reader(name, Cursor::new(bytes)).expect("capture opens");
    let mut seen: Vec<(u64, Vec<Key>)> = Vec::new();
    let mut records = 0;
    let (error, _) =
        pipeline::walk_analyzed(reader, dissect::Options::default(), analyze::Options::default(), |d, note| {
            if d.is_shown() {
                records += 1;
                let keys = d.findings.iter().chain(&note.findings).map(|f| f.key);
                // A frame completing several libvirt messages: one entry with all their keys.
                match seen.last_mut().filter(|(frame, _)| *frame == d.frame.number) {
                    Some((_, all)) => all.extend(keys),
                    None => seen.push((d.frame.number, keys.collect())),
                }
                if let Some((_, all)) = seen.last_mut() {
                    all.sort();
                }
            }
            Ok(true)
        })
        .expect("no output error");
    assert!(error.is_none(), "{name}: {error:?}");
    (seen, records)
}

fn ldm_findings(name: &str, bytes: Vec<u8>) -> Vec<(u64, Vec<Key>)> {
    ldm_findings_counted(name, bytes).0
}

#[test]
fn committed_captures_match_the_generator() {
    let generated = captures::all();
    let broken = captures::broken();
    for (name, bytes) in generated.iter().map(|g| (g.name, &g.bytes)).chain(broken.iter().map(|b| (b.name, &b.bytes))) {
        let committed = std::fs::read(captures_dir().join(name)).unwrap_or_default();
        assert!(
            &committed == bytes,
            "captures/{name} differs from the generator: run `cargo run --example gen-captures`"
        );
    }
    let readme = std::fs::read_to_string(captures_dir().join("README.md")).unwrap_or_default();
    assert_eq!(
        readme,
        captures::readme(&generated, &broken),
        "captures/README.md is stale: run `cargo run --example gen-captures`"
    );
}

#[test]
fn every_frame_raises_exactly_the_promised_findings() {
    for g in captures::all() {
        let (seen, records) = ldm_findings_counted(g.name, g.bytes.clone());
        assert_eq!(records, g.ldm_packets, "{}: ldm packet and libvirt message count", g.name);
        for (frame, keys) in &seen {
            let promised = g.expect.iter().find(|(n, _)| n == frame).map(|(_, k)| k.clone()).unwrap_or_default();
            assert_eq!(keys, &promised, "{} frame {frame}", g.name);
        }
        for (frame, _) in &g.expect {
            assert!(
                seen.iter().any(|(n, _)| n == frame),
                "{} frame {frame} was promised but not decoded as ldm",
                g.name
            );
        }
    }
}

#[test]
fn every_catalogue_key_has_a_capture_that_raises_it() {
    let raised: BTreeSet<Key> =
        captures::all().iter().flat_map(|g| g.expect.iter().flat_map(|(_, keys)| keys.clone())).collect();
    let missing: Vec<&str> = Key::ALL.iter().filter(|k| !raised.contains(k)).map(|k| k.name()).collect();
    assert!(missing.is_empty(), "keys with no capture: {missing:?}");
}

#[test]
fn captures_from_real_tcpdump_and_dumpcap_decode_cleanly() {
    for name in ["tcpdump-classic.pcap", "tcpdump-nano.pcap", "dumpcap.pcapng", "tcpdump-any-sll2.pcap"] {
        let bytes = std::fs::read(captures_dir().join("recorded").join(name)).expect("recorded capture present");
        let seen = ldm_findings(name, bytes);
        assert_eq!(seen.len(), 10, "{name}: every frame is ldm");
        // The sender answers its own lookups (frames 4 and 9): handled collisions.
        for (frame, keys) in seen {
            let expected = if frame == 4 || frame == 9 { vec![Key::LdmCollision] } else { vec![] };
            assert_eq!(keys, expected, "{name} frame {frame}");
        }
    }
}

#[test]
fn broken_files_keep_what_precedes_the_damage() {
    for (name, frames_before) in
        [("broken/cut-short.pcap", 2), ("broken/huge-record.pcap", 1), ("broken/corrupt-block.pcapng", 3)]
    {
        let path = captures_dir().join(name);
        let bytes = std::fs::read(&path).expect("broken capture present");
        // The same damage, read as a stream (stdin, pipes) and from the memory-mapped file.
        let streamed = CaptureReader::from_reader(name, Cursor::new(bytes)).expect("header is fine");
        let mapped = CaptureReader::open(path.to_str().expect("UTF-8 path")).expect("header is fine");
        let mut messages = Vec::new();
        for reader in [streamed, mapped] {
            let mut frames = 0;
            let error = pipeline::walk(reader, dissect::Options::default(), |_| {
                frames += 1;
                Ok(true)
            })
            .expect("no output error");
            assert_eq!(frames, frames_before, "{name}");
            let message = error.expect("an error is reported").to_string();
            assert!(message.contains(name) && message.contains("byte offset"), "{name}: {message}");
            messages.push(message.replace(path.to_str().expect("UTF-8 path"), name));
        }
        assert_eq!(messages[0], messages[1], "{name}: both readers say the same");
        if name.contains("huge") {
            assert!(messages[0].contains("more than any capture tool writes"), "{}", messages[0]);
        }
    }
}
