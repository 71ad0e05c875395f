//! `-x`: hex and ASCII, as tshark and tcpdump -X show it.

use std::io::{self, Write};

pub fn write_hex(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    for (row, chunk) in bytes.chunks(16).enumerate() {
        write!(out, "{:04x}  ", row * 16)?;
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => write!(out, "{b:02x} ")?,
                None => write!(out, "   ")?,
            }
            if i == 7 {
                write!(out, " ")?;
            }
        }
        write!(out, " ")?;
        for &b in chunk {
            let c = if (0x20..0x7f).contains(&b) { b as char } else { '.' };
            write!(out, "{c}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_and_a_half_rows() {
        let mut out = Vec::new();
        super::write_hex(&mut out, b"0123456789abcdefXYZ").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "0000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  0123456789abcdef\n\
             0010  58 59 5a                                          XYZ\n"
        );
    }
}
