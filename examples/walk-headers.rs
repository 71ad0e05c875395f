//! The floor for reading a classic pcap: step over each 16-byte record
//! header, touching nothing else. bench/run.sh times it beside ldm-sniff:
//! `walk-headers FILE.pcap` reads the file with read() into a large buffer
//! (what tcpdump does); `walk-headers --mmap FILE.pcap` maps it the way
//! ldm-sniff's reader does (cache lines fetched ahead, pages released behind).

use std::io::Read;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mmap, path) = match args.as_slice() {
        [flag, path] if flag == "--mmap" => (true, path),
        [path] => (false, path),
        _ => {
            eprintln!("usage: walk-headers [--mmap] FILE.pcap");
            std::process::exit(2);
        }
    };
    let file = std::fs::File::open(path)?;
    let frames = if mmap { walk_mapped(&file)? } else { walk_read(file)? };
    println!("{frames} frames");
    Ok(())
}

fn is_little_endian(header: &[u8]) -> bool {
    header.get(..4).is_some_and(|m| m == [0xd4, 0xc3, 0xb2, 0xa1] || m == [0x4d, 0x3c, 0xb2, 0xa1])
}

fn caplen(record: &[u8], little: bool) -> usize {
    let field = [record[8], record[9], record[10], record[11]];
    (if little { u32::from_le_bytes(field) } else { u32::from_be_bytes(field) }) as usize
}

fn walk_read(mut file: std::fs::File) -> std::io::Result<u64> {
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
    let little = is_little_endian(&buf);
    start = 24;
    let mut frames = 0u64;
    loop {
        if end - start < 16 {
            if fill(&mut buf, &mut start, &mut end)? == 0 {
                break;
            }
            continue;
        }
        let caplen = caplen(&buf[start..], little);
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
    Ok(frames)
}

fn walk_mapped(file: &std::fs::File) -> std::io::Result<u64> {
    // SAFETY: read-only map of a file nothing else writes during the bench.
    let map = unsafe { memmap2::Mmap::map(file)? };
    let little = is_little_endian(&map);
    let (mut start, mut prefetched, mut released) = (24usize, 0usize, 0usize);
    let mut frames = 0u64;
    while start + 16 <= map.len() {
        #[cfg(target_arch = "x86_64")]
        while prefetched < (start + (8 << 10)).min(map.len()) {
            // SAFETY: a prefetch never faults; the address is inside the map.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    map.as_ptr().add(prefetched).cast(),
                )
            };
            prefetched += 64;
        }
        if start - released >= 2 << 20 {
            let upto = start & !4095;
            // SAFETY: pages behind the walk are never touched again.
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, released, upto - released)? };
            released = upto;
        }
        let end = start + 16 + caplen(&map[start..], little);
        if end > map.len() {
            break;
        }
        start = end;
        frames += 1;
    }
    Ok(frames)
}
