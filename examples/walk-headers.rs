//! The floor for reading a classic pcap: read() into a large buffer and step
//! over each 16-byte record header, touching nothing else. bench/run.sh
//! times it beside ldm-sniff: `walk-headers FILE.pcap`.

use std::io::Read;

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: walk-headers FILE.pcap");
        std::process::exit(2);
    };
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end) = (0usize, 0usize);
    let mut fill = |buf: &mut Vec<u8>, start: &mut usize, end: &mut usize| -> std::io::Result<usize> {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
        let n = file.read(&mut buf[*end..])?;
        *end += n;
        Ok(n)
    };
    fill(&mut buf, &mut start, &mut end)?;
    let little = buf[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || buf[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    start = 24;
    let mut frames = 0u64;
    loop {
        if end - start < 16 {
            if fill(&mut buf, &mut start, &mut end)? == 0 {
                break;
            }
            continue;
        }
        let field = [buf[start + 8], buf[start + 9], buf[start + 10], buf[start + 11]];
        let caplen = if little { u32::from_le_bytes(field) } else { u32::from_be_bytes(field) } as usize;
        if end - start < 16 + caplen {
            if buf.len() < 16 + caplen {
                buf.resize(16 + caplen, 0);
            }
            if fill(&mut buf, &mut start, &mut end)? == 0 {
                break;
            }
            continue;
        }
        start += 16 + caplen;
        frames += 1;
    }
    println!("{frames} frames");
    Ok(())
}
