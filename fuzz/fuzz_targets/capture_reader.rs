//! The pcap/pcapng reader on any file: frames or a clear error, never a panic
//! or an endless loop.
#![no_main]

use ldm_sniff::capture::CaptureReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::from_reader("fuzz", std::io::Cursor::new(data.to_vec())) else { return };
    // Every frame needs at least a record header, so this bounds the loop.
    for _ in 0..=data.len() / 8 + 1 {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                let _ = frame.data.len();
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("more frames than the input can hold");
});
