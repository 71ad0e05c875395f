//! The pcap/pcapng reader on any file: frames or a clear error, never a panic
//! or an endless loop; and the two ways of reading (a stream, as standard
//! input is read, and a memory-mapped file) give the same frames and the
//! same error.
#![no_main]

use ldm_sniff::capture::CaptureReader;
use libfuzzer_sys::fuzz_target;

/// Every frame's metadata and bytes, then the error that ended the walk.
fn read_all(
    reader: Result<CaptureReader, ldm_sniff::capture::CaptureError>,
    data_len: usize,
    name: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(e) => return vec![e.to_string().replace(name, "INPUT")],
    };
    // Every frame needs at least a record header, so this bounds the loop.
    for _ in 0..=data_len / 8 + 1 {
        match reader.next_frame() {
            Ok(Some(f)) => seen.push(format!(
                "{} {:?} {} {:?} {} {} {:?}",
                f.number, f.ts, f.len, f.linktype, f.interface, f.file_offset, f.data
            )),
            Ok(None) => return seen,
            Err(e) => {
                seen.push(e.to_string().replace(name, "INPUT"));
                return seen;
            }
        }
    }
    panic!("more frames than the input can hold");
}

fuzz_target!(|data: &[u8]| {
    let streamed =
        read_all(CaptureReader::from_reader("fuzz", std::io::Cursor::new(data.to_vec())), data.len(), "fuzz");
    let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
    let path = dir.join(format!("ldm-sniff-fuzz-{}.pcap", std::process::id()));
    std::fs::write(&path, data).expect("temporary file written");
    let name = path.to_str().expect("UTF-8 path").to_string();
    let mapped = read_all(CaptureReader::open(&name), data.len(), &name);
    let _ = std::fs::remove_file(&path);
    assert_eq!(streamed, mapped, "the stream and the mapped file disagree");
});
