//! Hostile input never panics, and a damaged file loses nothing that came
//! before the damage.

use std::io::Cursor;
use std::path::Path;

use ldm_sniff::analyze::{self, Analyzer};
use ldm_sniff::capture::{CaptureReader, Frame, KernelChecksum, Linktype, Timestamp};
use ldm_sniff::dissect::{self, Dissector, Stop};
use ldm_sniff::output::Packet;
use ldm_sniff::pipeline;
use proptest::prelude::*;

fn capture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures").join(name)).expect("capture present")
}

/// Frame numbers and their ldm findings, and whether the walk ended in an
/// error; read as a stream and from a memory-mapped file, which must agree.
fn decode(bytes: Vec<u8>) -> (Vec<(u64, Vec<&'static str>)>, bool) {
    let file = scratch_file(&bytes);
    let mapped = walk(CaptureReader::open(file.path().to_str().expect("UTF-8 path")));
    let streamed = walk(CaptureReader::from_reader("input", Cursor::new(bytes)));
    assert_eq!(streamed, mapped, "the stream and the mapped file decode alike");
    streamed
}

/// A file of its own for each call (proptest cases run in parallel tests),
/// removed when it is dropped, also when the test fails.
fn scratch_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), bytes).expect("temporary file written");
    file
}

fn walk(reader: Result<CaptureReader, ldm_sniff::capture::CaptureError>) -> (Vec<(u64, Vec<&'static str>)>, bool) {
    let Ok(reader) = reader else {
        return (Vec::new(), true);
    };
    let mut seen = Vec::new();
    let options = dissect::Options { port: 64535, heuristic: true, checksum_all: true, ..Default::default() };
    let (error, _) = pipeline::walk_analyzed(reader, options, analyze::Options::default(), |d, _| {
        seen.push((d.frame.number, d.findings.iter().map(|f| f.key.name()).collect()));
        Ok(true)
    })
    .expect("no output error");
    (seen, error.is_some())
}

/// Drops the records of fragmented datagrams given up at the end of input:
/// where a file is cut decides which of those there are.
fn without_given_up(frames: Vec<(u64, Vec<&'static str>)>) -> Vec<(u64, Vec<&'static str>)> {
    frames.into_iter().filter(|(_, keys)| !keys.contains(&"ip.fragments_missing")).collect()
}

#[test]
fn every_prefix_of_a_capture_decodes_the_frames_it_holds() {
    for name in ["anomalies.pcapng", "short-lookup.pcap", "recorded/dumpcap.pcapng", "raw-ip-be-ns.pcap"] {
        let full = capture(name);
        let (all, failed) = decode(full.clone());
        assert!(!failed, "{name} decodes");
        let all = without_given_up(all);
        let mut previous = 0;
        for len in 0..full.len() {
            let (seen, _) = decode(full[..len].to_vec());
            let seen = without_given_up(seen);
            // Nothing before the cut is lost or decoded differently...
            assert_eq!(&seen[..], &all[..seen.len()], "{name} cut at byte {len}");
            // ...and a longer file never yields fewer frames.
            assert!(seen.len() >= previous, "{name} cut at byte {len}: {} frames, {previous} before", seen.len());
            previous = seen.len();
        }
        assert!(previous + 1 >= all.len(), "{name}: the last cut keeps all but the last frame");
    }
}

#[test]
fn garbage_after_a_valid_header_is_an_error_not_a_panic() {
    let mut bytes = capture("short-lookup.pcap")[..24].to_vec();
    bytes.extend((0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let (_, failed) = decode(bytes);
    assert!(failed);
}

/// `capture`'s little-endian pcapng file with its section header replaced
/// by one that carries a comment of `comment_len` bytes.
fn with_long_section_comment(name: &str, comment_len: usize) -> Vec<u8> {
    let original = capture(name);
    let old_len = u32::from_le_bytes(original[4..8].try_into().expect("4 bytes")) as usize;
    let padded = comment_len.next_multiple_of(4);
    // Type, length, byte-order magic, version, section length; the comment
    // option (code 1); the end of options; the length again.
    let new_len = 24 + 4 + padded + 4 + 4;
    let mut bytes = Vec::with_capacity(new_len + original.len());
    bytes.extend_from_slice(&original[..4]);
    bytes.extend_from_slice(&(new_len as u32).to_le_bytes());
    bytes.extend_from_slice(&original[8..24]);
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&(comment_len as u16).to_le_bytes());
    bytes.extend((0..padded).map(|i| if i < comment_len { b'a' + (i % 26) as u8 } else { 0 }));
    bytes.extend_from_slice(&[0; 4]);
    bytes.extend_from_slice(&(new_len as u32).to_le_bytes());
    bytes.extend_from_slice(&original[old_len..]);
    bytes
}

/// A section header may carry long options (a capture comment): one longer
/// than the bytes read to recognise the format must not make standard input
/// refuse a file that reads when mapped (found by the capture_reader fuzzer).
#[test]
fn a_section_header_longer_than_the_first_read_reads_streamed_as_mapped() {
    let (expected, failed) = decode(capture("discovery.pcapng"));
    assert!(!failed && expected.len() == 4, "{expected:?}");
    // Well under the 64 KiB first read, just under it, and past it: an
    // option's length is 16 bits, so the longest comment makes a header of
    // 65,572 bytes (several options make one longer still).
    for comment_len in [100, 65_000, 65_535] {
        let (frames, failed) = decode(with_long_section_comment("discovery.pcapng", comment_len));
        assert!(!failed, "a {comment_len}-byte comment");
        assert_eq!(frames, expected, "a {comment_len}-byte comment");
    }
    // One that claims more than any record may: the same refusal both ways.
    let mut bytes = with_long_section_comment("discovery.pcapng", 100);
    bytes[4..8].copy_from_slice(&(20u32 << 20).to_le_bytes());
    let file = scratch_file(&bytes);
    let name = file.path().to_str().expect("UTF-8 path");
    let mapped = CaptureReader::open(name).err().map(|e| e.to_string().replace(name, "INPUT"));
    let streamed = CaptureReader::from_reader("INPUT", Cursor::new(bytes)).err().map(|e| e.to_string());
    assert_eq!(streamed, mapped);
    let message = streamed.expect("refused");
    assert!(message.contains("byte offset 0") && message.contains("claims 20971520 bytes"), "{message}");
}

const LINKTYPES: [Linktype; 8] = [
    Linktype::ETHERNET,
    Linktype::LINUX_SLL,
    Linktype::LINUX_SLL2,
    Linktype::NULL,
    Linktype::LOOP,
    Linktype::RAW,
    Linktype::IPV4,
    Linktype::IPV6,
];

fn dissect_bytes(dissector: &mut Dissector, linktype: Linktype, data: &[u8], number: u64) {
    let frame = Frame {
        number,
        ts: Timestamp::new(number as i64, 0),
        len: data.len() as u32 + (number % 3) as u32,
        linktype,
        interface: 0,
        file_offset: 0,
        data,
        kernel_checksum: KernelChecksum::Unknown,
        raw_time: None,
    };
    let d = dissector.dissect(frame);
    let mut analyzer = Analyzer::new(analyze::Options::default());
    let note = analyzer.observe(&d);
    let p = Packet { d: &d, note: &note };
    let mut buf = Vec::new();
    let mut seconds = ldm_sniff::output::json::SecondText::default();
    ldm_sniff::output::json::write_record(&mut buf, &mut seconds, &p, 0.0, ldm_sniff::output::json::Layout::Plain);
    let _ = ldm_sniff::output::tree::write_tree(&mut Vec::new(), &p, 0.0, ldm_sniff::output::Style { color: false });
    let _ =
        ldm_sniff::output::text::write_line(&mut Vec::new(), &p, 0.0, None, ldm_sniff::output::Style { color: false });
    assert!(
        serde_json::from_slice::<serde_json::Value>(&buf).is_ok(),
        "record is valid JSON: {}",
        String::from_utf8_lossy(&buf)
    );
}

/// Frames of real ldm, libvirt and other packets, to mutate (read once).
fn ldm_frames() -> &'static [(Linktype, Vec<u8>)] {
    static FRAMES: std::sync::OnceLock<Vec<(Linktype, Vec<u8>)>> = std::sync::OnceLock::new();
    FRAMES.get_or_init(read_ldm_frames)
}

fn read_ldm_frames() -> Vec<(Linktype, Vec<u8>)> {
    let mut frames = Vec::new();
    for name in [
        "anomalies.pcapng",
        "vlan.pcapng",
        "sll2-any.pcap",
        "two-interfaces.pcapng",
        "mixed-traffic.pcapng",
        "libvirt/virsh-session.pcap",
    ] {
        let mut reader = CaptureReader::from_reader(name, Cursor::new(capture(name))).expect("opens");
        while let Ok(Some(frame)) = reader.next_frame() {
            frames.push((frame.linktype, frame.data.to_vec()));
        }
    }
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        decode(bytes);
    }

    #[test]
    fn random_files_with_a_real_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..3000), ng in any::<bool>()) {
        let header = if ng { capture("discovery.pcapng")[..100].to_vec() } else { capture("short-lookup.pcap")[..40].to_vec() };
        let mut bytes = header;
        bytes.extend(tail);
        decode(bytes);
    }

    /// Damaged pcapng files, where a block's type, lengths or interface may be
    /// wrong: the mapped file's fast path for packet blocks must read them as
    /// the general parser does (`decode` compares the two).
    #[test]
    fn damaged_pcapng_files_read_alike_mapped_and_streamed(
        which in 0usize..3,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = capture(["two-interfaces.pcapng", "recorded/dumpcap.pcapng", "anomalies.pcapng"][which]);
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        decode(bytes);
    }

    #[test]
    fn random_frames_never_panic(data in prop::collection::vec(any::<u8>(), 0..400), which in 0usize..LINKTYPES.len()) {
        let mut dissector = Dissector::new(dissect::Options { port: 64535, heuristic: true, checksum_all: true, ..Default::default() });
        dissect_bytes(&mut dissector, LINKTYPES[which], &data, 1);
    }

    #[test]
    fn skimmed_frames_are_ones_the_dissection_would_not_show(pick in any::<prop::sample::Index>(), flips in prop::collection::vec((0usize..64, any::<u8>()), 0..4)) {
        let frames = ldm_frames();
        let (linktype, mut data) = frames[pick.index(frames.len())].clone();
        // The headers skimming reads are in the first 64 bytes.
        for (at, value) in flips {
            if let Some(byte) = data.get_mut(at) {
                *byte = value;
            }
        }
        let frame = Frame { number: 1, ts: Timestamp::new(1, 0), len: data.len() as u32, linktype, interface: 0, file_offset: 0, data: &data, kernel_checksum: KernelChecksum::Unknown, raw_time: None };
        let mut skimmed = false;
        let mut skimming = Dissector::new(dissect::Options { skim_other: true, ..Default::default() });
        skimming.dissect_each(frame, |d| { skimmed = d.stop == Some(Stop::NotDecoded); Ok::<_, ()>(true) }).unwrap();
        let mut full = Dissector::new(dissect::Options::default());
        let mut shown = Vec::new();
        full.dissect_each(frame, |d| { shown.push((d.is_shown(), d.findings.len(), d.stop)); Ok::<_, ()>(true) }).unwrap();
        if skimmed {
            prop_assert!(shown.iter().all(|&(is_shown, findings, _)| !is_shown && findings == 0), "{shown:?}");
        }
    }

    #[test]
    fn mutated_ldm_frames_never_panic(pick in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let frames = ldm_frames();
        let (linktype, mut data) = frames[pick.index(frames.len())].clone();
        for (at, value) in flips {
            let i = at.index(data.len());
            data[i] = value;
        }
        data.truncate(cut.index(data.len() + 1));
        let mut dissector = Dissector::new(dissect::Options::default());
        dissect_bytes(&mut dissector, linktype, &data, 2);
    }
}

/// Over whole captures (streams, fragments, requests and responses), skipping
/// the other traffic changes nothing that is shown.
#[test]
fn skimming_other_traffic_changes_nothing_shown() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut names = Vec::new();
    for sub in ["", "recorded", "libvirt", "conformance"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("captures directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
                names.push(path);
            }
        }
    }
    assert!(names.len() > 20, "{names:?}");
    let mut busy_link_skimmed = None;
    for path in names {
        let mut skimmed = 0;
        let mut shown = |skim_other: bool| {
            let reader = CaptureReader::open(path.to_str().expect("UTF-8 path")).expect("opens");
            let options = dissect::Options { skim_other, ..Default::default() };
            let mut shown = Vec::new();
            let mut frames = 0;
            let (error, _) = pipeline::walk_analyzed(reader, options, analyze::Options::default(), |d, note| {
                frames += 1;
                skimmed += usize::from(d.stop == Some(Stop::NotDecoded));
                if d.is_shown() {
                    let keys: Vec<_> = d.findings.iter().chain(&note.findings).map(|f| f.key.name()).collect();
                    shown.push((d.frame.number, format!("{:?} {:?} {:?}", d.ldm, d.libvirt, d.tls), keys));
                }
                Ok(true)
            })
            .expect("no output error");
            (frames, shown, error.map(|e| e.to_string()))
        };
        assert_eq!(shown(true), shown(false), "{}", path.display());
        if path.ends_with("busy-link.pcapng") {
            busy_link_skimmed = Some(skimmed);
        }
    }
    // Else the comparison above would hold without testing anything.
    // busy-link.pcapng holds 10 rounds of 9 frames of other traffic: ARP,
    // DNS, HTTPS, ping and NTP with an IPv4 option are skimmed from their
    // bytes, tagged syslog after its link layer; IPv6 and the two fragments
    // are left to the dissection.
    assert_eq!(busy_link_skimmed, Some(60), "frames skimmed in busy-link.pcapng");
}
